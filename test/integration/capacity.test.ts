import sinon from 'sinon';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, startTestStack, type TestStack } from '../helpers/stack.ts';
import { TOPICS } from '../../shared/topics.ts';

/**
 * Capacity at 9:00 (issue 11): zones out of capacity, Spot falling back to standard, region
 * quotas, against the Compute stand-in with faults injected per zone and quotas per region.
 */
const A = 'us-central1-a';
const B = 'us-central1-b';
const REGION = 'us-central1';
let stack: TestStack;

test.before(async () => {
  process.env.GCP_ZONES = `${A},${B}`;
  stack = await startTestStack();
});
test.afterEach.always(() => {
  sinon.restore();
  stack.standin.clearFaults();
  stack.standin.setQuotas(REGION, {});
});

type Vm = { name: string; zone: string; spot: boolean; moved: string | null; status: string };

async function create(body: Record<string, unknown>) {
  const created = await stack.api('POST', '/workshops', { name: 'Capacity', ...body });
  if (created.status !== 201) throw new Error(`create answered ${created.status}`);
  return created.body as { id: string; estimatedCost: any; spotFallback: boolean };
}

/** Starts it, waits for every VM to be inserted, reports them ready; returns the ready view. */
async function bringUp(id: string, vmCount: number) {
  const started = await stack.api('POST', `/workshops/${id}/start`);
  if (started.status !== 202) throw new Error(`start answered ${started.status}`);
  await eventually('every VM booting', async () => {
    const w = await stack.workshop(id);
    return w.vms.length === vmCount && w.vms.every((v: Vm) => v.status === 'booting');
  });
  for (const report of await stack.readyReports(id)) await stack.push(TOPICS.vmReady, report);
  return stack.untilStatus(id, 'ready');
}

async function end(id: string) {
  await stack.api('DELETE', `/workshops/${id}`);
  return stack.untilStatus(id, 'ended');
}

