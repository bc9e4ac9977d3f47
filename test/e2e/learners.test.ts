import { readFileSync } from 'node:fs';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, startTestStack, type TestStack } from '../helpers/stack.ts';
import { docker } from '../helpers/vm.ts';
import {
  launchChromium,
  openTerminal,
  screenshot,
  typeLine,
  waitForTerminalText,
  type SeatBrowser,
} from '../seat/browser.ts';
import { prepareMachine } from '../../local/machine.ts';

/**
 * Two learners, as people: each joins through /join, opens the terminal it was given in headless
 * Chromium (through the VM's Caddy, on real Docker), and types into it; one uploads a file on the
 * files page, reads it in the terminal and downloads it back.
 */
let stack: TestStack;
let browser: SeatBrowser;

test.before(async () => {
  await prepareMachine({ browser: true, say: () => undefined });
  stack = await startTestStack({ boot: true });
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
  await stack?.close();
});

interface Joined {
  seat: number;
  seatToken: string;
  endpoints: { terminal: string; files: string; browser: string };
}

test.serial(
  'two learners join, each types in its own terminal, and files go both ways',
  async (t) => {
    const ws = (await stack.api('POST', '/workshops', { name: 'Learners in Chromium', seats: 2 }))
      .body;
    await stack.api('POST', `/workshops/${ws.id}/start`);
    await stack.untilStatus(ws.id, 'ready');

    const joined: Joined[] = [];
    for (const name of ['Ada', 'Grace']) {
      const res = await stack.api<Joined>('POST', '/join', { code: ws.joinCode, name });
      t.is(res.status, 200);
      for (const url of Object.values(res.body.endpoints)) t.regex(new URL(url).pathname, /\/$/);
      joined.push(res.body);
    }
    t.not(joined[0]!.seat, joined[1]!.seat);

    const pages = [];
    for (const learner of joined) {
      const page = await browser.newPage();
      await openTerminal(page, learner.endpoints.terminal);
      await typeLine(page, 'echo "seat=$CLARATEACH_SEAT user=$(whoami)"');
      const match = await waitForTerminalText(page, /^seat=(\d+) user=(\w+)$/m);
      t.is(Number(match[1]), learner.seat, 'the terminal is this learner’s own seat');
      t.is(match[2], 'learner');
      pages.push(page);
    }
    t.log(await screenshot(pages[0]!, 'e2e-terminal-seat'));

    // Ada uploads a file on her files page; it shows in the listing and in her terminal.
    const ada = joined[0]!;
    const content = Buffer.from(`notes from the class ${ws.id}\n\u00e9\u4e2d\n`);
    const files = await browser.newPage();
    await files.goto(ada.endpoints.files);
    await files.waitForSelector('tr[data-name=".profile"]');
    await files.setInputFiles('#upload', {
      name: 'notes.txt',
      mimeType: 'text/plain',
      buffer: content,
    });
    await files.waitForSelector('tr[data-name="notes.txt"]');
    t.log(await screenshot(files, 'e2e-files-after-upload'));

    await typeLine(pages[0]!, 'cat ~/notes.txt');
    t.truthy(
      await waitForTerminalText(pages[0]!, new RegExp(`^notes from the class ${ws.id}$`, 'm')),
    );

    // Downloading it gives back the same bytes (the page's own Download link).
    const [download] = await Promise.all([
      files.waitForEvent('download'),
      files.click('tr[data-name="notes.txt"] a:text("Download")'),
    ]);
    t.deepEqual(readFileSync((await download.path())!), content);

    // Grace's terminal cannot see it: her home is her own.
    await typeLine(pages[1]!, 'ls ~/notes.txt || echo "no-such-file-here"');
    t.truthy(await waitForTerminalText(pages[1]!, /^no-such-file-here$/m));
    t.log(await screenshot(pages[1]!, 'e2e-terminal-other-seat'));

    for (const page of [...pages, files]) await page.close();
    await stack.api('DELETE', `/workshops/${ws.id}`);
    await stack.untilStatus(ws.id, 'ended');
    t.deepEqual(stack.standin.instances(), []);
    const booted = stack.local.booted.map((vm) => vm.namePrefix);
    await eventually('no container of the class left', async () => {
      const names = await docker('ps', '-a', '--format', '{{.Names}}');
      return !names.split('\n').some((n) => booted.some((prefix) => n.startsWith(prefix)));
    });
    t.pass();
  },
);
