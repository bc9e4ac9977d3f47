/**
 * The real ComputeProvisioner, hence the real @google-cloud/compute client over HTTP (REST
 * fallback, PassThroughClient), against the local Compute Engine stand-in.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { randomUUID } from 'node:crypto';
import sinon from 'sinon';
import { InstancesClient, ZoneOperationsClient } from '@google-cloud/compute';
import {
  startComputeStandin,
  type ComputeStandin,
  type ComputeStandinOptions,
  type StandinRequest,
} from '../../local/compute-standin.ts';
import { freePort } from '../../local/ports.ts';
import { ComputeProvisioner, type InstanceSpec } from '../../shared/compute.ts';
import { ComputeError } from '../../shared/core/compute-errors.ts';

const test = anyTest as TestFn<unknown>;
const PROJECT = 'ct-test';
const ZONE = 'us-central1-a';
const IMAGE = 'projects/cos-cloud/global/images/family/cos-stable';

interface Stack {
  standin: ComputeStandin;
  compute: ComputeProvisioner;
  /** default timeouts, for cleaning up after tests that shorten them */
  cleaner: ComputeProvisioner;
  booted: string[];
  stopped: string[];
}

async function stack(
  t: ExecutionContext,
  opts: Partial<ComputeStandinOptions> & { operationTimeoutMs?: number } = {},
): Promise<Stack> {
  const booted: string[] = [];
  const stopped: string[] = [];
  const { operationTimeoutMs, ...standinOpts } = opts;
  const standin = await startComputeStandin({
    project: PROJECT,
    onBoot: async (instance) => {
      booted.push(instance.name);
      return {
        stop: async () => {
          stopped.push(instance.name);
        },
      };
    },
    ...standinOpts,
  });
  const settings = {
    project: PROJECT,
    sourceImage: IMAGE,
    diskSizeGb: 30,
    serviceAccount: 'clarateach-vm@ct-test.iam.gserviceaccount.com',
    endpoint: { host: '127.0.0.1', port: standin.port },
  };
  const compute = new ComputeProvisioner({
    ...settings,
    ...(operationTimeoutMs !== undefined ? { operationTimeoutMs } : {}),
  });
  const cleaner = new ComputeProvisioner(settings);
  t.teardown(async () => {
    await compute.close();
    await cleaner.close();
    await standin.stop();
  });
  return { standin, compute, cleaner, booted, stopped };
}

/** Deletes whatever is left through the provisioner and checks nothing stayed behind. */
async function expectClean(t: ExecutionContext, s: Stack): Promise<void> {
  for (const instance of s.standin.instances()) await s.cleaner.delete(instance);
  t.deepEqual(s.standin.instances(), [], 'the stand-in holds no instance');
  t.deepEqual([...s.stopped].sort(), [...s.booted].sort(), 'every booted instance was stopped');
}

function spec(name: string, extra: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    name,
    zone: ZONE,
    machineType: 'e2-standard-4',
    labels: { app: 'clarateach', workshop: 'ws1' },
    metadata: { 'workshop-id': 'ws1', 'vm-name': name },
    spot: false,
    ...extra,
  };
}

/** An instance of ZONE by name. */
const at = (name: string) => ({ name, zone: ZONE });

/** The instance resource as it crossed the wire. */
interface WireInstance {
  name?: string;
  machineType?: string;
  labels?: Record<string, string>;
  tags?: unknown;
  metadata?: unknown;
  disks: Array<Record<string, unknown>>;
  networkInterfaces: Array<{ network?: string; subnetwork?: string; accessConfigs?: unknown }>;
  serviceAccounts?: unknown;
  scheduling?: unknown;
}

const inserts = (s: Stack, name?: string): StandinRequest[] =>
  s.standin.requests.filter(
    (r) =>
      r.method === 'POST' &&
      /\/instances$/.test(r.path.split('?')[0] ?? '') &&
      (name === undefined || (r.body as { name?: string } | undefined)?.name === name),
  );

async function rejection(t: ExecutionContext, promise: Promise<unknown>): Promise<ComputeError> {
  const err = await t.throwsAsync(promise);
  if (!(err instanceof ComputeError)) {
    t.fail(`expected a ComputeError, got ${String(err)}`);
    throw err;
  }
  return err;
}

