import type { WorkshopRecord } from '../core/workshop.ts';
import { HttpError, notFound } from '../http.ts';
import type { Caller } from '../identity.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';
import { visibleOrNotFound } from './workshop-access.ts';

/**
 * The instructor takes a seat back: its seat record and its client address slot go, and its
 * seatToken is marked freed (a rejoin with it is 404), all in one transaction, so the seat is
 * handed out again and the address may join again.
 */
export async function freeSeat(
  s: Services,
  id: string,
  caller: Caller,
  seat: number,
): Promise<WorkshopRecord> {
  const workshop = await s.store.inTransaction(id, async (tx, current) => {
    const found = visibleOrNotFound(current, caller);
    if (found.status !== 'ready') {
      throw new HttpError(409, 'INVALID_STATE', `a workshop that is ${found.status} has no seats`, {
        status: found.status,
      });
    }
    const ref = s.store.seats(id).doc(String(seat));
    const held = seat <= found.seats ? (await tx.get(ref)).data() : undefined;
    if (!held) throw notFound('seat');
    tx.delete(ref);
    if (held.slot) tx.delete(s.store.addressSlots(id).doc(held.slot));
    tx.set(s.store.seatToken(held.tokenHash), { workshopId: id, seat, freed: true });
    return found;
  });
  log.info('seat freed', { workshopId: id, seat });
  return workshop;
}
