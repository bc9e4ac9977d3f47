import test from 'ava';
import { randomBytes } from 'node:crypto';
import { HIGH_WATERMARK } from '../../images/workspace/server/terminal/shell-session.ts';
import { docker, vmImages } from '../helpers/vm.ts';
import {
  launchChromium,
  openTerminal,
  screenshot,
  terminalStatus,
  typeLine,
  waitForTerminalText,
  type SeatBrowser,
} from '../seat/browser.ts';
import { eventually } from '../seat/helpers.ts';

/**
 * Flow control as a learner meets it: the real terminal page in headless Chromium, attached to
 * the real seat server in the workspace image on real Docker (one container, no VM). `yes` floods
 * the page; output keeps coming far past the point where the seat pauses the shell for a viewer
 * that does not acknowledge (HIGH_WATERMARK), so the page's acks are what keeps it going; Ctrl-C
 * stops it and the next command's answer shows, on the one connection the page opened.
 */

let browser: SeatBrowser;
let container: string;
let url: string;

test.before(async () => {
  const images = await vmImages();
  container = `ct-flow-${randomBytes(4).toString('hex')}`;
  await docker(
    'run',
    '--detach',
    '--rm',
    '--name',
    container,
    '--publish',
    '127.0.0.1::3001',
    '--env',
    'CLARATEACH_SEAT=1',
    images.workspace,
  );
  url = `http://${await docker('port', container, '3001/tcp')}/`;
  const answers = await eventually(async () => {
    try {
      return (await fetch(url)).ok;
    } catch {
      return false;
    }
  });
  if (!answers) throw new Error(`the seat in ${container} never answered on ${url}`);
  browser = await launchChromium();
});

test.after.always(async () => {
  await browser?.close();
  if (container) await docker('rm', '--force', container).catch(() => undefined);
});

test('yes floods the page past the pause mark; Ctrl-C stops it and the next command answers', async (t) => {
  const page = await browser.newPage();
  const sockets: string[] = [];
  let received = 0;
  page.on('websocket', (ws) => {
    sockets.push(ws.url());
    // Only the first connection's: a reconnect's replay is not output that flowed.
    if (sockets.length === 1) ws.on('framereceived', ({ payload }) => (received += payload.length));
  });
  await openTerminal(page, url);
  await typeLine(page, 'yes flood-line');
  await waitForTerminalText(page, /^flood-line$/m);
  const flowed = await eventually(() => received > 4 * HIGH_WATERMARK);
  t.true(
    flowed,
    `the page got ${received} bytes; a viewer that never acks stops near ${HIGH_WATERMARK}`,
  );

  await page.keyboard.press('Control+C');
  await typeLine(page, 'echo done-$((6*7))');
  const done = await waitForTerminalText(page, /^done-42$/m).catch((e: Error) => e);
  if (done instanceof Error) t.log(await screenshot(page, 'terminal-flow'));
  t.false(done instanceof Error, done instanceof Error ? done.message.slice(-600) : '');
  t.is(await terminalStatus(page), 'connected');
  t.is(sockets.length, 1, `the page connected ${sockets.length} times: ${sockets.join(', ')}`);
  await page.close();
});