// --- insert --------------------------------------------------------------------------------------

test('insert puts a complete instance on the wire and waits until it runs', async (t) => {
  const s = await stack(t);
  const spotId = randomUUID();
  const regularId = randomUUID();
  await s.compute.insert(
    spec('ct-ws1-vm-0', {
      spot: true,
      metadata: { 'startup-script': '#!/bin/bash\necho hi', 'seat-first': '1' },
    }),
    spotId,
  );
  await s.compute.insert(spec('ct-ws1-vm-1'), regularId);

  const [spotReq] = inserts(s, 'ct-ws1-vm-0');
  const [regularReq] = inserts(s, 'ct-ws1-vm-1');
  if (!spotReq || !regularReq) return t.fail('both inserts reached the stand-in');
  t.is(spotReq.path, `/compute/v1/projects/${PROJECT}/zones/${ZONE}/instances?requestId=${spotId}`);
  t.is(spotReq.query.requestId, spotId);
  t.is(regularReq.query.requestId, regularId);
  t.is(spotReq.headers.authorization, undefined, 'no credentials are sent to the stand-in');

  const body = spotReq.body as WireInstance;
  t.is(body.name, 'ct-ws1-vm-0');
  t.is(body.machineType, `zones/${ZONE}/machineTypes/e2-standard-4`);
  t.deepEqual(body.labels, { app: 'clarateach', workshop: 'ws1' });
  t.deepEqual(body.tags, { items: ['http-server', 'https-server'] });
  t.deepEqual(body.metadata, {
    items: [
      { key: 'startup-script', value: '#!/bin/bash\necho hi' },
      { key: 'seat-first', value: '1' },
    ],
  });
  t.is(body.disks.length, 1);
  // proto3 JSON also carries empty maps (labels, resourceManagerTags) on the wire.
  t.like(body.disks[0], {
    boot: true,
    autoDelete: true,
    type: 'PERSISTENT',
    initializeParams: {
      sourceImage: IMAGE,
      diskSizeGb: '30',
      diskType: `zones/${ZONE}/diskTypes/pd-balanced`,
    },
  });
  t.deepEqual(body.networkInterfaces, [
    {
      network: 'global/networks/default',
      accessConfigs: [{ name: 'External NAT', type: 'ONE_TO_ONE_NAT' }],
    },
  ]);
  t.deepEqual(body.serviceAccounts, [
    {
      email: 'clarateach-vm@ct-test.iam.gserviceaccount.com',
      scopes: ['https://www.googleapis.com/auth/cloud-platform'],
    },
  ]);
  t.deepEqual(body.scheduling, { provisioningModel: 'SPOT', instanceTerminationAction: 'DELETE' });
  t.is(
    (regularReq.body as Record<string, unknown>).scheduling,
    undefined,
    'no Spot when not asked',
  );

  // insert returned only once each operation was DONE: both instances run and have booted.
  const records = s.standin.instances();
  t.deepEqual(records.map((r) => [r.name, r.status]).sort(), [
    ['ct-ws1-vm-0', 'RUNNING'],
    ['ct-ws1-vm-1', 'RUNNING'],
  ]);
  t.deepEqual(records.find((r) => r.name === 'ct-ws1-vm-0')?.metadata, {
    'startup-script': '#!/bin/bash\necho hi',
    'seat-first': '1',
  });
  t.deepEqual([...s.booted].sort(), ['ct-ws1-vm-0', 'ct-ws1-vm-1']);
  await expectClean(t, s);
});

test('a custom network is sent as global/networks/NAME', async (t) => {
  const s = await stack(t);
  const compute = new ComputeProvisioner({
    project: PROJECT,
    sourceImage: IMAGE,
    diskSizeGb: 10,
    network: 'classes',
    endpoint: { host: '127.0.0.1', port: s.standin.port },
  });
  t.teardown(() => compute.close());
  await compute.insert(spec('ct-net-0'), randomUUID());
  const body = inserts(s, 'ct-net-0')[0]?.body as WireInstance;
  t.is(body.networkInterfaces[0]?.network, 'global/networks/classes');
  t.is(body.networkInterfaces[0]?.subnetwork, undefined, 'no subnetwork unless configured');
  t.is(body.serviceAccounts, undefined, 'no service account unless configured');
  await expectClean(t, s);
});

