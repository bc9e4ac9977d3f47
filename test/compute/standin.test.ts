/**
 * The local Compute Engine stand-in spoken to directly over HTTP: lifecycle, error shapes,
 * validation, pagination and boot handling that the provisioner tests do not reach.
 */
import test, { type ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import {
  parseFilter,
  startComputeStandin,
  type ComputeStandin,
  type ComputeStandinOptions,
  type InstanceRecord,
} from '../../local/compute-standin.ts';

const P = 'ct-test';
const Z = 'europe-west1-b';
const BASE = `/compute/v1/projects/${P}/zones/${Z}`;

async function standin(
  t: ExecutionContext,
  opts: Partial<ComputeStandinOptions> = {},
): Promise<ComputeStandin> {
  const s = await startComputeStandin({ project: P, ...opts });
  t.teardown(() => s.stop());
  return s;
}

interface Reply {
  status: number;
  json: any;
}

async function call(
  s: ComputeStandin,
  method: string,
  path: string,
  body?: unknown,
): Promise<Reply> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers = { 'content-type': 'application/json' };
  }
  const res = await fetch(`${s.url}${path}`, init);
  return { status: res.status, json: await res.json() };
}

function resource(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    machineType: `zones/${Z}/machineTypes/e2-small`,
    labels: { app: 'clarateach' },
    metadata: { items: [{ key: 'k', value: 'v' }] },
    disks: [
      {
        boot: true,
        autoDelete: true,
        initializeParams: {
          sourceImage: 'projects/cos-cloud/global/images/family/cos-stable',
          diskSizeGb: '10',
        },
      },
    ],
    networkInterfaces: [
      { network: 'global/networks/default', accessConfigs: [{ type: 'ONE_TO_ONE_NAT' }] },
    ],
    ...extra,
  };
}

async function waitDone(s: ComputeStandin, opName: string): Promise<Reply> {
  for (;;) {
    const r = await call(s, 'POST', `${BASE}/operations/${opName}/wait`);
    if (r.status !== 200 || r.json.status === 'DONE') return r;
  }
}

async function deleteAll(t: ExecutionContext, s: ComputeStandin): Promise<void> {
  for (const i of s.instances()) {
    const r = await call(s, 'DELETE', `${BASE}/instances/${i.name}`);
    if (r.status === 200) await waitDone(s, r.json.name);
  }
  t.deepEqual(s.instances(), [], 'the stand-in holds no instance');
}

function compute404(what: string) {
  const message = `The resource 'projects/${P}/zones/${Z}/${what}' was not found`;
  return {
    error: { code: 404, message, errors: [{ message, domain: 'global', reason: 'notFound' }] },
  };
}

test('insert runs PROVISIONING → STAGING → RUNNING and its operation RUNNING → DONE', async (t) => {
  const s = await standin(t, { stepMs: 100 });
  const op = await call(s, 'POST', `${BASE}/instances?requestId=${randomUUID()}`, resource('vm-0'));
  t.is(op.status, 200);
  t.like(op.json, {
    kind: 'compute#operation',
    operationType: 'insert',
    status: 'RUNNING',
    targetLink: `https://www.googleapis.com${BASE}/instances/vm-0`,
  });
  t.regex(op.json.name, /^operation-/);

  const seen: string[] = [];
  for (;;) {
    const inst = await call(s, 'GET', `${BASE}/instances/vm-0`);
    if (seen.at(-1) !== inst.json.status) seen.push(inst.json.status);
    if (inst.json.status === 'RUNNING') break;
    await call(s, 'GET', `${BASE}/operations/${op.json.name}`);
  }
  const order = ['PROVISIONING', 'STAGING', 'RUNNING'];
  t.deepEqual(s.instances()[0]?.statusHistory, order);
  t.is(seen.at(-1), 'RUNNING');
  t.deepEqual(
    seen,
    order.filter((status) => seen.includes(status)),
    'what clients see only moves forward',
  );
  const done = await call(s, 'GET', `${BASE}/operations/${op.json.name}`);
  t.like(done.json, { status: 'DONE', progress: 100, targetId: s.instances()[0]?.id });
  t.is(done.json.error, undefined);
  await deleteAll(t, s);
});

