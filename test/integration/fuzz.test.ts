import { emulatorTest as test } from '../helpers/emulators.ts';
import { fuzzSeed } from '../helpers/fuzz-seed.ts';
import {
  contractProblem,
  describe,
  generate,
  POLLUTION_KEYS,
  seedFuzz,
  send,
  type Fixtures,
  type HttpFunction,
  type Sent,
} from '../helpers/http-fuzz.ts';
import { eventually, startTestStack, type TestStack } from '../helpers/stack.ts';
import { DEV_USER } from '../../shared/identity.ts';
import { TOPICS } from '../../shared/topics.ts';

/**
 * A seeded fuzz of both HTTP functions (DESIGN.md §5): a thousand generated requests for each,
 * every route, every kind of malformed input. Whatever comes in, the answer is below 500 and every error
 * is `{error: {code: UPPER_SNAKE, message}}`; no rejected request leaves a record behind, and
 * nothing pollutes Object.prototype. The PRNG is seeded, so a failure replays exactly: the seed
 * is printed, CLARATEACH_FUZZ_SEED=<hex> replays it, and in CI (CI=true) every run takes a new one.
 */

const SEED = fuzzSeed('fuzz', 0x5eed_c1a7);
/** Requests per HTTP function. */
const REQUESTS = 1_000;
const FIXTURE_SEATS = 60;

const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
const arrayProtoBefore = Object.getOwnPropertyNames(Array.prototype).sort();

seedFuzz(SEED);

// ---------------------------------------------------------------- the run

let stack: TestStack;
let fixtures: Fixtures;
const fixtureIds: string[] = [];
let devListBefore = 0;
const results: Sent[] = [];

/** The owner a 201 create was made for, as shared/identity.ts reads the header. */
function ownerOf(headers: Record<string, string>): string {
  return (headers['x-clarateach-user'] ?? '').trim().toLowerCase() || DEV_USER;
}

test.before(async () => {
  stack = await startTestStack();
  const created = (await stack.api('POST', '/workshops', { name: 'Fuzz target', seats: 2 })).body;
  const ended = (await stack.api('POST', '/workshops', { name: 'Fuzz ended', seats: 1 })).body;
  await stack.api('DELETE', `/workshops/${ended.id}`);
  const ready = (
    await stack.api('POST', '/workshops', {
      name: 'Fuzz ready',
      seats: FIXTURE_SEATS,
      seatsPerAddress: FIXTURE_SEATS,
    })
  ).body;
  await stack.api('POST', `/workshops/${ready.id}/start`);
  await eventually(
    'instances',
    () => stack.instancesOf(ready.id).length === Math.ceil(FIXTURE_SEATS / 20),
  );
  for (const report of await stack.readyReports(ready.id)) await stack.push(TOPICS.vmReady, report);
  await stack.untilStatus(ready.id, 'ready');
  fixtures = { created, ready, ended };
  fixtureIds.push(created.id, ended.id, ready.id);
  devListBefore = (await stack.api('GET', '/workshops')).body.workshops.length;
});

test.serial(
  `${REQUESTS} seeded requests per HTTP function: never a 5xx, every error JSON`,
  async (t) => {
    const createdIds: string[] = [];
    const perFunction = { workshops: 0, join: 0 };
    for (let n = 0; n < 2 * REQUESTS; n++) {
      const fn: HttpFunction = n % 2 === 0 ? 'workshops' : 'join';
      const sent = await send(stack.url, generate(fn, n, fixtures, createdIds));
      perFunction[fn]++;
      sent.problem = contractProblem(sent);
      results.push(sent);
      const { kind, method } = sent.request;
      if (kind === 'create' && method === 'POST' && sent.status === 201) {
        createdIds.push(JSON.parse(sent.text).id);
      }
    }
    const broken = results.filter((r) => r.problem);
    const kinds = new Map<string, number>();
    for (const r of results)
      kinds.set(
        `${r.request.method} ${r.status}`,
        (kinds.get(`${r.request.method} ${r.status}`) ?? 0) + 1,
      );
    t.log(`seed ${SEED.toString(16)}: ${[...kinds].map(([k, v]) => `${k}×${v}`).join(', ')}`);
    for (const r of broken) t.log(describe(r));
    t.deepEqual(perFunction, { workshops: REQUESTS, join: REQUESTS });
    t.is(broken.length, 0, `${broken.length} of ${results.length} requests broke the contract`);
  },
);

