import { emulatorTest as test } from '../helpers/emulators.ts';
import { AUDIENCE, newRsaKey, startTestIssuer, type TestIssuer } from '../helpers/id-tokens.ts';
import { fuzzSeed, mulberry32 } from '../helpers/fuzz-seed.ts';
import { captureOutput, leakedSecrets } from '../helpers/log-capture.ts';
import { eventually, startTestStack, type TestStack } from '../helpers/stack.ts';

/**
 * The deployed default, AUTH_MODE=token: the instructor is whoever a verified ID token names.
 * Two issuers of the test's own publish their keys on loopback; the verifier fetches them there.
 */
let stack: TestStack;
let issuer: TestIssuer;
let other: TestIssuer;
const logs = captureOutput();
const tokens = new Map<string, string>();

const ALICE = 'alice@school.example';
const BOB = 'bob@school.example';
const ADMIN = 'ops@school.example';
const SCHOOL = 'school.example';
/** Listed by itself: an account of another project the operator runs automation with. */
const LISTED_SA = 'ci@ops-project.iam.gserviceaccount.com';
/** An issuer whose keys cannot be fetched (nothing listens on the discard port). */
const DOWN = 'https://down.issuer.test';

function bearer(token: string, label = `token ${tokens.size}`) {
  tokens.set(label, token);
  return { authorization: `Bearer ${token}` };
}
/** A user of the school's Google Workspace: Google sets `hd` on its tokens. */
const as = (email: string) => bearer(issuer.mint({ email, hd: SCHOOL }));

test.before(async () => {
  issuer = await startTestIssuer('primary');
  other = await startTestIssuer('secondary');
  Object.assign(process.env, {
    AUTH_MODE: 'token',
    ID_TOKEN_ISSUERS: [
      `${issuer.issuer}=${issuer.certsUrl}`,
      `${other.issuer}=${other.certsUrl}`,
      `${DOWN}=http://127.0.0.1:9/certs`,
    ].join(','),
    ID_TOKEN_AUDIENCES: `other-audience,${AUDIENCE}`,
    ADMIN_EMAILS: ADMIN,
    INSTRUCTORS: `@${SCHOOL}, ${LISTED_SA}`,
  });
  stack = await startTestStack();
});
test.after.always(async () => {
  await issuer?.close();
  await other?.close();
});

test.serial('a valid token is accepted and names the instructor', async (t) => {
  const created = await stack.api('POST', '/workshops', { name: 'Mine', seats: 2 }, as(ALICE));
  t.is(created.status, 201, created.text);
  t.is((await stack.services.store.getWorkshop(created.body.id))?.ownerId, ALICE);
  const list = await stack.api('GET', '/workshops', undefined, as(ALICE));
  t.deepEqual(
    list.body.workshops.map((w: { id: string }) => w.id),
    [created.body.id],
  );
  // The other issuer's tokens, signed by its own keys, are as good; so is a matching claim.
  const viaOther = await stack.api('GET', '/workshops', undefined, {
    ...bearer(other.mint({ email: ALICE, hd: SCHOOL })),
    'x-clarateach-user': 'Alice@School.example',
  });
  t.is(viaOther.status, 200);
  t.is(viaOther.body.workshops.length, 1);
  await stack.api('DELETE', `/workshops/${created.body.id}`, undefined, as(ALICE));
});

