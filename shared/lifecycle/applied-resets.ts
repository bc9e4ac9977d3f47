import { FieldPath, type Transaction } from '@google-cloud/firestore';
import { parseAppliedResets } from '../core/vm-control.ts';
import type { VmRecord } from '../core/workshop.ts';
import type { Services } from '../services.ts';

/**
 * The part of a VM's ready report that confirms seat resets (`seatResets`, "SEAT:GENERATION …"):
 * a freed seat whose reset the VM applied is handed out again (its `freeing` record goes), and
 * each reset is marked applied. Only the reporting VM's own seats count. Reads inside `tx` now,
 * and returns the writes to make once every read of the transaction is done.
 */
export async function readAppliedResets(
  s: Services,
  tx: Transaction,
  workshopId: string,
  vm: VmRecord,
  reported: string | undefined,
): Promise<() => void> {
  const applied = [...parseAppliedResets(reported)].filter(
    ([seat]) => seat >= vm.firstSeat && seat < vm.firstSeat + vm.seatCount,
  );
  if (applied.length === 0) return () => undefined;
  const secretsRef = s.store.secrets(workshopId);
  const seatRefs = applied.map(([seat]) => s.store.seats(workshopId).doc(String(seat)));
  const [secrets, ...seats] = await Promise.all([
    tx.get(secretsRef).then((d) => d.data()),
    ...seatRefs.map((ref) => tx.get(ref).then((d) => d.data())),
  ]);
  return () => {
    applied.forEach(([seat, generation], i) => {
      const held = seats[i];
      if (held?.freeing !== undefined && held.freeing <= generation) tx.delete(seatRefs[i]!);
      const reset = secrets?.seatResets?.[seat];
      if (reset && (reset.applied ?? 0) < generation) {
        tx.update(
          secretsRef,
          new FieldPath('seatResets', String(seat), 'applied'),
          Math.min(generation, reset.generation),
        );
      }
    });
  };
}
