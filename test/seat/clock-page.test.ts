import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildSeat } from '../../images/workspace/server/bundle.ts';
import {
  launchChromium,
  openTerminal,
  screenshot,
  waitForTerminalText,
  type SeatBrowser,
} from './browser.ts';
import { startSeat, tempDir } from './helpers.ts';

/**
 * The class clock as the learner sees it, in real Chromium: the terminal page's header and the
 * shell's own lines, with the seat server's clock injected (no real waiting) and the class end
 * written to the clock file the way the VM's watcher writes it.
 */

const T0 = Date.parse('2030-01-01T09:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

let browser: SeatBrowser;
const cleanup: (() => Promise<void>)[] = [];

test.before(async () => {
  browser = await launchChromium();
  cleanup.push(() => browser.close());
});

test.after.always(async () => {
  for (const step of cleanup.reverse()) await step();
});

test('warnings at 15, 5 and 1 minutes show in the page and the shell; an extension moves them', async (t) => {
  const out = await tempDir('clock-build-');
  const home = await tempDir('clock-home-');
  const run = await tempDir('clock-run-');
  cleanup.push(out.remove, home.remove, run.remove);
  await buildSeat(out.dir);
  const clockFile = path.join(run.dir, 'class-ends');
  await writeFile(clockFile, at(60));
  // Half a minute off the end, so the page's own countdown shows the same minute for 30 s.
  let now = T0 - 30_000;
  const seat = await startSeat({
    home: home.dir,
    assetsDir: path.join(out.dir, 'public'),
    clockFile,
    now: () => now,
  });
  cleanup.push(() => seat.close());
  const page = await browser.newPage();
  await openTerminal(page, seat.terminalUrl);
  // What the header shows once it reads `text` in `state`, or after 20 s whatever it shows then.
  const clock = async (state: string, text: string) => {
    const seen = () =>
      page.$eval('#clock', (el) => `${(el as HTMLElement).dataset.state}|${el.textContent}`);
    for (let end = Date.now() + 20_000; Date.now() < end; await page.waitForTimeout(100)) {
      if ((await seen()) === `${state}|${text}`) break;
    }
    return seen();
  };
  const shows = async (state: string, text: string) =>
    t.is(await clock(state, text), `${state}|${text}`);

  await shows('ok', '1 h 00 min left');

  now = T0 + 45.5 * 60_000; // 14.5 minutes left
  await shows('warning', '14 min left: this class ends soon, save your work');
  await waitForTerminalText(page, /this class ends in 15 minutes \(at 10:00 UTC\): save your work/);
  // The banner takes its own row: the shell's first row stays in sight below it.
  const banner = (await page.locator('#clock').boundingBox())!;
  const screen = (await page.locator('.xterm-screen').boundingBox())!;
  t.true(banner.y + banner.height <= screen.y, 'the warning banner covers no terminal row');
  t.log(await screenshot(page, 'seat-clock-warning'));

  // The instructor extends by an hour: the warning goes, the time left follows.
  await writeFile(clockFile, at(120));
  await shows('ok', '1 h 14 min left');

  now = T0 + 115.5 * 60_000; // 4.5 minutes left of the new end
  await shows('warning', '4 min left: this class ends soon, save your work');
  await waitForTerminalText(page, /this class ends in 5 minutes \(at 11:00 UTC\)/);
  now = T0 + 119.5 * 60_000;
  await shows('warning', 'under a minute left: this class ends soon, save your work');
  await waitForTerminalText(page, /this class ends in 1 minute \(at 11:00 UTC\)/);

  now = T0 + 121 * 60_000;
  await shows('ended', 'this class has ended');
  t.log(await screenshot(page, 'seat-clock-ended'));
  await page.close();
});
