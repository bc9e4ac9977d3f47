import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually, startTestStack, type TestStack } from '../helpers/stack.ts';
import { runDemo } from '../../local/demo.ts';
import { processAlive } from '../../local/process-groups.ts';
import { localCa } from '../../local/tls-ca.ts';
import {
  launchChromium,
  openTerminal,
  screenshot,
  typeLine,
  waitForTerminalText,
} from '../seat/browser.ts';

/**
 * The whole class end to end: the real startup script boots each "VM" on real Docker against the
 * metadata server and the Pub/Sub emulator, the real Caddy guards every seat, and nothing is
 * left behind: no instance, no process.
 */
let stack: TestStack;

test.before(async () => {
  stack = await startTestStack({ boot: true });
});
test.after.always(async () => {
  const pids = stack?.local.booted.flatMap((vm) => vm.pids()) ?? [];
  await stack?.close();
  if (pids.some(processAlive)) throw new Error('a VM process outlived the stack');
});

test.serial(
  'the demo class: 12 seats through Caddy, own seat in, other seats out, its https URLs open in Chromium, all gone at the end',
  async (t) => {
    t.timeout(900_000);
    const lines: string[] = [];
    const result = await runDemo(stack.url, (line) => lines.push(line), { end: false });
    t.log(lines.join('\n'));
    t.is(result.status, 'ready');
    t.deepEqual(
      [...result.seats].sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    t.is(result.ownSeat.status, 200);
    t.regex(result.ownSeat.body, /<title>Terminal<\/title>/, 'the seat’s real terminal page');
    t.is(result.foreignToken.status, 403);
    t.is(result.noToken.status, 403);

    // What it printed opens in Chromium (trusting the local CA by the flag it printed).
    const printed = lines.flatMap((l) => /terminal (\S+)$/.exec(l)?.[1] ?? []);
    t.is(printed.length, 12);
    t.true(
      printed.every((url) => url.startsWith('https://')),
      printed.join(' '),
    );
    t.true(
      lines.some((l) => l.includes(localCa().chromiumFlag)),
      'the flag that trusts the CA',
    );
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await openTerminal(page, printed[0]!);
      await typeLine(page, 'echo demo-$((6*7))');
      await waitForTerminalText(page, /^demo-42$/m);
      t.log(await screenshot(page, 'demo-terminal'));
    } finally {
      await browser.close();
    }

    t.is((await stack.api('DELETE', `/workshops/${result.workshopId}`)).status, 202);
    const ended = await eventually(
      'the class ended',
      async () => {
        const w = (await stack.api('GET', `/workshops/${result.workshopId}`)).body;
        return w.status === 'ended' ? w : undefined;
      },
      300_000,
    );
    t.true(ended.vms.every((v: { status: string }) => v.status === 'deleted'));
    t.deepEqual(stack.standin.instances(), []);
    const pids = stack.local.booted.flatMap((vm) => vm.pids());
    t.true(pids.length > 0);
    await eventually('every VM process gone', () => !pids.some(processAlive));
  },
);

test.serial(
  'a workspace image that cannot be pulled: the VM reports failed, the workshop fails, its VM is deleted',
  async (t) => {
    const ws = (
      await stack.api('POST', '/workshops', {
        name: 'Broken image',
        seats: 2,
        image: 'broken-workspace:1',
      })
    ).body;
    await stack.api('POST', `/workshops/${ws.id}/start`);
    const failed = await eventually(
      'workshop failed',
      async () => {
        const w = (await stack.api('GET', `/workshops/${ws.id}`)).body;
        return w.status === 'failed' ? w : undefined;
      },
      120_000,
    );
    t.is(failed.endReason, 'vm-failed');
    t.is(failed.error.code, 'VM_FAILED');
    // The tail of the VM's log: the pull that failed, and the step it stopped at.
    t.regex(failed.error.message, /pulling \S*broken-workspace:1 failed/);
    t.regex(failed.error.message, /error: could not pull every image/);
    t.deepEqual(stack.standin.instances(), []);
  },
);
