import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import WebSocket from 'ws';
import { startSeatServer } from '../images/workspace/server/seat-server.ts';
import { buildPages, pageSizes } from '../web/bundle.ts';
import { median, percentile, type Row } from './stats.ts';

const SAMPLES = 30;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

/**
 * The pages' JavaScript: the console as it loads, its watch grid (a chunk loaded on demand) and the
 * join page (one HTML file, its script and style inline), against the seat's terminal page (xterm.js)
 * bundled the same way in this run.
 */
export async function pageWeights(): Promise<Row[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-pages-'));
  try {
    await buildPages(dir);
    const sizes = await pageSizes(dir);
    const terminal = await build({
      entryPoints: ['images/workspace/server/client/terminal.ts'],
      bundle: true,
      minify: true,
      format: 'esm',
      write: false,
      outdir: dir,
      logLevel: 'silent',
    });
    const baseline = terminal.outputFiles.find((f) => f.path.endsWith('.js'))!.contents.length;
    const base = `seat terminal page JS: ${kb(baseline)}`;
    return [
      {
        what: 'page weight: console JS at load',
        measured: kb(sizes.console),
        baseline: base,
        target: '≤ terminal page',
        verdict: sizes.console <= baseline ? 'met' : 'missed',
      },
      {
        what: 'page weight: console watch grid chunk (on demand)',
        measured: kb(sizes.grid),
        baseline: base,
        target: 'n/a',
        verdict: 'n/a',
      },
      {
        what: 'page weight: join page (HTML, CSS, JS inline)',
        measured: kb(sizes.join),
        baseline: base,
        target: '≤ 20 KiB',
        verdict: sizes.join <= 20 * 1024 ? 'met' : 'missed',
      },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A socket on the seat's terminal that collects what it receives after the attach. */
async function socket(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(new URL('ws', url.replace(/^http/, 'ws')), { headers });
  let text = '';
  const waiters = new Set<() => void>();
  ws.on('message', (data: Buffer, binary) => {
    if (!binary) return;
    text += data.toString('utf8');
    for (const w of waiters) w();
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return {
    ws,
    /** Resolves with the time the marker arrived. */
    until: (marker: string) =>
      new Promise<number>((resolve) => {
        const check = () => {
          if (!text.includes(marker)) return;
          waiters.delete(check);
          resolve(performance.now());
        };
        waiters.add(check);
        check();
      }),
  };
}

/**
 * Keystroke → echo, on one seat server with the learner's socket and the instructor's viewer
 * socket attached: when the echo of a keystroke the learner typed reaches the viewer, against when
 * it reaches the learner's own terminal (same keystrokes, same run).
 */
export async function watchEcho(cleanups: Array<() => Promise<void>>): Promise<Row[]> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'bench-watch-'));
  cleanups.push(() => rm(home, { recursive: true, force: true }));
  const seat = await startSeatServer({ home, terminalPort: 0, filesPort: 0, log: () => undefined });
  cleanups.push(() => seat.close());
  const learner = await socket(seat.terminalUrl);
  const viewer = await socket(seat.terminalUrl, { 'x-clarateach-role': 'viewer' });
  cleanups.push(async () => {
    learner.ws.close();
    viewer.ws.close();
  });
  const own: number[] = [];
  const watched: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    // A marker the shell echoes as typed (no Enter), unique per sample.
    const marker = `k${i}q${Math.random().toString(36).slice(2, 8)}`;
    const sent = performance.now();
    learner.ws.send(Buffer.from(marker), { binary: true });
    const [a, b] = await Promise.all([learner.until(marker), viewer.until(marker)]);
    own.push(a - sent);
    watched.push(b - sent);
    learner.ws.send(Buffer.from('\u0015'), { binary: true }); // Ctrl+U clears the line
  }
  const ratio = percentile(watched, 95) / percentile(own, 95);
  return [
    {
      what: `watch: keystroke → echo on the viewer socket, ${SAMPLES} keystrokes (median, p95)`,
      measured: `${median(watched).toFixed(1)} ms, ${percentile(watched, 95).toFixed(1)} ms (${ratio.toFixed(2)}× own p95)`,
      baseline: `learner's own socket: ${median(own).toFixed(1)} ms, ${percentile(own, 95).toFixed(1)} ms`,
      target: 'p95 ≤ 1.5× own',
      verdict: ratio <= 1.5 ? 'met' : 'missed',
    },
  ];
}
