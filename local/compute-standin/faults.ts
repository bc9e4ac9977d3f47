/** Fault injection: queued faults that the next matching calls take, one call each. */
import { backendError, quotaExceeded } from './errors.ts';
import type { Fault, FaultKind, FaultOp } from './types.ts';

const ALLOWED_FAULTS: Record<FaultOp, FaultKind[]> = {
  insert: ['quota', 'stockout', 'invalid-image', 'http503', 'never-done'],
  delete: ['quota', 'http503', 'never-done'],
  get: ['quota', 'http503'],
  list: ['quota', 'http503'],
};

export interface QueuedFault {
  op: FaultOp;
  kind: FaultKind;
  remaining: number;
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
    this.faults.push({ op: fault.op, kind: fault.kind, remaining: times });
  }

  /** The kind of the first fault queued for `op`, counting the call against it. */
  take(op: FaultOp): FaultKind | undefined {
    const index = this.faults.findIndex((f) => f.op === op && f.remaining > 0);
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

/** Throws the error a call answers with for a `quota` or `http503` fault; other kinds pass. */
export function rejectFault(fault: FaultKind | undefined, quotaMessage: string): void {
  if (fault === 'quota') throw quotaExceeded(quotaMessage);
  if (fault === 'http503') throw backendError();
}
