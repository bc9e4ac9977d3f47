import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { buildSeat } from '../../images/workspace/server/bundle.ts';
import type { SeatServer } from '../../images/workspace/server/seat-server.ts';
import { launchChromium, screenshot, type SeatBrowser } from './browser.ts';
import { startSeat, tempDir, WAIT_MS } from './helpers.ts';

/**
 * Who may frame a seat's pages, in real Chromium: the portal the operator names may put the
 * terminal in its page and type into it; any other site's page gets nothing in its frame (the
 * pages' CSP frame-ancestors), so it cannot dress a seat up as its own and steer the keys.
 */

let browser: SeatBrowser;
let seat: SeatServer;
let portal: string;
let stranger: string;
const cleanup: (() => Promise<void>)[] = [];

/** A site on loopback (another origin: another port) whose one page frames `src`. */
async function siteFraming(src: () => string): Promise<string> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>portal</title><iframe src="${src()}" width="900" height="500">`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test.before(async () => {
  const out = await tempDir('framing-build-');
  const home = await tempDir('framing-home-');
  cleanup.push(out.remove, home.remove);
  await buildSeat(out.dir);
  portal = await siteFraming(() => seat.terminalUrl);
  stranger = await siteFraming(() => seat.terminalUrl);
  seat = await startSeat({
    home: home.dir,
    assetsDir: path.join(out.dir, 'public'),
    portalOrigin: portal,
  });
  cleanup.unshift(() => seat.close());
  browser = await launchChromium();
  cleanup.unshift(() => browser.close());
});

test.after.always(async () => {
  for (const step of cleanup) await step();
});

/** The page's one child frame, once it has navigated. */
async function childFrame(page: Page, url: string): Promise<Frame> {
  await page.goto(url);
  const frame = page.frames().find((f) => f !== page.mainFrame());
  if (!frame) throw new Error('the page has no frame');
  await frame.waitForLoadState('load');
  return frame;
}

test.serial('the named portal frames the terminal and types into it', async (t) => {
  const page = await browser.newPage();
  const frame = await childFrame(page, `${portal}/`);
  await frame.waitForSelector('#status[data-state="connected"]', { timeout: WAIT_MS });
  await frame.click('.xterm');
  await page.keyboard.type('echo framed-$((6*7))');
  await page.keyboard.press('Enter');
  const answered = await frame
    .waitForFunction(
      () =>
        [...document.querySelectorAll('.xterm-rows > div')].some(
          (row) => row.textContent?.trim() === 'framed-42',
        ),
      undefined,
      { timeout: WAIT_MS },
    )
    .then(
      () => true,
      () => false,
    );
  t.true(answered, 'the shell answered in the portal’s frame');
  t.log(await screenshot(page, 'seat-framed-by-portal'));
  await page.close();
});

test.serial('a page of any other origin gets nothing in its frame', async (t) => {
  const page = await browser.newPage();
  const frame = await childFrame(page, `${stranger}/`);
  // Chromium puts its error page in a frame the CSP refuses: no terminal, no socket.
  t.is(await frame.$('#terminal'), null, 'no terminal page in the frame');
  t.not(frame.url(), seat.terminalUrl);
  // The seat itself, opened directly, still answers.
  const direct = await fetch(seat.terminalUrl);
  t.regex(direct.headers.get('content-security-policy') ?? '', /frame-ancestors 'self' http:\/\//);
  await page.close();
});