/** The seat a free-seat path names, as the server reads it (a URL's path is percent-decoded). */
const freedSeat = (path: string) => Number(decodeURIComponent(path.split('?')[0]!.split('/')[4]!));

test.serial('no rejected request left a record behind', async (t) => {
  const creates = results.filter(
    (r) => r.request.kind === 'create' && r.request.method === 'POST' && r.status === 201,
  );
  const createdIds = creates.map((r) => JSON.parse(r.text).id as string);
  t.true(creates.length > 0, 'the fuzz made some valid workshops');
  t.true(
    results.some((r) => r.status === 400),
    'and rejected many requests',
  );

  const devCreates = creates.filter((r) => ownerOf(r.request.headers) === DEV_USER).length;
  const list = await stack.api('GET', '/workshops');
  t.is(list.body.workshops.length, devListBefore + devCreates);

  const store = stack.services.store;
  const all = (await store.workshops().get()).docs.map((d) => d.id);
  t.deepEqual(all.sort(), [...fixtureIds, ...createdIds].sort());

  const known = new Set(all);
  const codes = (await store.db.collection('joinCodes').get()).docs;
  t.deepEqual(
    codes.map((d) => d.data().workshopId).filter((id) => !known.has(id)),
    [],
    'every join code belongs to a workshop',
  );
  for (const doc of (await store.workshops().where('status', '==', 'created').get()).docs) {
    const code = await store.joinCode(doc.data().joinCode).get();
    t.is(code.data()?.workshopId, doc.id, `workshop ${doc.id} has its join code`);
  }

  // The seats held are exactly what the accepted joins took and the accepted frees gave back.
  // A join is a POST; a browser's GET of /join is the join page.
  const isJoin = (r: (typeof results)[number]) =>
    r.request.kind === 'join' && r.request.method === 'POST';
  const joined = results.filter((r) => isJoin(r) && r.status === 200);
  const held = new Set<number>();
  for (const r of results) {
    if (r.status !== 200) continue;
    if (isJoin(r)) held.add(JSON.parse(r.text).seat);
    if (r.request.kind === 'free-seat') held.delete(freedSeat(r.request.path));
  }
  const seats = (await store.db.collectionGroup('seats').get()).docs;
  t.deepEqual(
    [...new Set(seats.map((d) => d.ref.parent.parent!.id))],
    joined.length > 0 ? [fixtures.ready.id] : [],
  );
  // A freed seat's record stays, marked freeing, until its VM confirms the reset (none here).
  const freeing = seats.filter((d) => d.data().freeing !== undefined);
  t.deepEqual(
    seats
      .filter((d) => d.data().freeing === undefined)
      .map((d) => Number(d.id))
      .sort((a, b) => a - b),
    [...held].sort((a, b) => a - b),
  );
  const freed = results.filter((r) => r.request.kind === 'free-seat' && r.status === 200);
  t.is(freeing.length, new Set(freed.map((r) => freedSeat(r.request.path))).size);
  t.is((await store.addressSlots(fixtures.ready.id).get()).size, held.size, 'one slot per seat');
  const tokens = await store.db.collection('seatTokens').get();
  t.is(tokens.size, joined.length, 'one token record per accepted join');
});

test.serial('nothing polluted Object.prototype', (t) => {
  t.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), protoBefore);
  t.deepEqual(Object.getOwnPropertyNames(Array.prototype).sort(), arrayProtoBefore);
  const probe: Record<string, unknown> = {};
  for (const key of POLLUTION_KEYS) t.is(probe[key], undefined, key);
});

test.serial('ending every workshop afterwards leaves no instance behind', async (t) => {
  const store = stack.services.store;
  const workshops = (await store.workshops().get()).docs.map((d) => d.data());
  for (const w of workshops) {
    const res = await stack.api('DELETE', `/workshops/${w.id}`, undefined, {
      'x-clarateach-user': w.ownerId,
    });
    t.is(res.status, 202, `${w.id}: ${res.text.slice(0, 200)}`);
  }
  await eventually('every workshop over', async () => {
    const live = await store.workshops().where('status', 'not-in', ['ended', 'failed']).get();
    return live.empty;
  });
  await eventually('no instance left', () => stack.standin.instances().length === 0);
  t.deepEqual(stack.standin.instances(), []);
});
