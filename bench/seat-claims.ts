/**
 * `npm run bench`: how many Firestore seat claims (create() attempts) 100 learners joining a
 * 20-seat class at once cost, with the join function's strategy (read the taken seats, try the
 * free ones in random order) against the obvious baseline (try seats 1, 2, 3… in order), both
 * measured in this run on the Firestore emulator. Prints the ratio; asserts nothing.
 */
import { randomBytes } from 'node:crypto';
import { DocumentReference, WriteBatch } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { startLocalStack } from '../local/stack.ts';
import { isAlreadyExists } from '../shared/store.ts';
import { services } from '../shared/services.ts';
import { TOPICS } from '../shared/topics.ts';

const LEARNERS = 100;
const SEATS = 20;

process.env.CT_LOG_LEVEL = 'silent';
const stack = await startLocalStack({
  projectId: `bench-${randomBytes(3).toString('hex')}`,
  port: 0,
  boot: false,
  sweepEveryMs: 0,
});
try {
  const s = services();
  let creates = 0;
  const create = DocumentReference.prototype.create;
  DocumentReference.prototype.create = function (this: DocumentReference, data: never) {
    if (this.parent.id === 'seats') creates += 1;
    return create.call(this, data);
  };
  // The join function claims a seat in a batch, with the record of its seatToken.
  const batchCreate = WriteBatch.prototype.create;
  WriteBatch.prototype.create = function (this: WriteBatch, ref: DocumentReference, data: never) {
    if (ref.parent.id === 'seats') creates += 1;
    return batchCreate.call(this, ref, data);
  } as typeof batchCreate;
  // Each learner from an address of their own, as in a class of home networks.
  const post = async (path: string, body?: unknown, address = 'instructor') =>
    (await fetch(`${stack.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-clarateach-client-ip': address },
      body: JSON.stringify(body ?? {}),
    }).then((r) => r.json())) as { id: string; joinCode: string; seat?: number };

  // The join function, end to end over HTTP.
  const ws = await post('/workshops', { name: 'Bench', seats: SEATS });
  await post(`/workshops/${ws.id}/start`);
  const [vm] = await s.store.getVms(ws.id);
  const secrets = await s.store.getSecrets(ws.id);
  // What the VM's startup script would publish.
  const pubsub = new PubSub({ projectId: stack.projectId });
  await pubsub.topic(TOPICS.vmReady).publishMessage({
    json: {
      workshopId: ws.id,
      vmName: vm!.name,
      state: 'ready',
      externalIp: '127.0.0.1',
      readyToken: secrets!.readyTokens[vm!.name],
    },
  });
  await pubsub.close();
  while ((await s.store.getWorkshop(ws.id))?.status !== 'ready')
    await new Promise((r) => setTimeout(r, 100));
  creates = 0;
  let t0 = performance.now();
  const ours = await Promise.all(
    Array.from({ length: LEARNERS }, (_, i) =>
      post('/join', { code: ws.joinCode, name: `L${i}` }, `learner-${i}`),
    ),
  );
  const oursMs = performance.now() - t0;
  const oursCreates = creates;

  // Baseline: the same number of concurrent learners, each trying seats in order.
  const seats = s.store.seats('baselinebaseline');
  creates = 0;
  t0 = performance.now();
  const baseline = await Promise.all(
    Array.from({ length: LEARNERS }, async () => {
      for (let seat = 1; seat <= SEATS; seat++) {
        try {
          await seats.doc(String(seat)).create({ seat } as never);
          return seat;
        } catch (error) {
          if (!isAlreadyExists(error)) throw error;
        }
      }
      return null;
    }),
  );
  const baselineMs = performance.now() - t0;
  const baselineCreates = creates;
  DocumentReference.prototype.create = create;

  const seated = ours.filter((r) => typeof r.seat === 'number').length;
  console.log(`learners ${LEARNERS}, seats ${SEATS}`);
  console.log(
    `join function: ${seated} seated, ${oursCreates} seat claims, ${oursMs.toFixed(0)} ms`,
  );
  console.log(
    `in-order baseline: ${baseline.filter((x) => x !== null).length} seated, ${baselineCreates} seat claims, ${baselineMs.toFixed(0)} ms`,
  );
  console.log(
    `claims ratio (join function / baseline): ${(oursCreates / baselineCreates).toFixed(3)}`,
  );
  console.log(
    `time ratio (join function over HTTP / baseline in-process): ${(oursMs / baselineMs).toFixed(2)}`,
  );
} finally {
  await stack.stop();
}
