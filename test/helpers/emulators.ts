import { randomBytes } from 'node:crypto';
import test, { type TestFn } from 'ava';
import {
  missingEmulatorPrerequisite,
  startEmulatorPair,
  type Emulator,
} from '../../local/emulators.ts';
import { unrunnable } from './prerequisites.ts';

export interface EmulatorEnv {
  firestoreHost: string;
  pubsubHost: string;
  /** A project id of this test file's own, so files sharing one emulator do not see each other. */
  projectId: string;
}

const missing =
  process.env.FIRESTORE_EMULATOR_HOST && process.env.PUBSUB_EMULATOR_HOST
    ? null
    : missingEmulatorPrerequisite();

/**
 * A `test` whose hooks never run and whose tests cannot run (test/helpers/prerequisites.ts: each
 * fails in CI, and is a recorded skip elsewhere): for machines without emulators.
 */
function skippingTest(reason: string): TestFn {
  const skip = (title: string) => unrunnable(title, reason);
  const hook = Object.assign(() => undefined, { always: () => undefined, skip: () => undefined });
  return Object.assign(skip, {
    serial: skip,
    only: skip,
    skip,
    failing: skip,
    before: hook,
    after: hook,
    beforeEach: hook,
    afterEach: hook,
  }) as unknown as TestFn;
}

/** `test` where the official emulators can run; where they cannot, no test runs (see above). */
export const emulatorTest: TestFn = missing ? skippingTest(missing) : test;

let started: Promise<EmulatorEnv> | undefined;
const owned: Emulator[] = [];

/**
 * The Firestore and Pub/Sub emulators for this test file: the ones `.ci/run` started (named by
 * FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST), or a pair started here and stopped after the file.
 * Sets the emulator variables in process.env so the real client libraries find them.
 */
export function emulators(): Promise<EmulatorEnv> {
  started ??= (async () => {
    const projectId = `test-${randomBytes(4).toString('hex')}`;
    let firestoreHost = process.env.FIRESTORE_EMULATOR_HOST;
    let pubsubHost = process.env.PUBSUB_EMULATOR_HOST;
    if (!firestoreHost || !pubsubHost) {
      const pair = await startEmulatorPair(projectId);
      owned.push(...pair.emulators);
      ({ firestoreHost, pubsubHost } = pair);
    }
    process.env.FIRESTORE_EMULATOR_HOST = firestoreHost;
    process.env.PUBSUB_EMULATOR_HOST = pubsubHost;
    process.env.METADATA_SERVER_DETECTION = 'none';
    return { firestoreHost, pubsubHost, projectId };
  })();
  return started;
}

const cleanups: Array<() => Promise<void>> = [];

/**
 * Runs `cleanup` after the file's tests but before its emulators stop. This helper's hook is
 * declared before any test file's own, so ava runs it first: work still in flight (a retried push
 * delivery, say) must not see its emulator vanish.
 */
export function beforeEmulatorsStop(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup);
}

test.after.always(async () => {
  const failures: unknown[] = [];
  for (const cleanup of cleanups.reverse()) await cleanup().catch((e: unknown) => failures.push(e));
  await Promise.all(owned.map((e) => e.stop()));
  if (failures.length > 0) throw failures[0];
});
