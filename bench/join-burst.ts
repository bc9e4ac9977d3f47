/**
 * 9:00: every learner of 25 classes pastes the code at once, all behind one address (a school's
 * NAT). 500 concurrent `POST /join` against the floor measured in the same run: as many
 * concurrent bare Firestore transactions, each claiming a seat document and writing a token
 * record, the least an exactly-once join can do. Both against the bench's Firestore emulator.
 *
 * Each side runs in a Node process of its own, as deployed: never in the load generator's.
 * The join function is one instance of its own, started the way Cloud Run starts it: the
 * Functions Framework's own `functions-framework --target=join` on the built dist/ (the main
 * module of package.json), on the Node it is deployed on. The floor is a fresh Node process with
 * one Firestore client (bench/floor-instance.ts). Each answers one call before its burst (the
 * join instance a join with an unknown code: its module and client are loaded on a first call).
 * This process only sends the 500 requests and times them, each from the moment the learner
 * sends it; the classes are made beforehand through the bench's local stack. Like Cloud Run's
 * front end, it keeps at most the instance's concurrency (80, deploy.sh) in flight on connections
 * it keeps open, and holds the rest until one is free (each learner's time includes that wait).
 * Until 2026-12-06 each request had a connection of its own and all 500 reached the instance at
 * once: a burst one instance is never sent when deployed, and connection set-up the bench's own
 * process paid for on the cores it shares (1.0–1.2 ms of CPU per learner, now 0.2–0.4 ms).
 * Before 2026-12-05, the functions and the floor ran inside this process, whose event loop then
 * served the 500 requests, their handlers and the load generator at once, and the Functions
 * Framework's per-request `domain` (it enables async hooks for the whole process) slowed the
 * floor as well. Production scales a function out to many instances; this
 * machine's cores are shared by one instance, the emulator and this process, so one instance
 * takes the whole burst: the figure is the worst case of one instance, not a model of many.
 *
 * A third row says where the CPU went, per learner, in each process (Linux /proc): the join
 * instance or the floor's process, the Firestore emulator, and this bench process (the load
 * generator, with the local stack idle beside it). On a shared machine the times swing with the
 * load; the CPU per learner moves much less, and when every core is busy the p99 ratio roughly
 * follows the ratio of the CPU the two sides need.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../local/ports.ts';
import { ROOT } from '../test/helpers/import-graph.ts';
import { deployedNode } from './cold-start.ts';
import type { FloorAnswer, FloorOrder } from './floor-instance.ts';
import { fromLearner, type BenchStack } from './stack.ts';
import { ms, percentile, times, type Row } from './stats.ts';

const CLASSES = 25;
const SEATS = 20;
const TARGET_RATIO = 1.5;
/** How long a child process may take to answer its first call. */
const START_MS = 60_000;

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

/** CPU time (user + system) a process has used so far, in ms; NaN when it cannot be read. */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime, in clock ticks of 10 ms (Linux's USER_HZ).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** The Firestore emulator's Java process: the one listening on the emulator's port. */
function emulatorPid(): number | undefined {
  const port = process.env.FIRESTORE_EMULATOR_HOST?.split(':').at(-1);
  if (!port || !existsSync('/proc')) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args[0]?.endsWith('java') && args.includes(`--port=${port}`)) return Number(entry);
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}

/** CPU used by each process while `run` runs. */
async function cpuDuring<T>(pids: { own?: number; emulator?: number }, run: () => Promise<T>) {
  const before = { own: cpuMs(pids.own), emulator: cpuMs(pids.emulator), self: process.cpuUsage() };
  const result = await run();
  const self = process.cpuUsage(before.self);
  return {
    result,
    cpu: {
      own: cpuMs(pids.own) - before.own,
      emulator: cpuMs(pids.emulator) - before.emulator,
      self: (self.user + self.system) / 1000,
    },
  };
}

/** Stops a child process (bounded), whatever state it is in. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Keeps the last few KiB a child wrote to stderr, for the error when it fails. */
function stderrTail(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-2000)));
  return () => tail.trim();
}

/**
 * Cloud Run's front end sends an instance at most its concurrency of requests at once (deploy.sh:
 * --concurrency=80) over connections it keeps open; the rest wait at the front end. So do these.
 */
const FRONT_END = new http.Agent({ keepAlive: true, maxSockets: 80 });

