import sinon from 'sinon';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, startTestStack, type TestStack, fromLearner } from '../helpers/stack.ts';
import { TOPICS } from '../../shared/topics.ts';
import { sweep } from '../../shared/lifecycle/sweep.ts';

/** The reconciler (issue 4): time limits, stuck work, leaks and lost VMs, through the real function. */
let stack: TestStack;

test.before(async () => {
  stack = await startTestStack();
});
test.afterEach.always(() => sinon.restore());

const ZONE = 'us-central1-a';
const minutesAfter = (iso: string, minutes: number) => new Date(Date.parse(iso) + minutes * 60_000);
const runSweep = async () => {
  const status = await stack.push(TOPICS.workshopSweep, {});
  if (status !== 204) throw new Error(`sweep answered ${status}`);
};

async function readyWorkshop(seats: number, durationMinutes?: number) {
  const ws = (await stack.api('POST', '/workshops', { name: 'Sweep', seats, durationMinutes }))
    .body;
  await stack.api('POST', `/workshops/${ws.id}/start`);
  await eventually('instances', () => stack.instancesOf(ws.id).length === Math.ceil(seats / 20));
  for (const report of await stack.readyReports(ws.id)) await stack.deliver(TOPICS.vmReady, report);
  return stack.untilStatus(ws.id, 'ready');
}