test('a subnetwork (custom-mode network) is sent as regions/REGION/subnetworks/NAME', async (t) => {
  const s = await stack(t);
  const settings = {
    project: PROJECT,
    zone: ZONE,
    sourceImage: IMAGE,
    diskSizeGb: 10,
    network: 'classes',
    endpoint: { host: '127.0.0.1', port: s.standin.port },
  };
  const byName = new ComputeProvisioner({ ...settings, subnetwork: 'class-subnet' });
  const byPath = new ComputeProvisioner({
    ...settings,
    subnetwork: 'projects/host/regions/us-central1/subnetworks/shared',
  });
  t.teardown(() => Promise.all([byName.close(), byPath.close()]));
  await byName.insert(spec('ct-sub-0'), randomUUID());
  await byPath.insert(spec('ct-sub-1'), randomUUID());
  t.is(
    (inserts(s, 'ct-sub-0')[0]?.body as WireInstance).networkInterfaces[0]?.subnetwork,
    'regions/us-central1/subnetworks/class-subnet',
  );
  t.is(
    (inserts(s, 'ct-sub-1')[0]?.body as WireInstance).networkInterfaces[0]?.subnetwork,
    'projects/host/regions/us-central1/subnetworks/shared',
  );
  await expectClean(t, s);
});

test('the same requestId twice gives one instance and no error', async (t) => {
  const s = await stack(t);
  const requestId = randomUUID();
  await s.compute.insert(spec('ct-dup-0'), requestId);
  await s.compute.insert(spec('ct-dup-0'), requestId);
  t.is(inserts(s, 'ct-dup-0').length, 2, 'both calls reached the stand-in');
  t.is(s.standin.instances().length, 1);
  t.deepEqual(s.booted, ['ct-dup-0'], 'booted once');
  await expectClean(t, s);
});

test('a different requestId for an existing name is already-exists', async (t) => {
  const s = await stack(t);
  await s.compute.insert(spec('ct-taken-0'), randomUUID());
  const err = await rejection(t, s.compute.insert(spec('ct-taken-0'), randomUUID()));
  t.is(err.kind, 'already-exists');
  t.is(err.code, 'RESOURCE_ALREADY_EXISTS');
  t.is(err.httpStatus, 409);
  t.is(s.standin.instances().length, 1);
  await expectClean(t, s);
});

test('insert refuses a requestId that is not a UUID before calling the API', async (t) => {
  const s = await stack(t);
  const err = await rejection(t, s.compute.insert(spec('ct-rid-0'), 'retry-1'));
  t.is(err.kind, 'invalid');
  t.is(err.code, 'INVALID_REQUEST_ID');
  t.is(s.standin.requests.length, 0);
  await expectClean(t, s);
});

test('an invalid instance name is invalid', async (t) => {
  const s = await stack(t);
  const err = await rejection(t, s.compute.insert(spec('Bad_Name'), randomUUID()));
  t.is(err.kind, 'invalid');
  t.is(err.httpStatus, 400);
  t.regex(err.message, /resource\.name/);
  await expectClean(t, s);
});

// --- get, list, delete -----------------------------------------------------------------------------

test('get returns the instance with its addresses, null when missing', async (t) => {
  const s = await stack(t);
  await s.compute.insert(spec('ct-get-0'), randomUUID());
  const info = await s.compute.get(at('ct-get-0'));
  if (!info) return t.fail('instance found');
  t.is(info.name, 'ct-get-0');
  t.is(info.status, 'RUNNING');
  t.deepEqual(info.labels, { app: 'clarateach', workshop: 'ws1' });
  t.regex(info.id ?? '', /^\d+$/);
  t.is(info.id, s.standin.instances()[0]?.id);
  t.is(info.externalIp, '127.0.0.1');
  t.is(info.internalIp, '127.0.0.1');
  t.false(Number.isNaN(Date.parse(info.createdAt ?? '')));
  t.is(await s.compute.get(at('ct-nothing-here')), null);
  await expectClean(t, s);
});

