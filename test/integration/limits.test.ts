import type { ExecutionContext } from 'ava';
import sinon from 'sinon';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, fromLearner, startTestStack, type TestStack } from '../helpers/stack.ts';
import { missWindow } from '../../shared/rate-limit.ts';
import { TOPICS } from '../../shared/topics.ts';

/**
 * Abuse limits at the front door: a classroom behind one address joins at once and is never
 * limited, while unknown codes from it are (an IPv6 client by its /64); the optional seat cap per
 * address; freeing a seat; instructor quotas and the image allow-list.
 */
let stack: TestStack;
const MISS_LIMIT = 20;

test.before(async () => {
  Object.assign(process.env, {
    JOIN_MISS_LIMIT: String(MISS_LIMIT),
    INSTRUCTOR_MAX_WORKSHOPS: '2',
    INSTRUCTOR_MAX_SEATS: '30',
    IMAGE_ALLOWLIST: 'ghcr.io/school/labs',
  });
  stack = await startTestStack();
});

const as = (email: string) => ({ 'x-clarateach-user': email });
const from = (address: string) => ({ 'x-clarateach-client-ip': address });
type Answer = Awaited<ReturnType<TestStack['api']>>;

async function readyWorkshop(seats: number, extra: object = {}, owner = 'teacher@school.example') {
  const body = { name: 'Limits', seats, ...extra };
  const ws = (await stack.api('POST', '/workshops', body, as(owner))).body;
  await stack.api('POST', `/workshops/${ws.id}/start`, undefined, as(owner));
  await eventually('instances', () => stack.instancesOf(ws.id).length === Math.ceil(seats / 20));
  for (const report of await stack.readyReports(ws.id)) await stack.deliver(TOPICS.vmReady, report);
  await stack.untilStatus(ws.id, 'ready');
  return ws as { id: string; joinCode: string };
}

async function end(id: string, owner = 'teacher@school.example') {
  await stack.api('DELETE', `/workshops/${id}`, undefined, as(owner));
  await eventually(`${id} over`, async () => {
    const w = await stack.api('GET', `/workshops/${id}`, undefined, as(owner));
    return w.body.status === 'ended';
  });
}

const unknownCode = (i: number) => `ZZZZ${(1000 + i).toString(36).toUpperCase().padStart(4, 'Z')}`;

/** 30 learners of a 25-seat class at once, `address(i)` each: every seat, once, and no 429. */
async function classroomJoins(t: ExecutionContext, code: string, address: (i: number) => string) {
  const joins = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      stack.api('POST', '/join', { code, name: `Learner ${i}` }, from(address(i))),
    ),
  );
  const seated = joins.filter((r) => r.status === 200);
  const full = joins.filter((r) => r.status === 409 && r.body.error.code === 'WORKSHOP_FULL');
  t.log(joins.map((r) => r.body.error?.code ?? r.status).join(' '));
  t.is(seated.length, 25);
  t.is(full.length, 5);
  t.false(
    joins.some((r) => r.status === 429),
    'a classroom is not an attacker',
  );
  t.deepEqual(
    seated.map((r) => r.body.seat as number).sort((a, b) => a - b),
    Array.from({ length: 25 }, (_, i) => i + 1),
    'every seat given exactly once',
  );
  return seated;
}

/** 50 unknown codes at once, `address(i)` each: at most the limit are 404, the rest 429. */
async function guessBurst(t: ExecutionContext, address: (i: number) => string, limit = MISS_LIMIT) {
  const guesses = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      stack.api('POST', '/join', { code: unknownCode(i), name: 'g' }, from(address(i))),
    ),
  );
  const missed = guesses.filter((r: Answer) => r.status === 404);
  const limited = guesses.filter((r: Answer) => r.status === 429);
  t.log(`${missed.length} × 404, ${limited.length} × 429`);
  t.true(missed.length <= limit, `${missed.length} got 404`);
  t.true(limited.length >= 50 - limit);
  t.is(missed.length + limited.length, 50);
  t.true(missed.every((r) => r.body.error.code === 'CODE_NOT_FOUND'));
  for (const r of limited) {
    t.is(r.body.error.code, 'RATE_LIMITED');
    t.regex(r.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
  }
}

