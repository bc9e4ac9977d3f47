import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, startTestStack, type TestStack } from '../helpers/stack.ts';
import { TOPICS } from '../../shared/topics.ts';

let stack: TestStack;
let workshopId = '';
let joinCode = '';

test.before(async () => {
  stack = await startTestStack();
  const ws = (await stack.api('POST', '/workshops', { name: 'Target', seats: 2 })).body;
  workshopId = ws.id;
  joinCode = ws.joinCode;
});

interface Case {
  title: string;
  method: string;
  path: () => string;
  body?: unknown;
  /** Built when the test runs, for bodies that need the workshop made in `before`. */
  lazyBody?: () => unknown;
  headers?: Record<string, string>;
  status: number;
  code: string;
}

const long = (n: number) => 'x'.repeat(n);

const cases: Case[] = [
  {
    title: 'create: malformed JSON',
    method: 'POST',
    path: () => '/workshops',
    body: '{"name": "a", seats: 3',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: JSON array',
    method: 'POST',
    path: () => '/workshops',
    body: '[1,2]',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: JSON null',
    method: 'POST',
    path: () => '/workshops',
    body: 'null',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: empty body',
    method: 'POST',
    path: () => '/workshops',
    body: '',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: text body',
    method: 'POST',
    path: () => '/workshops',
    body: 'hello',
    headers: { 'content-type': 'text/plain' },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: missing seats',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a' },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: seats as string',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: '3' },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: seats 0',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: 0 },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: seats 201',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: 201 },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: fractional seats',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: 2.5 },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    // JSON lets a lone surrogate through; Firestore would refuse to store it.
    title: 'create: a name that is not valid Unicode',
    method: 'POST',
    path: () => '/workshops',
    body: '{"name": "a\\udfffb", "seats": 2}',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'join: a learner name that is not valid Unicode',
    method: 'POST',
    path: () => '/join',
    lazyBody: () => `{"code": "${joinCode}", "name": "\\udbff\\udbff"}`,
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'a path that is not valid percent-encoding',
    method: 'GET',
    path: () => '/workshops/%ZZ',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'start: a path with a broken escape',
    method: 'POST',
    path: () => '/workshops/%E0%A4%A/start',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'join: a path with a lone %',
    method: 'DELETE',
    path: () => '/join/%',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: extra field',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: 2, admin: true },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: name too long',
    method: 'POST',
    path: () => '/workshops',
    body: { name: long(101), seats: 2 },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: blank name',
    method: 'POST',
    path: () => '/workshops',
    body: { name: '   ', seats: 2 },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: duration too short',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: 2, durationMinutes: 5 },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: duration too long',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: 2, durationMinutes: 721 },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: image with shell characters',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: 2, image: 'x;rm -rf /' },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: oversized image',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: 2, image: long(300) },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: spot as string',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: 2, spot: 'yes' },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: huge body',
    method: 'POST',
    path: () => '/workshops',
    body: { name: long(200_000), seats: 2 },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'create: bad user header',
    method: 'POST',
    path: () => '/workshops',
    body: { name: 'a', seats: 2 },
    headers: { 'x-clarateach-user': 'not an email' },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'list: wrong method',
    method: 'PUT',
    path: () => '/workshops',
    body: {},
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
  {
    title: 'get: unknown id',
    method: 'GET',
    path: () => '/workshops/abcdefghijklmnop',
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    title: 'get: id with odd characters',
    method: 'GET',
    path: () => '/workshops/..%2F..%2Fetc',
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    title: 'get: oversized id',
    method: 'GET',
    path: () => `/workshops/${long(2000)}`,
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    title: 'start: unknown id',
    method: 'POST',
    path: () => '/workshops/abcdefghijklmnop/start',
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    title: 'start: wrong method',
    method: 'GET',
    path: () => `/workshops/${workshopId}/start`,
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
  {
    title: 'unknown action',
    method: 'POST',
    path: () => `/workshops/${workshopId}/reboot`,
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    title: 'deep path',
    method: 'GET',
    path: () => `/workshops/${workshopId}/start/now`,
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    title: 'extend: created workshop',
    method: 'POST',
    path: () => `/workshops/${workshopId}/extend`,
    body: { minutes: 30 },
    status: 409,
    code: 'INVALID_STATE',
  },
  {
    title: 'extend: minutes as string',
    method: 'POST',
    path: () => `/workshops/${workshopId}/extend`,
    body: { minutes: '30' },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'extend: negative minutes',
    method: 'POST',
    path: () => `/workshops/${workshopId}/extend`,
    body: { minutes: -30 },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'extend: unknown id',
    method: 'POST',
    path: () => '/workshops/abcdefghijklmnop/extend',
    body: { minutes: 30 },
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    title: 'ssh-key: unknown id',
    method: 'GET',
    path: () => '/workshops/abcdefghijklmnop/ssh-key',
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    title: 'ssh-key: not started',
    method: 'GET',
    path: () => `/workshops/${workshopId}/ssh-key`,
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    title: 'delete: unknown id',
    method: 'DELETE',
    path: () => '/workshops/abcdefghijklmnop',
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    title: 'join: malformed JSON',
    method: 'POST',
    path: () => '/join',
    body: '{"code":',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'join: missing name',
    method: 'POST',
    path: () => '/join',
    lazyBody: () => ({ code: joinCode }),
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'join: code as number',
    method: 'POST',
    path: () => '/join',
    body: { code: 1234, name: 'a' },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'join: extra field',
    method: 'POST',
    path: () => '/join',
    lazyBody: () => ({ code: joinCode, name: 'a', seat: 1 }),
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'join: name too long',
    method: 'POST',
    path: () => '/join',
    lazyBody: () => ({ code: joinCode, name: long(61) }),
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'join: oversized code',
    method: 'POST',
    path: () => '/join',
    body: { code: long(5000), name: 'a' },
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    title: 'join: unknown code',
    method: 'POST',
    path: () => '/join',
    body: { code: 'ZZZZZZZZ', name: 'a' },
    status: 404,
    code: 'CODE_NOT_FOUND',
  },
  {
    title: 'join: code of wrong shape',
    method: 'POST',
    path: () => '/join',
    body: { code: 'hello', name: 'a' },
    status: 404,
    code: 'CODE_NOT_FOUND',
  },
  {
    title: 'join: not ready',
    method: 'POST',
    path: () => '/join',
    lazyBody: () => ({ code: joinCode, name: 'a' }),
    status: 409,
    code: 'NOT_READY',
  },
  {
    title: 'join: wrong method',
    method: 'GET',
    path: () => '/join',
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
];

for (const c of cases) {
  test(`${c.title} → ${c.status} ${c.code}`, async (t) => {
    const res = await stack.api(c.method, c.path(), c.lazyBody ? c.lazyBody() : c.body, c.headers);
    t.is(res.status, c.status, res.text.slice(0, 300));
    t.is(res.body?.error?.code, c.code, res.text.slice(0, 300));
    t.is(typeof res.body.error.message, 'string');
  });
}

test('no rejected request left a workshop behind', async (t) => {
  const list = (await stack.api('GET', '/workshops')).body.workshops as { id: string }[];
  t.deepEqual(
    list.map((w) => w.id),
    [workshopId],
  );
});

const badEvents: Array<[string, string, unknown]> = [
  ['started: not JSON', TOPICS.workshopStarted, 'not json {'],
  ['started: no id', TOPICS.workshopStarted, {}],
  ['started: id of wrong shape', TOPICS.workshopStarted, { workshopId: '../x' }],
  ['started: unknown workshop', TOPICS.workshopStarted, { workshopId: 'abcdefghijklmnop' }],
  [
    'ended: unknown reason',
    TOPICS.workshopEnded,
    { workshopId: 'abcdefghijklmnop', reason: 'bored' },
  ],
  [
    'ended: unknown workshop',
    TOPICS.workshopEnded,
    { workshopId: 'abcdefghijklmnop', reason: 'ttl' },
  ],
  [
    'vm.ready: wrong state',
    TOPICS.vmReady,
    { workshopId: 'abcdefghijklmnop', vmName: 'x', state: 'ok', readyToken: 't' },
  ],
  [
    'vm.ready: string seats',
    TOPICS.vmReady,
    {
      workshopId: 'abcdefghijklmnop',
      vmName: 'x',
      state: 'ready',
      readyToken: 't',
      seatsReady: '3',
    },
  ],
  [
    'vm.ready: unknown VM',
    TOPICS.vmReady,
    { workshopId: 'abcdefghijklmnop', vmName: 'x', state: 'ready', readyToken: 't' },
  ],
  ['vm.ready: array', TOPICS.vmReady, [1, 2, 3]],
];

for (const [title, topic, payload] of badEvents) {
  test(`an invalid event is acknowledged, not retried: ${title}`, async (t) => {
    const status = await stack.push(topic as typeof TOPICS.vmReady, payload);
    t.true(status >= 200 && status < 300, `status ${status}`);
  });
}

test('an event with no data at all is acknowledged', async (t) => {
  const res = await fetch(
    `${stack.url}/projects/${stack.projectId}/topics/${TOPICS.workshopStarted}`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ subscription: 's', message: { messageId: '1' } }),
    },
  );
  t.true(res.status >= 200 && res.status < 300);
});

