import sinon from 'sinon';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { countReads, seedScheduledLoad } from '../helpers/sweep-load.ts';
import { sweep } from '../../shared/lifecycle/sweep.ts';

/**
 * Scheduled classes cost the sweep what is due, not what is scheduled: with 1,000 classes
 * scheduled over the next 14 days and 10 whose provisioning time has come, it reads a small
 * multiple of 10 documents. Reads are counted where the Firestore client returns them.
 */
let stack: TestStack;

test.before(async () => {
  stack = await startTestStack();
});
test.after.always(() => sinon.restore());

test('1,000 scheduled classes and 10 due: the due ones start, reads stay near 10', async (t) => {
  const now = new Date('2026-12-07T08:00:00.000Z');
  const { dueIds, laterIds } = await seedScheduledLoad(stack.services.store, 1_000, 10, now);
  const clock = sinon.stub(stack.services, 'now').returns(now);
  const publish = sinon.stub(stack.services.bus, 'publish').resolves('not sent');
  const { result: report, reads, paths } = await countReads(() => sweep(stack.services));
  publish.restore();
  clock.restore();

  t.deepEqual([...report.scheduledStarts].sort(), [...dueIds].sort());
  t.log(`documents read: ${reads} (sweep's own count ${report.documentsRead}) for 10 due of 1,000`);
  t.true(reads >= 10, 'the due classes were read');
  t.true(reads <= 3 * 10, `read ${reads} documents`);
  t.false(
    laterIds.some((id) => paths.has(`workshops/${id}`)),
    'no class scheduled later was read',
  );
  // They were started, not just read: records for their VMs and secrets exist; then clean up.
  for (const id of dueIds) {
    t.is((await stack.services.store.getWorkshop(id))!.status, 'provisioning');
    await stack.services.store.db.recursiveDelete(stack.services.store.workshop(id));
  }
});
