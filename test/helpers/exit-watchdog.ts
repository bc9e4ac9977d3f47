import { registerCompletionHandler } from 'ava';

/**
 * A test file whose worker stays alive after its tests (an emulator, server or child process
 * left running) would hold the whole run: ava's own timeout does not cover a finished worker.
 * Name what is left and fail the file instead.
 */
registerCompletionHandler(() => {
  setTimeout(() => {
    // A timer that is firing is no longer listed: every entry is something left behind.
    const left = process.getActiveResourcesInfo().join(', ');
    console.error(`this test file left work running after its tests: ${left}`);
    process.exit(1);
  }, 30_000).unref();
});
