import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  chromium,
  type BrowserContext,
  type Frame,
  type Page,
  type Request,
} from 'playwright-core';
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

/**
 * What a page's requests and sockets did, for a terminal that does not connect: requests still
 * pending (the page's own scripts never arrived?), failed ones, and whether the socket opened and
 * the seat said `attached`.
 */
function traceOf(page: Page): () => string {
  const started = Date.now();
  const pending = new Map<Request, number>();
  const events: string[] = [];
  const at = () => `${Date.now() - started} ms`;
  page.on('request', (r) => pending.set(r, Date.now()));
  page.on('requestfinished', (r) => pending.delete(r));
  page.on('requestfailed', (r) => {
    pending.delete(r);
    events.push(`${r.url()} failed (${r.failure()?.errorText}) at ${at()}`);
  });
  page.on('websocket', (ws) => {
    events.push(`socket ${ws.url()} at ${at()}`);
    let frames = 0;
    ws.on('framereceived', ({ payload }) => {
      if (frames++ < 3) events.push(`got ${String(payload).slice(0, 40)} at ${at()}`);
    });
    ws.on('socketerror', (error) => events.push(`socket error ${error} at ${at()}`));
    ws.on('close', () => events.push(`socket closed after ${frames} frames at ${at()}`));
  });
  return () => {
    const waiting = [...pending].map(([r, t]) => `${r.url()} pending for ${Date.now() - t} ms`);
    return [...waiting, ...events].join('; ') || 'no request, no socket';
  };
}

/** Whether `selector` shows in the page or frame within WAIT_MS. */
const shows = (where: Page | Frame, selector: string) =>
  where.waitForSelector(selector, { state: 'visible', timeout: WAIT_MS }).then(
    () => true,
    () => false,
  );
const CONNECTED = '#status[data-state="connected"]';

/**
 * Opens a terminal page (any URL serving it, token query included) and waits for `connected`.
 * A page whose requests fail with ERR_NETWORK_CHANGED is opened again, as a learner would reload
 * it, up to three times, saying so on stderr: Chromium fails what is in flight whenever this machine's network
 * interfaces change, and here they change whenever a local VM starts a seat (a bridge of its own),
 * so a page that loads while another class boots can lose its own scripts and stay
 * "connecting…". A learner's browser is on another machine.
 */
export async function openTerminal(page: Page, url: string): Promise<void> {
  const trace = traceOf(page);
  let changes = 0;
  let wake = () => {};
  page.on('requestfailed', (r) => {
    if (r.failure()?.errorText !== 'net::ERR_NETWORK_CHANGED') return;
    changes++;
    wake();
  });
  // The token URL may be opened again: the exchange only sets the same cookie again. Its page
  // moves on to the seat at once (a meta refresh), which would interrupt a goto waiting for the
  // exchange page's own load: the goto ends at its response, and `connected` is waited for below.
  const open = () =>
    page.goto(url, { waitUntil: 'commit' }).then(
      () => undefined,
      (error: Error) => {
        if (!error.message.includes('ERR_NETWORK_CHANGED')) throw error;
        changes++;
      },
    );
  await open();
  for (let seen = 0, reloads = 0; ;) {
    if (changes > seen && reloads < 3) {
      seen = changes;
      reloads++;
      console.error(
        `openTerminal: ${url} lost requests to a network change, opening it again: ${trace()}`,
      );
      await open();
      continue;
    }
    const changed = new Promise<false>((resolve) => (wake = () => resolve(false)));
    if (await Promise.race([shows(page, CONNECTED), changed])) break;
    if (changes > seen && reloads < 3) continue;
    // What the learner would have seen instead: the page's own words say why.
    const shown = await page.evaluate(() => document.body?.innerText.slice(0, 300)).catch(() => '');
    const shot = await screenshot(page, 'terminal-not-connected').catch(() => 'no screenshot');
    throw new Error(
      `the terminal at ${page.url()} did not connect; the page shows: ${shown}; ${trace()} (${shot})`,
    );
  }
  await page.click('.xterm');
}

/**
 * For a page that frames a terminal (the portal): call before the page loads, then `connect` with
 * the terminal's frame waits for `connected`. A frame whose scripts a network change failed
 * (see openTerminal) shows the page's own "did not finish loading" notice, and is loaded again
 * through its link, as a learner would, up to three times, saying so on stderr. Any other failure
 * fails with what the page's requests and sockets did.
 */
export function framedTerminal(page: Page): { connect(frame: Frame): Promise<void> } {
  const trace = traceOf(page);
  let changes = 0;
  page.on('requestfailed', (r) => {
    if (r.failure()?.errorText === 'net::ERR_NETWORK_CHANGED') changes++;
  });
  return {
    async connect(frame) {
      for (let reloads = 0; ; reloads++) {
        const state = await Promise.race([
          shows(frame, CONNECTED).then((yes) => (yes ? 'connected' : 'nothing')),
          shows(frame, '#stalled').then((yes) => (yes ? 'stalled' : 'nothing')),
        ]);
        if (state === 'connected') return;
        if (state === 'stalled' && changes > 0 && reloads < 3) {
          console.error(
            `framedTerminal: ${frame.url()} lost its script to a network change, reloading it: ${trace()}`,
          );
          await frame.click('#stalled a');
          continue;
        }
        throw new Error(
          `the framed terminal at ${frame.url()} did not connect (${state}): ${trace()}`,
        );
      }
    },
  };
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
