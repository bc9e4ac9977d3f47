import type { Request } from '@google-cloud/functions-framework';
import type { Config } from './config.ts';
import { HttpError } from './http.ts';

/** The development instructor of the local stack (DESIGN.md §5); also an admin there. */
export const DEV_USER = 'dev@localhost';
/** The portal, the only caller of a deployed function (Cloud Run IAM), names the instructor here. */
export const USER_HEADER = 'x-clarateach-user';

export interface Caller {
  id: string;
  admin: boolean;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,189}$/;

export function callerOf(req: Request, auth: Config['auth']): Caller {
  const raw = req.get(USER_HEADER);
  if (raw === undefined || raw === '') {
    if (auth.mode === 'dev') return { id: DEV_USER, admin: true };
    throw new HttpError(401, 'UNAUTHENTICATED', `the ${USER_HEADER} header is required`);
  }
  const id = raw.trim().toLowerCase();
  if (!EMAIL.test(id)) {
    throw new HttpError(400, 'INVALID_REQUEST', `the ${USER_HEADER} header must be an email`);
  }
  return { id, admin: auth.admins.has(id) || (auth.mode === 'dev' && id === DEV_USER) };
}
