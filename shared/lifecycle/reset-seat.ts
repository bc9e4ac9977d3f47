import { FieldPath } from '@google-cloud/firestore';
import { tokenMatches } from '../core/secrets.ts';
import { requestedReset } from '../core/vm-control.ts';
import { HttpError, notFound } from '../http.ts';
import type { Caller } from '../identity.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';
import { pushVmControl } from './vm-control.ts';
import { visibleOrNotFound } from './workshop-access.ts';

/** Who asks: the workshop's instructor, or the seat's own learner with their seatToken. */
export type ResetRequester = { caller: Caller } | { seatToken: string };

export interface SeatResetView {
  workshopId: string;
  seat: number;
  keepHome: boolean;
  /** The seat's reset generation; the VM reports it in `vm.ready` once applied. */
  generation: number;
}

/**
 * A fresh container for a seat, keeping or wiping its home; same learner, same credential. The
 * reset is recorded, then the VM is told. A repeat while the VM has not applied the last one
 * changes nothing (core/vm-control.ts `requestedReset`).
 */
export async function resetSeat(
  s: Services,
  id: string,
  seat: number,
  who: ResetRequester,
  keepHome: boolean,
): Promise<SeatResetView> {
  const { vmName, generation } = await s.store.inTransaction(id, async (tx, current) => {
    // A learner learns nothing about a workshop or seat their token does not hold.
    const workshop = 'caller' in who ? visibleOrNotFound(current, who.caller) : current;
    if (!workshop) throw notFound('seat');
    const ref = s.store.seats(id).doc(String(seat));
    const secretsRef = s.store.secrets(id);
    const [held, secrets] =
      seat <= workshop.seats
        ? await Promise.all([
            tx.get(ref).then((d) => d.data()),
            tx.get(secretsRef).then((d) => d.data()),
          ])
        : [undefined, undefined];
    const learnerHolds =
      'caller' in who || (held !== undefined && tokenMatches(who.seatToken, held.tokenHash));
    if (!held || !secrets || held.freeing !== undefined || !learnerHolds) throw notFound('seat');
    if (workshop.status !== 'ready') {
      throw new HttpError(
        409,
        'INVALID_STATE',
        `a workshop that is ${workshop.status} has no seats`,
        {
          status: workshop.status,
        },
      );
    }
    const reset = requestedReset(secrets.seatResets?.[seat], keepHome);
    tx.update(secretsRef, new FieldPath('seatResets', String(seat)), reset);
    return { vmName: held.vmName, generation: reset.generation };
  });
  log.info('seat reset', { workshopId: id, seat, keepHome, generation });
  await pushVmControl(s, id, [vmName]);
  return { workshopId: id, seat, keepHome, generation };
}
