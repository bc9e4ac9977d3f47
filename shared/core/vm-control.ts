import type { VmPlan } from './plan.ts';
import type { WorkshopRecord, WorkshopSecrets } from './workshop.ts';

/**
 * What the control plane tells a running VM, as instance metadata its watcher follows
 * (startup/clarateach-watcher.sh). Every value is the whole wanted state, never a delta, so a VM
 * that missed a change, or saw one twice, converges on the latest all the same.
 *   seat-tokens  "SEAT:TOKEN …"  each seat's access credential (a freed seat gets a new one)
 *   seat-resets  "SEAT:GENERATION:WIPE_GENERATION …"  a seat whose generation rose gets new
 *                containers; whose wipe generation rose, an empty home as well
 *   class-ends   the class's end (ISO-8601), shown in every seat
 */

/** A seat's reset counters; both 0 (absent) until its first free or reset. */
export interface SeatReset {
  generation: number;
  wipeGeneration: number;
  /** The generation its VM confirmed last (a `vm.ready` report). */
  applied?: number;
}

/** The next reset of a seat: a new generation, and a wipe of the home unless it is kept. */
export function nextReset(current: SeatReset | undefined, keepHome: boolean): SeatReset {
  const generation = (current?.generation ?? 0) + 1;
  return {
    ...current,
    generation,
    wipeGeneration: keepHome ? (current?.wipeGeneration ?? 0) : generation,
  };
}

/**
 * A reset a learner or instructor asks for. One still waiting for its VM that does at least as
 * much (a wipe covers a keep) is the answer: a retried or repeated request resets once.
 */
export function requestedReset(current: SeatReset | undefined, keepHome: boolean): SeatReset {
  const pending = current !== undefined && current.generation > (current.applied ?? 0);
  if (pending && (keepHome || current.wipeGeneration === current.generation)) return current;
  return nextReset(current, keepHome);
}

function seatsOf(vm: VmPlan): number[] {
  return Array.from({ length: vm.seatCount }, (_, i) => vm.firstSeat + i);
}

/** The metadata keys above for one VM of the workshop. */
export function controlMetadata(
  workshop: WorkshopRecord,
  vm: VmPlan,
  secrets: WorkshopSecrets,
): Record<string, string> {
  const resets = secrets.seatResets ?? {};
  return {
    'seat-tokens': seatsOf(vm)
      .map((seat) => `${seat}:${secrets.seatTokens[seat]}`)
      .join(' '),
    'seat-resets': seatsOf(vm)
      .flatMap((seat) => {
        const r = resets[seat];
        return r ? [`${seat}:${r.generation}:${r.wipeGeneration}`] : [];
      })
      .join(' '),
    'class-ends': workshop.expiresAt,
  };
}

/** Whether a VM's metadata already holds every wanted control value. */
export function controlApplied(
  wanted: Record<string, string>,
  current: Record<string, string>,
): boolean {
  return Object.entries(wanted).every(([key, value]) => current[key] === value);
}

/** Pure: the `seatResets` of a VM's ready report ("SEAT:GENERATION …") as seat → generation. */
export function parseAppliedResets(text: string | undefined): Map<number, number> {
  const applied = new Map<number, number>();
  for (const entry of (text ?? '').split(' ')) {
    const m = /^([0-9]{1,4}):([0-9]{1,9})$/.exec(entry);
    if (m) applied.set(Number(m[1]), Number(m[2]));
  }
  return applied;
}
