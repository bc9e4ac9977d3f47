import { FieldPath } from '@google-cloud/firestore';
import { newToken } from '../core/secrets.ts';
import { nextReset } from '../core/vm-control.ts';
import type { SeatRecord, WorkshopRecord } from '../core/workshop.ts';
import { HttpError, notFound } from '../http.ts';
import type { Caller } from '../identity.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';
import { pushVmControl } from './vm-control.ts';
import { visibleOrNotFound } from './workshop-access.ts';

/**
 * The instructor takes a seat back. In one transaction: the learner's seatToken is marked freed
 * (a rejoin with it is 404), their client address slot goes, the seat gets a new access
 * credential and a reset that wipes its home, and the seat record stays as `freeing` until the
 * VM confirms that reset, so nobody is handed the seat while the old learner's credential,
 * processes or files may still be there. Then the VM is told. Freeing a freeing seat only tells
 * the VM again.
 */
export async function freeSeat(
  s: Services,
  id: string,
  caller: Caller,
  seat: number,
): Promise<WorkshopRecord> {
  const { workshop, vmName } = await s.store.inTransaction(id, async (tx, current) => {
    const found = visibleOrNotFound(current, caller);
    if (found.status !== 'ready') {
      throw new HttpError(409, 'INVALID_STATE', `a workshop that is ${found.status} has no seats`, {
        status: found.status,
      });
    }
    const ref = s.store.seats(id).doc(String(seat));
    const secretsRef = s.store.secrets(id);
    const [held, secrets] =
      seat <= found.seats
        ? await Promise.all([
            tx.get(ref).then((d) => d.data()),
            tx.get(secretsRef).then((d) => d.data()),
          ])
        : [undefined, undefined];
    if (!held || !secrets) throw notFound('seat');
    if (held.freeing !== undefined) return { workshop: found, vmName: held.vmName };
    const reset = nextReset(secrets.seatResets?.[seat], false);
    const freeing: SeatRecord = {
      seat,
      learnerName: '',
      tokenHash: '',
      vmName: held.vmName,
      joinedAt: held.joinedAt,
      freeing: reset.generation,
    };
    tx.set(ref, freeing);
    if (held.slot) tx.delete(s.store.addressSlots(id).doc(held.slot));
    tx.set(s.store.seatToken(held.tokenHash), { workshopId: id, seat, freed: true });
    tx.update(
      secretsRef,
      new FieldPath('seatTokens', String(seat)),
      newToken(),
      new FieldPath('seatResets', String(seat)),
      reset,
    );
    return { workshop: found, vmName: held.vmName };
  });
  log.info('seat freed', { workshopId: id, seat });
  await pushVmControl(s, id, [vmName]);
  return workshop;
}
