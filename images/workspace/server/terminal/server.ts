import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { HttpError, sendError, sendJson, splitUrl, staticAssets } from '../http-util.ts';
import type { ClassClock } from '../clock/clock-source.ts';
import type { Logger } from '../log.ts';
import { originMatchesHost } from '../origin.ts';
import { parseClientControl } from './protocol.ts';
import { mayType, needsSameOrigin, roleOf, type Role } from './roles.ts';
import { ShellSession, type PtyModule } from './shell-session.ts';

export interface TerminalServerOptions {
  home: string;
  shell: string;
  env: NodeJS.ProcessEnv;
  assetsDir: string;
  /** The portal's origin, the one other site that may frame the seat's pages. */
  portalOrigin?: string;
  log: Logger;
  pty: PtyModule;
  /** The class clock: `GET clock`, `{"type":"clock"}` messages, and warnings in the shell. */
  clock?: ClassClock;
}

const HEARTBEAT_MS = 30_000;
const MAX_FRAME = 1024 * 1024;

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function asBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/**
 * The terminal: `GET /` is the page, `/ws` the WebSocket. Every connection views the seat's one
 * shell; a connection after the shell exited starts a new one.
 */
export function createTerminalServer(opts: TerminalServerOptions) {
  const { log } = opts;
  const serveAsset = staticAssets(
    opts.assetsDir,
    {
      '/': 'index.html',
      '/app.js': 'app.js',
      '/app.css': 'app.css',
    },
    opts.portalOrigin,
  );
  let session: ShellSession | null = null;
  const alive = new WeakMap<WebSocket, boolean>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });

  function currentSession(): ShellSession {
    if (session && !session.exited) return session;
    const started = new ShellSession(opts.pty, opts);
    session = started;
    void started.done.then(() => {
      if (session === started) session = null;
    });
    return started;
  }

  function onConnection(ws: WebSocket, role: Role): void {
    let shell: ShellSession;
    try {
      shell = currentSession();
    } catch (err) {
      log('ERROR', 'shell failed to start', { error: String(err) });
      ws.close(1011, 'shell failed to start');
      return;
    }
    const viewer = shell.attach(ws);
    if (opts.clock) ws.send(JSON.stringify({ type: 'clock', ...opts.clock.current() }));
    alive.set(ws, true);
    log('INFO', 'viewer attached', { pid: shell.pid, viewers: shell.viewerCount, role });
    ws.on('pong', () => alive.set(ws, true));
    ws.on('error', (err) => log('WARNING', 'viewer socket error', { error: err.message }));
    ws.on('close', () => {
      shell.detach(viewer);
      log('INFO', 'viewer detached', { pid: shell.pid, viewers: shell.viewerCount });
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        if (mayType(role)) shell.input(asBuffer(data));
        return;
      }
      const msg = parseClientControl(asBuffer(data).toString('utf8'));
      if (msg?.type === 'resize' && mayType(role)) shell.resize(msg.cols, msg.rows);
      else if (msg?.type === 'ack') shell.ack(viewer, msg.bytes);
    });
  }

  const unsubscribe = opts.clock?.subscribe((view, shellLine) => {
    const message = JSON.stringify({ type: 'clock', ...view });
    for (const ws of wss.clients) ws.send(message);
    if (shellLine) session?.notice(shellLine);
  });

  // A viewer that stops answering pings (a laptop lid closed) is dropped, so it holds no flow.
  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.get(ws)) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, HEARTBEAT_MS);

  const server = http.createServer((req, res) => {
    const { pathname } = splitUrl(req);
    const done = (): void => log('INFO', 'request', { method: req.method, path: pathname });
    res.on('finish', done);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, new HttpError(405, 'METHOD_NOT_ALLOWED', 'only GET is served here'));
      return;
    }
    if (pathname === '/clock' && opts.clock) {
      res.setHeader('Cache-Control', 'no-store');
      sendJson(res, 200, opts.clock.current());
      return;
    }
    serveAsset(pathname, res).then(
      (served) => {
        if (!served) sendError(res, new HttpError(404, 'NOT_FOUND', 'no such page'));
      },
      (err: unknown) => {
        if (err instanceof HttpError) sendError(res, err);
        else sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
      },
    );
  });

  server.on('upgrade', (req, socket, head) => {
    const { pathname } = splitUrl(req);
    if (pathname !== '/ws') {
      refuse(socket, 404, 'NOT_FOUND', 'the terminal socket is at ws');
      return;
    }
    const role = roleOf(req.headers);
    if (needsSameOrigin(role) && !originMatchesHost(req.headers.origin, req.headers.host)) {
      log('WARNING', 'websocket refused: origin does not match host', {
        origin: req.headers.origin,
      });
      refuse(socket, 403, 'FORBIDDEN_ORIGIN', 'the page must come from this host');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, role));
  });
  server.on('clientError', (_err, socket) => refuse(socket, 400, 'BAD_REQUEST', 'bad request'));

  async function close(): Promise<void> {
    clearInterval(heartbeat);
    unsubscribe?.();
    for (const ws of wss.clients) ws.close(1001, 'seat server stopping');
    await session?.kill();
    await new Promise<void>((resolve) => {
      wss.close(() => resolve());
      for (const ws of wss.clients) ws.terminate();
    });
  }

  return { server, close };
}
