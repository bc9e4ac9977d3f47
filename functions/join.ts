import type { Request, Response } from '@google-cloud/functions-framework';
import { HttpError, httpHandler, invalidRequest, jsonBody } from '../shared/http.ts';
import { joinWorkshop } from '../shared/lifecycle/join.ts';
import { describeErrors, validators } from '../shared/schemas.ts';
import { services } from '../shared/services.ts';

export const CLIENT_IP_HEADER = 'x-clarateach-client-ip';

/**
 * Whom to rate-limit: the learner's address as the portal forwards it (deployed, only the portal
 * can call), else the address the request came from.
 */
function clientAddress(req: Request): string {
  return req.get(CLIENT_IP_HEADER)?.slice(0, 64) || req.ip || 'unknown';
}

/** A learner enters the workshop code and gets a seat (DESIGN.md §5). */
export const join = httpHandler('join', async (req: Request, res: Response) => {
  if (req.method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use POST');
  const body = jsonBody(req);
  if (!validators.join(body)) throw invalidRequest(describeErrors(validators.join));
  const result = await joinWorkshop(services(), body, clientAddress(req));
  res.status(200).set('Cache-Control', 'no-store').json(result);
});