test('the instance resource comes back the way Compute shows it', async (t) => {
  const s = await standin(t);
  const op = await call(
    s,
    'POST',
    `${BASE}/instances`,
    resource('vm-1', {
      tags: { items: ['http-server'] },
      scheduling: { provisioningModel: 'SPOT', instanceTerminationAction: 'DELETE' },
    }),
  );
  await waitDone(s, op.json.name);
  const got = await call(s, 'GET', `${BASE}/instances/vm-1`);
  t.like(got.json, {
    kind: 'compute#instance',
    name: 'vm-1',
    status: 'RUNNING',
    machineType: `https://www.googleapis.com${BASE}/machineTypes/e2-small`,
    labels: { app: 'clarateach' },
    tags: { items: ['http-server'] },
    metadata: { items: [{ key: 'k', value: 'v' }] },
    scheduling: { provisioningModel: 'SPOT', instanceTerminationAction: 'DELETE' },
  });
  t.like(got.json.networkInterfaces[0], { networkIP: '127.0.0.1' });
  t.like(got.json.networkInterfaces[0].accessConfigs[0], {
    type: 'ONE_TO_ONE_NAT',
    natIP: '127.0.0.1',
  });
  const [record] = s.instances() as [InstanceRecord];
  t.is(record.machineType, `zones/${Z}/machineTypes/e2-small`, 'kept as received');
  t.is(record.sourceImage, 'projects/cos-cloud/global/images/family/cos-stable');
  t.is(record.diskSizeGb, '10');
  await deleteAll(t, s);
});

test('errors have the Compute JSON shape', async (t) => {
  const s = await standin(t);
  const missing = await call(s, 'GET', `${BASE}/instances/nope`);
  t.is(missing.status, 404);
  t.deepEqual(missing.json, compute404('instances/nope'));
  const del = await call(s, 'DELETE', `${BASE}/instances/nope`);
  t.is(del.status, 404);
  t.deepEqual(del.json, compute404('instances/nope'));
  const op = await call(s, 'GET', `${BASE}/operations/operation-nope`);
  t.deepEqual(op.json, compute404('operations/operation-nope'));

  const first = await call(s, 'POST', `${BASE}/instances`, resource('vm-2'));
  t.is(first.status, 200);
  const dup = await call(s, 'POST', `${BASE}/instances`, resource('vm-2'));
  t.is(dup.status, 409);
  t.like(dup.json.error, {
    code: 409,
    errors: [{ reason: 'alreadyExists', domain: 'global' }],
  });
  await waitDone(s, first.json.name);
  await deleteAll(t, s);
});

test('the same requestId returns the same operation, even for another body', async (t) => {
  const s = await standin(t);
  const requestId = randomUUID();
  const a = await call(s, 'POST', `${BASE}/instances?requestId=${requestId}`, resource('vm-3'));
  const b = await call(s, 'POST', `${BASE}/instances?requestId=${requestId}`, resource('vm-3'));
  const c = await call(s, 'POST', `${BASE}/instances?requestId=${requestId}`, resource('vm-other'));
  t.is(b.status, 200);
  t.is(b.json.name, a.json.name);
  t.is(c.json.name, a.json.name);
  t.deepEqual(
    s.instances().map((i) => i.name),
    ['vm-3'],
  );
  await waitDone(s, a.json.name);
  await deleteAll(t, s);
});

