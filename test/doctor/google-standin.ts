/**
 * A stand-in for the read side of Google's REST APIs (Cloud Scheduler, Cloud Functions v2, Cloud
 * Run's getIamPolicy, Firestore Admin's index list, Artifact Registry, Compute firewalls): GET of a
 * resource path answers what the test put there,
 * anything else 404 in Google's error shape. The real clients reach it over plain HTTP with
 * `standinClientOptions`, as the Compute client reaches the Compute stand-in.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GoogleStandin {
  port: number;
  /** resource path (as the client sends it, e.g. /v1/projects/p/locations/l/jobs/j) → JSON */
  resources: Map<string, unknown>;
  /** the paths of every request, in order */
  requests: string[];
  stop(): Promise<void>;
}

export async function startGoogleStandin(): Promise<GoogleStandin> {
  const resources = new Map<string, unknown>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(`${req.method} ${path}`);
    const body = req.method === 'GET' ? resources.get(path) : undefined;
    const status = body === undefined ? 404 : 200;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(
        body ?? { error: { code: 404, message: `${path} not found`, status: 'NOT_FOUND' } },
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    resources,
    requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
