import sinon from 'sinon';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, startTestStack, type TestStack, fromLearner } from '../helpers/stack.ts';
import { TOPICS } from '../../shared/topics.ts';
import { SEAT_HTTPS_BASE } from '../../shared/core/workshop.ts';
import { captureOutput } from '../helpers/log-capture.ts';

/**
 * At-least-once and any order (issue 4): every event type delivered twice concurrently and in
 * reversed order ends in the same state as one clean delivery, with no instance unaccounted for.
 */
let stack: TestStack;

test.before(async () => {
  stack = await startTestStack();
});
test.afterEach.always(() => sinon.restore());

/** Holds every Compute insert until `release()`, to put events out of order on purpose. */
function holdInserts() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const compute = stack.services.compute;
  const original = compute.insert.bind(compute);
  // The instance exists (a VM can only report once it does); recording it is what waits.
  const stub = sinon.stub(compute, 'insert').callsFake(async (...args) => {
    const inserted = await original(...args);
    await gate;
    return inserted;
  });
  return { release, stub };
}

async function createAndStart(seats: number) {
  const ws = (await stack.api('POST', '/workshops', { name: 'Delivery', seats })).body;
  await stack.api('POST', `/workshops/${ws.id}/start`);
  return ws as { id: string; joinCode: string };
}

/**
 * Starts a 5-seat workshop with its inserts held: the Pub/Sub delivery and a second delivery of
 * our own both wait at the insert. The answer to ours says when the provisioner is done with it.
 */
async function startWithInsertsHeld() {
  const hold = holdInserts();
  const ws = await createAndStart(5);
  await eventually('insert attempted', () => hold.stub.callCount >= 1);
  const delivery = stack.push(TOPICS.workshopStarted, { workshopId: ws.id });
  await eventually('both inserts held', () => hold.stub.callCount >= 2);
  return { hold, ws, delivery };
}

test.serial('workshop.started four times, concurrently: one VM per plan entry, once', async (t) => {
  const ws = await createAndStart(25);
  const statuses = await Promise.all(
    [1, 2, 3].map(() => stack.push(TOPICS.workshopStarted, { workshopId: ws.id })),
  );
  t.deepEqual(statuses, [204, 204, 204]);
  await eventually('VMs booting', async () => {
    const w = await stack.workshop(ws.id);
    return w.vms.every((v: { status: string }) => v.status === 'booting') ? w : undefined;
  });
  t.deepEqual(
    stack.instancesOf(ws.id).map((i) => i.name),
    [`ct-${ws.id}-0`, `ct-${ws.id}-1`],
  );
  // Every insert of one VM carried the same requestId.
  const ids = new Map<string, Set<string>>();
  for (const r of stack.standin.requests) {
    const m = /\/instances\?requestId=([\w-]+)/.exec(r.path);
    const name = (r.body as { name?: string } | undefined)?.name;
    if (m && name?.includes(ws.id)) ids.set(name, (ids.get(name) ?? new Set()).add(m[1]!));
  }
  t.is(ids.size, 2);
  for (const set of ids.values()) t.is(set.size, 1);

  await stack.api('DELETE', `/workshops/${ws.id}`);
  await stack.untilStatus(ws.id, 'ended');
  t.deepEqual(stack.instancesOf(ws.id), []);
});

