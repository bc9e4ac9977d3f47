import {
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An ID-token issuer of the test's own: an RSA key the test holds, its public key published on
 * loopback in the format Google publishes (`{kid: PEM}`, with Cache-Control), and a minter.
 */
export interface TestIssuer {
  issuer: string;
  certsUrl: string;
  /** The published key, as served. */
  publishedPem: string;
  /** How many times the published keys were fetched. */
  fetches(): number;
  /** A signed token: `claims` over valid defaults; `opts` to sign it wrongly on purpose. */
  mint(claims?: Record<string, unknown>, opts?: MintOptions): string;
  close(): Promise<void>;
}

export interface MintOptions {
  header?: Record<string, unknown>;
  /** Sign with this key instead of the published one. */
  key?: KeyObject;
  /** Sign HS256 with this secret (the published PEM, for the algorithm-confusion attack). */
  hmacSecret?: string;
  /** Send no signature at all (`alg: none`). */
  unsigned?: boolean;
}

export const AUDIENCE = 'clarateach-test-audience';
const KID = 'test-key-1';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function newRsaKey(): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

export async function startTestIssuer(name: string): Promise<TestIssuer> {
  const key = newRsaKey();
  // An SPKI PEM: Node's verifier takes it as readily as the X.509 certificates Google serves.
  const published = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' });
    res.end(JSON.stringify({ [KID]: published }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `https://${name}.issuer.test`;
  return {
    issuer,
    certsUrl: `http://127.0.0.1:${port}/certs`,
    publishedPem: published,
    fetches: () => fetches,
    mint(claims = {}, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload = {
        iss: issuer,
        aud: AUDIENCE,
        sub: `sub-${String(claims.email ?? 'x')}`,
        email: 'teacher@school.example',
        email_verified: true,
        iat: now - 10,
        exp: now + 3600,
        ...claims,
      };
      const alg = opts.unsigned ? 'none' : opts.hmacSecret ? 'HS256' : 'RS256';
      const head = b64({ alg, kid: KID, typ: 'JWT', ...opts.header });
      const signed = `${head}.${b64(payload)}`;
      if (opts.unsigned) return `${signed}.`;
      const signature = opts.hmacSecret
        ? createHmac('sha256', opts.hmacSecret).update(signed).digest()
        : sign('sha256', Buffer.from(signed), opts.key ?? key);
      return `${signed}.${signature.toString('base64url')}`;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