test('list filters by labels and follows pages', async (t) => {
  const s = await stack(t, { pageSize: 2 });
  const plan: Array<[string, Record<string, string>]> = [
    ['ct-a-0', { app: 'clarateach', workshop: 'wsa' }],
    ['ct-a-1', { app: 'clarateach', workshop: 'wsa' }],
    ['ct-a-2', { app: 'clarateach', workshop: 'wsa' }],
    ['ct-b-0', { app: 'clarateach', workshop: 'wsb' }],
    ['ct-b-1', { app: 'clarateach', workshop: 'wsb' }],
    ['other-0', { app: 'something-else' }],
  ];
  await Promise.all(
    plan.map(([name, labels]) => s.compute.insert(spec(name, { labels }), randomUUID())),
  );

  const before = s.standin.requests.length;
  const all = await s.compute.list({ app: 'clarateach' });
  t.deepEqual(all.map((i) => i.name).sort(), ['ct-a-0', 'ct-a-1', 'ct-a-2', 'ct-b-0', 'ct-b-1']);
  t.true(all.every((i) => i.status === 'RUNNING' && i.labels.app === 'clarateach'));
  const listCalls = s.standin.requests.slice(before);
  t.is(listCalls.length, 3, '5 instances in pages of 2');
  t.is(listCalls[0]?.query.filter, '(labels.app = "clarateach")');
  t.is(listCalls[0]?.query.maxResults, '500');
  t.is(listCalls[0]?.query.pageToken, undefined);
  t.truthy(listCalls[1]?.query.pageToken);
  t.truthy(listCalls[2]?.query.pageToken);
  t.true(listCalls.every((r) => r.query.filter === '(labels.app = "clarateach")'));

  const wsa = await s.compute.list({ app: 'clarateach', workshop: 'wsa' });
  t.deepEqual(wsa.map((i) => i.name).sort(), ['ct-a-0', 'ct-a-1', 'ct-a-2']);
  t.is(
    s.standin.requests.at(-1)?.query.filter,
    '(labels.app = "clarateach") AND (labels.workshop = "wsa")',
  );
  t.deepEqual(await s.compute.list({ app: 'clarateach', workshop: 'nope' }), []);
  t.is((await s.compute.list({})).length, 6, 'no labels: every instance');
  await expectClean(t, s);
});

test('list finds instances in every zone with one aggregated call per page, each with its zone', async (t) => {
  const s = await stack(t, { pageSize: 2 });
  const zoneB = 'us-central1-b';
  await Promise.all([
    s.compute.insert(spec('ct-z-0'), randomUUID()),
    s.compute.insert(spec('ct-z-1', { zone: zoneB }), randomUUID()),
    s.compute.insert(spec('ct-z-2', { zone: 'europe-west1-c' }), randomUUID()),
  ]);
  const before = s.standin.requests.length;
  const all = await s.compute.list({ app: 'clarateach' });
  t.deepEqual(all.map((i) => [i.name, i.zone]).sort(), [
    ['ct-z-0', ZONE],
    ['ct-z-1', zoneB],
    ['ct-z-2', 'europe-west1-c'],
  ]);
  const calls = s.standin.requests.slice(before);
  t.is(calls.length, 2, '3 instances in pages of 2');
  t.true(
    calls.every((r) => r.path.startsWith(`/compute/v1/projects/${PROJECT}/aggregated/instances?`)),
  );

  // get and delete go to the zone they are told.
  t.is(await s.compute.get({ name: 'ct-z-1', zone: ZONE }), null);
  t.is((await s.compute.get({ name: 'ct-z-1', zone: zoneB }))?.zone, zoneB);
  await s.compute.delete({ name: 'ct-z-1', zone: ZONE });
  t.is(s.standin.instances().length, 3, 'nothing of that name in the other zone');
  await s.compute.delete({ name: 'ct-z-1', zone: zoneB });
  t.deepEqual(
    s.standin
      .instances()
      .map((i) => i.name)
      .sort(),
    ['ct-z-0', 'ct-z-2'],
  );
  await expectClean(t, s);
});

