// A Firestore full of history for the sweep: many ended workshops and a few due ones; and a
// counter of the documents the Firestore client returns. Used by the sweep-cost test and the bench.
import {
  DocumentReference,
  Query,
  QuerySnapshot,
  Transaction,
  type DocumentSnapshot,
} from '@google-cloud/firestore';
import { planVms } from '../../shared/core/plan.ts';
import { learnedLead, planSchedule } from '../../shared/core/schedule.ts';
import type { WorkshopRecord } from '../../shared/core/workshop.ts';
import type { Store } from '../../shared/store.ts';

const PAST = '2026-01-01T01:00:00.000Z';

function record(id: string, status: WorkshopRecord['status']): WorkshopRecord {
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
    endingAt: status === 'ended' ? PAST : null,
    endedAt: status === 'ended' ? PAST : null,
    expiresAt: PAST,
    provisioningDeadline: '2026-01-01T00:15:00.000Z',
    endReason: status === 'ended' ? 'ttl' : null,
    error: null,
    seatsReady: 3,
    vmPlan: planVms(3),
    estimatedCost: { currency: 'USD', hourly: 0.15, total: 0.15 },
  };
}

/** Workshop ids `<prefix>000000`…, made of allowed characters only. */
function ids(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    `${prefix}${String(i).padStart(6, '0')}`.replace(/[0189]/g, (d) => 'abcd'['0189'.indexOf(d)]!),
  );
}

/** Writes `ended` ended workshops and `due` ready ones whose time ran out; returns their ids. */
export async function seedSweepLoad(
  store: Store,
  ended: number,
  due: number,
): Promise<{ endedIds: string[]; dueIds: string[] }> {
  const endedIds = ids('ended', ended);
  const dueIds = ids('duexx', due);
  const docs = [
    ...endedIds.map((id) => record(id, 'ended')),
    ...dueIds.map((id) => record(id, 'ready')),
  ];
  const batches: Array<Promise<unknown>> = [];
  for (let i = 0; i < docs.length; i += 500) {
    const batch = store.db.batch();
    for (const doc of docs.slice(i, i + 500)) batch.set(store.workshop(doc.id), doc);
    batches.push(batch.commit());
  }
  await Promise.all(batches);
  return { endedIds, dueIds };
}

/**
 * Writes `scheduled` classes scheduled ahead, of which `due` have reached their provisioning time
 * at `now` and the others start over the next 14 days; each has an owner of its own (instructor
 * limits count per owner). Returns the due ones' ids.
 */
export async function seedScheduledLoad(
  store: Store,
  scheduled: number,
  due: number,
  now: Date,
): Promise<{ dueIds: string[]; laterIds: string[] }> {
  const dueIds = ids('schdu', due);
  const laterIds = ids('schla', scheduled - due);
  const lead = learnedLead([]);
  const at = (minutes: number) => new Date(now.getTime() + minutes * 60_000).toISOString();
  const docs = [...dueIds, ...laterIds].map((id, i): WorkshopRecord => {
    // Due ones start within their lead; the others from 11 minutes to 14 days ahead.
    const startAt = i < due ? at(5) : at(11 + ((i * 20_149) % (14 * 24 * 60 - 11)));
    const schedule = planSchedule(startAt, lead, null);
    return {
      ...record(id, 'created'),
      ownerId: `load-${id}@test`,
      startedAt: null,
      provisioningDeadline: null,
      seatsReady: 0,
      expiresAt: new Date(Date.parse(startAt) + 60 * 60_000).toISOString(),
      schedule,
    };
  });
  await Promise.all(
    Array.from({ length: Math.ceil(docs.length / 500) }, (_, b) => {
      const batch = store.db.batch();
      for (const doc of docs.slice(b * 500, b * 500 + 500)) batch.set(store.workshop(doc.id), doc);
      return batch.commit();
    }),
  );
  return { dueIds, laterIds };
}

/**
 * Counts the documents the Firestore client returns (queries, document and transaction reads)
 * while `body` runs: what Firestore bills as reads.
 */
export async function countReads<T>(
  body: () => Promise<T>,
): Promise<{ result: T; reads: number; paths: Set<string> }> {
  const paths = new Set<string>();
  let reads = 0;
  const count = <S extends QuerySnapshot | DocumentSnapshot>(snap: S): S => {
    if (snap instanceof QuerySnapshot) {
      reads += snap.size;
      for (const d of snap.docs) paths.add(d.ref.path);
    } else {
      reads += 1;
      paths.add((snap as DocumentSnapshot).ref.path);
    }
    return snap;
  };
  const queryGet = Query.prototype.get;
  const docGet = DocumentReference.prototype.get;
  const txGet = Transaction.prototype.get;
  Query.prototype.get = async function (this: Query) {
    return count(await queryGet.call(this));
  };
  DocumentReference.prototype.get = async function (this: DocumentReference) {
    return count(await docGet.call(this));
  };
  Transaction.prototype.get = async function (this: Transaction, target: never) {
    return count((await txGet.call(this, target)) as unknown as DocumentSnapshot) as never;
  } as typeof txGet;
  try {
    return { result: await body(), reads, paths };
  } finally {
    Query.prototype.get = queryGet;
    DocumentReference.prototype.get = docGet;
    Transaction.prototype.get = txGet;
  }
}
