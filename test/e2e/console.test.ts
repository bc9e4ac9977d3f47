import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, startTestStack, type TestStack } from '../helpers/stack.ts';
import {
  CHROMIUM,
  chromiumArgs,
  openTerminal,
  screenshot,
  typeLine,
  waitForTerminalText,
} from '../seat/browser.ts';
import { prepareMachine } from '../../local/machine.ts';

/**
 * A class run from the browser, as people would, on the local stack and real Docker: the
 * instructor's console at `/`, two learners on the join page (a laptop and a phone), the watch
 * grid, a viewer socket that cannot type, a hand raised and cleared, a seat reset (its home wiped),
 * a seat freed, the class ended.
 */
let stack: TestStack;
let browser: Browser;

test.before(async () => {
  await prepareMachine({ browser: true, say: () => undefined });
  stack = await startTestStack({ boot: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: chromiumArgs(),
  });
});
test.after.always(async () => {
  await browser?.close();
  await stack?.close();
});

const WAIT = { timeout: 400_000 };

/** A learner in a browser of their own (their own localStorage), at a given size. */
async function learner(viewport: { width: number; height: number }, mobile: boolean) {
  const context = await browser.newContext({ viewport, isMobile: mobile, hasTouch: mobile });
  return context.newPage();
}

async function joinAs(page: Page, code: string, name: string, shot: string): Promise<void> {
  await page.goto(`${stack.url}/join?code=${code}`);
  await page.fill('#name', name);
  await screenshot(page, shot);
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/vm\/\d+\//); // the workspace page (its terminal is in it)
  await page.waitForSelector('#status[data-state="connected"]', WAIT);
}

