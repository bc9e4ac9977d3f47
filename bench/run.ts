/**
 * `npm run bench`: how fast the class is at 9:00, measured side by side on this machine. Prints one
 * table, every figure next to a baseline measured in the same run; exits non-zero only when a
 * figure could not be measured (a missed target is a figure too). Each part is bounded in time and
 * removes what it made (instances, containers, subscriptions, the emulators) even when it fails.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { startEmulatorPair } from '../local/emulators.ts';
import { bootToReady } from './boot.ts';
import { classesOnDocker } from './classes.ts';
import { coldStart, deployedNode } from './cold-start.ts';
import { controlPlane } from './control-plane.ts';
import { vmControl } from './vm-control.ts';
import { joinBurst } from './join-burst.ts';
import { startBenchStack, type BenchStack } from './stack.ts';
import { renderTable, unmeasured, type Row } from './stats.ts';
import { scheduledSweepReads, sweepReads } from './sweep-reads.ts';
import { pageWeights, watchEcho } from './watch.ts';
import { workspacePage } from './workspace-page.ts';

type Cleanups = Array<() => Promise<void>>;

/** Parts that only set up for the others: they run whenever a part that needs them does. */
const SETUP = new Set(['emulators', 'local stack']);

process.env.CT_LOG_LEVEL ??= 'silent';
// Everything stays on this machine: no client library looks for a metadata server.
process.env.METADATA_SERVER_DETECTION = 'none';
const rows: Row[] = [];
let unmeasuredCount = 0;
const say = (line: string) => process.stderr.write(`bench: ${line}\n`);
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** `npm run bench -- join boot` runs only the parts whose names start with those words. */
const only = process.argv.slice(2);
const wanted = (what: string) => only.length === 0 || only.some((w) => what.startsWith(w));

/** Runs one part within `limitS` seconds; then runs its cleanups, whatever happened. */
async function part(what: string, limitS: number, run: (cleanups: Cleanups) => Promise<Row[]>) {
  if (!wanted(what) && !SETUP.has(what)) return;
  say(`${what} (at most ${limitS} s)`);
  const cleanups: Cleanups = [];
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`took longer than ${limitS} s`)), limitS * 1000);
    });
    rows.push(...(await Promise.race([run(cleanups), timeout])));
  } catch (error) {
    rows.push(unmeasured(what, message(error)));
    unmeasuredCount += 1;
  } finally {
    clearTimeout(timer);
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    say(`${what}: ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
}

const projectId = `bench-${randomBytes(3).toString('hex')}`;
const nodeVersion = spawnSync(deployedNode(), ['--version'], { encoding: 'utf8' }).stdout.trim();

await part('cold start', 180, () => coldStart());
await part('workspace page', 300, (cleanups) => workspacePage(cleanups));
await part('page weight', 60, () => pageWeights());

let env: Awaited<ReturnType<typeof startEmulatorPair>> | undefined;
if (['sweep', 'join', 'control', 'vm', 'watch', 'boot', 'classes'].some(wanted)) {
  await part('emulators', 120, async () => {
    env = await startEmulatorPair(projectId);
    process.env.FIRESTORE_EMULATOR_HOST = env.firestoreHost;
    process.env.PUBSUB_EMULATOR_HOST = env.pubsubHost;
    return [];
  });
}
if (env) {
  const emulators = { projectId, firestoreHost: env.firestoreHost, pubsubHost: env.pubsubHost };
  let stack: BenchStack | undefined;
  if (['sweep', 'join', 'control'].some(wanted)) {
    await part('local stack', 120, async () => {
      stack = await startBenchStack(emulators);
      return [];
    });
  }
  if (stack) {
    const s = stack;
    await part('sweep scheduled', 240, () => scheduledSweepReads(s));
    await part('sweep reads', 120, () => sweepReads(s));
    await part('join burst', 300, (cleanups) => joinBurst(s, cleanups));
    await part('control plane', 120, (cleanups) => controlPlane(s, cleanups));
    await s.stop().catch((error: unknown) => say(`stopping the stack: ${message(error)}`));
  }
  await part('vm control', 1200, (cleanups) => vmControl(emulators, cleanups));
  await part('watch', 900, (cleanups) => watchEcho(emulators, cleanups));
  await part('boot-to-ready', 480, (cleanups) => bootToReady(emulators, cleanups));
  await part('classes on real Docker', 3600, (cleanups) => classesOnDocker(emulators, cleanups));
  await Promise.all(env.emulators.map((e) => e.stop()));
}

const [load1] = os.loadavg();
console.log(
  `npm run bench, ${new Date().toISOString().slice(0, 16)}Z: ${os.cpus().length} cores, ` +
    `load ${load1!.toFixed(1)}, functions on Node ${nodeVersion}`,
);
console.log(renderTable(rows));
process.exit(unmeasuredCount > 0 ? 1 : 0);
