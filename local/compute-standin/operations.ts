/** Zone operations: their creation, completion, lookup, blocking wait and requestId replay. */
import { randomBytes } from 'node:crypto';
import { invalid, notFound } from './errors.ts';
import { key, type OperationState, type StandinState } from './state.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** How a finished operation failed: the operation's error and its HTTP status. */
export interface OperationFailure {
  code: string;
  message: string;
  http: number;
  httpMessage: string;
}

export function newOperation(
  state: StandinState,
  project: string,
  zone: string,
  operationType: OperationState['operationType'],
  targetName: string,
  targetId: string,
): OperationState {
  const now = new Date().toISOString();
  const op: OperationState = {
    id: state.nextId(),
    name: `operation-${Date.now()}-${randomBytes(6).toString('hex')}-${randomBytes(4).toString('hex')}`,
    project,
    zone,
    operationType,
    targetName,
    targetId,
    status: 'RUNNING',
    progress: 0,
    insertTime: now,
    startTime: now,
    waiters: new Set(),
  };
  state.operations.set(key(project, zone, op.name), op);
  return op;
}

/** Marks the operation DONE (with `error`, if it failed) and wakes its waiters; once only. */
export function finish(op: OperationState, error?: OperationFailure): void {
  if (op.status === 'DONE') return;
  op.status = 'DONE';
  op.progress = 100;
  op.endTime = new Date().toISOString();
  if (error) {
    op.error = { code: error.code, message: error.message };
    op.httpErrorStatusCode = error.http;
    op.httpErrorMessage = error.httpMessage;
  }
  for (const wake of op.waiters) wake();
  op.waiters.clear();
}

export function findOperation(
  state: StandinState,
  project: string,
  zone: string,
  name: string,
): OperationState {
  const op = state.operations.get(key(project, zone, name));
  if (!op) throw notFound(project, zone, 'operations', name);
  return op;
}

/** operations/OP/wait: until the operation is DONE, at most `waitTimeoutMs`. */
export async function waitOperation(state: StandinState, op: OperationState): Promise<void> {
  if (op.status !== 'DONE' && !state.stopping) {
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        op.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, state.settings.waitTimeoutMs);
      op.waiters.add(wake);
    });
  }
}

/** A mutating call's `requestId`: the operation it already started, and how to record a new one. */
export interface RequestIdentity {
  /** the call's requestId, if it sent one */
  requestId?: string;
  /** the operation an earlier call with the same requestId started, if any */
  earlier?: OperationState;
  /** records `op` as the one this requestId started (nothing without a requestId) */
  remember(op: OperationState): void;
}

/**
 * Compute's idempotent mutations: `requestId` must be a UUID, and a call repeating one within the
 * project answers with the operation the first call started instead of acting again.
 */
export function requestIdentity(
  state: StandinState,
  project: string,
  query: Record<string, string>,
): RequestIdentity {
  const requestId = query.requestId;
  if (requestId === undefined) return { remember: () => undefined };
  if (!UUID.test(requestId)) {
    throw invalid(`Invalid value for field 'requestId': '${requestId}'. Must be a valid UUID.`);
  }
  const id = `${project}/${requestId}`;
  const earlier = state.byRequestId.get(id);
  return {
    requestId,
    ...(earlier ? { earlier } : {}),
    remember: (op) => void state.byRequestId.set(id, op),
  };
}
