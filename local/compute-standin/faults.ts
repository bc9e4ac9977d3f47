/** Fault injection: queued faults that the next matching calls take, one call each. */
import { ApiError, backendError, quotaExceeded } from './errors.ts';
import type { Fault, FaultKind, FaultOp } from './types.ts';

const ALLOWED_FAULTS: Record<FaultOp, FaultKind[]> = {
  insert: ['quota', 'stockout', 'invalid-image', 'http503', 'never-done'],
  delete: ['quota', 'http503', 'never-done'],
  get: ['quota', 'http503'],
  list: ['quota', 'http503'],
  regions: ['http503'],
  dns: ['http503', 'http403'],
};

export interface QueuedFault {
  op: FaultOp;
  kind: FaultKind;
  remaining: number;
  zone?: string;
  spot?: boolean;
}

/** Where a call goes: the zone (none for aggregated calls) and, for an insert, the model. */
export interface CallScope {
  zone?: string;
  spot?: boolean;
}

export class FaultQueue {
  private readonly faults: QueuedFault[] = [];

  inject(fault: Fault): void {
    const allowed = ALLOWED_FAULTS[fault.op];
    if (!allowed) throw new Error(`unknown fault op ${String(fault.op)}`);
    if (!allowed.includes(fault.kind)) {
      throw new Error(`fault ${String(fault.kind)} is not supported for ${fault.op}`);
    }
    const times = fault.times ?? 1;
    if (!(times === Infinity || (Number.isInteger(times) && times > 0))) {
      throw new Error('fault times must be a positive integer');
    }
    if (fault.zone !== undefined && typeof fault.zone !== 'string') {
      throw new Error('fault zone must be a zone name');
    }
    if (fault.spot !== undefined && (typeof fault.spot !== 'boolean' || fault.op !== 'insert')) {
      throw new Error('fault spot must be true or false, and only for inserts');
    }
    this.faults.push({
      op: fault.op,
      kind: fault.kind,
      remaining: times,
      ...(fault.zone !== undefined ? { zone: fault.zone } : {}),
      ...(fault.spot !== undefined ? { spot: fault.spot } : {}),
    });
  }

  /** The kind of the first fault queued for `op` in this scope, counting the call against it. */
  take(op: FaultOp, scope: CallScope = {}): FaultKind | undefined {
    const index = this.faults.findIndex(
      (f) =>
        f.op === op &&
        f.remaining > 0 &&
        (f.zone === undefined || f.zone === scope.zone) &&
        (f.spot === undefined || f.spot === scope.spot),
    );
    if (index < 0) return undefined;
    const fault = this.faults[index] as QueuedFault;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.faults.splice(index, 1);
    return fault.kind;
  }

  clear(): void {
    this.faults.length = 0;
  }

  /** Copies of the queued faults. */
  list(): QueuedFault[] {
    return this.faults.map((f) => ({ ...f }));
  }
}

/** Throws the error a call answers with for a quota, http503 or http403 fault; other kinds pass. */
export function rejectFault(fault: FaultKind | undefined, quotaMessage: string): void {
  if (fault === 'quota') throw quotaExceeded(quotaMessage);
  if (fault === 'http503') throw backendError();
  if (fault === 'http403') throw new ApiError(403, 'forbidden', 'Forbidden');
}
