import { emulatorTest as test } from '../helpers/emulators.ts';
import { fuzzSeed } from '../helpers/fuzz-seed.ts';
import {
  contractProblem,
  describe,
  generate,
  chance,
  headerText,
  int,
  pick,
  POLLUTION_KEYS,
  seedFuzz,
  send,
  type Fixtures,
  type HttpFunction,
  type Sent,
  WORKSHOP_ROUTES,
} from '../helpers/http-fuzz.ts';
import { AUDIENCE, newRsaKey, startTestIssuer, type TestIssuer } from '../helpers/id-tokens.ts';
import { eventually, startTestStack, type TestStack } from '../helpers/stack.ts';
import { TOPICS } from '../../shared/topics.ts';

/**
 * The HTTP fuzz (fuzz.test.ts) in the deployed auth mode, AUTH_MODE=token: the same generated
 * requests, each carrying a valid ID token of an instructor, a valid one of someone else, or one
 * of many malformed or wrongly signed ones (signed by a key the test holds, published on loopback
 * as in identity.test.ts). Whatever comes in, the answer is below 500 and every error is
 * `{error: {code, message}}`; only a valid instructor's token ever gets a workshop route to
 * succeed, a valid one is never refused as a token, and no record is left but what the accepted
 * creates made, each owned by whom its token named. Seeded like fuzz.test.ts.
 */

const SEED = fuzzSeed('fuzz-token', 0x70c3_5eed);
/** Requests per HTTP function. */
const REQUESTS = 300;
const FIXTURE_SEATS = 20;
const SCHOOL = 'school.example';
const ALICE = `alice@${SCHOOL}`;
const BOB = `bob@${SCHOOL}`;
const ADMIN = 'ops@school.example';

const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
seedFuzz(SEED);

let stack: TestStack;
let issuer: TestIssuer;
let fixtures: Fixtures;
const fixtureIds: string[] = [];
const strangerKey = newRsaKey();

/** How a request is authenticated; `instructor` when its token is valid and names one. */
interface Auth {
  name: string;
  headers: Record<string, string>;
  instructor?: string;
}

const as = (email: string) => ({ authorization: `Bearer ${issuer.mint({ email, hd: SCHOOL })}` });

/** A valid token of an instructor, or one of the many ways a token is not acceptable. */
function auth(): Auth {
  const now = Math.floor(Date.now() / 1000);
  const email = pick([ALICE, BOB, ADMIN]);
  const valid = issuer.mint({ email, hd: SCHOOL });
  const [head, payload, signature] = valid.split('.') as [string, string, string];
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const good: Array<() => Auth> = [
    () => ({ name: 'valid', headers: bearer(valid), instructor: email }),
    () => ({
      name: 'valid, the portal names the same user',
      headers: { ...bearer(valid), 'x-clarateach-user': ` ${email.toUpperCase()} ` },
      instructor: email,
    }),
    () => ({
      name: 'valid, lower-case scheme',
      headers: { authorization: `bearer  ${valid}` },
      instructor: email,
    }),
  ];
  const bad: Array<() => Auth> = [
    () => ({
      name: 'valid, the portal names another user',
      headers: { ...bearer(valid), 'x-clarateach-user': email === ALICE ? BOB : ALICE },
    }),
    () => ({
      name: 'valid, not an instructor',
      headers: bearer(issuer.mint({ email: 'mallory@gmail.com' })),
    }),
    () => ({
      name: 'valid, school address without hd',
      headers: bearer(issuer.mint({ email: 'carol@school.example' })),
    }),
    () => ({ name: 'none', headers: {} }),
    () => ({
      name: 'only the IAM token',
      headers: { 'x-serverless-authorization': `Bearer ${valid}` },
    }),
    () => ({
      name: 'expired',
      headers: bearer(issuer.mint({ email, hd: SCHOOL, iat: now - 7200, exp: now - 3600 })),
    }),
    () => ({
      name: 'not yet valid',
      headers: bearer(issuer.mint({ email, hd: SCHOOL, iat: now + 3600, exp: now + 7200 })),
    }),
    () => ({
      name: 'no expiry',
      headers: bearer(issuer.mint({ email, hd: SCHOOL, exp: undefined })),
    }),
    () => ({
      name: 'wrong audience',
      headers: bearer(issuer.mint({ email, hd: SCHOOL, aud: `${AUDIENCE}x` })),
    }),
    () => ({
      name: 'unknown issuer',
      headers: bearer(issuer.mint({ email, hd: SCHOOL, iss: 'https://evil.example' })),
    }),
    () => ({
      name: 'unverified email',
      headers: bearer(issuer.mint({ email, hd: SCHOOL, email_verified: false })),
    }),
    () => ({ name: 'no email', headers: bearer(issuer.mint({ email: undefined, hd: SCHOOL })) }),
    () => ({
      name: 'signed by another key',
      headers: bearer(issuer.mint({ email, hd: SCHOOL }, { key: strangerKey })),
    }),
    () => ({
      name: 'alg none',
      headers: bearer(issuer.mint({ email, hd: SCHOOL }, { unsigned: true })),
    }),
    () => ({
      name: 'HS256 with the public key as secret',
      headers: bearer(issuer.mint({ email, hd: SCHOOL }, { hmacSecret: issuer.publishedPem })),
    }),
    () => ({
      name: 'unknown kid',
      headers: bearer(issuer.mint({ email, hd: SCHOOL }, { header: { kid: 'nope' } })),
    }),
    () => {
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as object;
      const forged = Buffer.from(
        JSON.stringify({ ...claims, email: email === ADMIN ? ALICE : ADMIN }),
      ).toString('base64url');
      return {
        name: 'claims changed after signing',
        headers: bearer(`${head}.${forged}.${signature}`),
      };
    },
    () => ({ name: 'truncated', headers: bearer(valid.slice(0, int(1, valid.length - 1))) }),
    () => {
      // Not a segment's last character: base64url leaves some of its bits unused.
      let at = int(0, valid.length - 2);
      while (valid[at + 1] === '.') at--;
      const swapped = valid[at] === 'A' ? 'B' : 'A';
      const mangled = `${valid.slice(0, at)}${swapped}${valid.slice(at + 1)}`;
      return { name: 'one character changed', headers: bearer(mangled) };
    },
    () => ({ name: 'a fourth segment', headers: bearer(`${valid}.${signature}`) }),
    () => ({ name: 'segments swapped', headers: bearer(`${payload}.${head}.${signature}`) }),
    () => ({ name: 'huge', headers: bearer(`${head}.${'A'.repeat(9_000)}.${signature}`) }),
    () => ({ name: 'empty bearer', headers: { authorization: pick(['Bearer', 'Bearer ', '']) } }),
    () => ({ name: 'not Bearer', headers: { authorization: `Basic ${valid}` } }),
    () => ({ name: 'noise', headers: { authorization: `Bearer ${headerText(300)}` } }),
  ];
  // Half the requests are an instructor's, so that many reach past authentication.
  return pick(chance(0.5) ? good : bad)();
}