test('a stock-out injected for one zone leaves the others alone', async (t) => {
  const s = await stack(t);
  s.standin.injectFault({ op: 'insert', kind: 'stockout', zone: ZONE, times: Infinity });
  const err = await rejection(t, s.compute.insert(spec('ct-zs-0'), randomUUID()));
  t.is(err.kind, 'stockout');
  await s.compute.insert(spec('ct-zs-0', { zone: 'us-central1-b' }), randomUUID());
  t.deepEqual(
    s.standin.instances().map((i) => [i.name, i.zone]),
    [['ct-zs-0', 'us-central1-b']],
  );
  await expectClean(t, s);
});

test('a Spot-only stock-out leaves standard inserts alone', async (t) => {
  const s = await stack(t);
  s.standin.injectFault({ op: 'insert', kind: 'stockout', spot: true, times: Infinity });
  const err = await rejection(t, s.compute.insert(spec('ct-sp-0', { spot: true }), randomUUID()));
  t.is(err.kind, 'stockout');
  await s.compute.insert(spec('ct-sp-0'), randomUUID());
  t.is(s.standin.instances()[0]?.scheduling, undefined);
  await expectClean(t, s);
});

test('regionQuotas reads the region: limits as set, usage from its running instances', async (t) => {
  const s = await stack(t, { quotas: { 'us-central1': { CPUS: 12, IN_USE_ADDRESSES: 4 } } });
  t.deepEqual(await s.compute.regionQuotas('us-central1'), [
    { metric: 'CPUS', limit: 12, usage: 0 },
    { metric: 'IN_USE_ADDRESSES', limit: 4, usage: 0 },
  ]);
  await s.compute.insert(spec('ct-q-0', { machineType: 'e2-standard-8' }), randomUUID());
  await s.compute.insert(
    spec('ct-q-1', { machineType: 'e2-standard-4', zone: 'us-central1-b' }),
    randomUUID(),
  );
  t.deepEqual(await s.compute.regionQuotas('us-central1'), [
    { metric: 'CPUS', limit: 12, usage: 12 },
    { metric: 'IN_USE_ADDRESSES', limit: 4, usage: 2 },
  ]);
  t.deepEqual(await s.compute.regionQuotas('europe-west1'), [], 'no quotas set there');
  // Past a limit the insert itself is refused, as Compute does.
  const err = await rejection(t, s.compute.insert(spec('ct-q-2'), randomUUID()));
  t.is(err.kind, 'quota');
  t.regex(err.message, /Quota 'CPUS' exceeded/);
  t.is(s.standin.instances().length, 2);
  await expectClean(t, s);
});

test('list refuses labels that could change the filter, without calling the API', async (t) => {
  const s = await stack(t);
  const err = await rejection(t, s.compute.list({ app: 'x") OR (name != "' }));
  t.is(err.kind, 'invalid');
  t.is(err.code, 'INVALID_LABEL');
  t.is(s.standin.requests.length, 0);
  await expectClean(t, s);
});

test('delete waits until the instance is gone and its boot stopped; a missing one is success', async (t) => {
  const s = await stack(t);
  await s.compute.insert(spec('ct-del-0'), randomUUID());
  await s.compute.insert(spec('ct-del-1'), randomUUID());
  await s.compute.delete(at('ct-del-0'));
  t.deepEqual(s.stopped, ['ct-del-0']);
  t.is(await s.compute.get(at('ct-del-0')), null);
  t.deepEqual(
    s.standin.instances().map((i) => i.name),
    ['ct-del-1'],
  );
  const deleteCall = s.standin.requests.find((r) => r.method === 'DELETE');
  t.is(
    deleteCall?.path.split('?')[0],
    `/compute/v1/projects/${PROJECT}/zones/${ZONE}/instances/ct-del-0`,
  );

  await s.compute.delete(at('ct-del-0')); // again: 404 on the wire, success here
  await s.compute.delete(at('ct-never-existed'));
  const last = s.standin.requests.filter((r) => r.method === 'DELETE').at(-1);
  t.is(
    last?.path.split('?')[0],
    `/compute/v1/projects/${PROJECT}/zones/${ZONE}/instances/ct-never-existed`,
  );
  await expectClean(t, s);
});

