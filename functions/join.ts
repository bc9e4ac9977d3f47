import type { Request, Response } from '@google-cloud/functions-framework';
import { HttpError, httpHandler, invalidRequest, jsonBody } from '../shared/http.ts';
import { joinWorkshop } from '../shared/lifecycle/join.ts';
import { setHand } from '../shared/lifecycle/room.ts';
import { handleCors } from '../shared/cors.ts';
import { serveJoinPage } from '../shared/pages/pages.ts';
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
  if (handleCors(req, res) || (await serveJoinPage(req, res))) return;
  if (req.method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use POST');
  // The learner's hand (join page, workspace page): `POST …/hand` with the seatToken.
  if (req.path.endsWith('/hand')) {
    const body = jsonBody(req);
    if (!validators.hand(body)) throw invalidRequest(describeErrors(validators.hand));
    res
      .status(200)
      .set('Cache-Control', 'no-store')
      .json(await setHand(services(), body));
    return;
  }
  const body = jsonBody(req);
  if (!validators.join(body)) throw invalidRequest(describeErrors(validators.join));
  const result = await joinWorkshop(services(), body, clientAddress(req));
  res.status(200).set('Cache-Control', 'no-store').json(result);
});
