import { OAuth2Client } from 'google-auth-library';
import type { TokenIssuer } from './config.ts';

/** The token is not one we accept. Its message is ours, never the token or its claims. */
export class InvalidIdToken extends Error {
  override name = 'InvalidIdToken';
}

type Claims = Record<string, unknown>;

function decodeSegment(segment: string): Claims | null {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Claims)
      : null;
  } catch {
    return null;
  }
}

/** A JWT's header and claims, unchecked: only to choose whose keys must have signed it. */
export function peekJwt(token: string): { header: Claims; payload: Claims } | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const header = decodeSegment(parts[0]!);
  const payload = decodeSegment(parts[1]!);
  return header && payload ? { header, payload } : null;
}

/** Whom a signature-checked token names. */
export interface VerifiedIdentity {
  email: string;
  /** The Google Workspace domain that manages the account (`hd`); absent for any other. */
  hostedDomain?: string;
}

/** The email a signature-checked token vouches for: present and verified by the issuer. */
export function verifiedEmail(payload: Claims): string | null {
  const email = payload.email;
  if (typeof email !== 'string' || payload.email_verified !== true) return null;
  return /^[^\s@]{1,64}@[^\s@]{1,189}$/.test(email) ? email.toLowerCase() : null;
}

/**
 * Checks ID tokens (Google sign-in, Identity Platform) with google-auth-library: RS256 signature
 * by a key the token's issuer publishes, that issuer, one of our audiences, issue and expiry
 * times, and a verified email. Each issuer has its own client, so its keys are fetched from its
 * own URL and cached for as long as the answer's Cache-Control allows.
 */
export class IdTokenVerifier {
  private readonly clients = new Map<string, OAuth2Client>();

  constructor(
    issuers: readonly TokenIssuer[],
    private readonly audiences: readonly string[],
  ) {
    for (const { issuer, certsUrl } of issuers) {
      this.clients.set(
        issuer,
        new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: certsUrl } }),
      );
    }
  }

  /** The verified email and hosted domain; InvalidIdToken when the token is not acceptable. */
  async verify(token: string): Promise<VerifiedIdentity> {
    const peek = peekJwt(token);
    if (!peek) throw new InvalidIdToken('not a JWT');
    // Both issuers sign with RS256; anything else (`none`, HS256, …) is refused before any check.
    if (peek.header.alg !== 'RS256') throw new InvalidIdToken('unsupported algorithm');
    const issuer = peek.payload.iss;
    const client = typeof issuer === 'string' ? this.clients.get(issuer) : undefined;
    if (!client || typeof issuer !== 'string') throw new InvalidIdToken('unknown issuer');
    // Failing to fetch the keys is our dependency failing (a 503), not the caller's fault.
    const { certs } = await client.getFederatedSignonCertsAsync();
    let payload: Claims | undefined;
    try {
      const ticket = await client.verifySignedJwtWithCertsAsync(
        token,
        certs,
        [...this.audiences],
        [issuer],
      );
      payload = ticket.getPayload() as Claims | undefined;
    } catch {
      // The library's messages quote the token: none of it goes further.
      throw new InvalidIdToken('signature, issuer, audience or time rejected');
    }
    const email = payload && verifiedEmail(payload);
    if (!payload || !email) throw new InvalidIdToken('no verified email');
    const hd = payload.hd;
    return typeof hd === 'string' ? { email, hostedDomain: hd.toLowerCase() } : { email };
  }
}
