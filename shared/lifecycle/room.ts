import type { CollectionReference } from '@google-cloud/firestore';
import { hashToken } from '../core/secrets.ts';
import { roomView, type HandRecord, type RoomView } from '../core/room.ts';
import { HttpError } from '../http.ts';
import type { Caller } from '../identity.ts';
import { log } from '../log.ts';
import type { HandBody } from '../schemas.ts';
import type { Services } from '../services.ts';
import { visibleOrNotFound } from './workshop-access.ts';

const hands = (s: Services, id: string) =>
  s.store.workshop(id).collection('hands') as CollectionReference<HandRecord>;

/** The instructor's view of a class's seats: learners, hands up, and each seat's watch URL. */
export async function loadRoom(s: Services, id: string, caller: Caller): Promise<RoomView> {
  const workshop = visibleOrNotFound(await s.store.getWorkshop(id), caller);
  const [vms, seats, raised, secrets] = await Promise.all([
    s.store.getVms(id),
    s.store.seats(id).get(),
    hands(s, id).get(),
    s.store.getSecrets(id),
  ]);
  return roomView(
    workshop,
    vms,
    seats.docs.map((d) => d.data()),
    raised.docs.map((d) => d.data()),
    secrets?.viewerToken,
  );
}

/** The instructor has seen to a hand: it goes (clearing one that is down is fine too). */
export async function clearHand(s: Services, id: string, caller: Caller, seat: number) {
  visibleOrNotFound(await s.store.getWorkshop(id), caller);
  await hands(s, id).doc(String(seat)).delete();
  return loadRoom(s, id, caller);
}

/**
 * A learner raises or lowers a hand with the seatToken join gave them: only a seat they hold in a
 * ready class, never a freed one. Raising again keeps their place in the queue.
 */
export async function setHand(s: Services, body: HandBody) {
  const tokenHash = hashToken(body.seatToken);
  const held = (await s.store.seatToken(tokenHash).get()).data();
  const notHeld = () =>
    new HttpError(404, 'SEAT_NOT_FOUND', 'this seatToken holds no seat; join again');
  if (!held || held.freed) throw notHeld();
  const { workshopId: id, seat } = held;
  const [workshop, seatDoc] = await Promise.all([
    s.store.getWorkshop(id),
    s.store.seats(id).doc(String(seat)).get(),
  ]);
  if (workshop?.status !== 'ready') {
    throw new HttpError(409, 'NOT_READY', 'the class is not running', {
      status: workshop?.status ?? 'ended',
    });
  }
  const learner = seatDoc.data();
  if (learner?.tokenHash !== tokenHash) throw notHeld();
  const ref = hands(s, id).doc(String(seat));
  if (!body.raised) {
    await ref.delete();
    return { seat, raised: false, raisedAt: null };
  }
  const raisedAt = await s.store.db.runTransaction(async (tx) => {
    const current = (await tx.get(ref)).data();
    if (current?.tokenHash === tokenHash) return current.raisedAt;
    const now = s.now().toISOString();
    tx.set(ref, { seat, learnerName: learner.learnerName, raisedAt: now, tokenHash });
    return now;
  });
  log.info('hand raised', { workshopId: id, seat });
  return { seat, raised: true, raisedAt };
}
