/**
 * The sweep every minute, with a long history: 10,000 ended workshops and 50 whose time ran out;
 * and with 1,000 classes scheduled ahead, 10 of them due to start. Counts the documents it reads
 * (what Firestore bills), against the due count.
 */
import { sweep } from '../shared/lifecycle/sweep.ts';
import { countReads, seedScheduledLoad, seedSweepLoad } from '../test/helpers/sweep-load.ts';
import type { BenchStack } from './stack.ts';
import type { Row } from './stats.ts';

const ENDED = 10_000;
const DUE = 50;
const TARGET_FACTOR = 3;

const SCHEDULED = 1_000;
const SCHEDULED_DUE = 10;

/** Runs one sweep with its publishes dropped (the work it asks for is not its own cost). */
async function countedSweep(s: BenchStack['services']) {
  const publish = s.bus.publish;
  s.bus.publish = async () => 'not sent';
  try {
    return await countReads(() => sweep(s));
  } finally {
    s.bus.publish = publish;
  }
}

/** Run before `sweepReads`: it removes the classes it started, so that part reads none of them. */
export async function scheduledSweepReads(stack: BenchStack): Promise<Row[]> {
  const s = stack.services;
  const { dueIds } = await seedScheduledLoad(s.store, SCHEDULED, SCHEDULED_DUE, s.now());
  const { result: report, reads } = await countedSweep(s);
  await Promise.all(dueIds.map((id) => s.store.db.recursiveDelete(s.store.workshop(id))));
  const started = dueIds.filter((id) => report.scheduledStarts.includes(id)).length;
  if (started !== SCHEDULED_DUE) {
    throw new Error(`the sweep started ${started} of the ${SCHEDULED_DUE} due classes`);
  }
  return [
    {
      what: `sweep: documents read, ${SCHEDULED.toLocaleString('en')} scheduled classes, ${SCHEDULED_DUE} due to start`,
      measured: `${reads} (${(reads / SCHEDULED_DUE).toFixed(2)}× due), all ${SCHEDULED_DUE} due started`,
      baseline: `${SCHEDULED_DUE} due classes`,
      target: `≤ ${TARGET_FACTOR}× due (${TARGET_FACTOR * SCHEDULED_DUE})`,
      verdict: reads <= TARGET_FACTOR * SCHEDULED_DUE ? 'met' : 'missed',
    },
  ];
}

export async function sweepReads(stack: BenchStack): Promise<Row[]> {
  const s = stack.services;
  const { dueIds } = await seedSweepLoad(s.store, ENDED, DUE);
  const { result: report, reads } = await countedSweep(s);
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
