import type { CloudEvent } from '@google-cloud/functions-framework';
import type { ValidateFunction } from 'ajv';
import { formatLog, log } from './log.ts';
import { describeErrors } from './schemas.ts';

interface PubSubData {
  message?: { data?: string; messageId?: string };
}

/** Decodes the JSON payload of a Pub/Sub CloudEvent, or says why it cannot. */
export function decodePubSub(
  event: CloudEvent<unknown>,
): { payload: unknown } | { problem: string } {
  const data = event.data as PubSubData | undefined;
  const encoded = data?.message?.data;
  if (typeof encoded !== 'string' || encoded === '') return { problem: 'the message has no data' };
  try {
    return { payload: JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as unknown };
  } catch {
    return { problem: 'the message data is not JSON' };
  }
}

/**
 * Wraps a Pub/Sub handler: an invalid message is logged and acknowledged (retrying cannot fix it);
 * an error thrown by the handler fails the delivery so Pub/Sub retries it.
 */
export function eventHandler<T>(
  name: string,
  validate: ValidateFunction<T>,
  handle: (payload: T, event: CloudEvent<unknown>) => Promise<void>,
): (event: CloudEvent<unknown>) => Promise<void> {
  return async (event) => {
    const decoded = decodePubSub(event);
    if ('problem' in decoded) {
      log.warn(`${name}: dropped a malformed message`, {
        eventId: event.id,
        problem: decoded.problem,
      });
      return;
    }
    if (!validate(decoded.payload)) {
      log.warn(`${name}: dropped an invalid message`, {
        eventId: event.id,
        problem: describeErrors(validate),
      });
      return;
    }
    const payload = decoded.payload;
    try {
      await handle(payload, event);
    } catch (error) {
      // The Functions Framework prints a failed event's `error.stack` as it is; making that the
      // structured entry keeps Cloud Logging's view to one JSON line per failure, without a trace.
      const workshopId = (payload as { workshopId?: string }).workshopId;
      const retry = new Error(error instanceof Error ? error.message : String(error));
      retry.stack = formatLog('ERROR', `${name} failed; the event will be retried`, {
        eventId: event.id,
        workshopId,
        error,
      });
      throw retry;
    }
  };
}
