import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { localCa } from '../../local/tls-ca.ts';

/**
 * Drives Debian's Chromium, headless, against a seat's pages: for this folder's browser test and
 * for end-to-end tests through Caddy. Reads what the terminal shows from xterm's DOM rows, which
 * is what the learner sees.
 */

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'test-artifacts',
);
// A wait, not a measure: in CI the first terminal of a class (a shell started under load, beside
// other tests) once took longer than 20 s.
const WAIT_MS = 60_000;

export interface SeatBrowser {
  context: BrowserContext;
  newPage(): Promise<Page>;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/**
 * Chromium's flags for every test and bench: headless, no background traffic, and trusting the
 * local VMs' certificates (local/tls-ca.ts) and no others: never a blanket ignore.
 */
export const chromiumArgs = () => [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  localCa().chromiumFlag,
];

/** Chromium with a fresh profile, no network beyond what the pages ask for. */
export async function launchChromium(opts: { executablePath?: string } = {}): Promise<SeatBrowser> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'seat-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: opts.executablePath ?? CHROMIUM,
      headless: true,
      args: chromiumArgs(),
      viewport: { width: 1000, height: 640 },
    });
    return {
      context,
      newPage: () => context.newPage(),
      close: async () => {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
}

/** Opens a terminal page (any URL serving it, token query included) and waits for `connected`. */
export async function openTerminal(page: Page, url: string): Promise<void> {
  // What the page's sockets did, for a terminal that does not connect: whether the socket never
  // opened, or opened and the seat never said `attached` (the shell did not start).
  const sockets: string[] = [];
  page.on('websocket', (ws) => {
    const at = Date.now();
    const seen = (what: string) => sockets.push(`${ws.url()} ${what} after ${Date.now() - at} ms`);
    let frames = 0;
    ws.on('framereceived', ({ payload }) => {
      if (frames++ < 3) seen(`got ${String(payload).slice(0, 40)}`);
    });
    ws.on('socketerror', (error) => seen(`error ${error}`));
    ws.on('close', () => seen(`closed, ${frames} frames`));
  });
  await page.goto(url);
  try {
    await page.waitForSelector('#status[data-state="connected"]', { timeout: WAIT_MS });
  } catch (error) {
    // What the learner would have seen instead: the page's own words say why.
    const seen = await page.evaluate(() => document.body?.innerText.slice(0, 300)).catch(() => '');
    const shot = await screenshot(page, 'terminal-not-connected').catch(() => 'no screenshot');
    throw new Error(
      `the terminal at ${page.url()} did not connect; the page shows: ${seen}; its sockets: ${sockets.join('; ') || 'none'} (${shot})`,
      { cause: error },
    );
  }
  await page.click('.xterm');
}

/** Types a line into the terminal as keystrokes, then Enter. */
export async function typeLine(page: Page, text: string): Promise<void> {
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

/** The terminal's visible rows as text, one line each. */
export async function terminalText(page: Page): Promise<string> {
  return page.$$eval('.xterm-rows > div', (rows) =>
    rows.map((r) => (r.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()).join('\n'),
  );
}

/** Waits until the visible terminal text matches, and returns the match. */
export async function waitForTerminalText(
  page: Page,
  pattern: RegExp,
  timeoutMs = WAIT_MS,
): Promise<RegExpMatchArray> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = await terminalText(page);
    const match = text.match(pattern);
    if (match) return match;
    if (Date.now() > end) throw new Error(`terminal never showed ${pattern}; it shows:\n${text}`);
    await page.waitForTimeout(100);
  }
}

/** The terminal's status line: connecting, connected, reconnecting or exited. */
export function terminalStatus(page: Page): Promise<string | null> {
  return page.getAttribute('#status', 'data-state');
}

/** Saves a full-page screenshot as test-artifacts/NAME.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name.replace(/[^\w.-]+/g, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
