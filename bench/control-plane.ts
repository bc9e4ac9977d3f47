/**
 * The instructor presses start: `POST start` → `workshop.started` → onWorkshopStarted inserts the
 * VM → the VM reports `vm.ready` at once → onVmReady marks the class ready. Timed end to end for a
 * 20-seat class (one VM), median of several runs after a warm-up, with the time spent in each
 * kind of hop. Baseline: a bare Pub/Sub push (an empty message to the functions server's /health).
 */
import { PubSub } from '@google-cloud/pubsub';
import { instructor, type BenchStack } from './stack.ts';
import { coveredTime, median, ms, type Row } from './stats.ts';

const SEATS = 20;
const RUNS = 5;
const TARGET_MS = 2_000;

interface Run {
  total: number;
  http: number;
  pubsub: number;
  compute: number;
  firestore: number;
}

const READY_WITHIN_MS = 30_000;

class NotReady extends Error {}

async function until<T>(what: string, check: () => Promise<T | undefined>) {
  const deadline = Date.now() + READY_WITHIN_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new NotReady(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** From each publish to the first delivery of its topic after it. */
function deliveryTimes(stack: BenchStack, topics: readonly string[]): number[] {
  const { published, deliveries } = stack.probes;
  return topics.map((topic) => {
    const sent = published.find(([, t]) => t === topic)?.[0];
    const arrived = deliveries.find(([at, t]) => t === topic && sent !== undefined && at >= sent);
    if (sent === undefined || !arrived) throw new Error(`no delivery of ${topic} was seen`);
    return arrived[0] - sent;
  });
}

async function startToReady(stack: BenchStack, run: number): Promise<Run> {
  const owner = instructor(`starter${run}`);
  const body = { name: 'Bench start', seats: SEATS };
  const created = await stack.call('POST', '/workshops', body, owner);
  if (created.status !== 201) throw new Error(`create: ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  stack.made.add(id);
  try {
    stack.probes.clear();
    const t0 = performance.now();
    const started = await stack.call('POST', `/workshops/${id}/start`, undefined, owner);
    if (started.status !== 202) throw new Error(`start: ${JSON.stringify(started.body)}`);
    // Ready when the vm.ready delivery that made it so was answered.
    const readyAt = await until(`workshop ${id} ready`, async () => {
      const answered = [...stack.probes.answered].reverse().find(([, t]) => t === 'vm.ready');
      if (!answered) return undefined;
      return (await stack.services.store.getWorkshop(id))?.status === 'ready'
        ? answered[0]
        : undefined;
    });
    const within = (list: ReadonlyArray<readonly [number, number]>) =>
      coveredTime(list.filter(([s]) => s >= t0 && s <= readyAt));
    return {
      total: readyAt - t0,
      http: started.ms,
      pubsub: deliveryTimes(stack, ['workshop.started', 'vm.ready']).reduce((a, b) => a + b, 0),
      compute: within(stack.probes.intervals.compute),
      firestore: within(stack.probes.intervals.firestore),
    };
  } finally {
    await stack.endClasses([id]);
  }
}

/** A bare push delivery: publish an empty message to a topic pushing to /health. */
async function pushFloor(stack: BenchStack, cleanups: Array<() => Promise<void>>) {
  const pubsub = new PubSub({ projectId: stack.local.projectId });
  const [topic] = await pubsub.topic('bench.floor').get({ autoCreate: true });
  const [subscription] = await topic.createSubscription('bench.floor.push', {
    pushConfig: { pushEndpoint: `${stack.local.url}/health?floor` },
  });
  cleanups.push(async () => {
    await subscription.delete().catch(() => undefined);
    await topic.delete().catch(() => undefined);
    await pubsub.close();
  });
  const samples: number[] = [];
  for (let i = -1; i < RUNS; i++) {
    // At a random moment, as the chain's publishes are: the emulator pushes in rounds.
    await new Promise((r) => setTimeout(r, Math.random() * 200));
    stack.probes.clear();
    stack.probes.published.push([performance.now(), 'floor']);
    await topic.publishMessage({ data: Buffer.from('{}') });
    await until('the bare push', async () =>
      stack.probes.deliveries.some(([, t]) => t === 'floor') ? true : undefined,
    );
    // The first delivery (a new subscription's) is a warm-up, as the chain's are.
    if (i >= 0) samples.push(deliveryTimes(stack, ['floor'])[0]!);
  }
  return median(samples);
}

export async function controlPlane(
  stack: BenchStack,
  cleanups: Array<() => Promise<void>>,
): Promise<Row[]> {
  cleanups.push(() => stack.endClasses());
  // Warm-up: the functions' modules load on their first call.
  await startToReady(stack, 0).catch((error: unknown) => {
    if (!(error instanceof NotReady)) throw error;
  });
  const runs: Run[] = [];
  let late = 0;
  for (let i = 1; i <= RUNS; i++) {
    try {
      runs.push(await startToReady(stack, i));
    } catch (error) {
      // A class not ready within the wait is a (very) slow run, not a failure to measure.
      if (!(error instanceof NotReady)) throw error;
      late += 1;
    }
  }
  if (runs.length === 0) throw new Error(`no class was ready within ${READY_WITHIN_MS / 1000} s`);
  const floor = await pushFloor(stack, cleanups);
  const m = (key: keyof Run) => ms(median(runs.map((r) => r[key])));
  const total = median([...runs.map((r) => r.total), ...Array<number>(late).fill(Infinity)]);
  const lateNote = late
    ? `; ${late} of ${RUNS} runs not ready within ${READY_WITHIN_MS / 1000} s`
    : '';
  return [
    {
      what: `control plane: POST start → ready, ${SEATS}-seat class, VM reports at once (median of ${RUNS})`,
      measured: `${Number.isFinite(total) ? ms(total) : `> ${ms(READY_WITHIN_MS)}`}: HTTP ${m('http')}, Pub/Sub delivery ${m('pubsub')} (2 hops), Compute ${m('compute')}, Firestore writes ${m('firestore')}${lateNote}`,
      baseline: `bare Pub/Sub push: ${ms(floor)} a hop`,
      target: `< ${ms(TARGET_MS)} median`,
      verdict: total < TARGET_MS ? 'met' : 'missed',
    },
  ];
}