test.serial(
  'a classroom behind one IPv4 address: 30 learners, 25 seats, no 429; then its guesses are limited',
  async (t) => {
    const ws = await readyWorkshop(25);
    const room = '203.0.113.50';
    const reads = sinon.spy(stack.services.store, 'getVms');
    const seated = await classroomJoins(t, ws.joinCode, () => room);
    // Joins that arrive together share the reads of their workshop under way (one instance here).
    t.log(`${reads.callCount} reads of the workshop for 30 joins`);
    t.true(reads.callCount >= 1 && reads.callCount < 30, `${reads.callCount} reads`);
    // A join that finds the class full reads it anew before saying so (a seat may have been freed
    // since an earlier read): one read more, and the class is full.
    const before = reads.callCount;
    const late = await stack.api('POST', '/join', { code: ws.joinCode, name: 'Late' }, from(room));
    t.is(late.body.error?.code, 'WORKSHOP_FULL');
    t.is(reads.callCount, before + 1);
    reads.restore();
    // A learner who mistyped the code is told so, and joins with the right one.
    const typo = await stack.api('POST', '/join', { code: 'ZZZZZZZZ', name: 'T' }, from(room));
    t.is(typo.status, 404);
    t.is(typo.body.error.code, 'CODE_NOT_FOUND');

    await guessBurst(t, () => room, MISS_LIMIT - 1);
    // Past its misses the address learns nothing of any code, even a live one...
    const blocked = await stack.api('POST', '/join', { code: ws.joinCode, name: 'Bo' }, from(room));
    t.is(blocked.status, 429);
    // ...but a seated learner, back with their seatToken, is never limited.
    const first = seated[0]!.body;
    const back = await stack.api(
      'POST',
      '/join',
      { code: ws.joinCode, name: 'Ada', seatToken: first.seatToken },
      from(room),
    );
    t.is(back.status, 200);
    t.is(back.body.seat, first.seat);
    // A made-up seatToken is just another guess.
    const madeUp = await stack.api(
      'POST',
      '/join',
      { code: ws.joinCode, name: 'Eve', seatToken: 'made-up' },
      from(room),
    );
    t.is(madeUp.status, 429);
    // Another address is not limited by this one.
    const other = await stack.api(
      'POST',
      '/join',
      { code: 'ZZZZZZZZ', name: 'O' },
      from('203.0.113.51'),
    );
    t.is(other.status, 404);
    await end(ws.id);
  },
);

test.serial(
  'a class of 20 joins at once through one instance: each learner gets a seat on the first try',
  async (t) => {
    const ws = await readyWorkshop(20);
    const batches = sinon.spy(stack.services.store.db, 'batch');
    const joins = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        stack.api('POST', '/join', { code: ws.joinCode, name: `L${i}` }, from('203.0.113.60')),
      ),
    );
    batches.restore();
    t.deepEqual(
      joins.map((r) => r.body.seat as number).sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    // Joins sharing a read would pick among the same free seats; knowing what the others of the
    // instance claim, none picks a seat taken meanwhile: one claim (one batch) per learner.
    t.is(batches.callCount, 20, 'no claim failed');
    await end(ws.id);
  },
);

test.serial(
  'a classroom on one IPv6 /64: counted by the /64 whatever the host bits; its code ends with it',
  async (t) => {
    const ws = await readyWorkshop(25);
    const host = (i: number) =>
      `2001:db8:15:9:${((i * 7919) & 0xffff).toString(16)}::${(i + 1).toString(16)}`;
    await classroomJoins(t, ws.joinCode, host);
    await end(ws.id);
    // After the class, its code is unknown: a 404 (one miss), not a 429.
    const late = await stack.api('POST', '/join', { code: ws.joinCode, name: 'L' }, from(host(99)));
    t.is(late.status, 404);
    t.is(late.body.error.code, 'CODE_NOT_FOUND');

    await guessBurst(t, (i) => host(100 + i), MISS_LIMIT - 1);
    // The next /64 is another network.
    const next = await stack.api(
      'POST',
      '/join',
      { code: 'ZZZZZZZZ', name: 'N' },
      from('2001:db8:15:a::1'),
    );
    t.is(next.status, 404);
  },
);

test.serial(
  '50 misses counted at once, straight on Firestore: at most the limit are within',
  async (t) => {
    const window = missWindow(stack.services.store, '198.51.100.150', new Date());
    const within = await Promise.all(Array.from({ length: 50 }, () => window.miss(MISS_LIMIT)));
    const n = within.filter(Boolean).length;
    t.log(`${n} of 50 within the limit of ${MISS_LIMIT}`);
    // Increment, then read: all 50 increments may land before any read (then none is within).
    t.true(n <= MISS_LIMIT, `${n} within`);
    t.is(window.countIn(await window.ref.get()), 50);
  },
);