test('a forged vm.ready (wrong token) changes nothing', async (t) => {
  const owner = { 'x-clarateach-user': 'owner@school.example' };
  const ws = (await stack.api('POST', '/workshops', { name: 'Forged', seats: 1 }, owner)).body;
  await stack.api('POST', `/workshops/${ws.id}/start`, undefined, owner);
  const status = await stack.push(TOPICS.vmReady, {
    workshopId: ws.id,
    vmName: `ct-${ws.id}-0`,
    state: 'ready',
    externalIp: '198.51.100.1',
    readyToken: 'guessed',
  });
  t.is(status, 204);
  const after = (await stack.api('GET', `/workshops/${ws.id}`, undefined, owner)).body;
  t.is(after.status, 'provisioning');
  t.is(after.seatsReady, 0);
  await stack.api('DELETE', `/workshops/${ws.id}`, undefined, owner);
  await eventually('forged workshop ended', async () => {
    const w = (await stack.api('GET', `/workshops/${ws.id}`, undefined, owner)).body;
    return w.status === 'ended';
  });
  t.deepEqual(
    stack.standin.instances().filter((i) => i.labels.workshop === ws.id),
    [],
  );
});

test('guessing codes is rate limited per client address; other learners are not', async (t) => {
  const guesser = { 'x-clarateach-client-ip': '198.51.100.66' };
  const learner = { 'x-clarateach-client-ip': '198.51.100.67' };
  const statuses: number[] = [];
  for (let i = 0; i < 21; i++) {
    const res = await stack.api(
      'POST',
      '/join',
      { code: `ZZZZZZ${'23456789ABCDEFGHJKMNPQRSTUVWXYZ'[i]}Z`, name: 'g' },
      guesser,
    );
    statuses.push(res.status);
  }
  t.deepEqual(statuses, [...Array(20).fill(404), 429]);
  const blocked = await stack.api('POST', '/join', { code: joinCode, name: 'g' }, guesser);
  t.is(blocked.status, 429);
  t.is(blocked.body.error.code, 'RATE_LIMITED');
  const other = await stack.api('POST', '/join', { code: joinCode, name: 'l' }, learner);
  t.is(other.status, 409);
  t.is(other.body.error.code, 'NOT_READY');
});