const AUTH_HEADERS = ['authorization', 'x-serverless-authorization', 'x-clarateach-user'];
const results: Array<Sent & { auth: Auth }> = [];

test.before(async () => {
  issuer = await startTestIssuer('fuzz');
  Object.assign(process.env, {
    AUTH_MODE: 'token',
    ID_TOKEN_ISSUERS: `${issuer.issuer}=${issuer.certsUrl}`,
    ID_TOKEN_AUDIENCES: AUDIENCE,
    ADMIN_EMAILS: ADMIN,
    INSTRUCTORS: `@${SCHOOL}`,
  });
  stack = await startTestStack();
  const api = (method: string, path: string, body?: unknown) =>
    stack.api(method, path, body, as(ALICE));
  const created = (await api('POST', '/workshops', { name: 'Fuzz target', seats: 2 })).body;
  const ended = (await api('POST', '/workshops', { name: 'Fuzz ended', seats: 1 })).body;
  await api('DELETE', `/workshops/${ended.id}`);
  const ready = (
    await api('POST', '/workshops', {
      name: 'Fuzz ready',
      seats: FIXTURE_SEATS,
      seatsPerAddress: FIXTURE_SEATS,
    })
  ).body;
  await api('POST', `/workshops/${ready.id}/start`);
  await eventually('instances', () => stack.instancesOf(ready.id).length === 1);
  for (const report of await stack.readyReports(ready.id)) await stack.push(TOPICS.vmReady, report);
  await eventually(
    'ready',
    async () => (await api('GET', `/workshops/${ready.id}`)).body.status === 'ready',
  );
  fixtures = { created, ready, ended };
  fixtureIds.push(created.id, ended.id, ready.id);
});
test.after.always(() => issuer?.close());