test.serial(
  'vm.ready twice, concurrently, and in reversed VM order: ready once, 25 seats',
  async (t) => {
    const ws = await createAndStart(25);
    await eventually('two instances', () => stack.instancesOf(ws.id).length === 2);
    const [first, second] = await stack.readyReports(ws.id);
    await Promise.all([stack.push(TOPICS.vmReady, second), stack.push(TOPICS.vmReady, second)]);
    t.is((await stack.workshop(ws.id)).status, 'provisioning');
    await Promise.all([stack.push(TOPICS.vmReady, first), stack.push(TOPICS.vmReady, first)]);
    const ready = await stack.workshop(ws.id);
    t.is(ready.status, 'ready');
    t.is(ready.seatsReady, 25);
    const readyAt = ready.readyAt;
    await stack.push(TOPICS.vmReady, first);
    const again = await stack.workshop(ws.id);
    t.is(again.readyAt, readyAt);
    t.is(again.seatsReady, 25);

    await Promise.all([
      stack.api('DELETE', `/workshops/${ws.id}`),
      stack.push(TOPICS.workshopEnded, { workshopId: ws.id, reason: 'instructor' }),
      stack.push(TOPICS.workshopEnded, { workshopId: ws.id, reason: 'instructor' }),
    ]);
    const ended = await stack.untilStatus(ws.id, 'ended');
    t.is(ended.endReason, 'instructor');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial(
  'vm.ready before the provisioner recorded the insert: ready is not undone',
  async (t) => {
    const { hold, ws, delivery } = await startWithInsertsHeld();
    const [report] = await stack.readyReports(ws.id);
    t.is(await stack.push(TOPICS.vmReady, report), 204);
    t.is((await stack.workshop(ws.id)).status, 'ready');
    hold.release();
    t.is(await delivery, 204);
    t.is(stack.instancesOf(ws.id).length, 1);
    const w = await stack.workshop(ws.id);
    t.is(w.status, 'ready');
    t.is(w.vms[0].status, 'ready');

    await stack.api('DELETE', `/workshops/${ws.id}`);
    await stack.untilStatus(ws.id, 'ended');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial(
  'workshop.ended while the insert is in flight: the late VM is still deleted',
  async (t) => {
    const { hold, ws, delivery } = await startWithInsertsHeld();
    const ending = await stack.api('DELETE', `/workshops/${ws.id}`);
    t.is(ending.body.status, 'ending');
    // Teardown finds nothing to delete yet and finishes.
    await stack.untilStatus(ws.id, 'ended');
    hold.release();
    // The insert lands after the end; the provisioner sees the end and deletes what it made.
    t.is(await delivery, 204);
    await eventually('no instance left', () => stack.instancesOf(ws.id).length === 0);
    t.true(
      stack.standin.requests.some((r) => r.method === 'DELETE' && r.path.includes(`ct-${ws.id}-0`)),
    );
    t.is((await stack.workshop(ws.id)).status, 'ended');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial('vm.ready for a workshop that is ending changes nothing', async (t) => {
  const ws = await createAndStart(3);
  await eventually('instance', () => stack.instancesOf(ws.id).length === 1);
  const [report] = await stack.readyReports(ws.id);
  await stack.api('DELETE', `/workshops/${ws.id}`);
  await Promise.all([stack.push(TOPICS.vmReady, report), stack.push(TOPICS.vmReady, report)]);
  const ended = await stack.untilStatus(ws.id, 'ended');
  t.is(ended.readyAt, null);
  t.is(ended.seatsReady, 0);
  t.not(ended.vms[0].status, 'ready');
  t.deepEqual(stack.instancesOf(ws.id), []);
  // And a start after the end is refused, a late started event does nothing.
  t.is(await stack.push(TOPICS.workshopStarted, { workshopId: ws.id }), 204);
  t.deepEqual(stack.instancesOf(ws.id), []);
  t.is((await stack.workshop(ws.id)).status, 'ended');
});

test.serial(
  'a VM reporting failed, twice: the workshop fails once and its VMs are deleted',
  async (t) => {
    const ws = await createAndStart(25);
    await eventually('two instances', () => stack.instancesOf(ws.id).length === 2);
    const [first, second] = await stack.readyReports(ws.id);
    await stack.push(TOPICS.vmReady, first);
    const failed = {
      ...second!,
      state: 'failed' as const,
      error: 'seat-20: docker run failed: no such image',
    };
    await Promise.all([stack.push(TOPICS.vmReady, failed), stack.push(TOPICS.vmReady, failed)]);
    const w = await stack.untilStatus(ws.id, 'failed');
    t.is(w.endReason, 'vm-failed');
    t.is(w.error.code, 'VM_FAILED');
    t.true(w.error.message.includes('no such image'));
    t.deepEqual(stack.instancesOf(ws.id), []);
    // A late ready for the other VM changes nothing.
    await stack.push(TOPICS.vmReady, first);
    t.is((await stack.workshop(ws.id)).status, 'failed');
  },
);

test.serial(
  'a VM of a ready class reporting failed, twice: the class goes on without its seats',
  async (t) => {
    const ws = await createAndStart(25);
    await eventually('two instances', () => stack.instancesOf(ws.id).length === 2);
    const [first, second] = await stack.readyReports(ws.id);
    for (const report of [first!, second!]) await stack.push(TOPICS.vmReady, report);
    t.is((await stack.untilStatus(ws.id, 'ready')).seatsReady, 25);
    // Someone already sits on the VM that will break (seats are handed out in random order).
    let early = { seat: 0, seatToken: '' };
    let lowTaken = 0;
    while (lowTaken <= 13) {
      early = (await stack.api('POST', '/join', { code: ws.joinCode, name: 'Early' })).body;
      if (!(early.seat <= 13)) break;
      lowTaken++;
    }
    t.true(early.seat > 13, 'a learner sits on the second VM');
    // Say it rebooted and its startup script failed this time.
    const failed = { ...second!, state: 'failed' as const, error: 'seat-14: container exited' };
    await Promise.all([stack.push(TOPICS.vmReady, failed), stack.push(TOPICS.vmReady, failed)]);
    const w = await stack.workshop(ws.id);
    t.is(w.status, 'ready');
    t.is(w.seatsReady, 13);
    t.is(w.error.code, 'VM_FAILED');
    t.is(w.vms[1].status, 'failed');
    const joins = await Promise.all(
      Array.from({ length: 14 - lowTaken }, (_, i) =>
        stack.api('POST', '/join', { code: ws.joinCode, name: `L${i}` }, fromLearner(i)),
      ),
    );
    t.true(joins.filter((j) => j.status === 200).every((j) => j.body.seat <= 13));
    t.is(joins.filter((j) => j.status === 409).length, 1);
    // The learner on it is told, not sent to a VM that does not serve them.
    const back = await stack.api('POST', '/join', {
      code: ws.joinCode,
      name: 'Early',
      seatToken: early.seatToken,
    });
    t.is(back.status, 409);
    t.like(back.body.error, { code: 'NOT_READY', status: 'ready' });
    t.regex(back.body.error.message, /failed; ask the instructor/);

    await stack.api('DELETE', `/workshops/${ws.id}`);
    await stack.untilStatus(ws.id, 'ended');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial(
  'a forged vm.ready (right token, other addresses) changes nothing Compute Engine did not say',
  async (t) => {
    const ws = await createAndStart(5);
    // Inserted, so Compute Engine lists it (before that a report is retried, not taken).
    await eventually(
      'the VM is inserted',
      async () => (await stack.workshop(ws.id)).vms[0]?.status === 'booting',
    );
    const [report] = await stack.readyReports(ws.id);
    const forged = { ...report!, externalIp: '203.0.113.66', internalIp: '10.9.9.9' };
    // Where a real VM serves (80) is not the report's to say outside the local stack.
    stack.services.config.acceptReportedHttpPort = false;
    t.teardown(() => (stack.services.config.acceptReportedHttpPort = true));
    t.is(await stack.push(TOPICS.vmReady, { ...forged, httpPort: 8443, seatHttpsBase: 9000 }), 204);
    const ready = await stack.untilStatus(ws.id, 'ready');
    t.is(ready.vms[0].externalIp, '127.0.0.1', 'the instance’s address, from Compute Engine');
    const vm = (await stack.services.store.getVms(ws.id))[0]!;
    t.like(vm, {
      externalIp: '127.0.0.1',
      internalIp: '127.0.0.1',
      httpPort: 80,
      seatHttpsBase: SEAT_HTTPS_BASE,
    });

    // A second ready of the ready VM, from anywhere, moves nothing.
    stack.services.config.acceptReportedHttpPort = true;
    t.is(await stack.push(TOPICS.vmReady, { ...forged, httpPort: 9999 }), 204);
    t.like((await stack.services.store.getVms(ws.id))[0], {
      externalIp: '127.0.0.1',
      httpPort: 80,
    });
    const join = await stack.api('POST', '/join', { code: ws.joinCode, name: 'Ada' });
    // Seat S of the one VM (seats 1–5, handed out in random order) is its HTTPS port base + S.
    const { seat } = join.body as { seat: number };
    t.true(
      join.body.endpoints.terminal.startsWith(
        `https://127.0.0.1:${SEAT_HTTPS_BASE + seat}/vm/${seat}/terminal/`,
      ),
    );

    // A report whose vmName is no instance name is acknowledged (not retried) and ignored.
    for (const vmName of ['../../etc', 'CT-UPPER', '', 'x'.repeat(64)]) {
      t.is(await stack.push(TOPICS.vmReady, { ...report!, vmName }), 204, vmName);
    }
    t.is((await stack.workshop(ws.id)).status, 'ready');

    await stack.api('DELETE', `/workshops/${ws.id}`);
    await stack.untilStatus(ws.id, 'ended');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial(
  'certificate reports of a ready VM, twice, concurrently and out of order: the latest check stands, a failing renewal is logged',
  async (t) => {
    const output = captureOutput();
    const ws = await createAndStart(5);
    await eventually(
      'the VM is inserted',
      async () => (await stack.workshop(ws.id)).vms[0]?.status === 'booting',
    );
    const [report] = await stack.readyReports(ws.id);
    const fine = {
      ...report!,
      certificate: {
        notAfter: '2030-01-07T10:00:00Z',
        renewalError: null,
        checkedAt: '2030-01-01T10:00:00Z',
      },
    };
    const failing = {
      ...report!,
      certificate: {
        notAfter: '2030-01-07T10:00:00Z',
        renewalError: 'could not get certificate from issuer: HTTP 503: service unavailable',
        checkedAt: '2030-01-05T10:00:00Z',
      },
    };
    t.is(await stack.deliver(TOPICS.vmReady, fine), 204);
    await stack.untilStatus(ws.id, 'ready');
    t.deepEqual((await stack.workshop(ws.id)).vms[0].certificate, {
      notAfter: '2030-01-07T10:00:00Z',
      renewalError: null,
    });
    // The failing one twice at once, then the older one late: the failure stands. (Two reports
    // of one VM at once may contend; a delivery that answers 5xx is delivered again.)
    const statuses = await Promise.all([
      stack.deliver(TOPICS.vmReady, failing),
      stack.deliver(TOPICS.vmReady, failing),
    ]);
    t.deepEqual(statuses, [204, 204]);
    t.is(await stack.deliver(TOPICS.vmReady, fine), 204);
    const w = await stack.workshop(ws.id);
    t.is(w.status, 'ready', 'a certificate that fails to renew does not end a running class');
    t.deepEqual(w.vms[0].certificate, {
      notAfter: '2030-01-07T10:00:00Z',
      renewalError: 'could not get certificate from issuer: HTTP 503: service unavailable',
    });
    const warnings = output.structured
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((e) => e.severity === 'WARNING' && e.workshopId === ws.id && 'renewalError' in e);
    t.true(warnings.length >= 2, 'each report of the failure is logged as a warning');
    // A malformed certificate report is acknowledged, not retried, and changes nothing.
    for (const certificate of [
      { notAfter: 'tomorrow', checkedAt: '2030-01-06T10:00:00Z' },
      { renewalError: 'x'.repeat(5000), checkedAt: '2030-01-06T10:00:00Z' },
      { notAfter: '2030-01-08T10:00:00Z' },
      'expired',
    ]) {
      t.is(await stack.push(TOPICS.vmReady, { ...report!, certificate }), 204);
    }
    t.regex((await stack.workshop(ws.id)).vms[0].certificate.renewalError, /HTTP 503/);

    await stack.api('DELETE', `/workshops/${ws.id}`);
    await stack.untilStatus(ws.id, 'ended');
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);
