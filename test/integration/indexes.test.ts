import { readFileSync } from 'node:fs';
import { Query, Transaction } from '@google-cloud/firestore';
import sinon from 'sinon';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { TOPICS } from '../../shared/topics.ts';

/**
 * The emulator runs any query without an index; production Firestore refuses a query whose
 * composite index is missing. So every query the system runs is captured here and checked against
 * firestore.indexes.json.
 */
interface IndexField {
  fieldPath: string;
  order: 'ASCENDING' | 'DESCENDING';
}
interface IndexDef {
  collectionGroup: string;
  fields: IndexField[];
}
interface Shape {
  collection: string;
  equality: string[];
  /** The inequality or order-by fields, in order, with their direction. */
  ordered: IndexField[];
}

const EQUALITY = new Set(['EQUAL', 'IN', 'ARRAY_CONTAINS', 'ARRAY_CONTAINS_ANY']);

function shapeOf(query: Query): Shape {
  const options = (
    query as unknown as {
      _queryOptions: {
        collectionId: string;
        filters: { getFlattenedFilters(): { field: { toString(): string }; op: string }[] }[];
        fieldOrders: { field: { toString(): string }; direction: 'ASCENDING' | 'DESCENDING' }[];
      };
    }
  )._queryOptions;
  const flat = options.filters.flatMap((f) => f.getFlattenedFilters());
  const equality = flat.filter((f) => EQUALITY.has(f.op)).map((f) => f.field.toString());
  const ordered: IndexField[] = options.fieldOrders.map((o) => ({
    fieldPath: o.field.toString(),
    order: o.direction,
  }));
  for (const f of flat.filter((f) => !EQUALITY.has(f.op))) {
    if (!ordered.some((o) => o.fieldPath === f.field.toString())) {
      ordered.unshift({ fieldPath: f.field.toString(), order: 'ASCENDING' });
    }
  }
  return { collection: options.collectionId, equality: [...new Set(equality)], ordered };
}

/** Single-field indexes (automatic) serve a query on one field; more need a composite index. */
function covered(shape: Shape, indexes: IndexDef[]): boolean {
  const fields = new Set([...shape.equality, ...shape.ordered.map((o) => o.fieldPath)]);
  if (fields.size <= 1) return true;
  return indexes.some((index) => {
    if (index.collectionGroup !== shape.collection) return false;
    const head = index.fields.slice(0, shape.equality.length).map((f) => f.fieldPath);
    const tail = index.fields.slice(shape.equality.length);
    return (
      head.length === shape.equality.length &&
      shape.equality.every((f) => head.includes(f)) &&
      shape.ordered.every(
        (o, i) => tail[i]?.fieldPath === o.fieldPath && tail[i]?.order === o.order,
      )
    );
  });
}

let stack: TestStack;
test.before(async () => {
  stack = await startTestStack();
});
test.after.always(() => sinon.restore());

test('every query the system runs has the index production Firestore needs', async (t) => {
  const indexes = (
    JSON.parse(readFileSync('firestore.indexes.json', 'utf8')) as { indexes: IndexDef[] }
  ).indexes;
  const shapes = new Map<string, Shape>();
  const get = Query.prototype.get;
  sinon.replace(Query.prototype, 'get', function (this: Query) {
    const shape = shapeOf(this);
    shapes.set(JSON.stringify(shape), shape);
    return get.call(this);
  });
  // Queries inside a transaction (the instructor quota at start) do not go through Query.get.
  const txGet = Transaction.prototype.get;
  sinon.replace(Transaction.prototype, 'get', function (this: Transaction, target: unknown) {
    if (target instanceof Query) {
      const shape = shapeOf(target);
      shapes.set(JSON.stringify(shape), shape);
    }
    return (txGet as (t: unknown) => unknown).call(this, target);
  } as typeof txGet);

  // Every path that queries: the instructor's list, the sweep with a provisioning workshop past
  // its redrive time, and learners joining and coming back.
  const ws = (await stack.api('POST', '/workshops', { name: 'Indexes', seats: 2 })).body;
  await stack.api('GET', '/workshops');
  await stack.api('POST', `/workshops/${ws.id}/start`);
  const [report] = await stack.readyReports(ws.id);
  await stack.push(TOPICS.vmReady, report);
  const seat = (await stack.api('POST', '/join', { code: ws.joinCode, name: 'A' })).body;
  await stack.api('POST', '/join', { code: ws.joinCode, name: 'A', seatToken: seat.seatToken });
  // A class scheduled ahead (its lead is looked up in the recorded boots), which the sweep starts.
  const scheduled = (
    await stack.api('POST', '/workshops', {
      name: 'Scheduled',
      seats: 1,
      startAt: new Date(Date.now() + 5 * 60_000).toISOString(),
    })
  ).body;
  sinon.stub(stack.services, 'now').returns(new Date(Date.now() + 3 * 60_000));
  await stack.push(TOPICS.workshopSweep, {});
  await stack.api('DELETE', `/workshops/${scheduled.id}`);
  await stack.untilStatus(scheduled.id, 'ended');
  // Ending it drops its seats' token records by a query too.
  await stack.api('DELETE', `/workshops/${ws.id}`);
  await stack.untilStatus(ws.id, 'ended');

  const list = [...shapes.values()];
  t.true(list.some((s) => s.collection === 'workshops' && s.equality.includes('ownerId')));
  t.true(list.some((s) => s.ordered.some((o) => o.fieldPath === 'expiresAt')));
  t.true(list.some((s) => s.ordered.some((o) => o.fieldPath === 'endingAt')));
  t.true(list.some((s) => s.collection === 'seatTokens' && s.equality.includes('workshopId')));
  t.true(list.some((s) => s.ordered.some((o) => o.fieldPath === 'schedule.provisionAt')));
  t.true(list.some((s) => s.collection === 'vmBoots' && s.equality.includes('shape')));
  t.true(
    list.some(
      (s) =>
        s.collection === 'workshops' && ['ownerId', 'status'].every((f) => s.equality.includes(f)),
    ),
    'the instructor quota query',
  );
  const missing = list.filter((s) => !covered(s, indexes));
  t.deepEqual(missing, [], 'queries without a composite index in firestore.indexes.json');

  // The checker itself: without the indexes file, the composite queries are reported.
  t.true(list.filter((s) => !covered(s, [])).length >= 3);
  sinon.restore();
});