test.serial(
  'a ready class past its time ends with reason ttl and its VMs are deleted',
  async (t) => {
    const ws = await readyWorkshop(3);
    await runSweep();
    t.is((await stack.workshop(ws.id)).status, 'ready', 'not due yet: untouched');
    sinon.stub(stack.services, 'now').returns(minutesAfter(ws.expiresAt, 1));
    await runSweep();
    const ended = await stack.untilStatus(ws.id, 'ended');
    t.is(ended.endReason, 'ttl');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial('a VM that never reports ready is failed and deleted at the deadline', async (t) => {
  const ws = (await stack.api('POST', '/workshops', { name: 'Silent VM', seats: 4 })).body;
  const started = (await stack.api('POST', `/workshops/${ws.id}/start`)).body;
  await eventually('instance', () => stack.instancesOf(ws.id).length === 1);
  sinon.stub(stack.services, 'now').returns(minutesAfter(started.startedAt, 14));
  await runSweep();
  t.is((await stack.workshop(ws.id)).status, 'provisioning', 'before the 15-minute deadline');
  sinon.restore();
  sinon.stub(stack.services, 'now').returns(minutesAfter(started.startedAt, 15));
  await runSweep();
  const failed = await stack.untilStatus(ws.id, 'failed');
  t.is(failed.endReason, 'provisioning-timeout');
  t.is(failed.error.code, 'PROVISIONING_TIMEOUT');
  t.deepEqual(stack.instancesOf(ws.id), []);
});

test.serial('an unstarted workshop past its time is cleaned up and its code freed', async (t) => {
  const ws = (await stack.api('POST', '/workshops', { name: 'Forgotten', seats: 2 })).body;
  sinon.stub(stack.services, 'now').returns(minutesAfter(ws.expiresAt, 1));
  await runSweep();
  const ended = await stack.workshop(ws.id);
  t.is(ended.status, 'ended');
  t.is(ended.endReason, 'ttl');
  t.false((await stack.services.store.joinCode(ws.joinCode).get()).exists);
});

test.serial('a workshop stuck in ending (its event lost) is torn down by the sweep', async (t) => {
  const ws = await readyWorkshop(2);
  // The end is recorded but its event never reaches the teardown.
  const publish = sinon.stub(stack.services.bus, 'publish').resolves('lost');
  t.is((await stack.api('DELETE', `/workshops/${ws.id}`)).body.status, 'ending');
  t.true(publish.calledWith(TOPICS.workshopEnded));
  publish.restore();
  await runSweep();
  t.is((await stack.workshop(ws.id)).status, 'ending', 'not stuck long enough yet');
  t.is(stack.instancesOf(ws.id).length, 1);
  sinon.stub(stack.services, 'now').returns(minutesAfter(new Date().toISOString(), 5));
  await runSweep();
  const ended = await stack.untilStatus(ws.id, 'ended');
  t.is(ended.endReason, 'instructor');
  t.deepEqual(stack.instancesOf(ws.id), []);
});

test.serial('a start whose event was lost is driven again', async (t) => {
  const ws = (await stack.api('POST', '/workshops', { name: 'Lost start', seats: 2 })).body;
  const publish = sinon.stub(stack.services.bus, 'publish').resolves('lost');
  const started = (await stack.api('POST', `/workshops/${ws.id}/start`)).body;
  publish.restore();
  t.is(started.status, 'provisioning');
  t.deepEqual(stack.instancesOf(ws.id), []);
  sinon.stub(stack.services, 'now').returns(minutesAfter(started.startedAt, 3));
  await runSweep();
  await eventually('instance inserted', () => stack.instancesOf(ws.id).length === 1);
  sinon.restore();
  await stack.api('DELETE', `/workshops/${ws.id}`);
  await stack.untilStatus(ws.id, 'ended');
  t.deepEqual(stack.instancesOf(ws.id), []);
});

test.serial('VMs labelled as ours that no active workshop accounts for are deleted', async (t) => {
  const ended = (await stack.api('POST', '/workshops', { name: 'Gone', seats: 1 })).body;
  await stack.api('DELETE', `/workshops/${ended.id}`);
  const live = await readyWorkshop(1);
  const spec = (workshop: string, name: string) => ({
    name,
    zone: ZONE,
    machineType: 'e2-standard-4',
    labels: { app: 'clarateach', workshop },
    metadata: {},
    spot: false,
  });
  await stack.services.compute.insert(spec(ended.id, `ct-${ended.id}-0`), crypto.randomUUID());
  await stack.services.compute.insert(
    spec('zzzzzzzzzzunknown', 'ct-zzzzzzzzzzunknown-0'),
    crypto.randomUUID(),
  );
  // A stray VM under a live workshop's label but outside its plan is a leak too.
  await stack.services.compute.insert(spec(live.id, `ct-${live.id}-7`), crypto.randomUUID());
  t.is(stack.standin.instances().length, 4);
  await runSweep();
  t.deepEqual(
    stack.standin.instances().map((i) => i.name),
    [`ct-${live.id}-0`],
  );
  t.is((await stack.workshop(live.id)).status, 'ready', 'the live class keeps its VM');
  await stack.api('DELETE', `/workshops/${live.id}`);
  await stack.untilStatus(live.id, 'ended');
  t.deepEqual(stack.standin.instances(), []);
});

test.serial(
  'a class whose end keeps failing and a leaked VM that refuses deletion hold up nothing else',
  async (t) => {
    const [a, b] = (await Promise.all([readyWorkshop(1), readyWorkshop(1)])).sort((x, y) =>
      x.id.localeCompare(y.id),
    );
    const leak = (name: string) =>
      stack.services.compute.insert(
        {
          name,
          zone: ZONE,
          machineType: 'e2-standard-4',
          labels: { app: 'clarateach', workshop: name.slice(3, -2) },
          metadata: {},
          spot: false,
        },
        crypto.randomUUID(),
      );
    // Named so that the stuck one comes first in the list.
    const [stuck, loose] = ['ct-aaaaaaaaaaleak-0', 'ct-zzzzzzzzzzleak-0'];
    await leak(stuck);
    await leak(loose);
    // The first class's end fails every time (a record that breaks a rule, say), and so does the
    // first leak's deletion (deletion protection, say).
    const store = stack.services.store;
    const inTransaction = store.inTransaction.bind(store);
    sinon.stub(store, 'inTransaction').callsFake((id, body) => {
      if (id === a.id) return Promise.reject(new Error(`a record that breaks a rule: ${id}`));
      return inTransaction(id, body);
    });
    const compute = stack.services.compute;
    const remove = compute.delete.bind(compute);
    sinon.stub(compute, 'delete').callsFake(async (ref) => {
      if (ref.name === stuck) throw new Error('deletion protection is on');
      return remove(ref);
    });
    sinon
      .stub(stack.services, 'now')
      .returns(minutesAfter([a.expiresAt, b.expiresAt].sort().at(-1)!, 1));

    const report = await sweep(stack.services);
    t.deepEqual(report.expired, [b.id], 'the other class ended');
    t.deepEqual(report.leakedDeleted, [loose], 'the other leak deleted');
    t.like(report.failed, [
      { step: 'expiry', workshopId: a.id, error: `a record that breaks a rule: ${a.id}` },
      { step: 'leaked VMs', vmName: stuck, error: 'deletion protection is on' },
    ]);
    t.is(report.failed.length, 2);
    t.is((await stack.untilStatus(b.id, 'ended')).endReason, 'ttl');
    t.is((await stack.workshop(a.id)).status, 'ready');
    t.deepEqual(
      stack.standin
        .instances()
        .map((i) => i.name)
        .sort(),
      [stuck, `ct-${a.id}-0`].sort(),
    );

    // Once the faults are gone, the next sweep does the rest.
    sinon.restore();
    sinon
      .stub(stack.services, 'now')
      .returns(minutesAfter([a.expiresAt, b.expiresAt].sort().at(-1)!, 2));
    await runSweep();
    t.is((await stack.untilStatus(a.id, 'ended')).endReason, 'ttl');
    await eventually('nothing left', () => stack.standin.instances().length === 0);
  },
);

test.serial(
  'a ready class whose VM vanished (Spot preemption): the instructor sees it, it is replaced',
  async (t) => {
    const ws = await readyWorkshop(25);
    const lost = `ct-${ws.id}-1`;
    const firstInsert = stack.standin.instances().find((i) => i.name === lost)!.requestId;
    // Held, so the moment between loss and replacement can be looked at.
    const compute = stack.services.compute;
    const insert = compute.insert.bind(compute);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    sinon.stub(compute, 'insert').callsFake(async (...args) => {
      await gate;
      return insert(...args);
    });
    const before = (await stack.readyReports(ws.id)).find((r) => r.vmName === lost)!;
    await compute.delete({ name: lost, zone: ZONE });
    await runSweep();
    const w = await stack.workshop(ws.id);
    t.is(w.status, 'ready', 'the other VM still serves its seats');
    t.is(w.error.code, 'VM_LOST');
    t.regex(w.error.message, /seats 14-25/);
    t.is(w.seatsReady, 13);
    t.is(w.vms.find((v: { name: string }) => v.name === lost).status, 'pending');
    await runSweep();
    t.is((await stack.workshop(ws.id)).seatsReady, 13, 'recorded once');
    // Meanwhile learners only get seats that a VM serves.
    const joins = await Promise.all(
      Array.from({ length: 14 }, (_, i) =>
        stack.api('POST', '/join', { code: ws.joinCode, name: `L${i}` }, fromLearner(i)),
      ),
    );
    const seats = joins.filter((j) => j.status === 200).map((j) => j.body.seat as number);
    t.deepEqual(
      seats.sort((a, b) => a - b),
      Array.from({ length: 13 }, (_, i) => i + 1),
    );
    t.is(joins.filter((j) => j.body.error?.code === 'WORKSHOP_FULL').length, 1);

    // The replacement: same name and seats, a new insert request, and once it reports, all is well.
    release();
    const replacement = await eventually('replacement inserted', () =>
      stack.standin.instances().find((i) => i.name === lost),
    );
    t.not(replacement.requestId, firstInsert);
    t.is(replacement.metadata['seat-first'], '14');
    // A late copy of the lost VM's own report does not pass for the replacement's.
    t.is(await stack.deliver(TOPICS.vmReady, before), 204);
    t.is((await stack.workshop(ws.id)).seatsReady, 13);
    const report = (await stack.readyReports(ws.id)).find((r) => r.vmName === lost)!;
    t.not(report.readyToken, before.readyToken);
    t.is(await stack.deliver(TOPICS.vmReady, report), 204);
    const healed = await stack.workshop(ws.id);
    t.is(healed.seatsReady, 25);
    t.is(healed.error, null);
    const late = await stack.api('POST', '/join', { code: ws.joinCode, name: 'Late' });
    t.is(late.status, 200);
    t.true(late.body.seat >= 14);

    sinon.restore();
    await stack.api('DELETE', `/workshops/${ws.id}`);
    await stack.untilStatus(ws.id, 'ended');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial('a stopped VM of a ready class is deleted and replaced under its name', async (t) => {
  const ws = await readyWorkshop(3);
  const name = `ct-${ws.id}-0`;
  const compute = stack.services.compute;
  const list = compute.list.bind(compute);
  // Spot with instanceTerminationAction STOP would leave it TERMINATED; the stand-in cannot.
  sinon
    .stub(compute, 'list')
    .callsFake(async (labels) =>
      (await list(labels)).map((i) => (i.name === name ? { ...i, status: 'TERMINATED' } : i)),
    );
  const remove = sinon.spy(compute, 'delete');
  await runSweep();
  t.true(remove.calledWith(sinon.match({ name, zone: ZONE })));
  t.is((await stack.workshop(ws.id)).error.code, 'VM_LOST');
  sinon.restore();
  const replacement = await eventually('replacement inserted', () =>
    stack.instancesOf(ws.id).find((i) => i.name === name && i.status === 'RUNNING'),
  );
  t.is(replacement.labels.workshop, ws.id);
  await stack.api('DELETE', `/workshops/${ws.id}`);
  await stack.untilStatus(ws.id, 'ended');
  t.deepEqual(stack.instancesOf(ws.id), []);
});

test.serial('extend moves the end later, capped at the maximum duration', async (t) => {
  const ws = await readyWorkshop(1);
  const extended = await stack.api('POST', `/workshops/${ws.id}/extend`, { minutes: 30 });
  t.is(extended.status, 200);
  t.is(Date.parse(extended.body.expiresAt) - Date.parse(ws.expiresAt), 30 * 60_000);
  t.true(extended.body.estimatedCost.total > ws.estimatedCost.total);
  const capped = await stack.api('POST', `/workshops/${ws.id}/extend`, { minutes: 720 });
  t.is(capped.status, 200);
  t.is(capped.body.expiresAt, minutesAfter(ws.startedAt, 720).toISOString());
  const refused = await stack.api('POST', `/workshops/${ws.id}/extend`, { minutes: 10 });
  t.is(refused.status, 409);
  t.is(refused.body.error.code, 'LIMIT_REACHED');
  await stack.api('DELETE', `/workshops/${ws.id}`);
  await stack.untilStatus(ws.id, 'ended');
  const late = await stack.api('POST', `/workshops/${ws.id}/extend`, { minutes: 10 });
  t.is(late.status, 409);
  t.is(late.body.error.code, 'INVALID_STATE');
});

test.serial('workshop.sweep twice, concurrently: the same outcome as one sweep', async (t) => {
  const due = await readyWorkshop(3, 30);
  const live = await readyWorkshop(3, 240);
  const lost = `ct-${live.id}-0`;
  await stack.services.compute.delete({ name: lost, zone: ZONE });
  const leak = 'ct-zzzzzzzzzzleakedvm-0';
  await stack.services.compute.insert(
    {
      name: leak,
      zone: ZONE,
      machineType: 'e2-standard-4',
      labels: { app: 'clarateach', workshop: 'zzzzzzzzzzleakedvm' },
      metadata: {},
      spot: false,
    },
    crypto.randomUUID(),
  );
  const inserts = sinon.spy(stack.services.compute, 'insert');
  sinon.stub(stack.services, 'now').returns(minutesAfter(due.expiresAt, 1));

  // Both deliveries succeed (runSweep fails on anything but 204).
  await Promise.all([runSweep(), runSweep()]);

  t.is((await stack.untilStatus(due.id, 'ended')).endReason, 'ttl');
  const replacement = await eventually('replacement running', () =>
    stack.standin.instances().find((i) => i.name === lost && i.status === 'RUNNING'),
  );
  const w = await stack.workshop(live.id);
  t.is(w.status, 'ready');
  t.is(w.error.code, 'VM_LOST');
  const requestIds = new Set(
    inserts
      .getCalls()
      .filter((c) => c.args[0].name === lost)
      .map((c) => c.args[1]),
  );
  t.deepEqual([...requestIds], [replacement.requestId], 'one replacement, one request');
  t.deepEqual(
    stack.standin.instances().map((i) => i.name),
    [lost],
    'the due class and the leak are gone; the replacement is the only VM',
  );

  sinon.restore();
  await stack.api('DELETE', `/workshops/${live.id}`);
  await stack.untilStatus(live.id, 'ended');
  t.deepEqual(stack.standin.instances(), []);
});

test.serial(
  'a sweep that listed instances before a replacement landed does not replace it again',
  async (t) => {
    const ws = await readyWorkshop(3);
    const name = `ct-${ws.id}-0`;
    const compute = stack.services.compute;
    await compute.delete({ name: name, zone: ZONE });
    // The first sweep reads the instance list (the VM is missing), then stalls until released.
    const list = compute.list.bind(compute);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const listed = sinon.stub(compute, 'list');
    listed.onFirstCall().callsFake(async (labels) => {
      const stale = await list(labels);
      await gate;
      return stale;
    });
    listed.callThrough();
    const inserts = sinon.spy(compute, 'insert');
    const slow = stack.push(TOPICS.workshopSweep, {});
    await eventually('first sweep listed', () => listed.callCount >= 1);
    // A second sweep replaces the VM meanwhile, and the replacement is inserted.
    await runSweep();
    await eventually('replacement booting', async () => {
      const w = await stack.workshop(ws.id);
      return w.vms[0].status === 'booting' && stack.instancesOf(ws.id).length === 1;
    });
    release();
    t.is(await slow, 204);
    const vm = (await stack.services.store.vms(ws.id).doc(name).get()).data()!;
    t.is(vm.generation, 1, 'replaced once');
    t.is(vm.status, 'booting');
    t.is(new Set(inserts.getCalls().map((c) => c.args[1])).size, 1, 'one insert request');

    sinon.restore();
    await stack.api('DELETE', `/workshops/${ws.id}`);
    await stack.untilStatus(ws.id, 'ended');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial(
  'a learner whose VM was lost is told to wait, then gets the same seat back',
  async (t) => {
    const ws = await readyWorkshop(25);
    const lost = `ct-${ws.id}-1`;
    const joined = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        stack.api('POST', '/join', { code: ws.joinCode, name: `L${i}` }, fromLearner(i)),
      ),
    );
    const moved = joined.find((j) => j.body.seat >= 14)!.body;
    const stayed = joined.find((j) => j.body.seat <= 13)!.body;
    await stack.services.compute.delete({ name: lost, zone: ZONE });
    await runSweep();

    const waiting = await stack.api('POST', '/join', {
      code: ws.joinCode,
      name: 'Back',
      seatToken: moved.seatToken,
    });
    t.is(waiting.status, 409);
    t.like(waiting.body.error, { code: 'NOT_READY', status: 'ready', retryAfter: 30 });
    const other = await stack.api('POST', '/join', {
      code: ws.joinCode,
      name: 'Back',
      seatToken: stayed.seatToken,
    });
    t.is(other.status, 200, 'learners on the other VM are not affected');
    t.is(other.body.seat, stayed.seat);

    await eventually('replacement inserted', () =>
      stack.standin.instances().find((i) => i.name === lost),
    );
    const report = (await stack.readyReports(ws.id)).find((r) => r.vmName === lost)!;
    t.is(await stack.deliver(TOPICS.vmReady, report), 204);
    const back = await stack.api('POST', '/join', {
      code: ws.joinCode,
      name: 'Back',
      seatToken: moved.seatToken,
    });
    t.is(back.status, 200);
    t.is(back.body.seat, moved.seat);

    await stack.api('DELETE', `/workshops/${ws.id}`);
    await stack.untilStatus(ws.id, 'ended');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);
