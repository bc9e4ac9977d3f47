import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassClock } from './clock/clock-source.ts';
import { DEFAULT_UPLOAD_MAX_BYTES } from './config.ts';
import { createFilesServer } from './files/server.ts';
import { Scope } from './files/scope.ts';
import { jsonLogger, type Logger } from './log.ts';
import { createTerminalServer } from './terminal/server.ts';
import type { PtyModule } from './terminal/shell-session.ts';
import { createWorkspaceServer } from './workspace/server.ts';

export interface SeatServerOptions {
  /** The learner's home: the files API is confined to it, the shell starts in it. */
  home: string;
  /** 0 picks a free port. */
  terminalPort?: number;
  filesPort?: number;
  /** The workspace page and the learner's app (`/app/PORT/`). */
  workspacePort?: number;
  /** Default 127.0.0.1; the container binds 0.0.0.0 and Docker publishes on loopback. */
  host?: string;
  uploadMaxBytes?: number;
  shell?: string;
  /** The shell's environment (CLARATEACH_SEAT and the like pass through); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** For the workspace page's header. */
  className?: string;
  seat?: string;
  /** Default: files that do not exist (no instructions). */
  instructionFiles?: { workshop: string; image: string };
  /** The built pages: `terminal/`, `files/` and `workspace/` folders. Default: `public/` beside this module. */
  assetsDir?: string;
  log?: Logger;
  /** The class's end, kept by the VM's watcher; default /run/clarateach/class-ends. */
  clockFile?: string;
  /** Injectable for tests: the current time in ms. */
  now?: () => number;
  /** The portal's origin (CLARATEACH_PORTAL_ORIGIN): the one other site that may frame the pages. */
  portalOrigin?: string;
}

export interface SeatServer {
  terminalUrl: string;
  filesUrl: string;
  workspaceUrl: string;
  close(): Promise<void>;
}

function listen(server: http.Server, port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      const shown = host === '0.0.0.0' ? '127.0.0.1' : host;
      resolve(`http://${shown.includes(':') ? `[${shown}]` : shown}:${addr.port}/`);
    });
  });
}

function stop(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Both servers of a seat in one process: the terminal and the file manager. */
export async function startSeatServer(opts: SeatServerOptions): Promise<SeatServer> {
  const log = opts.log ?? jsonLogger();
  const host = opts.host ?? '127.0.0.1';
  const assetsDir =
    opts.assetsDir ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'public');
  const scope = await Scope.open(opts.home);
  const pty: PtyModule = await import('@lydell/node-pty');
  const clock = startClassClock({
    file: opts.clockFile ?? '/run/clarateach/class-ends',
    ...(opts.now ? { now: opts.now } : {}),
  });
  const terminal = createTerminalServer({
    clock,
    home: scope.root,
    shell: opts.shell ?? '/bin/bash',
    env: opts.env ?? process.env,
    assetsDir: path.join(assetsDir, 'terminal'),
    portalOrigin: opts.portalOrigin,
    log,
    pty,
  });
  const files = createFilesServer({
    scope,
    uploadMaxBytes: opts.uploadMaxBytes ?? DEFAULT_UPLOAD_MAX_BYTES,
    assetsDir: path.join(assetsDir, 'files'),
    portalOrigin: opts.portalOrigin,
    log,
  });
  let terminalUrl: string;
  let filesUrl: string;
  let workspaceUrl: string;
  const ports: number[] = [];
  const portOf = (url: string) => ports.push(Number(new URL(url).port));
  let workspace: http.Server | undefined;
  try {
    terminalUrl = await listen(terminal.server, opts.terminalPort ?? 3001, host);
    filesUrl = await listen(files, opts.filesPort ?? 3002, host);
    workspace = createWorkspaceServer({
      assetsDir: path.join(assetsDir, 'workspace'),
      portalOrigin: opts.portalOrigin,
      className: opts.className ?? '',
      seat: opts.seat ?? '',
      instructionFiles: opts.instructionFiles ?? { workshop: '', image: '' },
      reservedPorts: ports,
      log,
    });
    workspaceUrl = await listen(workspace, opts.workspacePort ?? 3003, host);
    [terminalUrl, filesUrl, workspaceUrl].forEach(portOf);
  } catch (err) {
    clock.stop();
    const servers = [terminal.server, files, ...(workspace ? [workspace] : [])];
    await Promise.all([terminal.close(), ...servers.map(stop)]);
    throw err;
  }
  const web = workspace;
  log('INFO', 'seat server listening', { terminalUrl, filesUrl, workspaceUrl, home: scope.root });
  let closing: Promise<void> | undefined;
  return {
    terminalUrl,
    filesUrl,
    workspaceUrl,
    close() {
      closing ??= (async () => {
        clock.stop();
        await terminal.close();
        await Promise.all([stop(terminal.server), stop(files), stop(web)]);
        log('INFO', 'seat server stopped');
      })();
      return closing;
    },
  };
}
