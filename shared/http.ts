import type { Request, Response } from '@google-cloud/functions-framework';
import { log } from './log.ts';

/** An error the caller caused or may see: always a 4xx with `{error: {code, message}}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    /** Response headers that go with it, e.g. Retry-After on a 429. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const notFound = (what = 'workshop') => new HttpError(404, 'NOT_FOUND', `${what} not found`);
export const invalidRequest = (message: string) => new HttpError(400, 'INVALID_REQUEST', message);
/** What a failure of ours is answered with: a dependency failed; the call is safe to retry. */
export const unavailable = () =>
  new HttpError(503, 'UNAVAILABLE', 'the service is busy, try again');

export function sendError(res: Response, error: HttpError): void {
  res
    .status(error.status)
    .set(error.headers)
    .json({ error: { code: error.code, message: error.message, ...error.details } });
}

/**
 * The JSON body of a request, or a 400. The Functions Framework parses `application/json`; any
 * other content type arrives as a string or Buffer and is parsed here, so a client that forgets
 * the header still gets a precise answer.
 */
export function jsonBody(req: Request): unknown {
  const body: unknown = req.body;
  if (typeof body === 'object' && body !== null && !Buffer.isBuffer(body)) return body;
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : '';
  if (text.trim() === '') throw invalidRequest('the request body must be a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalidRequest('the request body is not valid JSON');
  }
}

/**
 * Runs an HTTP handler: HttpErrors become their 4xx; anything else is logged and answered 503
 * (a dependency failed; the call is safe to retry), never with internals in the body.
 */
export function httpHandler(
  name: string,
  handle: (req: Request, res: Response) => Promise<void>,
): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    try {
      await handle(req, res);
    } catch (error) {
      if (error instanceof HttpError) {
        sendError(res, error);
        return;
      }
      log.error(`${name} failed`, { error, path: req.path, method: req.method });
      if (!res.headersSent) {
        sendError(res, unavailable());
      }
    }
  };
}
