import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildSeat } from '../../images/workspace/server/bundle.ts';
import type { SeatServer } from '../../images/workspace/server/seat-server.ts';
import {
  launchChromium,
  openTerminal,
  screenshot,
  terminalStatus,
  typeLine,
  waitForTerminalText,
  type SeatBrowser,
} from './browser.ts';
import { startSeat, tempDir } from './helpers.ts';

/**
 * The pages in a real headless Chromium: the terminal shows what the shell prints, the file
 * manager uploads through its file input. The pages are built as `npm run build:seat` builds them.
 */

let seat: SeatServer;
let browser: SeatBrowser;
let home: string;
const cleanup: (() => Promise<void>)[] = [];

test.before(async () => {
  const out = await tempDir('seat-build-');
  const homeDir = await tempDir('seat-home-');
  cleanup.push(out.remove, homeDir.remove);
  await buildSeat(out.dir);
  home = homeDir.dir;
  seat = await startSeat({ home, assetsDir: path.join(out.dir, 'public') });
  cleanup.unshift(() => seat.close());
  browser = await launchChromium();
  cleanup.unshift(() => browser.close());
});

test.after.always(async () => {
  for (const step of cleanup) await step();
});

test.serial('the terminal page shows the shell, with the seat in its environment', async (t) => {
  const page = await browser.newPage();
  // The token query a proxy adds must not matter to the page.
  await openTerminal(page, `${seat.terminalUrl}?t=not-needed`);
  await typeLine(page, 'echo "seat=$CLARATEACH_SEAT"');
  // The typed command shows `$CLARATEACH_SEAT`; only the output shows the value.
  const match = await waitForTerminalText(page, /^seat=(\d+)$/m);
  t.is(match[1], '5');
  t.is(await terminalStatus(page), 'connected');
  t.log(await screenshot(page, 'seat-terminal'));

  // A reload reattaches to the same shell and replays what it showed.
  await page.reload();
  await page.waitForSelector('#status[data-state="connected"]');
  t.truthy(await waitForTerminalText(page, /^seat=5$/m));
  await page.close();
});

test.serial(
  'a terminal page whose script failed to load says so, and its link loads it again',
  async (t) => {
    const page = await browser.newPage();
    // The learner's network changes while the page loads: its script is lost, once.
    let lost = 0;
    await page.route('**/app.js', (route) =>
      lost++ === 0 ? route.abort('internetdisconnected') : route.continue(),
    );
    await page.goto(seat.terminalUrl);
    // After 10 s without the script the page says what happened (a wait, not a timing check).
    await page.waitForSelector('#stalled', { state: 'visible', timeout: 30_000 });
    t.regex((await page.textContent('#stalled')) ?? '', /did not finish loading/);
    t.log(await screenshot(page, 'seat-terminal-stalled'));
    await Promise.all([page.waitForEvent('load'), page.click('#stalled a')]);
    await page.waitForSelector('#status[data-state="connected"]');
    t.is(lost, 2, 'the script was asked for again');
    t.false(await page.isVisible('#stalled'));
    await typeLine(page, 'echo "back=$((6*7))"');
    t.truthy(await waitForTerminalText(page, /^back=42$/m));
    await page.close();
  },
);

test.serial('a page whose script ran never shows the notice', async (t) => {
  const page = await browser.newPage();
  await openTerminal(page, seat.terminalUrl);
  // Past the notice's 10 s, had the script not marked the page as started.
  await page.waitForTimeout(11_000);
  t.false(await page.isVisible('#stalled'));
  await page.close();
});

test.serial('the files page lists the home and uploads a file chosen in its input', async (t) => {
  await writeFile(path.join(home, 'existing.txt'), 'was here');
  const page = await browser.newPage();
  await page.goto(seat.filesUrl);
  await page.waitForSelector('tr[data-name="existing.txt"]');
  await page.setInputFiles('#upload', {
    name: 'from-browser.txt',
    mimeType: 'text/plain',
    buffer: Buffer.from('uploaded by chromium\n'),
  });
  await page.waitForSelector('tr[data-name="from-browser.txt"]');
  t.is(await readFile(path.join(home, 'from-browser.txt'), 'utf8'), 'uploaded by chromium\n');
  t.regex((await page.textContent('#message')) ?? '', /Uploaded from-browser.txt/);
  t.log(await screenshot(page, 'seat-files'));
  await page.close();
});
