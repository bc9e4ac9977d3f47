import '../shared/framework-errors.ts';
import '../shared/framework-http.ts';
import * as ff from '@google-cloud/functions-framework';

/**
 * A handler that imports its function's module on the first call. Every function is deployed from
 * this one main module (`--entry-point` picks the name), so an instance of `join` must not pay for
 * importing the other five and what they load; a failed import is tried again on the next call.
 */
function onFirstCall<A extends unknown[]>(
  load: () => Promise<(...args: A) => Promise<void>>,
): (...args: A) => Promise<void> {
  let handler: Promise<(...args: A) => Promise<void>> | undefined;
  return async (...args) => {
    handler ??= load().catch((error: unknown) => {
      handler = undefined;
      throw error;
    });
    return (await handler)(...args);
  };
}

const workshops = onFirstCall(async () => (await import('./workshops.ts')).workshops);
const join = onFirstCall(async () => (await import('./join.ts')).join);
const onWorkshopStarted = onFirstCall(
  async () => (await import('./on-workshop-started.ts')).onWorkshopStarted,
);
const onVmReady = onFirstCall(async () => (await import('./on-vm-ready.ts')).onVmReady);
const onWorkshopEnded = onFirstCall(
  async () => (await import('./on-workshop-ended.ts')).onWorkshopEnded,
);
const sweep = onFirstCall(async () => (await import('./sweep.ts')).sweep);

/** Every Cloud Function, by the name it is deployed under (`--entry-point`). */
ff.http('workshops', workshops);
ff.http('join', join);
ff.cloudEvent('onWorkshopStarted', onWorkshopStarted);
ff.cloudEvent('onVmReady', onVmReady);
ff.cloudEvent('onWorkshopEnded', onWorkshopEnded);
ff.cloudEvent('sweep', sweep);
