import { readyClass, useChromiumStack } from '../helpers/chromium-stack.ts';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { openTerminal, screenshot, typeLine, waitForTerminalText } from '../seat/browser.ts';

/**
 * An operator's seat domain as a learner meets it, on the whole local stack: the VM gets its name
 * in the (stand-in's) Cloud DNS zone, the join hands out that name, and Chromium opens the seat's
 * terminal over HTTPS at it (names under *.localhost are loopback to Chromium, as the operator's
 * are public addresses to a learner's browser) and types into it. The class's end removes the name.
 */
process.env.SEAT_DOMAIN = 'seats.localhost';
process.env.SEAT_DNS_ZONE = 'seats';
const e2e = useChromiumStack(test);

test.serial('a learner opens their seat at the VM’s name and types into it', async (t) => {
  t.timeout(900_000);
  const { stack, browser } = e2e;
  const ws = await readyClass(t, stack, { name: 'Named seats', seats: 2 });
  const host = `ct-${ws.id}-0.seats.localhost`;
  const named = () =>
    stack.standin.dnsRecords().filter((r) => r.type === 'A' && r.name === `${host}.`);
  t.deepEqual(
    named().map((r) => r.rrdatas),
    [['127.0.0.1']],
  );

  const joined = await stack.api('POST', '/join', { code: ws.joinCode, name: 'Ada' });
  t.is(joined.status, 200, joined.text);
  const terminal = new URL(joined.body.endpoints.terminal as string);
  t.is(terminal.protocol, 'https:');
  t.is(terminal.hostname, host);

  const page = await browser.newPage();
  await openTerminal(page, terminal.href);
  await typeLine(page, 'echo named-$((6*7))');
  const seen = await waitForTerminalText(page, /^named-42$/m).catch((e: Error) => e);
  t.log(await screenshot(page, 'seat-domain-terminal'));
  t.false(seen instanceof Error, seen instanceof Error ? seen.message.slice(-600) : '');
  const location = new URL(page.url());
  t.is(location.origin, terminal.origin, 'the page stays on the seat’s named origin');
  t.false(location.search.includes('t='), 'the token left the address');
  await page.close();

  await ws.end();
  t.deepEqual(named(), [], 'the name went with its VM');
});
