import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An answer to bad input: always 4xx with `{"error":{"code","message"}}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: { code: err.code, message: err.message } });
}

/** The path and query of a request, without trusting `req.url` to be a well-formed URL. */
export function splitUrl(req: IncomingMessage): { pathname: string; query: URLSearchParams } {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return {
    pathname: q < 0 ? url : url.slice(0, q),
    query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
  };
}

/** Pure: an attachment header that survives any file name (RFC 6266 with an ASCII fallback). */
export function attachmentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

// No inline script anywhere; xterm's DOM renderer sets style attributes. Sockets and fetches go
// to the page's own origin only ('self' covers its ws:/wss:). Framed only by the
// seat's own pages (the workspace page frames the terminal and files) and the portal, if named:
// another site cannot put a seat's terminal under its own page and steer the learner's keys.
export function pageCsp(portalOrigin?: string): string {
  return (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; " +
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; " +
    `frame-ancestors 'self'${portalOrigin ? ` ${portalOrigin}` : ''}`
  );
}

/**
 * The built pages of one server: a fixed list of names mapped to files of `dir`, so no request
 * path ever reaches the file system. Read once, then served from memory.
 */
export function staticAssets(dir: string, names: Record<string, string>, portalOrigin?: string) {
  const csp = pageCsp(portalOrigin);
  const cache = new Map<string, Buffer>();
  return async function serve(pathname: string, res: ServerResponse): Promise<boolean> {
    const file = names[pathname];
    if (file === undefined) return false;
    let body = cache.get(file);
    if (!body) {
      try {
        body = await readFile(path.join(dir, file));
      } catch {
        throw new HttpError(404, 'NOT_BUILT', `${file} is missing: run npm run build:seat`);
      }
      cache.set(file, body);
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': csp,
      'Referrer-Policy': 'no-referrer',
    });
    res.end(body);
    return true;
  };
}