const seatOf = (page: Page) => Number(/\/vm\/(\d+)\//.exec(page.url())![1]);

/** What a seat's tile in the watch grid shows. */
const tileText = (console: Page, seat: number) =>
  console.$$eval(`.tile[data-seat="${seat}"] .xterm-rows > div`, (rows) =>
    rows.map((r) => (r.textContent ?? '').replace(/\u00a0/g, ' ')).join('\n'),
  );

test.serial(
  'an instructor runs a class of 3 from the console; learners join from the join page',
  async (t) => {
    t.timeout(900_000); // a class boots, and a seat is reset, on a machine shared with other runs
    const instructor = await (
      await browser.newContext({ viewport: { width: 1280, height: 900 } })
    ).newPage();
    await instructor.goto(`${stack.url}/`);
    await instructor.fill('#create [name="name"]', 'Console class');
    await instructor.fill('#create [name="seats"]', '3');
    const instructions = await instructor.$('#create [name="instructions"]');
    if (instructions) await instructions.fill('# Step 1\n\n```\necho "hello from step 1"\n```\n');
    await instructor.click('#create button[type="submit"]');
    await instructor.waitForSelector('#status[data-status="created"]');
    const id = (await stack.api('GET', '/workshops')).body.workshops[0].id as string;
    // A failure half-way still ends the class: no VM outlives the test.
    t.teardown(async () => {
      await stack.api('DELETE', `/workshops/${id}`);
      await stack.untilStatus(id, 'ended');
    });
    const code = (await instructor.textContent('#join-code'))!.trim();
    t.regex(code, /^[A-Z0-9]{6,}$/);
    await instructor.click('button:text("Start")');
    await instructor.waitForSelector('#status[data-status="provisioning"]');
    await screenshot(instructor, 'console-provisioning');
    await instructor.waitForSelector('#status[data-status="ready"]', WAIT);
    t.regex((await instructor.textContent('#ready'))!, /seats ready 3 of 3/);
    await screenshot(instructor, 'console-ready');

    const ada = await learner({ width: 1280, height: 800 }, false);
    await joinAs(ada, code, 'Ada', 'join-laptop');
    const grace = await learner({ width: 390, height: 844 }, true);
    await joinAs(grace, code, 'Grace', 'join-phone');
    const [adaSeat, graceSeat] = [seatOf(ada), seatOf(grace)];
    t.not(adaSeat, graceSeat);
    await instructor.waitForSelector(`#learners tr[data-seat="${graceSeat}"]`);
    t.regex((await instructor.textContent('#learners'))!, /Ada[\s\S]*Grace|Grace[\s\S]*Ada/);

    // The grid shows Ada's terminal as she types.
    await instructor.click('button:text("Watch every seat")');
    await instructor.waitForSelector(`.tile[data-seat="${adaSeat}"] .xterm-rows`);
    await openTerminal(ada, ada.url());
    await typeLine(ada, 'echo "wat""ched"');
    await waitForTerminalText(ada, /^watched$/m);
    await eventually('the grid shows watched', async () =>
      /^watched\s*$/m.test(await tileText(instructor, adaSeat)),
    );
    await screenshot(instructor, 'console-grid');

    // A viewer socket, at the protocol level, changes nothing in the seat.
    const room = (await stack.api('GET', `/workshops/${id}/seats`)).body;
    const watch = room.seats.find((s: any) => s.seat === adaSeat).watch as string;
    const socketUrl = new URL('ws', watch.replace(/^http/, 'ws'));
    socketUrl.search = new URL(watch).search;
    const socket = new WebSocket(socketUrl);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.send(Buffer.from('touch ~/viewer-was-here\r'), { binary: true });
    socket.send(JSON.stringify({ type: 'resize', cols: 40, rows: 10 }));
    await new Promise((resolve) => {
      socket.once('pong', resolve);
      socket.ping();
    });
    socket.close();
    await typeLine(ada, 'ls ~/viewer-was-here 2>/dev/null || echo "no-""viewer-file"; stty size');
    await waitForTerminalText(ada, /^no-viewer-file$/m);
    t.notRegex((await waitForTerminalText(ada, /^(\d+) (\d+)$/m))[0], /^10 40$/);
    const learnerWatch = new URL(watch);
    learnerWatch.searchParams.set('v', 'not-the-viewer-credential');
    t.is((await fetch(learnerWatch)).status, 403, 'the watch route wants the viewer credential');

    // Grace comes back to the join page (her seat is kept there) and raises her hand.
    await grace.goto(`${stack.url}/join`);
    await grace.click('#hand');
    await grace.waitForSelector('#hand[aria-pressed="true"]');
    await screenshot(grace, 'join-hand-raised-phone');
    await instructor.waitForSelector(`[data-clear="${graceSeat}"]`);
    t.regex((await instructor.textContent('#hands'))!, new RegExp(`Seat ${graceSeat}, Grace`));
    await screenshot(instructor, 'console-hand');
    await instructor.click(`[data-clear="${graceSeat}"]`);
    await instructor.waitForSelector(`[data-clear="${graceSeat}"]`, { state: 'detached' });

    // The instructor resets Ada's seat, wiping her home: her terminal comes back, in a new
    // container, without the file she made; the grid's tile follows the new shell.
    await typeLine(ada, 'touch ~/made-before-reset && echo "ma""de"');
    await waitForTerminalText(ada, /^made$/m);
    await instructor.click(`[data-reset="${adaSeat}"]`);
    await instructor.waitForSelector('#reset[open]');
    t.true(await instructor.isDisabled('#reset-confirm'), 'keep or wipe: nothing chosen for them');
    await screenshot(instructor, 'console-reset');
    await instructor.check('#reset input[value="wipe"]');
    await instructor.click('#reset-confirm');
    await ada.waitForSelector('#status[data-state="reconnecting"]', WAIT);
    await ada.waitForSelector('#status[data-state="connected"]', WAIT);
    await ada.click('.xterm');
    await typeLine(ada, 'ls ~/made-before-reset 2>/dev/null || echo "wi""ped"');
    await waitForTerminalText(ada, /^wiped$/m);
    await eventually('the grid follows the new shell', async () =>
      /^wiped\s*$/m.test(await tileText(instructor, adaSeat)),
    );
    t.true(await instructor.isHidden('#error'));

    // The instructor frees Grace's seat, then ends the class.
    await instructor.click(`[data-free="${graceSeat}"]`);
    await instructor.waitForSelector(`#learners tr[data-seat="${graceSeat}"]`, {
      state: 'detached',
    });
    await instructor.click('button:text("End class")');
    await instructor.waitForSelector('#status[data-status="ended"]', WAIT);
    await screenshot(instructor, 'console-ended');
    t.deepEqual(stack.standin.instances(), []);
  },
);