test.serial(
  'only whom the operator lists is an instructor; anyone else verified is 403',
  async (t) => {
    const before = (await stack.services.store.workshops().get()).size;
    const refused: Record<string, string> = {
      // Any Google service account can mint an ID token for any audience it names.
      'an unlisted service account with the right audience': issuer.mint({
        email: 'intruder@any-project.iam.gserviceaccount.com',
        sub: '1234567890',
      }),
      // A consumer account may use a school address; only Workspace accounts carry hd.
      "the listed domain's address without hd": issuer.mint({ email: 'carol@school.example' }),
      'hd of another domain': issuer.mint({ email: 'carol@school.example', hd: 'evil.example' }),
      'an unlisted address': issuer.mint({ email: 'mallory@gmail.com' }),
    };
    for (const [name, token] of Object.entries(refused)) {
      for (const [method, path, body] of [
        ['GET', '/workshops', undefined],
        ['POST', '/workshops', { name: 'Sneaky', seats: 1 }],
      ] as const) {
        const res = await stack.api(method, path, body, bearer(token, name));
        t.is(res.status, 403, `${name}: ${method} ${res.text}`);
        t.is(res.body.error.code, 'NOT_AN_INSTRUCTOR', name);
      }
    }
    t.is((await stack.services.store.workshops().get()).size, before, 'nothing was written');
    // The listed service account is let in by its own email.
    const ci = await stack.api(
      'POST',
      '/workshops',
      { name: 'CI', seats: 1 },
      bearer(issuer.mint({ email: LISTED_SA }), 'listed sa'),
    );
    t.is(ci.status, 201, ci.text);
    t.is((await stack.services.store.getWorkshop(ci.body.id))?.ownerId, LISTED_SA);
    await stack.api(
      'DELETE',
      `/workshops/${ci.body.id}`,
      undefined,
      bearer(issuer.mint({ email: LISTED_SA })),
    );
  },
);

test.serial('every unacceptable token is 401 and writes nothing', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const valid = issuer.mint({ email: ALICE });
  const [head, payload] = valid.split('.');
  const forged = Buffer.from(
    JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), email: ADMIN }),
  ).toString('base64url');
  const cases: Record<string, Record<string, string>> = {
    'no Authorization': {},
    'only the IAM token': { 'x-serverless-authorization': `Bearer ${valid}` },
    'not Bearer': { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    'not a JWT': { authorization: 'Bearer not-a-token' },
    expired: bearer(issuer.mint({ email: ALICE, iat: now - 7200, exp: now - 3600 }), 'expired'),
    'not yet valid': bearer(issuer.mint({ email: ALICE, iat: now + 3600, exp: now + 7200 })),
    'no expiry': bearer(issuer.mint({ email: ALICE, exp: undefined })),
    'wrong audience': bearer(issuer.mint({ email: ALICE, aud: 'someone-else' }), 'audience'),
    'unknown issuer': bearer(issuer.mint({ email: ALICE, iss: 'https://evil.example' })),
    // Signed by the primary issuer's key, claiming to come from the secondary one.
    "another issuer's key": bearer(issuer.mint({ email: ALICE, iss: other.issuer })),
    'unverified email': bearer(issuer.mint({ email: ALICE, email_verified: false })),
    'email_verified as text': bearer(issuer.mint({ email: ALICE, email_verified: 'true' })),
    'no email': bearer(issuer.mint({ email: undefined })),
    'bad signature': bearer(issuer.mint({ email: ALICE }, { key: newRsaKey() }), 'bad sig'),
    'claims changed after signing': bearer(`${head}.${forged}.${valid.split('.')[2]}`),
    'alg none': bearer(issuer.mint({ email: ALICE }, { unsigned: true }), 'alg none'),
    'alg none, signature kept': bearer(
      `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'test-key-1' })).toString('base64url')}.${payload}.${valid.split('.')[2]}`,
    ),
    'HS256 with the public key as secret': bearer(
      issuer.mint({ email: ALICE }, { hmacSecret: issuer.publishedPem }),
    ),
    'unknown kid': bearer(issuer.mint({ email: ALICE }, { header: { kid: 'nope' } })),
    'a token for another email than claimed': {
      ...bearer(issuer.mint({ email: BOB }), 'other email'),
      'x-clarateach-user': ALICE,
    },
  };
  const before = (await stack.services.store.workshops().get()).size;
  for (const [name, headers] of Object.entries(cases)) {
    for (const [method, path, body] of [
      ['GET', '/workshops', undefined],
      ['POST', '/workshops', { name: 'Sneaky', seats: 1 }],
    ] as const) {
      const res = await stack.api(method, path, body, headers);
      t.is(res.status, 401, `${name}: ${method} ${res.text}`);
      t.is(res.body.error?.code, 'UNAUTHENTICATED', name);
      t.false(res.text.includes('eyJ'), `${name}: the answer quotes no token`);
    }
  }
  t.is((await stack.services.store.workshops().get()).size, before, 'nothing was written');
});

