/**
 * The workshop state machine (DESIGN.md §3). Pure: handlers ask it what a status becomes and apply
 * the answer inside a transaction, so a duplicate or late event can never move a workshop backwards.
 */
export const STATUSES = ['created', 'provisioning', 'ready', 'ending', 'ended', 'failed'] as const;
export type Status = (typeof STATUSES)[number];

export const END_REASONS = [
  'instructor',
  'ttl',
  'provisioning-failed',
  'provisioning-timeout',
  'vm-failed',
] as const;
export type EndReason = (typeof END_REASONS)[number];

export type LifecycleEvent =
  | { type: 'start' }
  | { type: 'all-vms-ready' }
  | { type: 'end'; reason: EndReason }
  | { type: 'torn-down'; reason: EndReason };

export type Decision =
  | { kind: 'move'; to: Status }
  /** Already where the event leads (a duplicate) or past it (a late event): nothing to do. */
  | { kind: 'stay' }
  /** The event makes no sense in this status; an HTTP caller gets 409 INVALID_STATE. */
  | { kind: 'refuse' };

const FAILURE_REASONS: ReadonlySet<EndReason> = new Set([
  'provisioning-failed',
  'provisioning-timeout',
  'vm-failed',
]);

/** A workshop that ends because it could not be provisioned finishes as `failed`, others as `ended`. */
export function finalStatus(reason: EndReason): 'ended' | 'failed' {
  return FAILURE_REASONS.has(reason) ? 'failed' : 'ended';
}

export function isTerminal(status: Status): boolean {
  return status === 'ended' || status === 'failed';
}

/** Statuses in which VMs may exist and must eventually be deleted. */
export function mayHaveVms(status: Status): boolean {
  return status === 'provisioning' || status === 'ready' || status === 'ending';
}

const stay: Decision = { kind: 'stay' };
const refuse: Decision = { kind: 'refuse' };
const move = (to: Status): Decision => ({ kind: 'move', to });

export function decide(status: Status, event: LifecycleEvent): Decision {
  switch (event.type) {
    case 'start':
      if (status === 'created') return move('provisioning');
      return status === 'provisioning' || status === 'ready' ? stay : refuse;
    case 'all-vms-ready':
      return status === 'provisioning' ? move('ready') : stay;
    case 'end':
      // Nothing ran yet: there is nothing to tear down.
      if (status === 'created') return move(finalStatus(event.reason));
      if (status === 'provisioning' || status === 'ready') return move('ending');
      return stay;
    case 'torn-down':
      return status === 'ending' ? move(finalStatus(event.reason)) : stay;
  }
}
