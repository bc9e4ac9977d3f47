import type { ExecutionContext } from 'ava';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { silentLogger } from '../../images/workspace/server/log.ts';
import {
  startSeatServer,
  type SeatServer,
  type SeatServerOptions,
} from '../../images/workspace/server/seat-server.ts';

/** Only so a broken test fails instead of hanging; nothing asserts on durations. */
export const WAIT_MS = 20_000;

/** Polls `cond` until it holds (true) or WAIT_MS passed (false). */
export async function eventually(cond: () => boolean | Promise<boolean>): Promise<boolean> {
  const end = Date.now() + WAIT_MS;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

export async function tempDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A seat on loopback with ephemeral ports and a quiet log. */
export function startSeat(
  opts: Partial<SeatServerOptions> & { home: string },
): Promise<SeatServer> {
  return startSeatServer({
    terminalPort: 0,
    filesPort: 0,
    workspacePort: 0,
    host: '127.0.0.1',
    log: silentLogger,
    env: { ...process.env, CLARATEACH_SEAT: '5' },
    ...opts,
  });
}

/**
 * A seat of the test's own in a fresh home (shell state never leaks between tests); the clients
 * opened through `open`, the seat and the home go when the test ends.
 */
export async function withSeat(
  t: ExecutionContext,
  prefix = 'seat-term-',
): Promise<{
  seat: SeatServer;
  home: string;
  clients: TermClient[];
  open: typeof TermClient.open;
}> {
  const home = await tempDir(prefix);
  const seat = await startSeat({ home: home.dir });
  const clients: TermClient[] = [];
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await seat.close();
    await home.remove();
  });
  const open: typeof TermClient.open = async (url, opts) => {
    const c = await TermClient.open(url, opts);
    clients.push(c);
    return c;
  };
  return { seat, home: home.dir, clients, open };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: any;
}

/** An HTTP request with the path sent exactly as written (fetch would normalize dot segments). */
export function raw(
  base: string,
  method: string,
  rawPath: string,
  opts: {
    headers?: Record<string, string | number>;
    body?: Buffer | string;
    chunks?: Buffer[];
  } = {},
): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path: rawPath, headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          let json: unknown;
          try {
            json = JSON.parse(body.toString('utf8'));
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
      },
    );
    // A server may answer (413) before the body is sent; writing on then is not a failure.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    for (const chunk of opts.chunks ?? []) req.write(chunk);
    req.end(opts.body);
  });
}

interface Control {
  type: string;
  pid?: number;
  replay?: number;
  code?: number;
  signal?: number;
}

/** A terminal viewer speaking the seat protocol from Node, acknowledging output like xterm. */
export class TermClient {
  /** Everything received after the replay, decoded. */
  output = '';
  replay = '';
  received = 0;
  pid = 0;
  readonly controls: Control[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private unacked = 0;
  private readonly decoder = new TextDecoder();
  private replayLeft = 0;
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly ws: WebSocket,
    public acking: boolean,
  ) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
    ws.on('message', (data: Buffer, isBinary) => this.onMessage(data, isBinary));
  }

  static open(
    terminalUrl: string,
    opts: { ack?: boolean; origin?: string; path?: string; headers?: Record<string, string> } = {},
  ): Promise<TermClient> {
    const url = new URL(opts.path ?? 'ws', terminalUrl.replace(/^http/, 'ws'));
    const ws = new WebSocket(url, { origin: opts.origin, headers: opts.headers });
    const client = new TermClient(ws, opts.ack ?? true);
    return new Promise((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`refused: ${res.statusCode}`), { status: res.statusCode }));
        // With this listener, ending the refused handshake is ours to do.
        ws.terminate();
      });
      ws.on('error', reject);
      client
        .until(() => client.pid !== 0 && client.replayLeft === 0)
        .then(() => resolve(client), reject);
    });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      const msg = JSON.parse(data.toString('utf8')) as Control;
      this.controls.push(msg);
      if (msg.type === 'attached') {
        this.pid = msg.pid ?? 0;
        this.replayLeft = msg.replay ?? 0;
      }
    } else if (this.replayLeft > 0) {
      this.replay = data.toString('utf8');
      this.replayLeft = 0;
      this.account(data.length);
    } else {
      this.output += this.decoder.decode(data, { stream: true });
      this.account(data.length);
    }
    this.wake();
  }

  private account(bytes: number): void {
    this.received += bytes;
    this.unacked += bytes;
    if (this.acking) this.ackAll();
  }

  ackAll(): void {
    if (this.unacked > 0 && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'ack', bytes: this.unacked }));
    }
    this.unacked = 0;
  }

  private wake(): void {
    for (const w of this.waiters) w();
  }

  /** Resolves once `cond` holds; rejects if the socket closes first or after WAIT_MS. */
  until(cond: () => boolean, what = 'condition'): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (cond()) {
          finish();
          resolve();
        } else if (this.ws.readyState === WebSocket.CLOSED) {
          finish();
          reject(new Error(`socket closed before ${what}; output: ${this.output.slice(-500)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no ${what} within ${WAIT_MS} ms; output: ${this.output.slice(-500)}`));
      }, WAIT_MS);
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  async waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    let match: RegExpMatchArray | null = null;
    await this.until(() => (match = this.output.match(pattern)) !== null, String(pattern));
    return match as unknown as RegExpMatchArray;
  }

  type(text: string): void {
    this.ws.send(Buffer.from(text, 'utf8'), { binary: true });
  }

  send(frame: string | Buffer, binary = false): void {
    this.ws.send(frame, { binary });
  }

  resize(cols: number, rows: number): void {
    this.ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  }

  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }
}