test('insert validates what Compute validates', async (t) => {
  const s = await standin(t);
  const cases: Array<[string, unknown, RegExp]> = [
    ['uppercase name', resource('Vm-1'), /resource\.name/],
    ['name ending in a dash', resource('vm-'), /resource\.name/],
    ['name too long', resource(`a${'b'.repeat(63)}`), /resource\.name/],
    ['no machine type', resource('vm-a', { machineType: undefined }), /machineType/],
    [
      'machine type of another zone',
      resource('vm-a', { machineType: 'zones/us-east1-b/machineTypes/e2-small' }),
      /machineType/,
    ],
    ['bad label', resource('vm-a', { labels: { App: 'x' } }), /labels/],
    ['bad label value', resource('vm-a', { labels: { app: 'Has Space' } }), /labels/],
    [
      'bad metadata key',
      resource('vm-a', { metadata: { items: [{ key: 'a b', value: '' }] } }),
      /metadata/,
    ],
    [
      'metadata over 512 KiB',
      resource('vm-a', {
        metadata: {
          items: [
            { key: 'a', value: 'x'.repeat(300_000) },
            { key: 'b', value: 'x'.repeat(300_000) },
          ],
        },
      }),
      /Metadata total size/,
    ],
    ['no disk', resource('vm-a', { disks: [] }), /boot disk/],
    [
      'malformed image',
      resource('vm-a', {
        disks: [{ boot: true, initializeParams: { sourceImage: 'cos-stable!' } }],
      }),
      /sourceImage/,
    ],
    ['no network interface', resource('vm-a', { networkInterfaces: [] }), /networkInterfaces/],
    ['bad tag', resource('vm-a', { tags: { items: ['HTTP'] } }), /tags/],
  ];
  for (const [what, body, message] of cases) {
    const r = await call(s, 'POST', `${BASE}/instances`, body);
    t.is(r.status, 400, what);
    t.is(r.json.error.errors[0].reason, 'invalid', what);
    t.regex(r.json.error.message, message, what);
  }
  const badRid = await call(s, 'POST', `${BASE}/instances?requestId=not-a-uuid`, resource('vm-a'));
  t.is(badRid.status, 400);
  t.regex(badRid.json.error.message, /requestId/);
  const badJson = await call(s, 'POST', `${BASE}/instances`, '{"name":');
  t.is(badJson.status, 400);
  t.is(badJson.json.error.errors[0].reason, 'parseError');
  t.deepEqual(s.instances(), []);
});

test('another project is forbidden and unknown calls are 501', async (t) => {
  const s = await standin(t);
  const other = await call(s, 'GET', `/compute/v1/projects/someone-else/zones/${Z}/instances`);
  t.is(other.status, 403);
  t.is(other.json.error.errors[0].reason, 'forbidden');
  const unknown = await call(s, 'POST', `${BASE}/instances/vm-x/stop`);
  t.is(unknown.status, 501);
  t.is(unknown.json.error.code, 501);
});

test('list pages with maxResults and pageToken and rejects bad paging', async (t) => {
  const s = await standin(t);
  const ops = [];
  for (const name of ['vm-c', 'vm-a', 'vm-b']) {
    ops.push((await call(s, 'POST', `${BASE}/instances`, resource(name))).json.name as string);
  }
  for (const op of ops) await waitDone(s, op);
  const first = await call(s, 'GET', `${BASE}/instances?maxResults=2`);
  t.deepEqual(
    first.json.items.map((i: { name: string }) => i.name),
    ['vm-a', 'vm-b'],
  );
  t.truthy(first.json.nextPageToken);
  const second = await call(
    s,
    'GET',
    `${BASE}/instances?maxResults=2&pageToken=${encodeURIComponent(first.json.nextPageToken)}`,
  );
  t.deepEqual(
    second.json.items.map((i: { name: string }) => i.name),
    ['vm-c'],
  );
  t.is(second.json.nextPageToken, undefined);

  const none = await call(
    s,
    'GET',
    `${BASE}/instances?filter=${encodeURIComponent('labels.app = "x"')}`,
  );
  t.is(none.status, 200);
  t.is(none.json.items, undefined, 'an empty list has no items, like Compute');
  t.is((await call(s, 'GET', `${BASE}/instances?maxResults=501`)).status, 400);
  t.is((await call(s, 'GET', `${BASE}/instances?pageToken=garbage`)).status, 400);
  t.is(
    (await call(s, 'GET', `${BASE}/instances?filter=${encodeURIComponent('labels.app ~ x')}`))
      .status,
    400,
  );
  await deleteAll(t, s);
});

