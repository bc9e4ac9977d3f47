import test from 'ava';
import {
  controlMetadata,
  nextReset,
  parseAppliedResets,
  requestedReset,
} from '../../shared/core/vm-control.ts';
import type { WorkshopRecord, WorkshopSecrets } from '../../shared/core/workshop.ts';
import {
  announcement,
  clockView,
  parseEndsAt,
} from '../../images/workspace/server/clock/class-clock.ts';

test('a free wipes, a reset keeps when asked; a repeat while pending resets once', (t) => {
  const freed = nextReset(undefined, false);
  t.deepEqual(freed, { generation: 1, wipeGeneration: 1 });
  const kept = nextReset({ ...freed, applied: 1 }, true);
  t.deepEqual(kept, { generation: 2, wipeGeneration: 1, applied: 1 });
  t.is(requestedReset(kept, true), kept, 'the pending keep covers a keep');
  t.deepEqual(requestedReset(kept, false), { generation: 3, wipeGeneration: 3, applied: 1 });
  const wiping = { generation: 3, wipeGeneration: 3, applied: 2 };
  t.is(requestedReset(wiping, true), wiping, 'a pending wipe covers a keep');
  t.deepEqual(requestedReset({ ...wiping, applied: 3 }, true).generation, 4, 'applied: a new one');
});

test('control metadata is the whole wanted state of one VM', (t) => {
  const workshop = { expiresAt: '2030-01-01T10:00:00.000Z' } as WorkshopRecord;
  const secrets = {
    seatTokens: { 1: 'a', 2: 'b', 3: 'c' },
    seatResets: {
      2: { generation: 2, wipeGeneration: 1 },
      3: { generation: 1, wipeGeneration: 1 },
    },
  } as unknown as WorkshopSecrets;
  const vm = { index: 0, firstSeat: 2, seatCount: 2, machineType: 'e2-standard-4' };
  t.deepEqual(controlMetadata(workshop, vm, secrets), {
    'seat-tokens': '2:b 3:c',
    'seat-resets': '2:2:1 3:1:1',
    'class-ends': '2030-01-01T10:00:00.000Z',
  });
  t.deepEqual(
    [...parseAppliedResets('2:2 3:1 x 4:')],
    [
      [2, 2],
      [3, 1],
    ],
  );
  t.is(parseAppliedResets(undefined).size, 0);
});

test('the class clock: time left, warnings at 15, 5 and 1 minutes, an extension lifts them', (t) => {
  const end = '2030-01-01T10:00:00.000Z';
  const at = (minutesBefore: number) => Date.parse(end) - minutesBefore * 60_000;
  t.like(clockView(end, at(20)), { secondsLeft: 1200, warning: null, ended: false });
  t.like(clockView(end, at(14)), { warning: 15 });
  t.like(clockView(end, at(4.5)), { warning: 5 });
  t.like(clockView(end, at(0.5)), { warning: 1 });
  t.like(clockView(end, at(-1)), { secondsLeft: 0, warning: null, ended: true });
  t.like(clockView(null, at(0)), { endsAt: null, secondsLeft: null, ended: false });

  const v20 = clockView(end, at(20));
  const v14 = clockView(end, at(14));
  const v13 = clockView(end, at(13));
  const v4 = clockView(end, at(4));
  t.is(announcement(v20, v20), null);
  t.regex(announcement(v20, v14)!, /ends in 15 minutes \(at 10:00 UTC\)/);
  t.is(announcement(v14, v13), null, 'once per warning');
  t.regex(announcement(v14, v4)!, /ends in 5 minutes/);
  t.regex(announcement(null, clockView(end, at(0.9)))!, /ends in 1 minute \(/);
  const extended = clockView('2030-01-01T10:30:00.000Z', at(4));
  t.is(extended.warning, null);
  t.is(announcement(v4, extended), null, 'an extension lifts the warning without a line');
  t.regex(announcement(v4, clockView(end, at(-0.1)))!, /this class has ended/);
  t.is(parseEndsAt(' 2030-01-01T10:00:00Z\n'), end);
  t.is(parseEndsAt('soon'), null);
  t.is(parseEndsAt('1700000000'), null);
});
