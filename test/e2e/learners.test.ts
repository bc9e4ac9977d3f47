import { readFileSync } from 'node:fs';
import { readyClass, useChromiumStack } from '../helpers/chromium-stack.ts';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { openTerminal, screenshot, typeLine, waitForTerminalText } from '../seat/browser.ts';

/**
 * Two learners, as people: each joins through /join, opens the terminal it was given in headless
 * Chromium (through the VM's Caddy, on real Docker), and types into it; one uploads a file on the
 * files page, reads it in the terminal and downloads it back.
 */
const e2e = useChromiumStack(test);

interface Joined {
  seat: number;
  seatToken: string;
  endpoints: { terminal: string; files: string; browser: string };
}

test.serial(
  'two learners join, each types in its own terminal, and files go both ways',
  async (t) => {
    t.timeout(900_000); // a class boots on a machine shared with other test runs
    const { stack, browser } = e2e;
    const ws = await readyClass(t, stack, { name: 'Learners in Chromium', seats: 2 });

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
    await ws.end();
  },
);