test('parseFilter understands the label filter forms Compute accepts', (t) => {
  const record = (labels: Record<string, string>, name = 'vm', status = 'RUNNING') =>
    ({ labels, name, status }) as InstanceRecord;
  const a = record({ app: 'clarateach', workshop: 'w1' });
  const b = record({ app: 'clarateach', workshop: 'w2' }, 'vm-b', 'STOPPING');
  for (const filter of [
    '(labels.app = "clarateach") AND (labels.workshop = "w1")',
    '(labels.app = "clarateach") (labels.workshop = "w1")',
    'labels.app = "clarateach" AND labels.workshop = w1',
    'labels.app eq \'clarateach\' labels.workshop = "w1"',
  ]) {
    const match = parseFilter(filter);
    t.true(match(a), filter);
    t.false(match(b), filter);
  }
  t.true(parseFilter('')(b));
  t.true(parseFilter('labels.workshop != "w1"')(b));
  t.true(parseFilter('name = "vm-b" status = STOPPING')(b));
  t.false(parseFilter('labels.missing = "x"')(a));
  t.throws(() => parseFilter('labels.app = "x" OR labels.app = "y"'));
  t.throws(() => parseFilter('labels.app ~ "x"'));
});

test('an operation that never finishes stays RUNNING through wait', async (t) => {
  const s = await standin(t, { waitTimeoutMs: 50 });
  s.injectFault({ op: 'insert', kind: 'never-done' });
  const op = await call(s, 'POST', `${BASE}/instances`, resource('vm-4'));
  for (let i = 0; i < 3; i++) {
    const waited = await call(s, 'POST', `${BASE}/operations/${op.json.name}/wait`);
    t.is(waited.json.status, 'RUNNING');
  }
  t.is(s.instances()[0]?.status, 'PROVISIONING');
  await deleteAll(t, s);
  t.is(
    (await call(s, 'GET', `${BASE}/operations/${op.json.name}`)).json.status,
    'RUNNING',
    'still never done',
  );
});

test('fault injection is counted and validated', async (t) => {
  const s = await standin(t);
  t.throws(() => s.injectFault({ op: 'get', kind: 'stockout' }), { message: /not supported/ });
  t.throws(() => s.injectFault({ op: 'list', kind: 'http503', times: 0 }), { message: /times/ });
  s.injectFault({ op: 'get', kind: 'http503', times: 2 });
  t.is((await call(s, 'GET', `${BASE}/instances/a`)).status, 503);
  t.is((await call(s, 'GET', `${BASE}/instances/a`)).status, 503);
  t.is((await call(s, 'GET', `${BASE}/instances/a`)).status, 404, 'used up after two');
  s.injectFault({ op: 'list', kind: 'http503', times: 5 });
  s.clearFaults();
  t.is((await call(s, 'GET', `${BASE}/instances`)).status, 200);
  s.injectFault({ op: 'delete', kind: 'http503' });
  t.is((await call(s, 'DELETE', `${BASE}/instances/a`)).status, 503, 'before the lookup');
  t.is((await call(s, 'DELETE', `${BASE}/instances/a`)).status, 404);
  s.injectFault({ op: 'list', kind: 'quota' });
  const quota = await call(s, 'GET', `${BASE}/instances`);
  t.is(quota.status, 403);
  t.is(quota.json.error.errors[0].reason, 'quotaExceeded');
});

