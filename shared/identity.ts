import type { Request } from '@google-cloud/functions-framework';
import type { Config } from './config.ts';
import { HttpError } from './http.ts';
import { InvalidIdToken, type IdTokenVerifier, type VerifiedIdentity } from './id-token.ts';

/** The development instructor of the local stack (DESIGN.md §5); also an admin there. */
export const DEV_USER = 'dev@localhost';
/**
 * The email the portal says it acts for. With a verified token it must match the token's email;
 * in the local stack (AUTH_MODE=dev) it names the caller.
 */
export const USER_HEADER = 'x-clarateach-user';

export interface Caller {
  id: string;
  admin: boolean;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,189}$/;
/** `Bearer <JWT>`; the portal's own IAM token travels in X-Serverless-Authorization instead. */
const BEARER = /^Bearer +([A-Za-z0-9_.-]{1,8192})$/i;

const unauthenticated = (message: string) => new HttpError(401, 'UNAUTHENTICATED', message);

function devCaller(req: Request, auth: Config['auth']): Caller {
  const raw = req.get(USER_HEADER);
  if (raw === undefined || raw === '') return { id: DEV_USER, admin: true };
  const id = raw.trim().toLowerCase();
  if (!EMAIL.test(id)) {
    throw new HttpError(400, 'INVALID_REQUEST', `the ${USER_HEADER} header must be an email`);
  }
  return { id, admin: auth.admins.has(id) || id === DEV_USER };
}

/**
 * Whether the operator lets a verified identity run workshops: its email is in INSTRUCTORS or
 * ADMIN_EMAILS, or a listed `@domain` manages the account (`hd`). A service account's token has
 * no `hd`, and neither has a consumer account that merely uses a school address: they get in only
 * by their own email.
 */
export function isInstructor(
  who: VerifiedIdentity,
  auth: Pick<Config['auth'], 'admins' | 'instructors'>,
): boolean {
  return (
    auth.admins.has(who.email) ||
    auth.instructors.emails.has(who.email) ||
    (who.hostedDomain !== undefined && auth.instructors.domains.has(who.hostedDomain))
  );
}

/**
 * Who is calling. Deployed (AUTH_MODE=token), only a verified ID token names the instructor:
 * no token, a token we do not accept, or a token for another user than the portal claims is 401;
 * a verified token of someone the operator did not list is 403 NOT_AN_INSTRUCTOR. In the local
 * stack (AUTH_MODE=dev) nobody is authenticated, so there is no list to check.
 */
export async function callerOf(
  req: Request,
  auth: Config['auth'],
  verifier: Pick<IdTokenVerifier, 'verify'>,
): Promise<Caller> {
  if (auth.mode === 'dev') return devCaller(req, auth);
  const match = BEARER.exec((req.get('authorization') ?? '').trim());
  if (!match) throw unauthenticated('an ID token is required in Authorization: Bearer');
  let who: VerifiedIdentity;
  try {
    who = await verifier.verify(match[1]!);
  } catch (error) {
    if (error instanceof InvalidIdToken) throw unauthenticated('the ID token is not accepted');
    throw error;
  }
  const claimed = req.get(USER_HEADER)?.trim().toLowerCase();
  if (claimed && claimed !== who.email) {
    throw unauthenticated(`the ID token is not for the user ${USER_HEADER} names`);
  }
  if (!isInstructor(who, auth)) {
    throw new HttpError(403, 'NOT_AN_INSTRUCTOR', 'this account may not run workshops here');
  }
  return { id: who.email, admin: auth.admins.has(who.email) };
}
