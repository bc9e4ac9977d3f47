import { instanceName } from './ids.ts';
import { vmForSeat } from './plan.ts';
import { seatEndpoints, type SeatRecord, type VmRecord, type WorkshopRecord } from './workshop.ts';

/** `workshops/{id}/hands/{seat}`: a learner asking for help, until the instructor clears it. */
export interface HandRecord {
  seat: number;
  learnerName: string;
  raisedAt: string;
  /** The seatToken that raised it: a hand outlives no learner (a freed seat drops it). */
  tokenHash: string;
}

/** One seat as its instructor sees it in the console. */
export interface RoomSeat {
  seat: number;
  vmName: string;
  learner: { name: string; joinedAt: string } | null;
  handRaisedAt: string | null;
  /** The seat's terminal, read-only, with the class's viewer credential; null until its VM serves. */
  watch: string | null;
}

/** `GET /workshops/{id}/seats`: every seat, who joined it and when, and the hands up, oldest first. */
export interface RoomView {
  seats: RoomSeat[];
  hands: Array<{ seat: number; name: string; raisedAt: string }>;
}

/**
 * The seat's read-only terminal on its VM: beside its terminal (`…/S/watch/` next to
 * `…/S/terminal/`, whatever origin the endpoints use), the viewer credential as `?v=`.
 */
export function watchUrl(vm: VmRecord, seat: number, viewerToken: string): string {
  const url = new URL('../watch/', seatEndpoints(vm, seat, '').terminal);
  url.search = `?v=${encodeURIComponent(viewerToken)}`;
  return url.href;
}

/** Pure: the room from the records; a hand counts only while its learner holds the seat. */
export function roomView(
  workshop: WorkshopRecord,
  vms: readonly VmRecord[],
  seats: readonly SeatRecord[],
  hands: readonly HandRecord[],
  viewerToken: string | undefined,
): RoomView {
  // A freed seat stays on record, `freeing`, until its VM has reset it: nobody holds it.
  const held = new Map(seats.filter((s) => s.freeing === undefined).map((s) => [s.seat, s]));
  const up = new Map(
    hands.filter((h) => held.get(h.seat)?.tokenHash === h.tokenHash).map((h) => [h.seat, h]),
  );
  const vmByName = new Map(vms.map((vm) => [vm.name, vm]));
  const live = workshop.status === 'ready';
  const room: RoomSeat[] = [];
  for (let seat = 1; seat <= workshop.seats; seat++) {
    const plan = vmForSeat(workshop.vmPlan, seat);
    const vmName = plan ? instanceName(workshop.id, plan.index) : '';
    const vm = vmByName.get(vmName);
    const learner = held.get(seat);
    room.push({
      seat,
      vmName,
      learner: learner ? { name: learner.learnerName, joinedAt: learner.joinedAt } : null,
      handRaisedAt: up.get(seat)?.raisedAt ?? null,
      watch:
        live && viewerToken && vm?.status === 'ready' && vm.externalIp
          ? watchUrl(vm, seat, viewerToken)
          : null,
    });
  }
  const queue = [...up.values()]
    .sort((a, b) => a.raisedAt.localeCompare(b.raisedAt) || a.seat - b.seat)
    .map((h) => ({ seat: h.seat, name: held.get(h.seat)!.learnerName, raisedAt: h.raisedAt }));
  return { seats: room, hands: queue };
}
