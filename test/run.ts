import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  missingEmulatorPrerequisite,
  startEmulatorPair,
  type Emulator,
} from '../local/emulators.ts';
import { ensureLocalImages } from '../local/images.ts';
import { prepareMachine } from '../local/machine.ts';
import { localCa } from '../local/tls-ca.ts';

/**
 * `npm test`: readies the machine as `npm start` does (Docker, debootstrap and Chromium installed
 * and started when missing, the VM images built once), one pair of emulators for the whole run,
 * then ava with its arguments. Each test file still works in a project of its own
 * (test/helpers/emulators.ts); a file run on its own with `npx ava` starts a pair for itself.
 *
 * A test that cannot run here for want of a tool (test/helpers/prerequisites.ts) is skipped and
 * listed at the end, and the run then fails; CLARATEACH_ALLOW_SKIPS=1 lets it pass all the same.
 * In CI (CI=true) such a test fails instead.
 */
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const ava = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');

const say = (line: string) => console.error(`npm test: ${line}`);
try {
  await prepareMachine({ browser: true, acme: true, say });
  await ensureLocalImages(say);
  // The local VMs' certificates chain to it; the test workers trust it (NODE_EXTRA_CA_CERTS in
  // package.json's ava settings), so it must exist before they start.
  localCa();
} catch (error) {
  console.error(`npm test: cannot set up this machine: ${String(error)}`);
  process.exit(1);
}

const skipDir = mkdtempSync(path.join(tmpdir(), 'clarateach-skips-'));
const skipLog = path.join(skipDir, 'skipped.jsonl');
const env: NodeJS.ProcessEnv = { ...process.env, CLARATEACH_SKIP_LOG: skipLog };
let emulators: Emulator[] = [];
if (!(env.FIRESTORE_EMULATOR_HOST && env.PUBSUB_EMULATOR_HOST) && !missingEmulatorPrerequisite()) {
  try {
    const pair = await startEmulatorPair('clarateach-test');
    env.FIRESTORE_EMULATOR_HOST = pair.firestoreHost;
    env.PUBSUB_EMULATOR_HOST = pair.pubsubHost;
    emulators = pair.emulators;
  } catch (error) {
    console.error(`npm test: the emulators did not start: ${String(error)}`);
    process.exit(1);
  }
}

const child = spawn(process.execPath, [ava, ...process.argv.slice(2)], { env, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => child.kill(signal));
}
const code = await new Promise<number>((resolve) => {
  child.on('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0)));
});
await Promise.all(emulators.map((e) => e.stop()));
process.exit(reportSkips(code));

/** Lists what was skipped and why; a skip fails a passing run unless CLARATEACH_ALLOW_SKIPS=1. */
function reportSkips(code: number): number {
  let lines: string[] = [];
  try {
    lines = readFileSync(skipLog, 'utf8').split('\n').filter(Boolean);
  } catch {
    // nothing was skipped
  }
  rmSync(skipDir, { recursive: true, force: true });
  if (lines.length === 0) return code;
  const byReason = new Map<string, string[]>();
  for (const line of lines) {
    const { title, missing } = JSON.parse(line) as { title: string; missing: string };
    byReason.set(missing, [...(byReason.get(missing) ?? []), title]);
  }
  console.error(`\nnpm test: ${lines.length} test(s) SKIPPED for want of a prerequisite:`);
  for (const [missing, titles] of byReason) {
    console.error(`  ${titles.length} because ${missing}, e.g. "${titles[0]}"`);
  }
  if (process.env.CLARATEACH_ALLOW_SKIPS === '1') {
    console.error('npm test: CLARATEACH_ALLOW_SKIPS=1, so the skips do not fail the run');
    return code;
  }
  console.error(
    'npm test: failing because tests were skipped (CLARATEACH_ALLOW_SKIPS=1 allows it)',
  );
  return code || 1;
}
