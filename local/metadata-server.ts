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
  close(): Promise<void>;
}

const PREFIX = '/computeMetadata/v1/';

/**
 * A GCE-like metadata server for one instance, on a free loopback port. Like the real one it
 * answers only requests carrying `Metadata-Flavor: Google` (403 otherwise) and refuses proxied
 * ones; unknown keys are 404. The service-account token is a fixed dummy: the emulators ignore it.
 */
export async function startMetadataServer(opts: MetadataServerOptions): Promise<MetadataServer> {
  const instanceId = BigInt(
    '0x' + createHash('sha256').update(`${opts.projectId}/${opts.instanceName}`).digest('hex'),
  )
    .toString()
    .slice(0, 19);
  const accessToken = `local-${randomBytes(16).toString('hex')}`;
  const email = `clarateach-vm@${opts.projectId}.iam.gserviceaccount.com`;
  const attributes = new Map(Object.entries(opts.attributes));

  const values = new Map<string, string>([
    ['project/project-id', opts.projectId],
    ['instance/name', opts.instanceName],
    ['instance/hostname', `${opts.instanceName}.${opts.zone}.c.${opts.projectId}.internal`],
    ['instance/id', instanceId],
    ['instance/zone', `projects/${opts.projectId}/zones/${opts.zone}`],
    ['instance/network-interfaces/0/ip', opts.internalIp],
    ['instance/service-accounts/default/email', email],
    ['instance/attributes/', [...attributes.keys()].map((k) => `${k}\n`).join('')],
  ]);
  if (opts.externalIp) {
    values.set('instance/network-interfaces/0/access-configs/0/external-ip', opts.externalIp);
  }

  const lookup = (key: string): { type: string; body: string } | undefined => {
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
      res.writeHead(status, { 'Content-Type': type, 'Metadata-Flavor': 'Google' });
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
    const path = new URL(req.url ?? '/', 'http://metadata').pathname;
    const found = path.startsWith(PREFIX) ? lookup(path.slice(PREFIX.length)) : undefined;
    if (!found) {
      reply(404, 'Not Found\n');
      return;
    }
    reply(200, found.body, found.type);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/computeMetadata/v1`,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
