import { emulatorTest as test } from '../helpers/emulators.ts';
import { captureOutput, leakedSecrets } from '../helpers/log-capture.ts';
import { eventually, startTestStack, type TestStack, fromLearner } from '../helpers/stack.ts';
import { TOPICS } from '../../shared/topics.ts';

let stack: TestStack;
/** All this file writes (the functions log here), to check that no secret ever reaches a log. */
const logged = captureOutput();
/** Every secret the class handed out, by a label that says what it is. */
const secrets = new Map<string, string>();

test.before(async () => {
  stack = await startTestStack();
});

/** What a VM's startup script would publish, using what its metadata gave it. */
function readyReport(instance: { name: string; metadata: Record<string, string> }, n: number) {
  return {
    workshopId: instance.metadata['workshop-id'],
    vmName: instance.name,
    state: 'ready',
    externalIp: `203.0.113.${10 + n}`,
    internalIp: `10.128.0.${10 + n}`,
    httpPort: 8100 + n,
    seatHttpsBase: 9100 + 100 * n,
    seatsReady: Number(instance.metadata['seat-count']),
    readyToken: instance.metadata['ready-token'],
  };
}

test.serial(
  'a 25-seat class: created, provisioning on two VMs, ready, 25 seats, full, ended',
  async (t) => {
    const created = await stack.api('POST', '/workshops', {
      name: 'Intro to Kubernetes',
      seats: 25,
    });
    t.is(created.status, 201);
    const ws = created.body;
    t.is(ws.status, 'created');
    t.regex(ws.id, /^[a-z][a-z2-7]{9,}$/);
    t.regex(ws.joinCode, /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/);
    t.is(ws.seats, 25);
    t.is(ws.estimatedCost.currency, 'USD');

    const early = await stack.api('POST', '/join', { code: ws.joinCode, name: 'Ada' });
    t.is(early.status, 409);
    t.is(early.body.error.code, 'NOT_READY');
    t.is(early.body.error.status, 'created');

    const started = await stack.api('POST', `/workshops/${ws.id}/start`);
    t.is(started.status, 202);
    t.is(started.body.status, 'provisioning');
    const again = await stack.api('POST', `/workshops/${ws.id}/start`);
    t.is(again.status, 202);
    t.is(again.body.startedAt, started.body.startedAt);

    // The provisioner gets workshop.started from the Pub/Sub emulator and inserts two VMs.
    const instances = await eventually('two instances', () => {
      const list = stack.instancesOf(ws.id);
      return list.length === 2 ? list : undefined;
    });
    t.deepEqual(
      instances.map((i) => i.name),
      [`ct-${ws.id}-0`, `ct-${ws.id}-1`],
    );
    for (const [n, instance] of instances.entries()) {
      t.is(instance.labels.app, 'clarateach');
      t.regex(instance.machineType, /machineTypes\/e2-standard-8$/);
      t.is(instance.metadata['workshop-id'], ws.id);
      t.is(instance.metadata['vm-name'], instance.name);
      t.is(instance.metadata['seat-first'], n === 0 ? '1' : '14');
      t.is(instance.metadata['seat-count'], n === 0 ? '13' : '12');
      t.is(instance.metadata['ready-topic'], `projects/${stack.projectId}/topics/vm.ready`);
      t.regex(instance.metadata['ssh-keys']!, /^clarateach:ssh-ed25519 /);
      t.true((instance.metadata['startup-script'] ?? '').startsWith('#!'));
      t.is(instance.metadata['seat-tokens']!.split(' ').length, n === 0 ? 13 : 12);
    }
    const inserts = stack.standin.requests.filter(
      (r) => r.method === 'POST' && /\/instances(\?|$)/.test(r.path),
    );
    t.true(inserts.length >= 2);
    const body = inserts[0]!.body as { tags?: { items?: string[] } };
    t.deepEqual(body.tags?.items, ['http-server', 'https-server']);

    const provisioning = await stack.api('GET', `/workshops/${ws.id}`);
    t.is(provisioning.body.status, 'provisioning');
    t.is(provisioning.body.vms.length, 2);

    // The VMs report over Pub/Sub, as the startup script does.
    await stack.publish(TOPICS.vmReady, readyReport(instances[0]!, 0));
    await eventually('first VM ready', async () => {
      const w = (await stack.api('GET', `/workshops/${ws.id}`)).body;
      return w.seatsReady === 13 ? w : undefined;
    });
    t.is((await stack.api('GET', `/workshops/${ws.id}`)).body.status, 'provisioning');
    await stack.publish(TOPICS.vmReady, readyReport(instances[1]!, 1));
    const ready = await eventually('workshop ready', async () => {
      const w = (await stack.api('GET', `/workshops/${ws.id}`)).body;
      return w.status === 'ready' ? w : undefined;
    });
    t.is(ready.seatsReady, 25);
    t.truthy(ready.readyAt);
    // The addresses Compute Engine gives (the stand-in's loopback), not what a report claims.
    t.deepEqual(
      ready.vms.map((v: { externalIp: string }) => v.externalIp),
      ['127.0.0.1', '127.0.0.1'],
    );

    const joins = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        stack.api('POST', '/join', { code: ws.joinCode, name: `Learner ${i}` }, fromLearner(i)),
      ),
    );
    t.true(joins.every((j) => j.status === 200));
    const seats = joins.map((j) => j.body.seat as number).sort((a, b) => a - b);
    t.deepEqual(
      seats,
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
    for (const j of joins) {
      // Seat i of its VM (13 seats on the first) is the HTTPS origin seatHttpsBase + i.
      const port = j.body.seat <= 13 ? 9100 + j.body.seat : 9200 + j.body.seat - 13;
      t.true(
        j.body.endpoints.terminal.startsWith(
          `https://127.0.0.1:${port}/vm/${j.body.seat}/terminal/?t=`,
        ),
        j.body.endpoints.terminal,
      );
      t.is(j.body.workshopId, ws.id);
      t.is(j.body.expiresAt, ready.expiresAt);
    }
    // Each seat's endpoints carry that seat's own credential, the one its VM was given.
    const tokens = new Set(joins.map((j) => new URL(j.body.endpoints.files).searchParams.get('t')));
    t.is(tokens.size, 25);
    for (const j of joins) {
      secrets.set(`seatToken of seat ${j.body.seat}`, j.body.seatToken);
      secrets.set(
        `access token of seat ${j.body.seat}`,
        new URL(j.body.endpoints.terminal).searchParams.get('t')!,
      );
    }
    for (const instance of instances) {
      secrets.set(`ready token of ${instance.name}`, instance.metadata['ready-token']!);
      for (const pair of instance.metadata['seat-tokens']!.split(' ')) {
        secrets.set(`seat-tokens metadata ${pair.split(':')[0]}`, pair.split(':')[1]!);
      }
    }
    const seat1 = joins.find((j) => j.body.seat === 1)!;
    const vm0Tokens = instances[0]!.metadata['seat-tokens']!;
    t.true(vm0Tokens.includes(`1:${new URL(seat1.body.endpoints.browser).searchParams.get('t')}`));

    const full = await stack.api('POST', '/join', { code: ws.joinCode, name: 'Late' });
    t.is(full.status, 409);
    t.is(full.body.error.code, 'WORKSHOP_FULL');

    const back = await stack.api('POST', '/join', {
      code: ws.joinCode.toLowerCase(),
      name: 'Learner again',
      seatToken: seat1.body.seatToken,
    });
    t.is(back.status, 200);
    t.is(back.body.seat, 1);
    t.deepEqual(back.body.endpoints, seat1.body.endpoints);

    const status = await stack.api('GET', `/workshops/${ws.id}`);
    t.is(status.body.seatsTaken, 25);

    const key = await stack.api('GET', `/workshops/${ws.id}/ssh-key`);
    t.is(key.status, 200);
    t.regex(key.text, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    for (const [n, line] of key.text.split('\n').slice(1, -2).entries()) {
      secrets.set(`SSH private key, line ${n + 1}`, line);
    }
    t.is(key.headers.get('cache-control'), 'no-store');

    const ending = await stack.api('DELETE', `/workshops/${ws.id}`);
    t.is(ending.status, 202);
    t.is(ending.body.status, 'ending');
    t.is(ending.body.endReason, 'instructor');
    const ended = await eventually('workshop ended', async () => {
      const w = (await stack.api('GET', `/workshops/${ws.id}`)).body;
      return w.status === 'ended' ? w : undefined;
    });
    t.truthy(ended.endedAt);
    t.is(ended.seatsTaken, 25, 'the count survives the seats');
    t.deepEqual(stack.instancesOf(ws.id), []);
    t.true(ended.vms.every((v: { status: string }) => v.status === 'deleted'));
    const after = await stack.api('POST', '/join', { code: ws.joinCode, name: 'Too late' });
    t.is(after.status, 404);
    t.is(after.body.error.code, 'CODE_NOT_FOUND');
    t.is((await stack.api('GET', `/workshops/${ws.id}/ssh-key`)).status, 404);
    const endAgain = await stack.api('DELETE', `/workshops/${ws.id}`);
    t.is(endAgain.status, 202);
    t.is(endAgain.body.status, 'ended');
    const restart = await stack.api('POST', `/workshops/${ws.id}/start`);
    t.is(restart.status, 409);
    t.is(restart.body.error.code, 'INVALID_STATE');
  },
);

