import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { HttpError } from '../http-util.ts';

export const DEFAULT_APP_PORT = 8000;

export interface AppTarget {
  port: number;
  /** The path and query to ask the app for. */
  path: string;
}

/**
 * Pure: `/app/PORT/rest?q` as the learner's app on PORT, asked for `/rest?q`. `reserved` are the
 * seat server's own ports, which stay behind their own routes. Null when the path is not /app/.
 */
export function parseAppPath(url: string, reserved: number[]): AppTarget | null {
  const m = /^\/app\/([0-9]{1,5})(\/.*)?$/s.exec(url.split('?')[0]!);
  if (!m) return null;
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw new HttpError(400, 'INVALID_PORT', 'the port is 1 to 65535');
  if (reserved.includes(port)) {
    throw new HttpError(400, 'RESERVED_PORT', `port ${port} is the seat's own server`);
  }
  if (m[2] === undefined) return { port, path: '' };
  const q = url.indexOf('?');
  return { port, path: m[2] + (q < 0 ? '' : url.slice(q)) };
}

/**
 * The learner's app runs script the learner wrote, on the seat's origin. Its pages are served
 * sandboxed without `allow-same-origin`: they run in an opaque origin of their own, so they
 * cannot read the workspace page, its storage or anyone's cookie on this origin.
 */
const APP_CSP = 'sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads';

function unreachable(res: ServerResponse, port: number): void {
  const body = `Nothing answers on port ${port} in your workspace yet. Start your app there (for example: python3 -m http.server ${port}) and reload.\n`;
  res.writeHead(502, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

/** Proxies one request to the learner's app on loopback inside the seat's container. */
export function proxyToApp(req: IncomingMessage, res: ServerResponse, target: AppTarget): void {
  if (target.path === '') {
    // `/app/8000` → `/app/8000/`, so the app's relative links resolve under its prefix.
    res.writeHead(308, { Location: `${target.port}/` });
    res.end();
    return;
  }
  const upstream = http.request(
    {
      host: '127.0.0.1',
      port: target.port,
      method: req.method,
      path: target.path,
      headers: { ...req.headers, 'x-forwarded-prefix': `/app/${target.port}` },
    },
    (answer) => {
      const headers = { ...answer.headers, 'content-security-policy': APP_CSP };
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => {
    if (res.headersSent) res.destroy();
    else unreachable(res, target.port);
  });
  res.on('close', () => upstream.destroy());
  req.pipe(upstream);
}

/** A WebSocket (a dev server's live reload) to the learner's app, passed through as bytes. */
export function upgradeToApp(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  target: AppTarget,
): void {
  const upstream = http.request({
    host: '127.0.0.1',
    port: target.port,
    method: req.method,
    path: target.path || '/',
    headers: req.headers,
  });
  upstream.on('upgrade', (answer, appSocket, appHead) => {
    const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}`];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) {
      lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
    }
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    if (appHead.length) socket.write(appHead);
    if (head.length) appSocket.write(head);
    appSocket.pipe(socket).pipe(appSocket);
    appSocket.on('error', () => socket.destroy());
    socket.on('error', () => appSocket.destroy());
  });
  upstream.on('response', () => socket.destroy());
  upstream.on('error', () => socket.destroy());
  upstream.end();
}
