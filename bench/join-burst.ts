/**
 * 9:00: every learner of 25 classes pastes the code at once, all behind one address (a school's
 * NAT). 500 concurrent `POST /join` through the HTTP functions on the emulators, against the floor
 * measured in the same run: as many concurrent bare Firestore transactions, each claiming a seat
 * document and writing a token record, the least an exactly-once join can do.
 */
import { randomBytes } from 'node:crypto';
import { hashToken, newToken } from '../shared/core/secrets.ts';
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
  request: (i: number) => Promise<{ ms: number; result: T; refused?: boolean }>,
): Promise<Burst & { results: T[]; refused: number }> {
  const start = performance.now();
  const done = await Promise.all(Array.from({ length: count }, (_, i) => request(i)));
  return {
    latencies: done.map((d) => d.ms),
    results: done.map((d) => d.result),
    refused: done.filter((d) => d.refused).length,
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

  // The floor: a transaction per learner that claims seat i of its class and writes its token.
  const db = stack.services.store.db;
  const floorRoot = db.collection('benchFloor').doc(randomBytes(6).toString('hex'));
  cleanups.push(() => db.recursiveDelete(floorRoot));
  const floor = await burst(learners, async (i) => {
    const start = performance.now();
    const seat = floorRoot.collection('seats').doc(`${i % CLASSES}-${Math.floor(i / CLASSES)}`);
    const tokenHash = hashToken(newToken());
    await db.runTransaction(async (tx) => {
      if ((await tx.get(seat)).exists) throw new Error('the floor claimed a seat twice');
      tx.create(seat, { tokenHash, joinedAt: new Date().toISOString() });
      tx.create(floorRoot.collection('tokens').doc(tokenHash), { seat: seat.id });
    });
    return { ms: performance.now() - start, result: null };
  });

  // Every learner behind one address: only misses are limited, so none of them is.
  const room = fromLearner(0);
  const joins = await burst(learners, async (i) => {
    const r = await stack.call<{ workshopId?: string; seat?: number; error?: { code: string } }>(
      'POST',
      '/join',
      { code: classOf(i).joinCode, name: `Learner ${i}` },
      room,
    );
    return {
      ms: r.ms,
      result: r.status === 200 ? `${r.body.workshopId}/${r.body.seat}` : null,
      refused: r.status === 429,
    };
  });
  const seated = joins.results.filter((seat): seat is string => seat !== null);
  const givenTwice = seated.length - new Set(seated).size;
  // A learner who got no seat while the class had one for them is a join lost.
  const seatsHeld = (
    await Promise.all(classes.map((c) => stack.services.store.countSeats(c.id)))
  ).reduce((a, b) => a + b, 0);
  const lost = learners - Math.min(seated.length, seatsHeld);

  const floorP99 = percentile(floor.latencies, 99);
  const joinP99 = percentile(joins.latencies, 99);
  const ratio = joinP99 / floorP99;
  const what = `join burst: ${learners} learners behind one address, ${CLASSES} classes × ${SEATS} seats`;
  const perSecond = (b: Burst) => `${(learners / (b.wallMs / 1000)).toFixed(0)}/s`;
  const rows: Row[] = [
    {
      what: `${what}: p50, p99, throughput`,
      measured: `${ms(percentile(joins.latencies, 50))}, ${ms(joinP99)} (${times(ratio)} floor p99), ${perSecond(joins)}`,
      baseline: `${learners} bare transactions (claim a seat, write a token): ${ms(percentile(floor.latencies, 50))}, ${ms(floorP99)}, ${perSecond(floor)}`,
      target: `join p99 ≤ ${TARGET_RATIO}× floor p99`,
      verdict: ratio <= TARGET_RATIO ? 'met' : 'missed',
    },
    {
      what: `${what}: seats given twice, joins lost, 429s`,
      measured: `${givenTwice}, ${lost}, ${joins.refused} (${seatsHeld} seats held)`,
      baseline: `${learners} seats free`,
      target: '0, 0, 0',
      verdict: givenTwice === 0 && lost === 0 && joins.refused === 0 ? 'met' : 'missed',
    },
  ];
  return rows;
}
