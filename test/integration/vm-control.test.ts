import sinon from 'sinon';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, fromLearner, startTestStack, type TestStack } from '../helpers/stack.ts';
import { ComputeError } from '../../shared/core/compute-errors.ts';
import { controlMetadata } from '../../shared/core/vm-control.ts';
import { sweep } from '../../shared/lifecycle/sweep.ts';
import { TOPICS } from '../../shared/topics.ts';

/**
 * The control plane's channel to running VMs (instance metadata written with setMetadata): seat
 * resets by the instructor or the seat's learner, an extension reaching every VM, and concurrent
 * writers that all land (fingerprint retries).
 */
let stack: TestStack;

test.before(async () => {
  stack = await startTestStack();
});
test.afterEach.always(() => sinon.restore());

const owner = { 'x-clarateach-user': 'teacher@school.example' };

async function readyWorkshop(seats: number) {
  const ws = (await stack.api('POST', '/workshops', { name: 'Control', seats }, owner)).body;
  await stack.api('POST', `/workshops/${ws.id}/start`, undefined, owner);
  await eventually('instances', () => stack.instancesOf(ws.id).length === Math.ceil(seats / 20));
  for (const report of await stack.readyReports(ws.id)) await stack.push(TOPICS.vmReady, report);
  await stack.untilStatus(ws.id, 'ready');
  return ws as { id: string; joinCode: string };
}

async function end(id: string) {
  await stack.api('DELETE', `/workshops/${id}`, undefined, owner);
  await eventually(`${id} over`, async () => (await stack.workshop(id)).status === 'ended');
}

const metadataOf = (id: string) => stack.instancesOf(id)[0]!.metadata;

test.serial(
  'reset: instructor or the seat learner, keeping or wiping the home, once per request while pending',
  async (t) => {
    const ws = await readyWorkshop(4);
    const join = async (i: number) =>
      (await stack.api('POST', '/join', { code: ws.joinCode, name: `L${i}` }, fromLearner(i))).body;
    const [a, b] = [await join(1), await join(2)];
    const reset = (seat: number, body: unknown, headers: Record<string, string> = owner) =>
      stack.api('POST', `/workshops/${ws.id}/seats/${seat}/reset`, body, headers);

    const kept = await reset(a.seat, { keepHome: true });
    t.is(kept.status, 202);
    t.like(kept.body, { seat: a.seat, keepHome: true, generation: 1 });
    t.is(metadataOf(ws.id)['seat-resets'], `${a.seat}:1:0`);
    t.is((await reset(a.seat, { keepHome: true })).body.generation, 1, 'a repeat resets once');
    const wiped = await reset(a.seat, { keepHome: false });
    t.is(wiped.body.generation, 2, 'a wipe is more than the pending keep');
    t.is(metadataOf(ws.id)['seat-resets'], `${a.seat}:2:2`);
    t.is(
      (await reset(a.seat, { keepHome: true })).body.generation,
      2,
      'the pending wipe covers it',
    );
    // The VM applies it: the next request is a new reset.
    const [report] = await stack.readyReports(ws.id);
    t.is(await stack.deliver(TOPICS.vmReady, { ...report, seatResets: `${a.seat}:2` }), 204);
    t.is((await reset(a.seat, { keepHome: true })).body.generation, 3);

    // The learner, with their own seatToken and no identity; the same credential stays.
    const tokensBefore = metadataOf(ws.id)['seat-tokens'];
    const own = await reset(b.seat, { keepHome: true, seatToken: b.seatToken }, {});
    t.is(own.status, 202);
    t.is(metadataOf(ws.id)['seat-tokens'], tokensBefore);
    const back = await stack.api('POST', '/join', {
      code: ws.joinCode,
      name: 'L2',
      seatToken: b.seatToken,
    });
    t.is(back.body.endpoints.terminal, b.endpoints.terminal);
    // Someone else's token, a seat nobody holds, bad bodies.
    for (const [seat, body, status, code] of [
      [b.seat, { keepHome: true, seatToken: a.seatToken }, 404, 'NOT_FOUND'],
      [b.seat, { keepHome: true, seatToken: 'made-up' }, 404, 'NOT_FOUND'],
      [[1, 2, 3].find((n) => n !== a.seat && n !== b.seat)!, { keepHome: true }, 404, 'NOT_FOUND'],
      [a.seat, {}, 400, 'INVALID_REQUEST'],
      [a.seat, { keepHome: 'yes' }, 400, 'INVALID_REQUEST'],
      [a.seat, { keepHome: true, extra: 1 }, 400, 'INVALID_REQUEST'],
      [0, { keepHome: true }, 404, 'NOT_FOUND'],
    ] as const) {
      const res = await reset(seat, body, 'seatToken' in body ? {} : owner);
      t.is(res.status, status, JSON.stringify(body));
      t.is(res.body.error.code, code);
    }
    t.is(
      (await stack.api('GET', `/workshops/${ws.id}/seats/1/reset`, undefined, owner)).status,
      405,
    );
    await end(ws.id);
    t.is((await reset(a.seat, { keepHome: true })).status, 404, 'an ended class has no seats');
  },
);

