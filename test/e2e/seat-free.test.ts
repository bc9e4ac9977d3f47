import type { Page } from 'playwright-core';
import { readyClass, useChromiumStack } from '../helpers/chromium-stack.ts';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, fromLearner } from '../helpers/stack.ts';
import {
  launchChromium,
  openTerminal,
  screenshot,
  terminalText,
  typeLine,
  waitForTerminalText,
} from '../seat/browser.ts';

/**
 * Freeing and resetting a seat, as the people in it see it, in headless Chromium through /join
 * and the VM's Caddy on real Docker: the freed learner's open terminal says it is closed and their
 * URL and cookie stop working; the next learner on the seat finds an empty home and a new shell;
 * a reset gives a new shell and keeps or wipes the home.
 */
const e2e = useChromiumStack(test);

interface Joined {
  seat: number;
  endpoints: { terminal: string };
}

/** How long the seat's VM may take to apply a change on a machine shared with other runs. */
const APPLY_MS = 180_000;

/**
 * Asks the shell, in one line, for a variable set in the old shell and for ~/b.txt, until a new
 * shell answers (the variable gone): a reset replaces the shell behind the open page, which
 * reconnects by itself. Returns what the new shell found of the file; with `finds`, waits for a
 * new shell that finds that (a rerun of the VM may bring the seat up more than once on its way).
 */
async function untilNewShell(page: Page, finds?: string): Promise<string> {
  let probe = 0;
  return eventually(
    'a new shell in the page',
    async () => {
      probe++; // each probe its own line: an answer already on the screen does not count
      await page.click('.xterm');
      await typeLine(page, `echo "probe${probe}=[$MARK]:$(cat ~/b.txt 2>/dev/null || echo gone)"`);
      const answer = new RegExp(`^probe${probe}=\\[\\]:(.*)$`, 'm');
      const found = await waitForTerminalText(page, answer, 3_000).catch(() => undefined);
      return finds === undefined || found?.[1] === finds ? found?.[1] : undefined;
    },
    APPLY_MS,
  );
}

test.serial(
  'a freed seat is new for the next learner; a reset keeps or wipes the home',
  async (t) => {
    t.timeout(1_500_000); // a class boots and its VM applies three changes on a shared machine
    const { stack, browser } = e2e;
    const ws = await readyClass(t, stack, { name: 'Free and reset in Chromium', seats: 3 });
    const join = async (i: number) => {
      const res = await stack.api<Joined>(
        'POST',
        '/join',
        { code: ws.joinCode, name: `L${i}` },
        fromLearner(i),
      );
      t.is(res.status, 200, res.text);
      return res.body;
    };
    // Three learners fill the class; learner A is the one on seat 3.
    const learners = [await join(1), await join(2), await join(3)];
    const a = learners.find((l) => l.seat === 3)!;
    t.truthy(a, `seat 3 taken: ${learners.map((l) => l.seat).join(' ')}`);

    // A writes a file and leaves a trace in the shell.
    const pageA = await browser.newPage();
    await openTerminal(pageA, a.endpoints.terminal);
    await typeLine(pageA, 'echo "A was here" > ~/a.txt && echo TRACE-OF-A-$((6*7))');
    await waitForTerminalText(pageA, /^TRACE-OF-A-42$/m);
    const bare = new URL(a.endpoints.terminal);
    bare.search = '';
    t.true((await browser.context.cookies(bare.href)).length > 0, 'A holds the seat cookie');

    // The instructor frees seat 3; A's open page says the seat is closed.
    t.is((await stack.api('DELETE', `/workshops/${ws.id}/seats/3`)).status, 200);
    const freedAt = Date.now();
    await pageA.waitForSelector('#status[data-state="closed"]', { timeout: APPLY_MS });
    t.log(
      `A's page showed the seat closed ${((Date.now() - freedAt) / 1000).toFixed(1)} s after the free`,
    );
    t.regex((await pageA.textContent('#status'))!, /this seat was closed/);
    t.log(await screenshot(pageA, 'seat-free-a-closed'));
    // A's old URL (token in it) and A's cookie (the browser's jar, no token) are refused.
    t.is((await pageA.request.get(a.endpoints.terminal)).status(), 403, "A's old URL");
    t.is((await pageA.request.get(bare.href)).status(), 403, "A's cookie");
    await pageA.close();

    // Learner B, in a browser of their own, gets seat 3 once its VM has confirmed the reset.
    const browserB = await launchChromium();
    t.teardown(() => browserB.close());
    const b = await eventually(
      'seat 3 offered again',
      async () => {
        const res = await stack.api<Joined>(
          'POST',
          '/join',
          { code: ws.joinCode, name: 'B' },
          fromLearner(4),
        );
        return res.status === 200 ? res.body : undefined;
      },
      APPLY_MS,
    );
    t.is(b.seat, 3);
    const pageB = await browserB.newPage();
    await openTerminal(pageB, b.endpoints.terminal);
    await typeLine(pageB, 'ls ~; echo "entries=$(ls -A ~ | grep -vc "^\\.")"');
    t.is((await waitForTerminalText(pageB, /^entries=(\d+)$/m))[1], '0', 'an empty home');
    const seen = await terminalText(pageB);
    t.false(seen.includes('a.txt'), seen);
    t.false(seen.includes('TRACE-OF-A'), 'no trace of the old shell');
    t.log(await screenshot(pageB, 'seat-free-b-empty-home'));

    // A reset keeping the home: a new shell behind B's open page, B's file still there.
    const reset = (keepHome: boolean) =>
      stack.api('POST', `/workshops/${ws.id}/seats/3/reset`, { keepHome });
    await typeLine(pageB, 'export MARK=b1; echo "B keeps" > ~/b.txt && echo written-$((6*7))');
    await waitForTerminalText(pageB, /^written-42$/m);
    t.is((await reset(true)).status, 202);
    t.is(await untilNewShell(pageB), 'B keeps');
    t.log(await screenshot(pageB, 'seat-reset-keep-home'));

    // A reset wiping the home: a new shell again, and the file gone.
    await typeLine(pageB, 'export MARK=b2; echo marked-$((6*7+1))');
    await waitForTerminalText(pageB, /^marked-43$/m);
    t.is((await reset(false)).status, 202);
    t.is(await untilNewShell(pageB, 'gone'), 'gone');
    t.log(await screenshot(pageB, 'seat-reset-wipe-home'));
    await pageB.close();
    await ws.end();
  },
);
