import sinon from 'sinon';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { countReads, seedSweepLoad } from '../helpers/sweep-load.ts';
import { sweep } from '../../shared/lifecycle/sweep.ts';

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

test('10,000 ended workshops and 50 due: the due ones end, reads stay near 50', async (t) => {
  const { endedIds, dueIds } = await seedSweepLoad(stack.services.store, 10_000, 50);
  // The teardown the sweep asks for is not part of the sweep's own cost.
  const publish = sinon.stub(stack.services.bus, 'publish').resolves('not sent');
  const { result: report, reads, paths } = await countReads(() => sweep(stack.services));
  publish.restore();

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
    endedIds.some((id) => paths.has(`workshops/${id}`)),
    'no ended workshop was read',
  );
});