test.serial(
  "a non-owner gets 404 on every instructor route of someone else's workshop",
  async (t) => {
    const ws = (await stack.api('POST', '/workshops', { name: 'Alice', seats: 2 }, as(ALICE))).body;
    const bob = () => as(BOB);
    const routes: Array<[string, string, unknown?]> = [
      ['GET', `/workshops/${ws.id}`],
      ['POST', `/workshops/${ws.id}/start`],
      ['POST', `/workshops/${ws.id}/extend`, { minutes: 30 }],
      ['GET', `/workshops/${ws.id}/ssh-key`],
      ['DELETE', `/workshops/${ws.id}/seats/1`],
      ['DELETE', `/workshops/${ws.id}`],
    ];
    for (const [method, path, body] of routes) {
      const res = await stack.api(method, path, body, bob());
      t.is(res.status, 404, `${method} ${path}: ${res.text}`);
    }
    t.deepEqual((await stack.api('GET', '/workshops', undefined, bob())).body.workshops, []);
    const still = await stack.api('GET', `/workshops/${ws.id}`, undefined, as(ALICE));
    t.is(still.body.status, 'created', 'nothing Bob did reached it');
    t.deepEqual(stack.instancesOf(ws.id), []);
    await stack.api('DELETE', `/workshops/${ws.id}`, undefined, as(ALICE));
  },
);