test('operation errors use operation.error.errors[{code, message}]', async (t) => {
  const s = await standin(t);
  s.injectFault({ op: 'insert', kind: 'stockout' });
  s.injectFault({ op: 'insert', kind: 'invalid-image' });
  const stock = await waitDone(
    s,
    (await call(s, 'POST', `${BASE}/instances`, resource('vm-5'))).json.name,
  );
  t.like(stock.json, {
    status: 'DONE',
    httpErrorStatusCode: 503,
    error: { errors: [{ code: 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS' }] },
  });
  const image = await waitDone(
    s,
    (await call(s, 'POST', `${BASE}/instances`, resource('vm-5'))).json.name,
  );
  t.like(image.json, {
    status: 'DONE',
    httpErrorStatusCode: 404,
    error: {
      errors: [
        {
          code: 'RESOURCE_NOT_FOUND',
          message:
            "The resource 'projects/cos-cloud/global/images/family/cos-stable' was not found",
        },
      ],
    },
  });
  t.deepEqual(s.instances(), []);
});

test('deleting during provisioning finishes the insert without booting', async (t) => {
  let boots = 0;
  const s = await standin(t, {
    stepMs: 2_000, // wide enough that the delete lands while it provisions, even on a loaded machine
    onBoot: async () => {
      boots++;
      return { stop: async () => undefined };
    },
  });
  const insert = await call(s, 'POST', `${BASE}/instances`, resource('vm-6'));
  const del = await call(s, 'DELETE', `${BASE}/instances/vm-6`);
  t.is(del.status, 200);
  t.is((await waitDone(s, del.json.name)).json.status, 'DONE');
  t.is((await waitDone(s, insert.json.name)).json.status, 'DONE');
  t.deepEqual(s.instances(), []);
  t.is(boots, 0);
});

test('a boot in flight is stopped once it comes up, on delete and on stop()', async (t) => {
  const stopped: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const s = await startComputeStandin({
    project: P,
    onBoot: async (instance) => {
      await gate;
      return { stop: async () => void stopped.push(instance.name) };
    },
  });
  t.teardown(() => s.stop());
  const a = await call(s, 'POST', `${BASE}/instances`, resource('vm-7'));
  const b = await call(s, 'POST', `${BASE}/instances`, resource('vm-8'));
  await waitDone(s, a.json.name);
  await waitDone(s, b.json.name);
  t.true(s.instances().every((i) => i.booted));

  const del = await call(s, 'DELETE', `${BASE}/instances/vm-7`);
  const stopping = s.stop();
  release();
  await stopping;
  t.is(del.status, 200);
  t.deepEqual(stopped.sort(), ['vm-7', 'vm-8']);
  t.deepEqual(s.instances(), []);
});

test('a failing onBoot is recorded and the instance can still be deleted', async (t) => {
  const s = await standin(t, {
    onBoot: () => Promise.reject(new Error('docker is not running')),
  });
  const op = await call(s, 'POST', `${BASE}/instances`, resource('vm-9'));
  await waitDone(s, op.json.name);
  // The rejection is recorded on the next turn of the event loop.
  await new Promise((resolve) => setImmediate(resolve));
  const [record] = s.instances();
  t.is(record?.status, 'RUNNING');
  t.is(record?.bootError, 'docker is not running');
  await deleteAll(t, s);
});

test('the request log keeps the newest requests and leaves out control calls', async (t) => {
  const s = await standin(t, { requestLogLimit: 3 });
  for (let i = 0; i < 5; i++) await call(s, 'GET', `${BASE}/instances/n${i}`);
  await call(s, 'GET', '/_standin/instances');
  t.deepEqual(
    s.requests.map((r) => r.path),
    [`${BASE}/instances/n2`, `${BASE}/instances/n3`, `${BASE}/instances/n4`],
  );
  const logged = await call(s, 'GET', '/_standin/requests');
  t.is(logged.json.requests.length, 3);
});

test('aggregatedList answers every zone of the project under items["zones/Z"], paged', async (t) => {
  const s = await standin(t, { pageSize: 2 });
  const other = 'europe-west1-c';
  for (const [name, zone] of [
    ['vm-a', Z],
    ['vm-b', other],
    ['vm-c', other],
  ] as const) {
    const body = resource(name, { machineType: `zones/${zone}/machineTypes/e2-small` });
    const op = await call(s, 'POST', `/compute/v1/projects/${P}/zones/${zone}/instances`, body);
    t.is(op.status, 200);
  }
  const first = await call(s, 'GET', `/compute/v1/projects/${P}/aggregated/instances`);
  t.is(first.status, 200);
  t.is(first.json.kind, 'compute#instanceAggregatedList');
  t.deepEqual(Object.keys(first.json.items), [`zones/${Z}`, `zones/${other}`]);
  t.deepEqual(
    first.json.items[`zones/${other}`].instances.map((i: { name: string }) => i.name),
    ['vm-b'],
  );
  const token = encodeURIComponent(first.json.nextPageToken);
  const second = await call(
    s,
    'GET',
    `/compute/v1/projects/${P}/aggregated/instances?pageToken=${token}&filter=${encodeURIComponent('name = "vm-c"')}`,
  );
  t.deepEqual(Object.keys(second.json.items), [], 'the filter applies across pages');
  const filtered = await call(
    s,
    'GET',
    `/compute/v1/projects/${P}/aggregated/instances?filter=${encodeURIComponent('name = "vm-c"')}`,
  );
  t.is(filtered.json.items[`zones/${other}`].instances[0].zone.split('/').pop(), other);
  t.is((await call(s, 'GET', `/compute/v1/projects/other/aggregated/instances`)).status, 403);
  for (const i of s.instances()) {
    const zone = `/compute/v1/projects/${P}/zones/${i.zone}`;
    const r = await call(s, 'DELETE', `${zone}/instances/${i.name}`);
    t.is(r.status, 200);
    await call(s, 'POST', `${zone}/operations/${r.json.name}/wait`);
  }
  t.deepEqual(s.instances(), []);
});

test('regions.get serves the quotas set over HTTP, with usage of the region only', async (t) => {
  const s = await standin(t);
  const region = `/compute/v1/projects/${P}/regions/europe-west1`;
  t.deepEqual((await call(s, 'GET', region)).json.quotas, []);
  const set = await call(s, 'PUT', '/_standin/quotas/europe-west1', { CPUS: 2, INSTANCES: 5 });
  t.is(set.status, 200);
  t.is((await call(s, 'PUT', '/_standin/quotas/europe-west1', { CPUS: -1 })).status, 400);
  t.is((await call(s, 'PUT', '/_standin/quotas/europe-west1', [1])).status, 400);
  const op = await call(s, 'POST', `${BASE}/instances`, resource('vm-q'));
  await waitDone(s, op.json.name);
  const got = await call(s, 'GET', region);
  t.like(got.json, { kind: 'compute#region', name: 'europe-west1', status: 'UP' });
  t.deepEqual(got.json.quotas, [
    { metric: 'CPUS', limit: 2, usage: 1 },
    { metric: 'INSTANCES', limit: 5, usage: 1 },
  ]);
  t.deepEqual(
    (await call(s, 'GET', `/compute/v1/projects/${P}/regions/us-central1`)).json.quotas,
    [],
  );
  t.is((await call(s, 'GET', `/compute/v1/projects/${P}/regions/nowhere`)).status, 404);
  // The next e2-small would take CPUS to 2: allowed; a third is refused at the call.
  t.is((await call(s, 'POST', `${BASE}/instances`, resource('vm-q2'))).status, 200);
  const refused = await call(s, 'POST', `${BASE}/instances`, resource('vm-q3'));
  t.is(refused.status, 403);
  t.is(refused.json.error.errors[0].reason, 'quotaExceeded');
  await deleteAll(t, s);
});

test('a regions fault makes regions.get answer 503, then it answers again', async (t) => {
  const s = await standin(t);
  const region = `/compute/v1/projects/${P}/regions/us-central1`;
  t.is((await call(s, 'POST', '/_standin/faults', { op: 'regions', kind: 'quota' })).status, 400);
  t.is(
    (await call(s, 'POST', '/_standin/faults', { op: 'regions', kind: 'http503', times: 1 }))
      .status,
    200,
  );
  const failed = await call(s, 'GET', region);
  t.is(failed.status, 503);
  t.is((await call(s, 'GET', region)).status, 200);
});

test('faults can be limited to a zone and to Spot inserts', async (t) => {
  const s = await standin(t);
  const bad = await call(s, 'POST', '/_standin/faults', { op: 'get', kind: 'http503', spot: true });
  t.is(bad.status, 400, 'spot only applies to inserts');
  const set = await call(s, 'POST', '/_standin/faults', [
    { op: 'insert', kind: 'quota', zone: 'europe-west1-c' },
    { op: 'insert', kind: 'quota', spot: true },
  ]);
  t.is(set.status, 200);
  t.is((await call(s, 'POST', `${BASE}/instances`, resource('vm-f0'))).status, 200, 'other zone');
  const spot = resource('vm-f1', { scheduling: { provisioningModel: 'SPOT' } });
  t.is((await call(s, 'POST', `${BASE}/instances`, spot)).status, 403, 'Spot');
  t.deepEqual(
    (await call(s, 'GET', '/_standin/faults')).json.faults.map((f: { zone?: string }) => f.zone),
    ['europe-west1-c'],
  );
  await deleteAll(t, s);
});
