/**
 * A stand-in for the read side of Google's REST APIs (Cloud Scheduler, Cloud Functions v2, Cloud
 * Run's getIamPolicy, Firestore Admin's index list, Artifact Registry, Compute firewalls, Cloud
 * DNS zones and their getIamPolicy): GET of a resource path answers what the test put there, as
 * does POST of a `:getIamPolicy` path (Cloud DNS reads policies with POST); a path in `faults`
 * answers that status, anything else 404, both in Google's error shape. The real clients reach it
 * over plain HTTP with `standinClientOptions`, as the Compute client reaches the Compute stand-in.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GoogleStandin {
  port: number;
  /** resource path (as the client sends it, e.g. /v1/projects/p/locations/l/jobs/j) → JSON */
  resources: Map<string, unknown>;
  /** resource path → the HTTP status it fails with, before `resources` is looked at */
  faults: Map<string, number>;
  /** the paths of every request, in order */
  requests: string[];
  stop(): Promise<void>;
}

/** Google's status names of the HTTP statuses a test may answer with. */
const STATUS: Record<number, string> = {
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

export async function startGoogleStandin(): Promise<GoogleStandin> {
  const resources = new Map<string, unknown>();
  const faults = new Map<string, number>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(`${req.method} ${path}`);
    const readable =
      req.method === 'GET' || (req.method === 'POST' && path.endsWith(':getIamPolicy'));
    const body = readable && !faults.has(path) ? resources.get(path) : undefined;
    const status = body === undefined ? (faults.get(path) ?? 404) : 200;
    res.writeHead(status, { 'content-type': 'application/json' });
    const name = STATUS[status] ?? 'UNKNOWN';
    res.end(
      JSON.stringify(
        body ?? { error: { code: status, message: `${path}: ${name}`, status: name } },
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    resources,
    faults,
    requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