test.serial('an extension reaches every VM; concurrent frees and resets all land', async (t) => {
  const ws = await readyWorkshop(30);
  t.is(stack.instancesOf(ws.id).length, 2);
  for (const instance of stack.instancesOf(ws.id)) {
    t.is(instance.metadata['class-ends'], (await stack.workshop(ws.id)).expiresAt);
  }
  const extended = await stack.api('POST', `/workshops/${ws.id}/extend`, { minutes: 30 }, owner);
  t.is(extended.status, 200);
  for (const instance of stack.instancesOf(ws.id)) {
    t.is(instance.metadata['class-ends'], extended.body.expiresAt);
  }
  // Six learners on the first VM; their seats freed and reset side by side.
  const joined = [];
  for (let i = 0; i < 8; i++) {
    const res = await stack.api(
      'POST',
      '/join',
      { code: ws.joinCode, name: `C${i}` },
      fromLearner(i),
    );
    joined.push(res.body as { seat: number; seatToken: string });
  }
  const firstVm = joined.filter((j) => j.seat <= 15).slice(0, 4);
  t.true(firstVm.length >= 2);
  const [freed, ...resets] = firstVm;
  const calls = await Promise.all([
    stack.api('DELETE', `/workshops/${ws.id}/seats/${freed!.seat}`, undefined, owner),
    ...resets.map((j) =>
      stack.api('POST', `/workshops/${ws.id}/seats/${j.seat}/reset`, { keepHome: true }, owner),
    ),
  ]);
  t.deepEqual(
    calls.map((c) => c.status),
    [200, ...resets.map(() => 202)],
  );
  const vm = stack.instancesOf(ws.id).find((i) => i.metadata['seat-first'] === '1')!;
  const entries = new Set(vm.metadata['seat-resets']!.split(' '));
  t.true(entries.has(`${freed!.seat}:1:1`));
  for (const j of resets) t.true(entries.has(`${j.seat}:1:0`), `seat ${j.seat} in ${[...entries]}`);
  await end(ws.id);
});

test.serial(
  "a full class's freed seat goes to the next learner at once, though the class was read a moment ago",
  async (t) => {
    const ws = await readyWorkshop(2);
    const join = (i: number) =>
      stack.api('POST', '/join', { code: ws.joinCode, name: `F${i}` }, fromLearner(i));
    const [a, b] = [(await join(1)).body, (await join(2)).body];
    t.deepEqual([a.seat, b.seat].sort(), [1, 2]);
    const full = await join(3);
    t.is(full.body.error?.code, 'WORKSHOP_FULL');
    // The instructor frees a's seat and its VM confirms the wipe: the seat is free again. This
    // instance's last read of the class (up to a second old) still shows it taken.
    t.is(
      (await stack.api('DELETE', `/workshops/${ws.id}/seats/${a.seat}`, undefined, owner)).status,
      200,
    );
    const [report] = await stack.readyReports(ws.id);
    t.is(await stack.deliver(TOPICS.vmReady, { ...report, seatResets: `${a.seat}:1` }), 204);
    const late = await join(4);
    t.is(late.status, 200, JSON.stringify(late.body));
    t.is(late.body.seat, a.seat);
    t.not(late.body.seatToken, a.seatToken);
    await end(ws.id);
  },
);

test.serial(
  'a VM that missed a change (setMetadata failed) is told again by the sweep, once',
  async (t) => {
    const ws = await readyWorkshop(4);
    const a = (await stack.api('POST', '/join', { code: ws.joinCode, name: 'A' }, fromLearner(1)))
      .body as { seat: number };
    const before = { ...metadataOf(ws.id) };
    // Compute fails the writes of a free and an extension, after Firestore has committed them.
    const compute = stack.services.compute;
    sinon
      .stub(compute, 'updateMetadata')
      .rejects(new ComputeError('transient', 'HTTP_503', 'instances.setMetadata: 503', 503));
    await stack.api('DELETE', `/workshops/${ws.id}/seats/${a.seat}`, undefined, owner);
    await stack.api('POST', `/workshops/${ws.id}/extend`, { minutes: 30 }, owner);
    sinon.restore();
    t.deepEqual(metadataOf(ws.id), before, 'the VM was told nothing');
    const [workshop, secrets] = await Promise.all([
      stack.services.store.getWorkshop(ws.id),
      stack.services.store.getSecrets(ws.id),
    ]);
    t.not(workshop!.expiresAt, before['class-ends'], 'the extension was committed');

    // The setMetadata writes since `mark`, from the stand-in's request log.
    const mark = stack.standin.requests.at(-1);
    const writes = () =>
      stack.standin.requests
        .slice(stack.standin.requests.indexOf(mark!) + 1)
        .filter((r) => r.path.includes('/setMetadata')).length;
    const first = await sweep(stack.services);
    const [instance] = stack.instancesOf(ws.id);
    t.deepEqual(first.controlRepushed, [instance!.name]);
    t.is(writes(), 1, 'one write');
    t.like(instance!.metadata, controlMetadata(workshop!, workshop!.vmPlan[0]!, secrets!));
    t.is(instance!.metadata['class-ends'], workshop!.expiresAt);
    t.is(instance!.metadata['seat-resets'], `${a.seat}:1:1`);
    t.not(instance!.metadata['seat-tokens'], before['seat-tokens']);

    // Agreeing now, the next sweep writes nothing.
    const second = await sweep(stack.services);
    t.deepEqual(second.controlRepushed, []);
    t.is(writes(), 1, 'no further write');
    await end(ws.id);
  },
);
