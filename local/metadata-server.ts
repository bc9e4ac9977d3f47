import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MetadataServerOptions {
  projectId: string;
  zone: string;
  instanceName: string;
  /** Instance attributes, served under `instance/attributes/<key>`. */
  attributes: Record<string, string>;
  /** Empty: the instance has no access config (404, like GCE). */
  externalIp: string;
  internalIp: string;
}

export interface MetadataServer {
  /** `http://127.0.0.1:PORT/computeMetadata/v1`, the value for the startup script's CT_METADATA_URL. */
  url: string;
  /** Replaces the instance attributes (what `instances.setMetadata` does); wakes waiting watchers. */
  setAttributes(attributes: Record<string, string>): void;
  close(): Promise<void>;
}

const PREFIX = '/computeMetadata/v1/';
/** GCE answers a `wait_for_change` with the unchanged value after `timeout_sec`, at most ~1 h. */
const DEFAULT_WAIT_SEC = 60;
const MAX_WAIT_SEC = 3600;

/** The ETag of a value: any change of the value changes it. */
const etagOf = (body: string) => createHash('sha256').update(body).digest('hex').slice(0, 16);

/**
 * A GCE-like metadata server for one instance, on a free loopback port. Like the real one it
 * answers only requests carrying `Metadata-Flavor: Google` (403 otherwise) and refuses proxied
 * ones; unknown keys are 404. The service-account token is a fixed dummy: the emulators ignore it.
 * Every answer carries an ETag; `?wait_for_change=true&last_etag=E` holds the answer until the
 * value's ETag differs from E (or `timeout_sec` passes), and `instance/attributes/?recursive=true`
 * is every attribute as one JSON object, as on GCE, so the VM's watcher runs here unchanged.
 */
export async function startMetadataServer(opts: MetadataServerOptions): Promise<MetadataServer> {
  const instanceId = BigInt(
    '0x' + createHash('sha256').update(`${opts.projectId}/${opts.instanceName}`).digest('hex'),
  )
    .toString()
    .slice(0, 19);
  const accessToken = `local-${randomBytes(16).toString('hex')}`;
  const email = `clarateach-vm@${opts.projectId}.iam.gserviceaccount.com`;
  let attributes = new Map(Object.entries(opts.attributes));
  const waiters = new Set<() => void>();

  const values = new Map<string, string>([
    ['project/project-id', opts.projectId],
    ['instance/name', opts.instanceName],
    ['instance/hostname', `${opts.instanceName}.${opts.zone}.c.${opts.projectId}.internal`],
    ['instance/id', instanceId],
    ['instance/zone', `projects/${opts.projectId}/zones/${opts.zone}`],
    ['instance/network-interfaces/0/ip', opts.internalIp],
    ['instance/service-accounts/default/email', email],
  ]);
  if (opts.externalIp) {
    values.set('instance/network-interfaces/0/access-configs/0/external-ip', opts.externalIp);
  }

  const lookup = (key: string, recursive: boolean): { type: string; body: string } | undefined => {
    if (key === 'instance/attributes/') {
      return recursive
        ? { type: 'application/json', body: JSON.stringify(Object.fromEntries(attributes)) }
        : { type: 'application/text', body: [...attributes.keys()].map((k) => `${k}\n`).join('') };
    }
    if (key === 'instance/service-accounts/default/token') {
      const body = JSON.stringify({
        access_token: accessToken,
        expires_in: 3599,
        token_type: 'Bearer',
      });
      return { type: 'application/json', body };
    }
    if (key.startsWith('instance/attributes/') && key !== 'instance/attributes/') {
      const value = attributes.get(key.slice('instance/attributes/'.length));
      return value === undefined ? undefined : { type: 'application/text', body: value };
    }
    const value = values.get(key);
    return value === undefined ? undefined : { type: 'application/text', body: value };
  };

  const server = http.createServer((req, res) => {
    const reply = (status: number, body: string, type = 'text/plain') => {
      res.writeHead(status, {
        'Content-Type': type,
        'Metadata-Flavor': 'Google',
        ...(status === 200 ? { ETag: etagOf(body) } : {}),
      });
      res.end(body);
    };
    if (req.headers['metadata-flavor'] !== 'Google' || req.headers['x-forwarded-for']) {
      reply(403, 'Missing Metadata-Flavor:Google header.\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(405, 'Method not allowed\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://metadata');
    const key = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) : undefined;
    const recursive = url.searchParams.get('recursive') === 'true';
    const find = () => (key === undefined ? undefined : lookup(key, recursive));
    const answer = () => {
      const found = find();
      if (found) reply(200, found.body, found.type);
      else reply(404, 'Not Found\n');
    };
    if (url.searchParams.get('wait_for_change') !== 'true') {
      answer();
      return;
    }
    const lastEtag = url.searchParams.get('last_etag') ?? '';
    const requested = Number(url.searchParams.get('timeout_sec') ?? DEFAULT_WAIT_SEC);
    const waitSec = Number.isFinite(requested) ? Math.min(Math.max(requested, 1), MAX_WAIT_SEC) : 1;
    const changed = () => {
      const found = find();
      return !found || etagOf(found.body) !== lastEtag;
    };
    // Without a last ETag, GCE waits for the next change; with one, only while it still matches.
    if (lastEtag !== '' && changed()) {
      answer();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      waiters.delete(check);
      answer();
    };
    const check = () => {
      if (lastEtag === '' || changed()) done();
    };
    const timer = setTimeout(done, waitSec * 1000);
    waiters.add(check);
    req.socket.once('close', () => {
      clearTimeout(timer);
      waiters.delete(check);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/computeMetadata/v1`,
    setAttributes(next) {
      attributes = new Map(Object.entries(next));
      for (const check of [...waiters]) check();
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