test('stopping the stand-in stops every booted instance', async (t) => {
  const s = await stack(t);
  await s.compute.insert(spec('ct-stop-0'), randomUUID());
  await s.compute.insert(spec('ct-stop-1'), randomUUID());
  t.is(s.booted.length, 2);
  await s.standin.stop();
  t.deepEqual([...s.stopped].sort(), ['ct-stop-0', 'ct-stop-1']);
  t.deepEqual(s.standin.instances(), []);
});

test('onBoot receives the instance with its metadata, labels and loopback addresses', async (t) => {
  const seen: Array<Parameters<NonNullable<ComputeStandinOptions['onBoot']>>[0]> = [];
  const s = await stack(t, {
    onBoot: async (instance) => {
      seen.push(instance);
      return { stop: async () => undefined };
    },
  });
  await s.compute.insert(spec('ct-boot-0', { metadata: { 'ready-token': 'tok' } }), randomUUID());
  t.deepEqual(seen, [
    {
      name: 'ct-boot-0',
      zone: ZONE,
      project: PROJECT,
      metadata: { 'ready-token': 'tok' },
      labels: { app: 'clarateach', workshop: 'ws1' },
      externalIp: '127.0.0.1',
      internalIp: '127.0.0.1',
    },
  ]);
  await s.compute.delete(at('ct-boot-0'));
  t.deepEqual(s.standin.instances(), []);
});

// --- faults ------------------------------------------------------------------------------------------

test('quota on insert is kind quota and creates nothing', async (t) => {
  const s = await stack(t);
  s.standin.injectFault({ op: 'insert', kind: 'quota' });
  const err = await rejection(t, s.compute.insert(spec('ct-quota-0'), randomUUID()));
  t.is(err.kind, 'quota');
  t.is(err.code, 'QUOTA_EXCEEDED');
  t.is(err.httpStatus, 403);
  t.regex(err.message, /Quota 'CPUS' exceeded/);
  t.deepEqual(s.standin.instances(), []);
  t.deepEqual(s.booted, []);
  await expectClean(t, s);
});

