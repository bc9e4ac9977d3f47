/**
 * The join burst's floor, in a Node process of its own (forked by bench/join-burst.ts, as the join
 * function runs in one of its own): one Firestore client on the bench's emulator, warmed by one
 * transaction, then on the parent's word as many concurrent bare transactions as learners, each
 * claiming seat i of its class and writing its token record, the least an exactly-once join can
 * do. It answers with each transaction's time, taken here, and exits.
 */
import { Firestore } from '@google-cloud/firestore';
import { hashToken, newToken } from '../shared/core/secrets.ts';

export interface FloorOrder {
  /** The document under which the seats and tokens are written (the parent deletes it). */
  root: string;
  count: number;
  classes: number;
}

export interface FloorAnswer {
  latencies: number[];
  wallMs: number;
}

const send = (message: unknown) => process.send!(message);
const db = new Firestore({ projectId: process.env.GCP_PROJECT, ignoreUndefinedProperties: true });
// The join function's instance answered one call before its burst; so does this one.
const warm = db.collection('benchFloorWarmUp').doc(String(process.pid));
await db.runTransaction(async (tx) => {
  await tx.get(warm);
  tx.set(warm, { at: new Date().toISOString() });
});
await warm.delete();
send({ ready: true });

process.once('message', (order: FloorOrder) => {
  void (async () => {
    const root = db.doc(order.root);
    const start = performance.now();
    const latencies = await Promise.all(
      Array.from({ length: order.count }, async (_, i) => {
        const begin = performance.now();
        const seat = root
          .collection('seats')
          .doc(`${i % order.classes}-${Math.floor(i / order.classes)}`);
        const tokenHash = hashToken(newToken());
        await db.runTransaction(async (tx) => {
          if ((await tx.get(seat)).exists) throw new Error('the floor claimed a seat twice');
          tx.create(seat, { tokenHash, joinedAt: new Date().toISOString() });
          tx.create(root.collection('tokens').doc(tokenHash), { seat: seat.id });
        });
        return performance.now() - begin;
      }),
    );
    const answer: FloorAnswer = { latencies, wallMs: performance.now() - start };
    send(answer);
    await db.terminate();
    process.disconnect();
  })().catch((error: unknown) => {
    send({ error: error instanceof Error ? error.message : String(error) });
    process.exitCode = 1;
    process.disconnect();
  });
});