test.serial(
  'seatsPerAddress 3: past 3 seats one address (or /64) gets 429 SEAT_LIMIT, even in a burst; a freed seat is handed out again',
  async (t) => {
    const ws = await readyWorkshop(10, { seatsPerAddress: 3 });
    t.is((await stack.workshop(ws.id)).seatsPerAddress, 3);
    const home = from('203.0.113.60');
    const first = [];
    for (let i = 0; i < 3; i++) {
      const res = await stack.api('POST', '/join', { code: ws.joinCode, name: `H${i}` }, home);
      t.is(res.status, 200);
      first.push(res.body);
    }
    const fourth = await stack.api('POST', '/join', { code: ws.joinCode, name: 'H3' }, home);
    t.is(fourth.status, 429);
    t.is(fourth.body.error.code, 'SEAT_LIMIT');

    const burst = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        stack.api(
          'POST',
          '/join',
          { code: ws.joinCode, name: `B${i}` },
          from(`2001:db8:60:1::${(i + 1).toString(16)}`),
        ),
      ),
    );
    t.is(burst.filter((r) => r.status === 200).length, 3);
    t.true(
      burst
        .filter((r) => r.status !== 200)
        .every((r) => r.status === 429 && r.body.error.code === 'SEAT_LIMIT'),
    );
    // Four more learners fill the class.
    for (let i = 0; i < 4; i++) {
      const res = await stack.api(
        'POST',
        '/join',
        { code: ws.joinCode, name: `O${i}` },
        fromLearner(i),
      );
      t.is(res.status, 200);
    }
    t.is((await stack.workshop(ws.id)).seatsTaken, 10);

    const owner = as('teacher@school.example');
    const freedSeat = first[0].seat as number;
    const freed = await stack.api(
      'DELETE',
      `/workshops/${ws.id}/seats/${freedSeat}`,
      undefined,
      owner,
    );
    t.is(freed.status, 200);
    t.is(freed.body.seatsTaken, 10, 'a freed seat counts until its VM has reset it');
    // Its learner cannot come back with the old token...
    const old = await stack.api(
      'POST',
      '/join',
      { code: ws.joinCode, name: 'H0', seatToken: first[0].seatToken },
      home,
    );
    t.is(old.status, 404);
    t.is(old.body.error.code, 'SEAT_FREED');
    // The VM is told: a new credential for the seat and a reset that wipes its home...
    const [instance] = stack.instancesOf(ws.id);
    const tokens = new Map(
      instance!.metadata['seat-tokens']!.split(' ').map((e) => e.split(':') as [string, string]),
    );
    const endpoint = new URL(first[0].endpoints.terminal as string);
    t.not(tokens.get(String(freedSeat)), endpoint.searchParams.get('t'));
    t.is(instance!.metadata['seat-resets'], `${freedSeat}:1:1`);
    // ...and until it confirms, nobody gets the seat.
    const early = await stack.api('POST', '/join', { code: ws.joinCode, name: 'H4' }, home);
    t.is(early.status, 409);
    t.is(early.body.error.code, 'WORKSHOP_FULL');
    const [report] = await stack.readyReports(ws.id);
    t.is(await stack.deliver('vm.ready', { ...report, seatResets: `${freedSeat}:1` }), 204);
    // Then the seat goes to the next learner, and the address may take a third seat again.
    const next = await stack.api('POST', '/join', { code: ws.joinCode, name: 'H4' }, home);
    t.is(next.status, 200);
    t.is(next.body.seat, freedSeat);
    t.not(next.body.seatToken, first[0].seatToken);
    t.not(next.body.endpoints.terminal, first[0].endpoints.terminal, 'a new credential');
    const stillHeld = await stack.api(
      'POST',
      '/join',
      { code: ws.joinCode, name: 'H1', seatToken: first[1].seatToken },
      home,
    );
    t.is(stillHeld.body.seat, first[1].seat);

    const again = await stack.api(
      'DELETE',
      `/workshops/${ws.id}/seats/${freedSeat}`,
      undefined,
      owner,
    );
    t.is(again.status, 200, 'the seat is held again, by its new learner');
    for (const [path, status] of [
      [`/workshops/${ws.id}/seats/${freedSeat}`, 200], // freeing already: the VM is told again
      [`/workshops/${ws.id}/seats/0`, 404],
      [`/workshops/${ws.id}/seats/11`, 404],
      [`/workshops/${ws.id}/seats/x`, 404],
    ] as const) {
      t.is((await stack.api('DELETE', path, undefined, owner)).status, status, path);
    }
    t.is((await stack.api('GET', `/workshops/${ws.id}/seats/1`, undefined, owner)).status, 405);
    await end(ws.id);
    const after = await stack.api('DELETE', `/workshops/${ws.id}/seats/1`, undefined, owner);
    t.is(after.status, 409);
    t.is(after.body.error.code, 'INVALID_STATE');
    // Teardown dropped the seats' token records and address slots with the seats.
    const left = await stack.services.store.db
      .collection('seatTokens')
      .where('workshopId', '==', ws.id)
      .get();
    t.is(left.size, 0);
    t.is((await stack.services.store.addressSlots(ws.id).get()).size, 0);
  },
);