test.serial('only admins get the SSH key', async (t) => {
  const ws = (await stack.api('POST', '/workshops', { name: 'Keys', seats: 1 }, as(ALICE))).body;
  t.is((await stack.api('POST', `/workshops/${ws.id}/start`, undefined, as(ALICE))).status, 202);
  const owner = await stack.api('GET', `/workshops/${ws.id}/ssh-key`, undefined, as(ALICE));
  t.is(owner.status, 403);
  t.is(owner.body.error.code, 'FORBIDDEN');
  const admin = await stack.api('GET', `/workshops/${ws.id}/ssh-key`, undefined, as(ADMIN));
  t.is(admin.status, 200);
  t.regex(admin.text, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
  tokens.set('ssh key', admin.text.split('\n')[1]!);
  // Claiming to be the admin with Alice's token gets nowhere.
  const claimed = await stack.api('GET', `/workshops/${ws.id}/ssh-key`, undefined, {
    ...as(ALICE),
    'x-clarateach-user': ADMIN,
  });
  t.is(claimed.status, 401);
  await stack.api('DELETE', `/workshops/${ws.id}`, undefined, as(ALICE));
  await eventually('ended', async () => {
    const w = await stack.api('GET', `/workshops/${ws.id}`, undefined, as(ALICE));
    return w.body.status === 'ended';
  });
});

test.serial('1,000 malformed ID tokens and auth headers: no 5xx, nothing written', async (t) => {
  const seed = fuzzSeed('token fuzz', 0x1d70c3);
  const random = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const valid = issuer.mint({ email: ALICE, hd: SCHOOL });
  const [h, p, sig] = valid.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  const oddValues = [
    null,
    0,
    -1,
    1e308,
    '',
    'x',
    [],
    {},
    [ALICE],
    { email: ALICE },
    true,
    '9'.repeat(40),
  ];
  const mutations: Array<() => string> = [
    () => {
      const i = Math.floor(random() * valid.length);
      return valid.slice(0, i) + pick(['A', '_', '-', '.', '=', '+', '/']) + valid.slice(i + 1);
    },
    () => valid.slice(0, Math.floor(random() * valid.length)),
    () => `${valid}.${sig}`,
    () => [p, h, sig].join('.'),
    () =>
      `${enc({ alg: pick(['none', 'HS256', 'RS512', 'ES256', 'PS256', '', null]), kid: pick(['test-key-1', '__proto__', 'constructor', '', 7]) })}.${p}.${sig}`,
    () =>
      `${h}.${enc({ ...claims, [pick(['iss', 'aud', 'exp', 'iat', 'email', 'email_verified'])]: pick(oddValues) })}.${sig}`,
    () =>
      issuer.mint({
        email: ALICE,
        hd: SCHOOL,
        [pick(['iss', 'aud', 'exp', 'iat', 'email', 'email_verified'])]: pick(oddValues),
      }),
    () =>
      `${h}.${Buffer.from(pick(['[]', 'null', '"x"', '{', '\u0000', '{"__proto__":{"admin":true}}'])).toString('base64url')}.${sig}`,
    () => 'x'.repeat(pick([1, 100, 8192, 9000])),
    () => `${h}.${p}.${'A'.repeat(Math.floor(random() * 600))}`,
  ];
  const shapes: Array<(token: string) => Record<string, string>> = [
    (token) => ({ authorization: `Bearer ${token}` }),
    (token) => ({ authorization: `bearer  ${token}` }),
    (token) => ({ authorization: `Bearer ${token} extra` }),
    (token) => ({ authorization: token }),
    (token) => ({
      authorization: `Bearer ${token}`,
      'x-clarateach-user': pick([BOB, 'not an email', '']),
    }),
    (token) => ({ 'x-serverless-authorization': `Bearer ${token}` }),
  ];
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/workshops'],
    ['POST', '/workshops', { name: 'Fuzz', seats: 1 }],
    ['GET', '/workshops/abcdefghijklmnop'],
    ['POST', '/workshops/abcdefghijklmnop/start'],
    ['DELETE', '/workshops/abcdefghijklmnop/seats/1'],
    ['GET', '/workshops/abcdefghijklmnop/ssh-key'],
  ];
  const before = (await stack.services.store.workshops().get()).size;
  const statuses = new Map<number, number>();
  let created = 0;
  for (let n = 0; n < 1_000; n++) {
    const token = pick(mutations)();
    if (token.length >= 40) tokens.set(`fuzzed token ${n}`, token);
    const headers = pick(shapes)(token);
    const [method, path, body] = pick(routes);
    const res = await stack.api(method, path, body, headers);
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    t.true(res.status < 500, `${res.status} for ${JSON.stringify(headers).slice(0, 200)}`);
    if (res.status >= 400) t.regex(res.body?.error?.code ?? '', /^[A-Z_]+$/);
    if (res.status === 201) created++;
  }
  t.log(`seed ${seed.toString(16)}: ${[...statuses].map(([s, c]) => `${s}×${c}`).join(', ')}`);
  t.true((statuses.get(401) ?? 0) > 900, 'almost every one is refused as unauthenticated');
  t.is(
    (await stack.services.store.workshops().get()).size,
    before + created,
    'nothing else written',
  );
});

test.serial("an issuer's keys out of reach is 503, not a verdict on the token", async (t) => {
  const res = await stack.api('GET', '/workshops', undefined, bearer(issuer.mint({ iss: DOWN })));
  t.is(res.status, 503);
  t.is(res.body.error.code, 'UNAVAILABLE');
});

test.serial('the keys are fetched once and cached; no token ever reaches a log', (t) => {
  t.is(issuer.fetches(), 1);
  t.is(other.fetches(), 1);
  t.true(logs.structured.length > 0, 'the functions logged');
  t.deepEqual(leakedSecrets(logs, tokens), []);
});