test.serial('100 concurrent joins race for 20 seats: exactly 20 win, no seat twice', async (t) => {
  const ws = (await stack.api('POST', '/workshops', { name: 'Race', seats: 20 })).body;
  await stack.api('POST', `/workshops/${ws.id}/start`);
  const [instance] = await eventually('one instance', () => {
    const list = stack.instancesOf(ws.id);
    return list.length === 1 ? list : undefined;
  });
  t.is(await stack.deliver(TOPICS.vmReady, readyReport(instance!, 0)), 204);
  t.is((await stack.api('GET', `/workshops/${ws.id}`)).body.status, 'ready');

  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      stack.api('POST', '/join', { code: ws.joinCode, name: `L${i}` }, fromLearner(i)),
    ),
  );
  const won = results.filter((r) => r.status === 200);
  const lost = results.filter((r) => r.status !== 200);
  t.is(won.length, 20);
  t.deepEqual(
    won.map((r) => r.body.seat).sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  t.true(lost.every((r) => r.status === 409 && r.body.error.code === 'WORKSHOP_FULL'));
  t.is((await stack.api('GET', `/workshops/${ws.id}`)).body.seatsTaken, 20);
  t.is((await stack.services.store.seats(ws.id).count().get()).data().count, 20);

  await stack.api('DELETE', `/workshops/${ws.id}`);
  await eventually(
    'ended',
    async () => (await stack.api('GET', `/workshops/${ws.id}`)).body.status === 'ended',
  );
  t.deepEqual(stack.instancesOf(ws.id), []);
});

