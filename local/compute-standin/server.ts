/** The HTTP server: JSON bodies in and out, the request log, Compute's error answers. */
import http from 'node:http';
import { ApiError, errorBody } from './errors.ts';
import { route } from './routes.ts';
import { LOOPBACK, type StandinState } from './state.ts';

const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface Listening {
  port: number;
  /** closes every connection and the server */
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ApiError(413, 'payloadTooLarge', 'Request payload too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function parseBody(req: http.IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'parseError', 'Parse Error');
  }
}

/** The headers that have a single value. */
function stringHeaders(req: http.IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v === 'string') headers[k] = v;
  }
  return headers;
}

async function handle(
  standin: StandinState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', `http://${LOOPBACK}`);
  const method = req.method ?? 'GET';
  const query = Object.fromEntries(url.searchParams.entries());
  try {
    const body = await parseBody(req);
    // The log keeps Compute requests (not control ones), dropping the oldest past the limit.
    if (!url.pathname.startsWith('/_standin/')) {
      const requests = standin.requests;
      requests.push({ method, path: req.url ?? '/', query, headers: stringHeaders(req), body });
      const limit = standin.settings.logLimit;
      if (requests.length > limit) requests.splice(0, requests.length - limit);
    }
    const [status, out] = await route(standin, method, url.pathname, query, body);
    send(res, status, out);
  } catch (err) {
    const apiError =
      err instanceof ApiError
        ? err
        : new ApiError(500, 'internalError', err instanceof Error ? err.message : String(err));
    send(res, apiError.status, errorBody(apiError));
  }
}

/** Serves the stand-in on `port` (0: any free one) of the loopback address. */
export async function listen(standin: StandinState, port = 0): Promise<Listening> {
  const server = http.createServer((req, res) => void handle(standin, req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, LOOPBACK, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('stand-in has no port');
  return {
    port: address.port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
