/**
 * 9:00: every learner of 25 classes pastes the code at once. 500 concurrent `POST /join` through
 * the HTTP functions on the emulators, against as many concurrent `GET /workshops/{id}` (a few
 * reads each) in the same run.
 */
import { fromLearner, type BenchStack } from './stack.ts';
import { ms, percentile, times, type Row } from './stats.ts';

const CLASSES = 25;
const SEATS = 20;
const TARGET_RATIO = 1.5;

interface Burst {
  latencies: number[];
  wallMs: number;
}

async function burst<T>(
  count: number,
  request: (i: number) => Promise<{ ms: number; result: T }>,
): Promise<Burst & { results: T[] }> {
  const start = performance.now();
  const done = await Promise.all(Array.from({ length: count }, (_, i) => request(i)));
  return {
    latencies: done.map((d) => d.ms),
    results: done.map((d) => d.result),
    wallMs: performance.now() - start,
  };
}

export async function joinBurst(stack: BenchStack, cleanups: Array<() => Promise<void>>) {
  cleanups.push(() => stack.endClasses());
  const classes = await stack.readyClasses(CLASSES, SEATS);
  const learners = CLASSES * SEATS;
  const classOf = (i: number) => classes[i % CLASSES]!;
  // Each function answers once first: its module is imported on its first call (the cold start
  // has its own row).
  await stack.call('GET', `/workshops/${classes[0]!.id}`, undefined, classes[0]!.owner);
  await stack.call('POST', '/join', { code: 'NOSUCHCODE', name: 'warm-up' }, fromLearner(9999));

  const gets = await burst(learners, async (i) => {
    const r = await stack.call('GET', `/workshops/${classOf(i).id}`, undefined, classOf(i).owner);
    return { ms: r.ms, result: r.status };
  });
  if (gets.results.some((st) => st !== 200)) throw new Error('a GET /workshops/{id} failed');

  const joins = await burst(learners, async (i) => {
    const r = await stack.call<{ workshopId?: string; seat?: number }>(
      'POST',
      '/join',
      { code: classOf(i).joinCode, name: `Learner ${i}` },
      fromLearner(i),
    );
    return { ms: r.ms, result: r.status === 200 ? `${r.body.workshopId}/${r.body.seat}` : null };
  });
  const seated = joins.results.filter((seat): seat is string => seat !== null);
  const givenTwice = seated.length - new Set(seated).size;
  // A learner who got no seat while the class had one for them is a join lost.
  const seatsHeld = (
    await Promise.all(classes.map((c) => stack.services.store.countSeats(c.id)))
  ).reduce((a, b) => a + b, 0);
  const lost = learners - Math.min(seated.length, seatsHeld);

  const getP99 = percentile(gets.latencies, 99);
  const joinP99 = percentile(joins.latencies, 99);
  const ratio = joinP99 / getP99;
  const what = `join burst: ${learners} learners, ${CLASSES} classes × ${SEATS} seats`;
  const perSecond = (b: Burst) => `${(learners / (b.wallMs / 1000)).toFixed(0)}/s`;
  const rows: Row[] = [
    {
      what: `${what}: p50, p99, throughput`,
      measured: `${ms(percentile(joins.latencies, 50))}, ${ms(joinP99)} (${times(ratio)} GET p99), ${perSecond(joins)}`,
      baseline: `${learners} GET /workshops/{id}: ${ms(percentile(gets.latencies, 50))}, ${ms(getP99)}, ${perSecond(gets)}`,
      target: `join p99 ≤ ${TARGET_RATIO}× GET p99`,
      verdict: ratio <= TARGET_RATIO ? 'met' : 'missed',
    },
    {
      what: `${what}: seats given twice, joins lost`,
      measured: `${givenTwice}, ${lost} (${seatsHeld} seats held)`,
      baseline: `${learners} seats free`,
      target: '0, 0',
      verdict: givenTwice === 0 && lost === 0 ? 'met' : 'missed',
    },
  ];
  return rows;
}
