import type { IPty } from '@lydell/node-pty';
import { WebSocket } from 'ws';
import type { Logger } from '../log.ts';
import { spawnAsLearner } from '../privileges.ts';
import { killSession } from './kill.ts';
import type { ServerControl } from './protocol.ts';
import { ReplayBuffer } from './replay-buffer.ts';

/**
 * Flow control, in bytes of output a viewer has been sent but not yet acknowledged (VS Code's
 * numbers): the pty is paused when any viewer is above HIGH and resumed once every viewer is
 * below LOW. The slowest live viewer governs; one that acknowledges nothing for STUCK_MS while
 * it holds the shell paused (a frozen or throttled tab) is dropped, and gets the replay when it
 * comes back.
 */
export const HIGH_WATERMARK = 100_000;
export const LOW_WATERMARK = 5_000;
export const STUCK_MS = 15_000;
/** Output is gathered for a few ms into one frame, except right after a keystroke. */
export const BATCH_MS = 5;
export const MAX_BATCH = 64 * 1024;
export const KILL_GRACE_MS = 2_000;

export type PtyModule = typeof import('@lydell/node-pty');

export interface ShellOptions {
  shell: string;
  home: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

export interface Viewer {
  readonly ws: WebSocket;
  unacked: number;
  lastProgress: number;
}

export interface ShellExit {
  code: number;
  signal: number;
}

/** One login shell in a pty, shared by every viewer of the seat. */
export class ShellSession {
  readonly pid: number;
  readonly done: Promise<ShellExit>;
  exited = false;
  private readonly pty: IPty;
  private readonly viewers = new Set<Viewer>();
  private readonly replay = new ReplayBuffer();
  private pending: Buffer[] = [];
  private pendingSize = 0;
  private batchTimer: NodeJS.Timeout | undefined;
  private stuckTimer: NodeJS.Timeout | undefined;
  private flushNext = false;
  private paused = false;

  constructor(ptyModule: PtyModule, opts: ShellOptions) {
    this.pty = spawnAsLearner((ids) =>
      ptyModule.spawn(opts.shell, ['-l'], {
        name: 'xterm-256color',
        cols: 80,
        rows: 24,
        cwd: opts.home,
        env: { ...opts.env, HOME: opts.home, TERM: 'xterm-256color', COLORTERM: 'truecolor' },
        // Raw bytes: the replay buffer trims them itself, and xterm decodes split characters.
        encoding: null,
        ...ids,
      }),
    );
    this.pid = this.pty.pid;
    this.pty.onData((data) => this.onOutput(data as unknown as Buffer));
    this.done = new Promise((resolve) => {
      this.pty.onExit(({ exitCode, signal }) => {
        const exit = { code: exitCode, signal: signal ?? 0 };
        this.onExit(exit);
        opts.log('INFO', 'shell exited', { pid: this.pid, ...exit });
        resolve(exit);
      });
    });
    opts.log('INFO', 'shell started', { pid: this.pid, shell: opts.shell });
  }

  /** Registers a viewer and sends it the recent output, with nothing interleaved. */
  attach(ws: WebSocket): Viewer {
    this.flush();
    const replay = this.replay.snapshot();
    const viewer: Viewer = { ws, unacked: 0, lastProgress: Date.now() };
    this.control(viewer, { type: 'attached', pid: this.pid, replay: replay.length });
    if (replay.length > 0) this.send(viewer, replay);
    this.viewers.add(viewer);
    this.checkFlow();
    return viewer;
  }

  detach(viewer: Viewer): void {
    if (this.viewers.delete(viewer)) this.checkFlow();
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  input(data: Buffer): void {
    if (this.exited || data.length === 0) return;
    this.flushNext = true;
    this.pty.write(data.toString('utf8'));
  }

  /** Text for every viewer, in the output stream as if the shell printed it (like `wall`). */
  notice(text: string): void {
    if (!this.exited) this.onOutput(Buffer.from(text));
  }

  resize(cols: number, rows: number): void {
    if (this.exited) return;
    try {
      this.pty.resize(cols, rows);
    } catch {
      // node-pty throws when the shell is exiting; the size no longer matters then.
    }
  }

  ack(viewer: Viewer, bytes: number): void {
    viewer.unacked = Math.max(0, viewer.unacked - bytes);
    viewer.lastProgress = Date.now();
    this.checkFlow();
  }

  /** SIGHUP the shell, then SIGKILL its session if it is still there after a grace period. */
  async kill(): Promise<ShellExit> {
    if (!this.exited) {
      // A paused pty never reads to EOF, and node-pty reports the exit only after EOF.
      this.pty.resume();
      try {
        this.pty.kill('SIGHUP');
      } catch {
        // Already gone.
      }
      const force = setTimeout(() => killSession(this.pid), KILL_GRACE_MS);
      await this.done;
      clearTimeout(force);
    }
    killSession(this.pid);
    return this.done;
  }

  private onOutput(data: Buffer): void {
    this.replay.append(data);
    this.pending.push(data);
    this.pendingSize += data.length;
    if (this.flushNext || this.pendingSize >= MAX_BATCH) {
      this.flushNext = false;
      this.flush();
    } else {
      this.batchTimer ??= setTimeout(() => this.flush(), BATCH_MS);
    }
  }

  private flush(): void {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    if (this.pendingSize === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingSize = 0;
    for (const viewer of this.viewers) this.send(viewer, data);
    this.checkFlow();
  }

  private send(viewer: Viewer, data: Buffer): void {
    if (viewer.ws.readyState !== WebSocket.OPEN) return;
    viewer.ws.send(data, { binary: true });
    viewer.unacked += data.length;
  }

  private control(viewer: Viewer, msg: ServerControl): void {
    if (viewer.ws.readyState === WebSocket.OPEN) viewer.ws.send(JSON.stringify(msg));
  }

  private checkFlow(): void {
    if (this.exited) return;
    const viewers = [...this.viewers];
    if (!this.paused && viewers.some((v) => v.unacked > HIGH_WATERMARK)) {
      this.paused = true;
      this.pty.pause();
      this.stuckTimer = setInterval(() => this.dropStuck(), STUCK_MS / 3);
    } else if (this.paused && viewers.every((v) => v.unacked < LOW_WATERMARK)) {
      this.paused = false;
      clearInterval(this.stuckTimer);
      this.pty.resume();
    }
  }

  private dropStuck(): void {
    const now = Date.now();
    for (const v of this.viewers) {
      if (v.unacked > HIGH_WATERMARK && now - v.lastProgress > STUCK_MS) {
        v.ws.terminate();
        this.detach(v);
      }
    }
  }

  private onExit(exit: ShellExit): void {
    this.flush();
    this.exited = true;
    clearInterval(this.stuckTimer);
    for (const viewer of this.viewers) {
      this.control(viewer, { type: 'exit', ...exit });
      viewer.ws.close(1000, 'shell exited');
    }
    this.viewers.clear();
  }
}
