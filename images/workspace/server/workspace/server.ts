import http from 'node:http';
import { HttpError, sendError, sendJson, splitUrl, staticAssets } from '../http-util.ts';
import type { Logger } from '../log.ts';
import { parseAppPath, proxyToApp, upgradeToApp } from './app-proxy.ts';
import { loadInstructions, type InstructionFiles } from './instructions.ts';
import { renderInstructions } from './render-markdown.ts';

export interface WorkspaceServerOptions {
  assetsDir: string;
  /** The portal's origin, the one other site that may frame the seat's pages. */
  portalOrigin?: string;
  className: string;
  seat: string;
  instructionFiles: InstructionFiles;
  /** The seat server's own ports: never reachable through /app/. */
  reservedPorts: number[];
  log: Logger;
}

/**
 * The workspace page at the seat's root: `/` the page, `ui/…` its scripts, `seat.json` the
 * header's facts and the rendered instructions, `app/PORT/…` the learner's own web app. The
 * terminal, files and browser are the seat's other routes, reached by relative URLs.
 */
export function createWorkspaceServer(opts: WorkspaceServerOptions): http.Server {
  const { log } = opts;
  const serveAsset = staticAssets(
    opts.assetsDir,
    {
      '/': 'index.html',
      '/ui/workspace.js': 'workspace.js',
      '/ui/workspace.css': 'workspace.css',
      '/ui/editor.js': 'editor.js',
    },
    opts.portalOrigin,
  );
  // Read and rendered once: the files are fixed for the container's life.
  const seatInfo = loadInstructions(opts.instructionFiles).then((instructions) => ({
    className: opts.className,
    seat: opts.seat,
    instructions: {
      source: instructions.source,
      html: instructions.markdown ? renderInstructions(instructions.markdown) : '',
    },
  }));

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const { pathname } = splitUrl(req);
    const app = parseAppPath(req.url ?? '/', opts.reservedPorts);
    if (app) return proxyToApp(req, res, app);
    if (pathname === '/app/' || pathname === '/app') {
      res.writeHead(308, { Location: pathname === '/app' ? 'app/8000/' : '8000/' });
      res.end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'only GET is served here');
    }
    if (pathname === '/seat.json') return sendJson(res, 200, await seatInfo);
    if (!(await serveAsset(pathname, res))) throw new HttpError(404, 'NOT_FOUND', 'no such page');
  }

  const server = http.createServer((req, res) => {
    req.on('error', () => {});
    route(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return sendError(res, err);
      log('ERROR', 'workspace request failed', { error: String(err) });
      sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
    });
  });
  server.on('upgrade', (req, socket, head) => {
    let app = null;
    try {
      app = parseAppPath(req.url ?? '/', opts.reservedPorts);
    } catch {
      // A bad port: refused below like any other path.
    }
    if (app) upgradeToApp(req, socket, head, app);
    else socket.destroy();
  });
  server.on('clientError', (_err, socket) => {
    socket.on('error', () => {});
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  return server;
}