test.serial(
  'ending a workshop that never started ends it at once and frees its code',
  async (t) => {
    const ws = (await stack.api('POST', '/workshops', { name: 'Never run', seats: 3 })).body;
    const res = await stack.api('DELETE', `/workshops/${ws.id}`);
    t.is(res.status, 202);
    t.is(res.body.status, 'ended');
    t.is(res.body.endReason, 'instructor');
    t.false((await stack.services.store.joinCode(ws.joinCode).get()).exists);
    t.deepEqual(stack.instancesOf(ws.id), []);
  },
);

test.serial(
  'an instructor sees only their own workshops; admins read keys, others get 403',
  async (t) => {
    const alice = { 'x-clarateach-user': 'alice@school.example' };
    const bob = { 'x-clarateach-user': 'bob@school.example' };
    const mine = (await stack.api('POST', '/workshops', { name: 'Alice class', seats: 2 }, alice))
      .body;
    const list = await stack.api('GET', '/workshops', undefined, alice);
    t.is(list.status, 200);
    t.deepEqual(
      list.body.workshops.map((w: { id: string }) => w.id),
      [mine.id],
    );
    t.deepEqual((await stack.api('GET', '/workshops', undefined, bob)).body.workshops, []);
    const peek = await stack.api('GET', `/workshops/${mine.id}`, undefined, bob);
    t.is(peek.status, 404);
    t.is(peek.body.error.code, 'NOT_FOUND');
    t.is((await stack.api('DELETE', `/workshops/${mine.id}`, undefined, bob)).status, 404);
    const key = await stack.api('GET', `/workshops/${mine.id}/ssh-key`, undefined, alice);
    t.is(key.status, 403);
    t.is(key.body.error.code, 'FORBIDDEN');
    await stack.api('DELETE', `/workshops/${mine.id}`, undefined, alice);
  },
);

test.serial('no secret the class handed out reached a log', (t) => {
  t.true(logged.structured.length > 0, 'the functions logged the class');
  t.true(secrets.size > 50, `${secrets.size} secrets collected`);
  t.deepEqual(leakedSecrets(logged, secrets), []);
});
