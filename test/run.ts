import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  missingEmulatorPrerequisite,
  startEmulatorPair,
  type Emulator,
} from '../local/emulators.ts';
import { ensureLocalImages } from '../local/images.ts';
import { prepareMachine } from '../local/machine.ts';

/**
 * `npm test`: readies the machine as `npm start` does (Docker, debootstrap and Chromium installed
 * and started when missing, the VM images built once), one pair of emulators for the whole run,
 * then ava with its arguments. Each test file still works in a project of its own
 * (test/helpers/emulators.ts); a file run on its own with `npx ava` starts a pair for itself.
 */
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const ava = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');

const say = (line: string) => console.error(`npm test: ${line}`);
try {
  await prepareMachine({ browser: true, say });
  await ensureLocalImages(say);
} catch (error) {
  console.error(`npm test: cannot set up this machine: ${String(error)}`);
  process.exit(1);
}

const env = { ...process.env };
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
process.exit(code);