const deletesOf = (name: string) =>
  stack.standin.requests
    .filter((r) => r.method === 'DELETE' && r.path.split('?')[0]!.endsWith(`/instances/${name}`))
    .map((r) => /\/zones\/([^/]+)\//.exec(r.path)?.[1]);

test.serial(
  'stock-out: a 60-seat class comes up with one VM in the second zone; ending deletes all three',
  async (t) => {
    stack.standin.injectFault({ op: 'insert', kind: 'stockout', zone: A, times: 1 });
    const ws = await create({ seats: 60 });
    const ready = await bringUp(ws.id, 3);
    const moved = ready.vms.filter((v: Vm) => v.zone === B);
    t.is(moved.length, 1, 'one VM moved');
    const index = Number(moved[0].name.split('-').pop());
    t.is(moved[0].moved, `VM ${index + 1} moved to ${B}: ${A} was out of e2-standard-8`);
    t.true(ready.vms.filter((v: Vm) => v !== moved[0]).every((v: Vm) => v.zone === A && !v.moved));
    t.is(ready.seatsReady, 60);
    const instances = stack.instancesOf(ws.id);
    t.deepEqual(
      instances.map((i) => [i.name, i.zone]),
      ready.vms.map((v: Vm) => [v.name, v.zone]),
    );
    // Same name, seats and credentials, wherever it landed.
    const landed = instances.find((i) => i.zone === B)!;
    t.is(landed.metadata['vm-name'], moved[0].name);
    t.is(landed.metadata['seat-count'], '20');

    await end(ws.id);
    t.deepEqual(stack.instancesOf(ws.id), []);
    for (const vm of ready.vms as Vm[]) t.true(deletesOf(vm.name).includes(vm.zone), vm.name);
  },
);

test.serial(
  'no Spot capacity anywhere: a Spot class comes up on standard VMs, and the view and cost say so',
  async (t) => {
    stack.standin.injectFault({ op: 'insert', kind: 'stockout', spot: true, times: Infinity });
    const ws = await create({ seats: 25, spot: true });
    t.true(ws.spotFallback, 'allowed by default');
    t.truthy(ws.estimatedCost.standardFallback, 'the estimate shows what a fallback costs');
    const ready = await bringUp(ws.id, 2);
    for (const [n, vm] of (ready.vms as Vm[]).entries()) {
      t.false(vm.spot);
      t.is(vm.zone, A, 'back to the first zone, as a standard VM');
      t.is(
        vm.moved,
        `VM ${n + 1} runs as a standard VM in ${A}: ${A} and ${B} were out of Spot e2-standard-8`,
      );
    }
    t.true(ready.spot, 'the class asked for Spot');
    t.true(stack.instancesOf(ws.id).every((i) => i.scheduling === undefined));
    t.deepEqual(
      { hourly: ready.estimatedCost.hourly, total: ready.estimatedCost.total },
      ws.estimatedCost.standardFallback,
      'the estimate is now that of standard VMs',
    );
    await end(ws.id);
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial(
  'no Spot capacity and no fallback allowed: it fails cleanly, nothing left',
  async (t) => {
    stack.standin.injectFault({ op: 'insert', kind: 'stockout', spot: true, times: Infinity });
    const ws = await create({ seats: 25, spot: true, spotFallback: false });
    t.false(ws.spotFallback);
    t.is(ws.estimatedCost.standardFallback, undefined);
    await stack.api('POST', `/workshops/${ws.id}/start`);
    const failed = await stack.untilStatus(ws.id, 'failed');
    t.is(failed.endReason, 'provisioning-failed');
    t.regex(failed.error.code, /ZONE_RESOURCE_POOL_EXHAUSTED/);
    t.regex(
      failed.error.message,
      new RegExp(`no zone had capacity .*${A} \\(Spot\\), ${B} \\(Spot\\)`),
    );
    t.deepEqual(stack.instancesOf(ws.id), []);
    const tried = stack.standin.requests.filter(
      (r) =>
        r.method === 'POST' &&
        (r.body as { labels?: { workshop?: string } })?.labels?.workshop === ws.id,
    );
    t.true(
      tried.every(
        (r) =>
          (r.body as { scheduling?: { provisioningModel?: string } }).scheduling
            ?.provisioningModel === 'SPOT',
      ),
    );
  },
);

test.serial('quotas that cannot be read do not block the start', async (t) => {
  // Quotas that refuse the class at the check, were they readable; regions.get answers 503.
  stack.standin.setQuotas(REGION, { CPUS: 0 });
  stack.standin.injectFault({ op: 'regions', kind: 'http503', times: Infinity });
  const ws = await create({ seats: 2 });
  const before = stack.standin.requests.length;
  const started = await stack.api('POST', `/workshops/${ws.id}/start`);
  t.is(started.status, 202, started.text);
  const paths = stack.standin.requests.slice(before).map((r) => r.path.split('?')[0]);
  t.true(paths.includes(`/compute/v1/projects/${stack.projectId}/regions/${REGION}`));
  // The start went on (the region refuses the inserts themselves); the class is ended.
  t.is((await stack.api('DELETE', `/workshops/${ws.id}`)).status, 202);
  await eventually('no VM left', () => stack.instancesOf(ws.id).length === 0);
  // Its teardown's calls are over before the next test counts calls.
  await eventually('over', async () =>
    ['ended', 'failed'].includes((await stack.workshop(ws.id)).status),
  );
});

test.serial('over the region quota: 409 QUOTA_EXCEEDED before any insert', async (t) => {
  stack.standin.setQuotas(REGION, { CPUS: 16, IN_USE_ADDRESSES: 8, PREEMPTIBLE_CPUS: 0 });
  const ws = await create({ seats: 60 });
  const before = stack.standin.requests.length;
  const refused = await stack.api('POST', `/workshops/${ws.id}/start`);
  t.is(refused.status, 409);
  t.is(refused.body.error.code, 'QUOTA_EXCEEDED');
  t.is(refused.body.error.limit, 'region');
  t.is(refused.body.error.region, REGION);
  t.deepEqual(refused.body.error.shortfalls, [
    { metric: 'CPUS', needed: 24, free: 16, limit: 16, usage: 0 },
  ]);
  t.regex(refused.body.error.message, /region us-central1.*24 CPUS \(16 free of 16\)/);
  const calls = stack.standin.requests
    .slice(before)
    .map((r) => `${r.method} ${r.path.split('?')[0]}`);
  t.true(calls.includes(`GET /compute/v1/projects/${stack.projectId}/regions/${REGION}`), 'read');
  t.deepEqual(
    calls.filter((c) => !c.startsWith('GET ')),
    [],
    'the quotas were read, nothing was inserted',
  );
  t.is((await stack.workshop(ws.id)).status, 'created', 'it can be started once there is room');

  stack.standin.setQuotas(REGION, { CPUS: 24 });
  const ready = await bringUp(ws.id, 3);
  t.is(ready.status, 'ready');
  await end(ws.id);
  t.deepEqual(stack.instancesOf(ws.id), []);
});

test.serial(
  'a quota error at insert time, after the check passed, leaves no VM behind',
  async (t) => {
    stack.standin.setQuotas(REGION, { CPUS: 24 });
    const ws = await create({ seats: 60 });
    // The inserts wait until another class has taken part of the quota (a race the check loses).
    const compute = stack.services.compute;
    const insert = compute.insert.bind(compute);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const held = sinon.stub(compute, 'insert').callsFake(async (...args) => {
      await gate;
      return insert(...args);
    });
    t.is((await stack.api('POST', `/workshops/${ws.id}/start`)).status, 202);
    await eventually('inserts waiting', () => held.callCount === 3);
    const rival = { name: 'other-class-0', zone: B };
    await insert(
      {
        ...rival,
        machineType: 'e2-standard-8',
        labels: { app: 'other' },
        metadata: {},
        spot: false,
      },
      crypto.randomUUID(),
    );
    release();
    const failed = await stack.untilStatus(ws.id, 'failed');
    t.is(failed.endReason, 'provisioning-failed');
    t.is(failed.error.code, 'QUOTA_EXCEEDED');
    t.deepEqual(stack.instancesOf(ws.id), [], 'the VMs that did get in were deleted');
    sinon.restore();
    await compute.delete(rival);
  },
);

test.serial('the sweep deletes a leaked VM in the second zone', async (t) => {
  const live = await create({ seats: 3 });
  await bringUp(live.id, 1);
  const leak = { name: 'ct-zzzzzzzzzzleakedb-0', zone: B };
  await stack.services.compute.insert(
    {
      ...leak,
      machineType: 'e2-standard-4',
      labels: { app: 'clarateach', workshop: 'zzzzzzzzzzleakedb' },
      metadata: {},
      spot: false,
    },
    crypto.randomUUID(),
  );
  t.is(await stack.deliver(TOPICS.workshopSweep, {}), 204);
  t.deepEqual(
    stack.standin.instances().map((i) => [i.name, i.zone]),
    [[`ct-${live.id}-0`, A]],
  );
  t.deepEqual(deletesOf(leak.name), [B]);
  await end(live.id);
});

test.serial(
  'the sweep replaces a lost VM in its own zone, or in the next when its own has no capacity',
  async (t) => {
    stack.standin.injectFault({ op: 'insert', kind: 'stockout', zone: A, times: 1 });
    const ws = await create({ seats: 25 });
    const ready = await bringUp(ws.id, 2);
    const inB = (ready.vms as Vm[]).find((v) => v.zone === B)!;
    const inA = (ready.vms as Vm[]).find((v) => v.zone === A)!;
    const compute = stack.services.compute;

    // Lost in B, its own zone: replaced there, though A has room now.
    await compute.delete({ name: inB.name, zone: B });
    t.is(await stack.deliver(TOPICS.workshopSweep, {}), 204);
    const again = await eventually('replacement in B', () =>
      stack.instancesOf(ws.id).find((i) => i.name === inB.name && i.status === 'RUNNING'),
    );
    t.is(again.zone, B);

    // Lost in A while A is out of capacity: replaced in the next zone.
    stack.standin.injectFault({ op: 'insert', kind: 'stockout', zone: A, times: 1 });
    await compute.delete({ name: inA.name, zone: A });
    t.is(await stack.deliver(TOPICS.workshopSweep, {}), 204);
    const moved = await eventually('replacement in B', () =>
      stack.instancesOf(ws.id).find((i) => i.name === inA.name && i.status === 'RUNNING'),
    );
    t.is(moved.zone, B);
    const view = await eventually('the view shows it', async () => {
      const w = await stack.workshop(ws.id);
      const vm = w.vms.find((v: Vm) => v.name === inA.name);
      return vm.zone === B && vm.status === 'booting' ? vm : undefined;
    });
    t.regex(view.moved, new RegExp(`moved to ${B}: ${A} was out of e2-standard-8`));

    await end(ws.id);
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial(
  'a lost VM that no zone can take is retried by the next sweep, with new requests',
  async (t) => {
    const ws = await create({ seats: 3 });
    await bringUp(ws.id, 1);
    const name = `ct-${ws.id}-0`;
    await stack.services.compute.delete({ name, zone: A });
    stack.standin.injectFault({ op: 'insert', kind: 'stockout', times: Infinity });
    t.is(await stack.deliver(TOPICS.workshopSweep, {}), 204);
    const stuck = await eventually('the replacement failed', async () => {
      const w = await stack.workshop(ws.id);
      return w.error?.message.startsWith('replacing a lost VM failed') ? w : undefined;
    });
    t.regex(stuck.error.message, new RegExp(`no zone had capacity .*${A}, ${B}`));
    t.is(stuck.status, 'ready', 'the class goes on');
    t.deepEqual(stack.instancesOf(ws.id), []);

    stack.standin.clearFaults();
    t.is(await stack.deliver(TOPICS.workshopSweep, {}), 204);
    const back = await eventually('replaced once capacity is back', () =>
      stack.instancesOf(ws.id).find((i) => i.status === 'RUNNING'),
    );
    t.is(back.zone, B, 'it carries on from the last zone it tried');
    await end(ws.id);
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);
