/**
 * The sweep every minute, with a long history: 10,000 ended workshops and 50 whose time ran out.
 * Counts the documents it reads (what Firestore bills), against the due count.
 */
import { sweep } from '../shared/lifecycle/sweep.ts';
import { countReads, seedSweepLoad } from '../test/helpers/sweep-load.ts';
import type { BenchStack } from './stack.ts';
import type { Row } from './stats.ts';

const ENDED = 10_000;
const DUE = 50;
const TARGET_FACTOR = 3;

export async function sweepReads(stack: BenchStack): Promise<Row[]> {
  const s = stack.services;
  const { dueIds } = await seedSweepLoad(s.store, ENDED, DUE);
  // The teardowns it asks for are not part of the sweep's own cost.
  const publish = s.bus.publish;
  s.bus.publish = async () => 'not sent';
  let counted;
  try {
    counted = await countReads(() => sweep(s));
  } finally {
    s.bus.publish = publish;
  }
  const { result: report, reads } = counted;
  const ended = dueIds.filter((id) => report.expired.includes(id)).length;
  if (ended !== DUE) throw new Error(`the sweep ended ${ended} of the ${DUE} due workshops`);
  return [
    {
      what: `sweep: documents read, ${ENDED.toLocaleString('en')} ended + ${DUE} due workshops`,
      measured: `${reads} (${(reads / DUE).toFixed(2)}× due), all ${DUE} due ended`,
      baseline: `${DUE} due workshops`,
      target: `≤ ${TARGET_FACTOR}× due (${TARGET_FACTOR * DUE})`,
      verdict: reads <= TARGET_FACTOR * DUE ? 'met' : 'missed',
    },
  ];
}
