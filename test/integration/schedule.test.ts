import sinon from 'sinon';
import { Timestamp } from '@google-cloud/firestore';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, startTestStack, type TestStack } from '../helpers/stack.ts';
import { estimateCost } from '../../shared/core/cost.ts';
import { TOPICS } from '../../shared/topics.ts';

/**
 * Scheduled classes (issue 21), through the real functions on the emulators, with the services'
 * clock injected: nothing waits for real minutes.
 */
let stack: TestStack;
const REGION = 'us-central1';

test.before(async () => {
  stack = await startTestStack();
});
test.afterEach.always(() => {
  sinon.restore();
  stack.standin.setQuotas(REGION, {});
});

const T0 = Date.parse('2026-12-07T08:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);
const iso = (minutes: number) => at(minutes).toISOString();
/** Sets the services' clock; every function called through the stack reads it. */
let clock: sinon.SinonStub | undefined;
const setClock = (minutes: number) => {
  clock ??= sinon.stub(stack.services, 'now');
  clock.returns(at(minutes));
};
test.beforeEach(() => {
  clock = undefined;
});

const runSweep = async () => {
  const status = await stack.deliver(TOPICS.workshopSweep, {});
  if (status !== 204) throw new Error(`sweep answered ${status}`);
};

/** A class of `seats` on an image of the test's own, so each test learns from its own boots. */
async function schedule(image: string, seats: number, startInMinutes: number, duration = 60) {
  const created = await stack.api('POST', '/workshops', {
    name: 'Scheduled',
    seats,
    image,
    spot: false,
    durationMinutes: duration,
    startAt: iso(startInMinutes),
  });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${created.text}`);
  return created.body;
}

async function reportReady(id: string) {
  for (const report of await stack.readyReports(id)) {
    t204(await stack.deliver(TOPICS.vmReady, report));
  }
}
const t204 = (status: number) => {
  if (status !== 204) throw new Error(`vm.ready answered ${status}`);
};

async function end(id: string) {
  await stack.api('DELETE', `/workshops/${id}`);
  await stack.untilStatus(id, 'ended');
}

test.serial(
  'startAt 40 minutes ahead: untouched before its lead, provisioned at startAt − lead, ready before startAt, its time counted from startAt',
  async (t) => {
    setClock(0);
    const ws = await schedule('sched-first:1', 3, 40);
    t.is(ws.status, 'created');
    t.is(ws.startAt, iso(40));
    t.like(ws.schedule, {
      startAt: iso(40),
      provisionAt: iso(30),
      leadSeconds: 600,
      leadBasis: 'default',
      bootSamples: 0,
      bootP90Seconds: null,
      warning: null,
      summary:
        'ready by 08:40 UTC, provisioning starts 08:30 UTC (default lead of 10 m: 0 recent boots, 5 needed)',
    });
    t.false(ws.late);
    t.is(ws.expiresAt, iso(100), 'never started: cleaned up at its planned end');
    const vm = [{ machineType: 'e2-standard-4', spot: false }];
    t.is(ws.estimatedCost.total, estimateCost(vm, 70).total, 'the early 10 minutes are counted');
    t.true(ws.estimatedCost.total > estimateCost(vm, 60).total);

    const inserts = sinon.spy(stack.services.compute, 'insert');
    for (const minute of [1, 20, 29]) {
      setClock(minute);
      await runSweep();
      t.is((await stack.workshop(ws.id)).status, 'created', `not provisioned at 08:${minute}`);
    }
    t.is(inserts.callCount, 0);

    setClock(30);
    await runSweep();
    const started = await stack.workshop(ws.id);
    t.is(started.status, 'provisioning');
    t.is(started.startedAt, iso(30));
    t.is(started.expiresAt, iso(100), 'the time limit counts from startAt, not from provisioning');
    await eventually('instance inserted', () => stack.instancesOf(ws.id).length === 1);

    setClock(37);
    await reportReady(ws.id);
    const ready = await stack.untilStatus(ws.id, 'ready');
    t.is(ready.readyAt, iso(37));
    t.true(ready.readyAt < ready.startAt, 'ready before startAt');
    t.false(ready.late);
    t.is(ready.lateBySeconds, null);
    t.is(ready.expiresAt, iso(100));

    setClock(99);
    await runSweep();
    t.is((await stack.workshop(ws.id)).status, 'ready', 'a minute before startAt + 60 min');
    setClock(100);
    await runSweep();
    t.is((await stack.untilStatus(ws.id, 'ended')).endReason, 'ttl');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial(
  'the lead follows recorded boots: after slow boots, a new class of that shape starts earlier',
  async (t) => {
    const image = 'sched-slow:1';
    // Five slow boots: a 100-seat class on five e2-standard-8 VMs, each ready 16 minutes in.
    setClock(0);
    const slow = (
      await stack.api('POST', '/workshops', { name: 'Slow', seats: 100, image, spot: false })
    ).body;
    await stack.api('POST', `/workshops/${slow.id}/start`);
    await eventually('instances', () => stack.instancesOf(slow.id).length === 5);
    setClock(16);
    await reportReady(slow.id);
    await stack.untilStatus(slow.id, 'ready');
    await end(slow.id);
    const boots = await stack.services.store
      .bootSamples()
      .where('image', '==', `${stack.services.config.registry}/${image}`)
      .get();
    t.is(boots.size, 5);
    t.like(boots.docs[0]!.data(), {
      machineType: 'e2-standard-8',
      zone: 'us-central1-a',
      seats: 20,
      bootMs: 16 * 60_000,
      readyAt: iso(16),
    });
    // A timestamp: Firestore's TTL policy deletes only by a timestamp field, never a string.
    const expiresAt: unknown = boots.docs[0]!.data().expiresAt;
    t.true(expiresAt instanceof Timestamp, 'expiresAt is a Firestore timestamp');
    t.is((expiresAt as Timestamp).toMillis(), T0 + 16 * 60_000 + 30 * 86_400_000);

    setClock(20);
    const ws = await schedule(image, 20, 60);
    const other = await schedule('sched-unknown:1', 20, 60);
    t.is(other.schedule.provisionAt, iso(50), 'no boots of that image yet: the default lead');
    t.like(ws.schedule, {
      provisionAt: iso(42),
      leadSeconds: 18 * 60,
      leadBasis: 'recent-boots',
      bootSamples: 5,
      bootP90Seconds: 16 * 60,
      summary: 'ready by 09:00 UTC, provisioning starts 08:42 UTC (p90 of 5 recent boots: 16 m)',
    });
    await end(other.id);

    setClock(41);
    await runSweep();
    t.is((await stack.workshop(ws.id)).status, 'created');
    setClock(42);
    await runSweep();
    t.is((await stack.workshop(ws.id)).status, 'provisioning', '8 minutes before the default');
    await eventually('instance inserted', () => stack.instancesOf(ws.id).length === 1);
    await end(ws.id);
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial(
  'a late class shows late; once ready, how late it was, and its time counts from then',
  async (t) => {
    setClock(0);
    const ws = await schedule('sched-late:1', 3, 40);
    setClock(30);
    await runSweep();
    await eventually('instance inserted', () => stack.instancesOf(ws.id).length === 1);
    setClock(39);
    t.like(await stack.workshop(ws.id), { late: false, lateBySeconds: null });
    setClock(43);
    t.like(await stack.workshop(ws.id), { status: 'provisioning', late: true, lateBySeconds: 180 });
    setClock(45);
    await reportReady(ws.id);
    const ready = await stack.untilStatus(ws.id, 'ready');
    t.like(ready, { late: true, lateBySeconds: 300, expiresAt: iso(105) });
    const vm = [{ machineType: 'e2-standard-4', spot: false }];
    t.is(ready.estimatedCost.total, estimateCost(vm, 75).total, 'from 08:30 to 09:45');
    setClock(60);
    t.like(await stack.workshop(ws.id), { late: true, lateBySeconds: 300 }, 'fixed once ready');
    await end(ws.id);
  },
);

test.serial('sweeps that repeat or overlap start a scheduled class once', async (t) => {
  setClock(0);
  const ws = await schedule('sched-once:1', 25, 40);
  const publish = sinon.spy(stack.services.bus, 'publish');
  const inserts = sinon.spy(stack.services.compute, 'insert');
  setClock(30);
  await Promise.all([runSweep(), runSweep(), runSweep()]);
  await runSweep();
  await eventually('instances inserted', () => stack.instancesOf(ws.id).length === 2);
  const starts = publish
    .getCalls()
    .filter((c) => c.args[0] === TOPICS.workshopStarted && c.args[1].workshopId === ws.id);
  t.is(starts.length, 1, 'one workshop.started');
  await eventually('inserts done', () => inserts.callCount >= 2);
  t.is(new Set(inserts.getCalls().map((c) => c.args[1])).size, 2, 'one insert request per VM');
  t.is((await stack.workshop(ws.id)).startedAt, iso(30));
  await end(ws.id);
});

test.serial(
  'a class cancelled before it starts ends at once, costs nothing, inserts no VM',
  async (t) => {
    setClock(0);
    const ws = await schedule('sched-cancel:1', 3, 40);
    const inserts = sinon.spy(stack.services.compute, 'insert');
    setClock(10);
    const cancelled = await stack.api('DELETE', `/workshops/${ws.id}`);
    t.is(cancelled.status, 202);
    t.like(cancelled.body, { status: 'ended', endReason: 'instructor', late: false });
    t.is(cancelled.body.estimatedCost.total, 0);
    for (const minute of [30, 41]) {
      setClock(minute);
      await runSweep();
    }
    t.is((await stack.workshop(ws.id)).status, 'ended');
    t.is(inserts.callCount, 0, 'no VM was ever inserted');
    t.is((await stack.api('POST', `/workshops/${ws.id}/start`)).status, 409);
    t.false((await stack.services.store.joinCode(ws.joinCode).get()).exists);
  },
);

test.serial(
  'quotas: a warning when scheduled; at its time the sweep checks again and waits for room',
  async (t) => {
    stack.standin.setQuotas(REGION, { CPUS: 2 });
    setClock(0);
    const ws = await schedule('sched-quota:1', 3, 40);
    t.regex(ws.schedule.warning, /4 CPUS \(2 free of 2\); checked again when provisioning starts/);
    setClock(30);
    await runSweep();
    const waiting = await stack.workshop(ws.id);
    t.is(waiting.status, 'created');
    t.is(waiting.error.code, 'QUOTA_EXCEEDED');
    t.deepEqual(stack.instancesOf(ws.id), []);
    stack.standin.setQuotas(REGION, {});
    setClock(31);
    await runSweep();
    const started = await stack.workshop(ws.id);
    t.is(started.status, 'provisioning');
    t.is(started.error, null);
    await eventually('instance inserted', () => stack.instancesOf(ws.id).length === 1);
    await end(ws.id);
  },
);

test.serial('a scheduled class started by hand is an ordinary class, started now', async (t) => {
  setClock(0);
  const ws = await schedule('sched-hand:1', 3, 40);
  setClock(5);
  const started = await stack.api('POST', `/workshops/${ws.id}/start`);
  t.is(started.status, 202);
  t.like(started.body, {
    status: 'provisioning',
    startAt: null,
    schedule: null,
    expiresAt: iso(65),
  });
  await eventually('instance inserted', () => stack.instancesOf(ws.id).length === 1);
  await end(ws.id);
});

test.serial('startAt: 400 in the past, beyond 14 days, or without an offset', async (t) => {
  setClock(0);
  const create = (startAt: unknown) =>
    stack.api('POST', '/workshops', { name: 'Bad', seats: 1, startAt });
  for (const [startAt, message] of [
    [iso(-1), 'startAt must be in the future'],
    [iso(14 * 24 * 60 + 1), 'startAt must be at most 14 days ahead'],
    [
      '2026-12-07T09:00:00',
      'startAt must be an ISO 8601 time with its offset, e.g. 2026-12-07T09:00:00Z',
    ],
    [42, 'startAt must be string'],
  ] as const) {
    const res = await create(startAt);
    t.is(res.status, 400, String(startAt));
    t.deepEqual(res.body.error, { code: 'INVALID_REQUEST', message }, String(startAt));
  }
  t.is((await create(iso(14 * 24 * 60))).status, 201, 'exactly 14 days ahead');
});