/** `POST /join` on `base`; `ms` is the round trip as the learner sees it, body read. */
function postJoin(base: string, body: unknown, headers: Record<string, string>) {
  const start = performance.now();
  const payload = JSON.stringify(body);
  return new Promise<{ status: number; body: { workshopId?: string; seat?: number }; ms: number }>(
    (resolve, reject) => {
      const req = http.request(
        `${base}/join`,
        {
          method: 'POST',
          agent: FRONT_END,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            try {
              const parsed = JSON.parse(Buffer.concat(chunks).toString()) as {
                workshopId?: string;
                seat?: number;
              };
              resolve({ status: res.statusCode ?? 0, body: parsed, ms: performance.now() - start });
            } catch (error) {
              reject(error as Error);
            }
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    },
  );
}

/**
 * One instance of the join function, as Cloud Run starts it, answered once (an unknown code).
 * The environment is the local stack's (emulators, AUTH_MODE=dev, the project).
 */
async function startJoinInstance(cleanups: Array<() => Promise<void>>) {
  if (!existsSync(path.join(ROOT, 'dist', 'functions', 'index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm run bench does)');
  }
  const framework = path.join(
    path.dirname(createRequire(import.meta.url).resolve('@google-cloud/functions-framework')),
    'main.js',
  );
  const port = await freePort();
  const child = spawn(deployedNode(), [framework, '--target=join', `--source=${ROOT}`], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  cleanups.push(() => stopChild(child));
  const log = stderrTail(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the join instance exited: ${log()}`);
    try {
      await postJoin(url, { code: 'NOSUCHCODE', name: 'warm-up' }, fromLearner(9999));
      return { url, pid: child.pid };
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the join instance did not answer: ${log()}`);
      if ((error as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The floor's process (bench/floor-instance.ts), warmed and waiting for its order. */
async function startFloorInstance(cleanups: Array<() => Promise<void>>) {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'floor-instance.ts');
  // fork() runs it with this process's flags: the TypeScript loader the bench runs under.
  const child = fork(file, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  cleanups.push(() => stopChild(child));
  const log = stderrTail(child);
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the floor process is silent: ${log()}`)),
        START_MS * 2,
      );
      const onExit = () => reject(new Error(`the floor process exited: ${log()}`));
      child.once('exit', onExit);
      child.once('message', (message: Record<string, unknown>) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        if (typeof message.error === 'string')
          reject(new Error(`the floor failed: ${message.error}`));
        else resolve(message);
      });
    });
  await next();
  return {
    pid: child.pid,
    async run(order: FloorOrder): Promise<FloorAnswer> {
      const answer = next();
      child.send(order);
      return (await answer) as unknown as FloorAnswer;
    },
  };
}

export async function joinBurst(stack: BenchStack, cleanups: Array<() => Promise<void>>) {
  cleanups.push(() => stack.endClasses());
  const classes = await stack.readyClasses(CLASSES, SEATS);
  const learners = CLASSES * SEATS;
  const classOf = (i: number) => classes[i % CLASSES]!;
  const [instance, floorInstance] = await Promise.all([
    startJoinInstance(cleanups),
    startFloorInstance(cleanups),
  ]);
  const emulator = emulatorPid();

  // The floor: a transaction per learner that claims seat i of its class and writes its token.
  const db = stack.services.store.db;
  const floorRoot = db.collection('benchFloor').doc(randomBytes(6).toString('hex'));
  cleanups.push(() => db.recursiveDelete(floorRoot));
  const floorRun = await cpuDuring({ own: floorInstance.pid, emulator }, () =>
    floorInstance.run({ root: floorRoot.path, count: learners, classes: CLASSES }),
  );
  const floor = floorRun.result;

  // Every learner behind one address: only misses are limited, so none of them is.
  const room = fromLearner(0);
  const joinRun = await cpuDuring({ own: instance.pid, emulator }, () =>
    burst(learners, async (i) => {
      const r = await postJoin(
        instance.url,
        { code: classOf(i).joinCode, name: `Learner ${i}` },
        room,
      );
      return {
        ms: r.ms,
        result: r.status === 200 ? `${r.body.workshopId}/${r.body.seat}` : null,
        refused: r.status === 429,
      };
    }),
  );
  const joins = joinRun.result;
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
  const each = (cpuMs: number) =>
    Number.isNaN(cpuMs) ? 'n/a' : `${(cpuMs / learners).toFixed(1)} ms`;
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
    {
      what: `${what}: CPU per learner: instance, Firestore emulator, bench process`,
      measured: `${each(joinRun.cpu.own)}, ${each(joinRun.cpu.emulator)}, ${each(joinRun.cpu.self)}`,
      baseline: `floor: ${each(floorRun.cpu.own)}, ${each(floorRun.cpu.emulator)}, ${each(floorRun.cpu.self)}`,
      target: '',
      verdict: 'n/a',
    },
  ];
  return rows;
}
