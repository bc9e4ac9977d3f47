import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { chromium, type Page } from 'playwright-core';
import { CHROMIUM, chromiumArgs } from '../test/seat/browser.ts';
import { buildPages, pageSizes } from '../web/bundle.ts';
import { fromLearner, startBootingStack } from './stack.ts';
import { median, percentile, type Row } from './stats.ts';

// Enough that p95 is not the second-worst keystroke of a shared, noisy machine.
const SAMPLES = 100;
const READY_WITHIN_MS = 10 * 60_000;
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

/** Milliseconds since the epoch: the one clock two pages (two renderer processes) share. */
type Stamp = number;
interface Probe {
  __echo?: Promise<Stamp>;
  __lastKey?: Stamp;
}

/**
 * In the page: from now on, notes when the terminal rows under `rows` first show `marker`. The
 * observer is in place when this returns, so a keystroke sent after it cannot be missed.
 */
function watchFor(page: Page, rows: string, marker: string): Promise<void> {
  return page.evaluate(
    ([selector, text]) => {
      const el = document.querySelector(selector)!;
      (window as Probe).__echo = new Promise<Stamp>((resolve) => {
        const observer = new MutationObserver(() => {
          if (!el.textContent?.includes(text)) return;
          observer.disconnect();
          resolve(Date.now());
        });
        observer.observe(el, { childList: true, subtree: true, characterData: true });
      });
    },
    [rows, marker] as const,
  );
}

const echoAt = (page: Page) => page.evaluate(() => (window as Probe).__echo!);

/**
 * Keystroke → echo, in Chromium on the local stack with a class booted on real Docker: learner 1
 * types in their workspace page (through the VM's Caddy); the instructor's console shows the watch
 * grid (through Caddy's viewer route, `?v=`). Per keystroke: from its keydown in the learner's
 * page until its echo is rendered in the instructor's grid tile, against until it is rendered in
 * the learner's own terminal (same keystrokes, same run).
 */
export async function watchEcho(
  env: { projectId: string; firestoreHost: string; pubsubHost: string },
  cleanups: Array<() => Promise<void>>,
): Promise<Row[]> {
  const { local, call: request } = await startBootingStack(env, cleanups);
  const call = async <T>(method: string, path: string, body?: unknown, headers = {}) => {
    const res = await request<T>(method, path, body, headers);
    if (res.status >= 400)
      throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + READY_WITHIN_MS;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  };

  // The class, as the console's own (development) user makes it, so the console lists it.
  const created = await call<{ id: string; joinCode: string }>('POST', '/workshops', {
    name: 'Watch bench',
    seats: 2,
  });
  cleanups.push(async () => {
    await call('DELETE', `/workshops/${created.id}`).catch(() => undefined);
    await until('the class ended', async () => local.standin.instances().length === 0);
  });
  await call('POST', `/workshops/${created.id}/start`);
  await until('the class ready', async () => {
    const w = await call<{ status: string }>('GET', `/workshops/${created.id}`);
    if (w.status === 'failed') throw new Error('the class failed');
    return w.status === 'ready';
  });
  const joined = await call<{ seat: number; endpoints: { workspace: string } }>(
    'POST',
    '/join',
    { code: created.joinCode, name: 'Learner 1' },
    fromLearner(1),
  );

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: chromiumArgs(),
  });
  cleanups.push(() => browser.close());
  const learner = await (await browser.newContext()).newPage();
  await learner.goto(joined.endpoints.workspace);
  await learner.waitForSelector('#status[data-state="connected"]', { timeout: 60_000 });
  await learner.click('.xterm');
  await learner.evaluate(() =>
    document.addEventListener('keydown', () => ((window as Probe).__lastKey = Date.now()), true),
  );
  const instructorPage = await (
    await browser.newContext({ viewport: { width: 1280, height: 900 } })
  ).newPage();
  await instructorPage.goto(`${local.url}/`);
  await instructorPage.click('#classes button');
  await instructorPage.click('button:text("Watch every seat")', { timeout: 60_000 });
  const tile = `.tile[data-seat="${joined.seat}"]`;
  await instructorPage.waitForSelector(`${tile}[data-state="connected"]`, { timeout: 60_000 });

  const own: number[] = [];
  const watched: number[] = [];
  for (let i = 0; i <= SAMPLES; i++) {
    // A marker the shell echoes as typed (no Enter), unique per sample.
    const marker = `k${i}q${Math.random().toString(36).slice(2, 8)}`;
    await watchFor(learner, '.xterm-rows', marker);
    await watchFor(instructorPage, `${tile} .xterm-rows`, marker);
    await learner.keyboard.type(marker);
    const [a, b] = await Promise.all([echoAt(learner), echoAt(instructorPage)]);
    const key = await learner.evaluate(() => (window as Probe).__lastKey!);
    await learner.keyboard.press('Control+U'); // clears the line
    if (i === 0) continue; // the first warms up both pages
    own.push(a - key);
    watched.push(b - key);
  }
  const ratio = percentile(watched, 95) / percentile(own, 95);
  const medianRatio = median(watched) / median(own);
  return [
    {
      what: `watch: keystroke → echo rendered in the instructor's grid, Chromium through Caddy's viewer route, ${SAMPLES} keystrokes (median, p95)`,
      measured: `${median(watched).toFixed(0)} ms, ${percentile(watched, 95).toFixed(0)} ms (${medianRatio.toFixed(2)}×, ${ratio.toFixed(2)}× own)`,
      baseline: `learner's own workspace page: ${median(own).toFixed(0)} ms, ${percentile(own, 95).toFixed(0)} ms`,
      target: 'p95 ≤ 1.5× own',
      verdict: ratio <= 1.5 ? 'met' : 'missed',
    },
  ];
}
