import type { CloudEvent } from '@google-cloud/functions-framework';
import { sweep as runSweep } from '../shared/lifecycle/sweep.ts';
import { log } from '../shared/log.ts';
import { services } from '../shared/services.ts';

/** Cloud Scheduler's tick on `workshop.sweep`; its payload carries nothing the sweep needs. */
export async function sweep(event: CloudEvent<unknown>): Promise<void> {
  try {
    await runSweep(services());
  } catch (error) {
    log.error('sweep failed; the next tick retries', { eventId: event.id, error });
    throw error;
  }
}