test('a stock-out arrives in the operation error and is kind stockout', async (t) => {
  const s = await stack(t);
  s.standin.injectFault({ op: 'insert', kind: 'stockout' });
  const err = await rejection(
    t,
    s.compute.insert(spec('ct-stock-0', { spot: true }), randomUUID()),
  );
  t.is(err.kind, 'stockout');
  t.is(err.code, 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS');
  t.true(
    s.standin.requests.some((r) => r.method === 'POST' && r.path.includes('/operations/')),
    'the error came from waiting on the operation',
  );
  t.deepEqual(s.standin.instances(), []);
  await expectClean(t, s);
});

test('an invalid image is kind invalid', async (t) => {
  const s = await stack(t);
  s.standin.injectFault({ op: 'insert', kind: 'invalid-image' });
  const err = await rejection(t, s.compute.insert(spec('ct-image-0'), randomUUID()));
  t.is(err.kind, 'invalid');
  t.is(err.code, 'RESOURCE_NOT_FOUND');
  t.regex(err.message, /cos-stable/);
  t.deepEqual(s.standin.instances(), []);
  await expectClean(t, s);
});

test('a 503 is transient, and the retry with the same requestId succeeds', async (t) => {
  const s = await stack(t);
  s.standin.injectFault({ op: 'insert', kind: 'http503', times: 1 });
  const requestId = randomUUID();
  const err = await rejection(t, s.compute.insert(spec('ct-503-0'), requestId));
  t.is(err.kind, 'transient');
  t.is(err.code, 'HTTP_503');
  t.true(err.retryable);
  t.deepEqual(s.standin.instances(), []);

  await s.compute.insert(spec('ct-503-0'), requestId);
  t.deepEqual(
    s.standin.instances().map((i) => [i.name, i.status]),
    [['ct-503-0', 'RUNNING']],
  );
  await expectClean(t, s);
});

test('an operation that never finishes times out as transient TIMEOUT', async (t) => {
  const s = await stack(t, { operationTimeoutMs: 1_500, waitTimeoutMs: 100 });
  s.standin.injectFault({ op: 'insert', kind: 'never-done' });
  const err = await rejection(t, s.compute.insert(spec('ct-slow-0'), randomUUID()));
  t.is(err.kind, 'transient');
  t.is(err.code, 'TIMEOUT');
  t.true(
    s.standin.requests.filter((r) => r.path.includes('/wait')).length >= 1,
    'it waited on the operation',
  );
  t.deepEqual(
    s.standin.instances().map((i) => [i.name, i.status]),
    [['ct-slow-0', 'PROVISIONING']],
  );
  t.deepEqual(s.booted, [], 'an instance that never runs never boots');
  await expectClean(t, s);
});

test('a wait longer than operationTimeoutMs is cut off on the client side', async (t) => {
  // The stand-in blocks each wait for 5 s, like Compute's ~2 min; the client gives up at 200 ms.
  const s = await stack(t, { operationTimeoutMs: 200, waitTimeoutMs: 5_000 });
  s.standin.injectFault({ op: 'insert', kind: 'never-done' });
  const err = await rejection(t, s.compute.insert(spec('ct-slow-1'), randomUUID()));
  t.is(err.code, 'TIMEOUT');
  t.is(err.kind, 'transient');
  await expectClean(t, s);
});

test('delete faults: 503 and quota are reported, never-done times out, then delete succeeds', async (t) => {
  // A short operation deadline for the faults; the setup insert uses the default one, so a
  // loaded machine cannot time it out.
  const s = await stack(t, { operationTimeoutMs: 1_500, waitTimeoutMs: 100 });
  await s.cleaner.insert(spec('ct-delf-0'), randomUUID());

  s.standin.injectFault({ op: 'delete', kind: 'http503' });
  t.is((await rejection(t, s.compute.delete(at('ct-delf-0')))).code, 'HTTP_503');
  s.standin.injectFault({ op: 'delete', kind: 'quota' });
  t.is((await rejection(t, s.compute.delete(at('ct-delf-0')))).kind, 'quota');
  s.standin.injectFault({ op: 'delete', kind: 'never-done' });
  t.is((await rejection(t, s.compute.delete(at('ct-delf-0')))).code, 'TIMEOUT');
  t.deepEqual(s.stopped, [], 'still running after the failed deletes');
  t.is(s.standin.instances()[0]?.status, 'STOPPING');

  await s.cleaner.delete(at('ct-delf-0'));
  t.deepEqual(s.stopped, ['ct-delf-0']);
  await expectClean(t, s);
});

test('get and list faults are classified', async (t) => {
  const s = await stack(t);
  s.standin.injectFault({ op: 'get', kind: 'http503' });
  t.is((await rejection(t, s.compute.get(at('ct-x')))).code, 'HTTP_503');
  s.standin.injectFault({ op: 'list', kind: 'quota' });
  t.is((await rejection(t, s.compute.list({ app: 'clarateach' }))).kind, 'quota');
  // Each fault was used up.
  t.is(await s.compute.get(at('ct-x')), null);
  t.deepEqual(await s.compute.list({ app: 'clarateach' }), []);
  await expectClean(t, s);
});

test('faults can be driven over HTTP by a process-external test', async (t) => {
  const s = await stack(t);
  const post = await fetch(`${s.standin.url}/_standin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ op: 'insert', kind: 'quota', times: 2 }),
  });
  t.is(post.status, 200);
  t.is((await rejection(t, s.compute.insert(spec('ct-http-0'), randomUUID()))).kind, 'quota');

  const cleared = await fetch(`${s.standin.url}/_standin/faults`, { method: 'DELETE' });
  t.is(cleared.status, 200);
  await s.compute.insert(spec('ct-http-0'), randomUUID());

  const listed = (await (await fetch(`${s.standin.url}/_standin/instances`)).json()) as {
    instances: Array<{ name: string; status: string; labels: Record<string, string> }>;
  };
  t.deepEqual(
    listed.instances.map((i) => [i.name, i.status, i.labels.app]),
    [['ct-http-0', 'RUNNING', 'clarateach']],
  );

  const bad = await fetch(`${s.standin.url}/_standin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ op: 'get', kind: 'stockout' }),
  });
  t.is(bad.status, 400);
  await expectClean(t, s);
});

