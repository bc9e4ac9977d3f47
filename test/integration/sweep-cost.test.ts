import {
  DocumentReference,
  Query,
  Transaction,
  QuerySnapshot,
  type DocumentSnapshot,
} from '@google-cloud/firestore';
import sinon from 'sinon';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { sweep } from '../../shared/lifecycle/sweep.ts';
import { planVms } from '../../shared/core/plan.ts';
import type { WorkshopRecord } from '../../shared/core/workshop.ts';

/**
 * The sweep's cost grows with the number of due workshops, not with history: with 10,000 ended
 * workshops and 50 due ones it reads a small multiple of 50 documents. Reads are counted where
 * the Firestore client returns them, not timed.
 */
let stack: TestStack;

test.before(async () => {
  stack = await startTestStack();
});
test.after.always(() => sinon.restore());

function record(id: string, status: WorkshopRecord['status'], expiresAt: string): WorkshopRecord {
  const vmPlan = planVms(3);
  return {
    id,
    name: `w ${id}`,
    ownerId: 'load@test',
    seats: 3,
    durationMinutes: 60,
    image: 'img',
    spot: false,
    status,
    joinCode: `C${id}`,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    startedAt: '2026-01-01T00:00:00.000Z',
    readyAt: null,
    endingAt: status === 'ended' ? '2026-01-01T01:00:00.000Z' : null,
    endedAt: status === 'ended' ? '2026-01-01T01:00:00.000Z' : null,
    expiresAt,
    provisioningDeadline: '2026-01-01T00:15:00.000Z',
    endReason: status === 'ended' ? 'ttl' : null,
    error: null,
    seatsReady: 3,
    vmPlan,
    estimatedCost: { currency: 'USD', hourly: 0.15, total: 0.15 },
  };
}

test('10,000 ended workshops and 50 due: the due ones end, reads stay near 50', async (t) => {
  const db = stack.services.store.db;
  const past = '2026-01-01T01:00:00.000Z';
  const ids = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) =>
      `${prefix}${String(i).padStart(6, '0')}`.replace(
        /[0189]/g,
        (d) => 'abcd'['0189'.indexOf(d)]!,
      ),
    );
  const endedIds = ids('ended', 10_000);
  const dueIds = ids('duexx', 50);
  const docs = [
    ...endedIds.map((id) => record(id, 'ended', past)),
    ...dueIds.map((id) => record(id, 'ready', past)),
  ];
  for (let i = 0; i < docs.length; i += 500) {
    const batch = db.batch();
    for (const doc of docs.slice(i, i + 500)) batch.set(stack.services.store.workshop(doc.id), doc);
    await batch.commit();
  }

  const read = new Set<string>();
  let reads = 0;
  const count = <T extends QuerySnapshot | DocumentSnapshot>(snap: T): T => {
    if (snap instanceof QuerySnapshot) {
      reads += snap.size;
      for (const d of snap.docs) read.add(d.ref.path);
    } else {
      reads += 1;
      read.add((snap as DocumentSnapshot).ref.path);
    }
    return snap;
  };
  const queryGet = Query.prototype.get;
  sinon.replace(Query.prototype, 'get', async function (this: Query) {
    return count(await queryGet.call(this));
  });
  const docGet = DocumentReference.prototype.get;
  sinon.replace(DocumentReference.prototype, 'get', async function (this: DocumentReference) {
    return count(await docGet.call(this));
  });
  const txGet = Transaction.prototype.get;
  sinon.replace(Transaction.prototype, 'get', async function (this: Transaction, target: never) {
    return count((await txGet.call(this, target)) as unknown as DocumentSnapshot) as never;
  } as typeof txGet);
  // The teardown the sweep asks for is not part of the sweep's own cost.
  sinon.stub(stack.services.bus, 'publish').resolves('not sent');

  const report = await sweep(stack.services);
  sinon.restore();

  t.deepEqual([...report.expired].sort(), [...dueIds].sort());
  const statuses = await Promise.all(
    dueIds.map(async (id) => (await stack.services.store.getWorkshop(id))!.status),
  );
  t.true(statuses.every((s) => s === 'ending'));
  t.log(
    `documents read: ${reads} (sweep's own count ${report.documentsRead}) for 50 due of 10,050`,
  );
  t.true(reads >= 50, 'the due workshops were read');
  t.true(reads <= 3 * 50, `read ${reads} documents`);
  t.true(report.documentsRead <= reads);
  t.false(
    endedIds.some((id) => read.has(`workshops/${id}`)),
    'no ended workshop was read',
  );
});
