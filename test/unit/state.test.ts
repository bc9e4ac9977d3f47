import test from 'ava';
import { decide, finalStatus, STATUSES, type Status } from '../../shared/core/state.ts';

test('start: only a created workshop moves; running ones stay; finished ones refuse', (t) => {
  const expected: Record<Status, string> = {
    created: 'move:provisioning',
    provisioning: 'stay',
    ready: 'stay',
    ending: 'refuse',
    ended: 'refuse',
    failed: 'refuse',
  };
  for (const status of STATUSES) {
    const d = decide(status, { type: 'start' });
    t.is(d.kind === 'move' ? `move:${d.to}` : d.kind, expected[status], status);
  }
});

test('all VMs ready moves only provisioning to ready', (t) => {
  for (const status of STATUSES) {
    const d = decide(status, { type: 'all-vms-ready' });
    t.deepEqual(d, status === 'provisioning' ? { kind: 'move', to: 'ready' } : { kind: 'stay' });
  }
});

test('end: unstarted ends at once, running goes to ending, the rest stay', (t) => {
  t.deepEqual(decide('created', { type: 'end', reason: 'instructor' }), {
    kind: 'move',
    to: 'ended',
  });
  t.deepEqual(decide('provisioning', { type: 'end', reason: 'ttl' }), {
    kind: 'move',
    to: 'ending',
  });
  t.deepEqual(decide('ready', { type: 'end', reason: 'instructor' }), {
    kind: 'move',
    to: 'ending',
  });
  for (const status of ['ending', 'ended', 'failed'] as const) {
    t.deepEqual(decide(status, { type: 'end', reason: 'instructor' }), { kind: 'stay' });
  }
});

test('torn-down finishes an ending workshop as ended or failed by reason', (t) => {
  t.deepEqual(decide('ending', { type: 'torn-down', reason: 'instructor' }), {
    kind: 'move',
    to: 'ended',
  });
  t.deepEqual(decide('ending', { type: 'torn-down', reason: 'ttl' }), {
    kind: 'move',
    to: 'ended',
  });
  t.deepEqual(decide('ending', { type: 'torn-down', reason: 'provisioning-failed' }), {
    kind: 'move',
    to: 'failed',
  });
  t.deepEqual(decide('ending', { type: 'torn-down', reason: 'provisioning-timeout' }), {
    kind: 'move',
    to: 'failed',
  });
  for (const status of ['created', 'provisioning', 'ready', 'ended', 'failed'] as const) {
    t.deepEqual(decide(status, { type: 'torn-down', reason: 'instructor' }), { kind: 'stay' });
  }
});

test('nothing moves a finished workshop backwards', (t) => {
  const events = [
    { type: 'start' },
    { type: 'all-vms-ready' },
    { type: 'end', reason: 'ttl' },
    { type: 'torn-down', reason: 'ttl' },
  ] as const;
  for (const status of ['ended', 'failed'] as const) {
    for (const event of events) t.not(decide(status, event).kind, 'move');
  }
  t.is(finalStatus('vm-failed'), 'failed');
  t.is(finalStatus('ttl'), 'ended');
});