// --- client-level faults the stand-in cannot produce ----------------------------------------------

test.serial(
  'a connection reset while waiting is transient; the retry with the same requestId succeeds',
  async (t) => {
    const s = await stack(t);
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const wait = sinon.stub(ZoneOperationsClient.prototype, 'wait').rejects(reset);
    t.teardown(() => wait.restore());
    const requestId = randomUUID();
    const err = await rejection(t, s.compute.insert(spec('ct-reset-0'), requestId));
    t.is(err.kind, 'transient');
    t.is(err.code, 'ECONNRESET');
    t.true(wait.calledOnce);
    wait.restore();

    // The insert went through on the server; the retry finds the same operation.
    await s.compute.insert(spec('ct-reset-0'), requestId);
    t.is(s.standin.instances().length, 1);
    t.is(inserts(s, 'ct-reset-0').length, 2);
    await expectClean(t, s);
  },
);

test.serial('a socket hang-up on get is transient', async (t) => {
  const s = await stack(t);
  const get = sinon
    .stub(InstancesClient.prototype, 'get')
    .rejects(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
  t.teardown(() => get.restore());
  const err = await rejection(t, s.compute.get(at('ct-any')));
  t.is(err.kind, 'transient');
  t.is(err.code, 'ECONNRESET');
  await expectClean(t, s);
});

test('nothing listening is transient ECONNREFUSED', async (t) => {
  const port = await freePort();
  const compute = new ComputeProvisioner({
    project: PROJECT,
    sourceImage: IMAGE,
    diskSizeGb: 10,
    endpoint: { host: '127.0.0.1', port },
  });
  t.teardown(() => compute.close());
  const err = await rejection(t, compute.list({ app: 'clarateach' }));
  t.is(err.kind, 'transient');
  t.is(err.code, 'ECONNREFUSED');
});

test('updateMetadata: read, compute, write with the fingerprint; racing writers all land', async (t) => {
  const s = await stack(t);
  await s.compute.insert(spec('vm-md'), randomUUID());
  // Five writers side by side, each adding its own key to what it read: a write made on a
  // fingerprint another writer changed is refused (412) and done again on fresh state.
  await Promise.all(
    Array.from({ length: 5 }, (_, i) =>
      s.compute.updateMetadata(at('vm-md'), async (current) => ({
        ...current,
        [`k${i}`]: `v${i}`,
      })),
    ),
  );
  const [instance] = s.standin.instances();
  t.like(instance!.metadata, {
    'workshop-id': 'ws1',
    k0: 'v0',
    k1: 'v1',
    k2: 'v2',
    k3: 'v3',
    k4: 'v4',
  });
  const refused = s.standin.requests.filter((r) => r.path.includes('/setMetadata'));
  t.true(refused.length >= 5);
  // No change, no write; a missing instance is false, not an error.
  const before = s.standin.requests.length;
  t.true(await s.compute.updateMetadata(at('vm-md'), async () => null));
  t.false(s.standin.requests.slice(before).some((r) => r.path.includes('/setMetadata')));
  t.false(await s.compute.updateMetadata(at('nope'), async (c) => c));
  // A stale fingerprint is Compute's 412 conditionNotMet.
  const stale = await fetch(
    `${s.standin.url}/compute/v1/projects/${PROJECT}/zones/${ZONE}/instances/vm-md/setMetadata`,
    { method: 'POST', body: JSON.stringify({ fingerprint: 'old', items: [] }) },
  );
  t.is(stale.status, 412);
  t.is(
    ((await stale.json()) as { error: { errors: [{ reason: string }] } }).error.errors[0].reason,
    'conditionNotMet',
  );
  await s.compute.delete(at('vm-md'));
  await expectClean(t, s);
});