test.serial('over-quota starts get 409 QUOTA_EXCEEDED and insert no VM', async (t) => {
  const carol = as('carol@school.example');
  const create = async (seats: number) =>
    (await stack.api('POST', '/workshops', { name: 'Q', seats }, carol)).body.id as string;
  const [a, b, c] = [await create(5), await create(5), await create(5)];
  t.is((await stack.api('POST', `/workshops/${a}/start`, undefined, carol)).status, 202);
  t.is((await stack.api('POST', `/workshops/${b}/start`, undefined, carol)).status, 202);
  const third = await stack.api('POST', `/workshops/${c}/start`, undefined, carol);
  t.is(third.status, 409);
  t.is(third.body.error.code, 'QUOTA_EXCEEDED');
  t.regex(third.body.error.message, /2 active workshops/);
  t.is((await stack.workshop(c)).status, 'created');

  const dave = as('dave@school.example');
  const big = (await stack.api('POST', '/workshops', { name: 'Big', seats: 20 }, dave)).body.id;
  const more = (await stack.api('POST', '/workshops', { name: 'More', seats: 11 }, dave)).body.id;
  t.is((await stack.api('POST', `/workshops/${big}/start`, undefined, dave)).status, 202);
  const over = await stack.api('POST', `/workshops/${more}/start`, undefined, dave);
  t.is(over.status, 409);
  t.is(over.body.error.code, 'QUOTA_EXCEEDED');
  t.regex(over.body.error.message, /30 active seats: 11 needed, 10 free/);

  // Give the provisioner time to act on anything it was (wrongly) asked for.
  await eventually('the started ones have VMs', () =>
    [a, b, big].every((id) => stack.instancesOf(id).length === 1),
  );
  await stack.push(TOPICS.workshopStarted, { workshopId: c });
  await stack.push(TOPICS.workshopStarted, { workshopId: more });
  t.deepEqual(stack.instancesOf(c), []);
  t.deepEqual(stack.instancesOf(more), []);
  const inserted = stack.standin.requests
    .filter((r) => r.method === 'POST' && /\/instances(\?|$)/.test(r.path))
    .map((r) => (r.body as { name?: string }).name ?? '');
  t.true(
    inserted.some((name) => name.includes(a)),
    'inserts are seen by name',
  );
  t.false(inserted.some((name) => name.includes(c) || name.includes(more)));

  // Once a class is over, its room is free again.
  await end(big, 'dave@school.example');
  t.is((await stack.api('POST', `/workshops/${more}/start`, undefined, dave)).status, 202);
  for (const id of [a, b, c]) await end(id, 'carol@school.example');
  await end(more, 'dave@school.example');
});

test.serial('a workshop image must come from the registry or the allow-list', async (t) => {
  const create = (image: string) =>
    stack.api('POST', '/workshops', { name: 'Img', seats: 1, image }, as('erin@school.example'));
  for (const image of ['python:3.12', 'clarateach-local/go:1', 'ghcr.io/school/labs/k8s']) {
    const res = await create(image);
    t.is(res.status, 201, `${image}: ${res.text}`);
    await stack.api('DELETE', `/workshops/${res.body.id}`, undefined, as('erin@school.example'));
  }
  for (const image of ['docker.io/library/python', 'ghcr.io/school/other', 'clarateach-localx/y']) {
    const res = await create(image);
    t.is(res.status, 400, image);
    t.is(res.body.error.code, 'INVALID_REQUEST');
  }
});
