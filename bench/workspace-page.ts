/**
 * The workspace page against the bare terminal page, in headless Chromium on one seat server:
 * the time from navigation to the first shell prompt on each (rounds interleaved, medians), and
 * the JavaScript each page loads before the prompt (the editor's chunk loads on first use only,
 * and is shown on its own row). A small router in front of the seat server plays Caddy's part:
 * the workspace page reaches the terminal at `terminal/`, as under a seat's root.
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { buildSeat } from '../images/workspace/server/bundle.ts';
import { silentLogger } from '../images/workspace/server/log.ts';
import { startSeatServer } from '../images/workspace/server/seat-server.ts';
import { launchChromium } from '../test/seat/browser.ts';
import { median, ms, times, type Row } from './stats.ts';

const ROUNDS = 7;
const TARGET_RATIO = 1.3;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

/** Routes `/terminal/…` and `/files/…` to their servers (prefix stripped), the rest to the page. */
function seatRouter(routes: { terminal: string; files: string; workspace: string }) {
  const pick = (url: string): [string, string] => {
    for (const kind of ['terminal', 'files'] as const) {
      if (url.startsWith(`/${kind}/`)) return [routes[kind], url.slice(kind.length + 1)];
    }
    return [routes.workspace, url];
  };
  const server = http.createServer((req, res) => {
    const [base, rest] = pick(req.url ?? '/');
    const target = new URL(base);
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: rest,
        method: req.method,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('upgrade', (req, socket, head) => {
    const [base, rest] = pick(req.url ?? '/');
    const target = new URL(base);
    const upstream = http.request({
      host: target.hostname,
      port: target.port,
      path: rest,
      headers: req.headers,
    });
    upstream.on('upgrade', (answer, theirs, theirHead) => {
      const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}`];
      for (let i = 0; i < answer.rawHeaders.length; i += 2) {
        lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
      }
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (theirHead.length) socket.write(theirHead);
      if (head.length) theirs.write(head);
      theirs.pipe(socket).pipe(theirs);
      theirs.on('error', () => socket.destroy());
      socket.on('error', () => theirs.destroy());
    });
    upstream.on('error', () => socket.destroy());
    upstream.end();
  });
  return server;
}

/** Milliseconds from navigation until a shell prompt shows in the page's terminal. */
async function toPrompt(page: Page, url: string): Promise<number> {
  const started = performance.now();
  await page.goto(url);
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('.xterm-rows > div')].some((row) =>
        /[$#]\s*$/.test((row.textContent ?? '').replace(/\u00a0/g, ' ')),
      ),
    undefined,
    { timeout: 30_000, polling: 'raf' },
  );
  return performance.now() - started;
}

export async function workspacePage(cleanups: Array<() => Promise<void>>): Promise<Row[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-workspace-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'dist');
  const home = path.join(dir, 'home');
  await buildSeat(out);
  await mkdir(home);
  const seat = await startSeatServer({
    home,
    terminalPort: 0,
    filesPort: 0,
    workspacePort: 0,
    host: '127.0.0.1',
    assetsDir: path.join(out, 'public'),
    log: silentLogger,
    env: { PATH: process.env.PATH, HOME: home, PS1: '$ ', TERM: 'xterm-256color' },
  });
  cleanups.push(() => seat.close());
  const router = seatRouter({
    terminal: seat.terminalUrl,
    files: seat.filesUrl,
    workspace: seat.workspaceUrl,
  });
  await new Promise<void>((resolve) => router.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => router.close(() => resolve())));
  const base = `http://127.0.0.1:${(router.address() as AddressInfo).port}/`;
  const browser = await launchChromium();
  cleanups.push(() => browser.close());

  const pages = { terminal: `${base}terminal/`, workspace: base };
  const samples: Record<keyof typeof pages, number[]> = { terminal: [], workspace: [] };
  for (let round = 0; round <= ROUNDS; round++) {
    for (const kind of ['terminal', 'workspace'] as const) {
      const page = await browser.newPage();
      const took = await toPrompt(page, pages[kind]);
      await page.close();
      if (round > 0) samples[kind].push(took); // round 0 warms the shell and the caches
    }
  }
  const size = async (...files: string[]) =>
    (await Promise.all(files.map((f) => stat(path.join(out, 'public', f))))).reduce(
      (sum, s) => sum + s.size,
      0,
    );
  const terminalJs = await size('terminal/app.js');
  const workspaceJs = await size('workspace/workspace.js');
  const editorJs = await size('workspace/editor.js');
  const ratio = median(samples.workspace) / median(samples.terminal);
  return [
    {
      what: 'workspace page: navigation → first shell prompt',
      measured: `${ms(median(samples.workspace))} (${times(ratio)})`,
      baseline: `bare terminal page ${ms(median(samples.terminal))}`,
      target: `≤ ${TARGET_RATIO}×`,
      verdict: ratio <= TARGET_RATIO ? 'met' : 'missed',
    },
    {
      what: 'workspace page: JavaScript before the prompt (minified)',
      measured: `${kib(workspaceJs)} (${times(workspaceJs / terminalJs)})`,
      baseline: `bare terminal page ${kib(terminalJs)}`,
      target: 'lean',
      verdict: 'n/a',
    },
    {
      what: 'workspace page: editor chunk, on first use',
      measured: kib(editorJs),
      baseline: '',
      target: '',
      verdict: 'n/a',
    },
  ];
}