test.serial(
  `${REQUESTS} seeded requests per HTTP function with valid and malformed ID tokens: never a 5xx, every error JSON`,
  async (t) => {
    const createdIds: string[] = [];
    for (let n = 0; n < 2 * REQUESTS; n++) {
      const fn: HttpFunction = n % 2 === 0 ? 'workshops' : 'join';
      const request = generate(fn, n, fixtures, createdIds);
      for (const h of AUTH_HEADERS) delete request.headers[h];
      const a = auth();
      Object.assign(request.headers, a.headers);
      const sent = await send(stack.url, request);
      sent.problem = contractProblem(sent);
      results.push({ ...sent, auth: a });
      if (request.kind === 'create' && request.method === 'POST' && sent.status === 201) {
        createdIds.push(JSON.parse(sent.text).id);
      }
    }
    const broken = results.filter((r) => r.problem);
    const outcomes = new Map<string, number>();
    for (const r of results) {
      const key = `${r.auth.instructor ? 'valid' : 'refused'} ${r.status}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    t.log(`seed ${SEED.toString(16)}: ${[...outcomes].map(([k, v]) => `${k}×${v}`).join(', ')}`);
    for (const r of broken) t.log(`${r.auth.name}: ${describe(r)}`);
    t.is(results.length, 2 * REQUESTS);
    t.is(broken.length, 0, `${broken.length} of ${results.length} requests broke the contract`);
  },
);

test.serial(
  'only a valid instructor token succeeds on a workshop route, and it is never refused',
  (t) => {
    // Where the request went: fetch resolves dot segments, so `/workshops/..` is the console's `/`.
    const reached = (path: string) => new URL(`http://fuzz.test${path}`).pathname;
    const onWorkshops = results.filter(
      (r) =>
        WORKSHOP_ROUTES.includes(r.request.kind) &&
        r.request.method !== 'OPTIONS' &&
        /^\/workshops(\/|$)/i.test(reached(r.request.path)),
    );
    const succeededWithout = onWorkshops.filter((r) => !r.auth.instructor && r.status < 300);
    for (const r of succeededWithout)
      t.log(`${r.auth.name}: ${describe({ ...r, problem: 'accepted' })}`);
    t.is(succeededWithout.length, 0);
    const refusedValid = results.filter((r) => {
      if (!r.auth.instructor || r.status < 400) return false;
      if (r.request.method === 'HEAD') return r.status === 401; // an answer without a body
      const code = (JSON.parse(r.text) as { error?: { code?: string } }).error?.code;
      return code === 'UNAUTHENTICATED' || code === 'NOT_AN_INSTRUCTOR';
    });
    for (const r of refusedValid)
      t.log(`${r.auth.name}: ${describe({ ...r, problem: 'refused' })}`);
    t.is(refusedValid.length, 0);
    // Neither half is empty: the run tried both, and each had its answer.
    t.true(onWorkshops.some((r) => r.auth.instructor && r.status < 300));
    t.true(onWorkshops.some((r) => !r.auth.instructor && r.status === 401));
    t.true(onWorkshops.some((r) => !r.auth.instructor && r.status === 403));
  },
);

test.serial("no record is left but those of accepted creates, each its token's", async (t) => {
  const creates = results.filter(
    (r) => r.request.kind === 'create' && r.request.method === 'POST' && r.status === 201,
  );
  t.true(creates.length > 0, 'the fuzz made some valid workshops');
  const store = stack.services.store;
  const all = (await store.workshops().get()).docs.map((d) => d.data());
  t.deepEqual(
    all.map((w) => w.id).sort(),
    [...fixtureIds, ...creates.map((r) => JSON.parse(r.text).id as string)].sort(),
  );
  for (const r of creates) {
    const id = JSON.parse(r.text).id as string;
    t.is(all.find((w) => w.id === id)?.ownerId, r.auth.instructor, r.auth.name);
  }
  const known = new Set(all.map((w) => w.id));
  const codes = (await store.db.collection('joinCodes').get()).docs;
  t.deepEqual(
    codes.map((d) => d.data().workshopId).filter((id) => !known.has(id)),
    [],
    'every join code belongs to a workshop',
  );
  const joined = results.filter(
    (r) => r.request.kind === 'join' && r.request.method === 'POST' && r.status === 200,
  );
  t.is((await store.db.collection('seatTokens').get()).size, joined.length, 'one token per join');
});

test.serial('nothing polluted Object.prototype', (t) => {
  t.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), protoBefore);
  const probe: Record<string, unknown> = {};
  for (const key of POLLUTION_KEYS) t.is(probe[key], undefined, key);
});

test.serial('ending every workshop afterwards leaves no instance behind', async (t) => {
  const store = stack.services.store;
  for (const w of (await store.workshops().get()).docs.map((d) => d.data())) {
    const res = await stack.api('DELETE', `/workshops/${w.id}`, undefined, as(w.ownerId));
    t.is(res.status, 202, `${w.id}: ${res.text.slice(0, 200)}`);
  }
  await eventually('every workshop over', async () => {
    const live = await store.workshops().where('status', 'not-in', ['ended', 'failed']).get();
    return live.empty;
  });
  await eventually('no instance left', () => stack.standin.instances().length === 0);
  t.deepEqual(stack.standin.instances(), []);
});
