import type { Request, Response } from '@google-cloud/functions-framework';
import { isWorkshopId } from '../shared/core/ids.ts';
import { toWorkshopView, type WorkshopRecord } from '../shared/core/workshop.ts';
import { HttpError, httpHandler, invalidRequest, jsonBody, notFound } from '../shared/http.ts';
import { callerOf, type Caller } from '../shared/identity.ts';
import { createWorkshop } from '../shared/lifecycle/create.ts';
import { clearHand, loadRoom } from '../shared/lifecycle/room.ts';
import { handleCors } from '../shared/cors.ts';
import { serveConsole } from '../shared/pages/pages.ts';
import { requestEnd } from '../shared/lifecycle/end.ts';
import { extendWorkshop } from '../shared/lifecycle/extend.ts';
import { freeSeat } from '../shared/lifecycle/free-seat.ts';
import { resetSeat } from '../shared/lifecycle/reset-seat.ts';
import { startWorkshop } from '../shared/lifecycle/start.ts';
import { canSee, visibleOrNotFound } from '../shared/lifecycle/workshop-access.ts';
import { describeErrors, validators } from '../shared/schemas.ts';
import { services, type Services } from '../shared/services.ts';

const LIST_LIMIT = 100;

async function view(s: Services, workshop: WorkshopRecord) {
  const [vms, seatsTaken] = await Promise.all([
    s.store.getVms(workshop.id),
    s.store.countSeats(workshop.id),
  ]);
  return toWorkshopView(workshop, vms, seatsTaken, s.now().toISOString());
}

async function load(s: Services, id: string, caller: Caller): Promise<WorkshopRecord> {
  if (!isWorkshopId(id)) throw notFound();
  return visibleOrNotFound(await s.store.getWorkshop(id), caller);
}

/** A seat number in a path, or 0 for anything else. */
const seatNumber = (text: string) => (/^[1-9][0-9]{0,2}$/.test(text) ? Number(text) : 0);

function methodNotAllowed(allowed: string): HttpError {
  return new HttpError(405, 'METHOD_NOT_ALLOWED', `use ${allowed}`);
}

/**
 * The instructor API (DESIGN.md §5), every call on behalf of a verified instructor. Deployed, the
 * function's own URL is the root; in the local stack it sits under /workshops; both are accepted.
 */
export const workshops = httpHandler('workshops', async (req: Request, res: Response) => {
  if (handleCors(req, res) || (await serveConsole(req, res))) return;
  const s = services();
  const parts = req.path.split('/').filter(Boolean);
  if (parts[0] === 'workshops') parts.shift();
  const [id, action, ...rest] = parts;
  const seat = action === 'seats' ? seatNumber(rest[0] ?? '') : 0;

  // A seat's reset: its own learner may ask too, with their seatToken instead of an identity.
  if (action === 'seats' && rest.length === 2 && rest[1] === 'reset') {
    if (req.method !== 'POST') throw methodNotAllowed('POST');
    const body = jsonBody(req);
    if (!validators.resetSeat(body)) throw invalidRequest(describeErrors(validators.resetSeat));
    if (id === undefined || !isWorkshopId(id) || seat === 0) throw notFound('seat');
    const who = body.seatToken
      ? { seatToken: body.seatToken }
      : { caller: await callerOf(req, s.config.auth, s.idTokens) };
    res.status(202).json(await resetSeat(s, id, seat, who, body.keepHome));
    return;
  }
  const caller = await callerOf(req, s.config.auth, s.idTokens);

  if (id === undefined) {
    if (req.method === 'GET') {
      const list = await s.store.listWorkshops(caller.id, LIST_LIMIT);
      res.status(200).json({ workshops: await Promise.all(list.map((w) => view(s, w))) });
      return;
    }
    if (req.method !== 'POST') throw methodNotAllowed('GET or POST');
    const body = jsonBody(req);
    if (!validators.createWorkshop(body))
      throw invalidRequest(describeErrors(validators.createWorkshop));
    const workshop = await createWorkshop(s, caller, body);
    res.status(201).json(toWorkshopView(workshop, [], 0, s.now().toISOString()));
    return;
  }
  if (action === 'seats' && rest.length === 0) {
    if (req.method !== 'GET') throw methodNotAllowed('GET');
    if (!isWorkshopId(id)) throw notFound();
    res
      .status(200)
      .set('Cache-Control', 'no-store')
      .json(await loadRoom(s, id, caller));
    return;
  }
  if (action === 'hands' && rest.length === 1) {
    if (req.method !== 'DELETE') throw methodNotAllowed('DELETE');
    const seat = seatNumber(rest[0]!);
    if (!isWorkshopId(id)) throw notFound();
    if (seat === 0) throw notFound('seat');
    res.status(200).json(await clearHand(s, id, caller, seat));
    return;
  }
  if (action === 'seats' && rest.length === 1) {
    if (req.method !== 'DELETE') throw methodNotAllowed('DELETE');
    if (!isWorkshopId(id)) throw notFound();
    if (seat === 0) throw notFound('seat');
    res.status(200).json(await view(s, await freeSeat(s, id, caller, seat)));
    return;
  }
  if (rest.length > 0) throw new HttpError(404, 'NOT_FOUND', 'no such route');

  switch (action) {
    case undefined: {
      if (req.method === 'GET') {
        res.status(200).json(await view(s, await load(s, id, caller)));
        return;
      }
      if (req.method !== 'DELETE') throw methodNotAllowed('GET or DELETE');
      const workshop = await load(s, id, caller);
      const ended = (await requestEnd(s, id, { reason: 'instructor' })) ?? workshop;
      res.status(202).json(await view(s, ended));
      return;
    }
    case 'start': {
      if (req.method !== 'POST') throw methodNotAllowed('POST');
      if (!isWorkshopId(id)) throw notFound();
      res.status(202).json(await view(s, await startWorkshop(s, id, caller)));
      return;
    }
    case 'extend': {
      if (req.method !== 'POST') throw methodNotAllowed('POST');
      if (!isWorkshopId(id)) throw notFound();
      const body = jsonBody(req);
      if (!validators.extend(body)) throw invalidRequest(describeErrors(validators.extend));
      res.status(200).json(await view(s, await extendWorkshop(s, id, caller, body.minutes)));
      return;
    }
    case 'ssh-key': {
      if (req.method !== 'GET') throw methodNotAllowed('GET');
      // Someone else's workshop is 404 as on every route; its owner learns that only admins may.
      const workshop = isWorkshopId(id) ? await s.store.getWorkshop(id) : null;
      if (!canSee(workshop, caller)) throw notFound('SSH key');
      if (!caller.admin) throw new HttpError(403, 'FORBIDDEN', 'only admins may read SSH keys');
      const secrets = await s.store.getSecrets(id);
      if (!secrets) throw notFound('SSH key');
      res
        .status(200)
        .set('Cache-Control', 'no-store')
        .type('text/plain')
        .send(secrets.sshPrivateKey);
      return;
    }
    default:
      throw new HttpError(404, 'NOT_FOUND', 'no such route');
  }
});
