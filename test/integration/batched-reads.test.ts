import { Firestore } from '@google-cloud/firestore';
import sinon from 'sinon';
import { emulatorTest as test, emulators } from '../helpers/emulators.ts';
import { BatchedReads } from '../../shared/batched-reads.ts';

let db: Firestore;

test.before(async () => {
  const env = await emulators();
  db = new Firestore({ projectId: env.projectId });
});
test.afterEach.always(() => sinon.restore());
test.after.always(async () => {
  await db?.recursiveDelete(db.collection('batched'));
  await db?.terminate();
});

test.serial(
  'reads asked for together are one getAll, each document once, each answered',
  async (t) => {
    const col = db.collection('batched');
    await Promise.all([col.doc('a').set({ n: 1 }), col.doc('b').set({ n: 2 })]);
    const reads = new BatchedReads(db);
    const getAll = sinon.spy(db, 'getAll');
    const asked = ['a', 'b', 'a', 'missing', 'b', 'a'];
    const snaps = await Promise.all(asked.map((id) => reads.get(col.doc(id))));
    t.is(getAll.callCount, 1);
    t.deepEqual(
      getAll.firstCall.args.map((ref) => (ref as { id: string }).id),
      ['a', 'b', 'missing'],
    );
    t.deepEqual(
      snaps.map((s) => (s.exists ? s.data()!.n : null)),
      [1, 2, 1, null, 2, 1],
    );
    // A read asked for after the first were sent is sent anew, and sees a write made since.
    await col.doc('a').set({ n: 3 });
    t.is((await reads.get(col.doc('a'))).data()!.n, 3);
    t.is(getAll.callCount, 2);
  },
);

test.serial(
  'past 100 documents the reads are split; a failed call fails only its own',
  async (t) => {
    const col = db.collection('batched');
    const reads = new BatchedReads(db);
    const getAll = sinon.spy(db, 'getAll');
    const snaps = await Promise.all(
      Array.from({ length: 250 }, (_, i) => reads.get(col.doc(`many-${i}`))),
    );
    t.is(snaps.length, 250);
    t.true(snaps.every((s, i) => s.ref.id === `many-${i}` && !s.exists));
    t.deepEqual(
      getAll.getCalls().map((c) => c.args.length),
      [100, 100, 50],
    );
    sinon.restore();

    // Fault injection: the first call fails (Firestore unavailable), the second answers.
    const real = db.getAll.bind(db);
    sinon
      .stub(db, 'getAll')
      .onFirstCall()
      .rejects(Object.assign(new Error('unavailable'), { code: 14 }))
      .callsFake(real);
    const answers = await Promise.allSettled(
      Array.from({ length: 150 }, (_, i) => reads.get(col.doc(`fail-${i}`))),
    );
    t.true(answers.slice(0, 100).every((a) => a.status === 'rejected'));
    t.true(answers.slice(100).every((a) => a.status === 'fulfilled'));
    // The next reads are sent anew.
    t.false((await reads.get(col.doc('fail-0'))).exists);
  },
);
