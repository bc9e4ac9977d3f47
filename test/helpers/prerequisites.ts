import { appendFileSync } from 'node:fs';
import test from 'ava';

/**
 * Tests whose prerequisite (Java and gcloud for the emulators, ssh-keygen, shellcheck, ...) is
 * missing. In CI (`CI=true`) such a test fails, saying what is missing: a machine without the tools
 * must not pass by skipping. Elsewhere it is skipped and the skip is recorded in the file named by
 * CLARATEACH_SKIP_LOG, which `npm test` (test/run.ts) reads to report every skip and fail the run.
 */
export const inCI = /^(true|1)$/i.test(process.env.CI ?? '');

/** Notes a skip for `npm test`'s summary (and says it on stderr now). */
export function recordSkip(title: string, missing: string): void {
  console.error(`skipped: ${title} (${missing})`);
  const log = process.env.CLARATEACH_SKIP_LOG;
  if (log) appendFileSync(log, `${JSON.stringify({ title, missing })}\n`);
}

/** Registers `title` as a test that cannot run here: a failure in CI, a recorded skip elsewhere. */
export function unrunnable(title: string, missing: string): void {
  if (inCI) {
    test(title, (t) => {
      t.fail(`CI=true and a prerequisite is missing: ${missing}`);
    });
    return;
  }
  recordSkip(title, missing);
  test.skip(title, () => undefined);
}
