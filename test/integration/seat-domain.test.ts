// An operator's seat domain (SEAT_DOMAIN, a Cloud DNS zone) on the local stack: the control plane
// names each VM in the stand-in's Cloud DNS once Compute has given it its address, joins and the
// instructor's status carry that name, and no name outlives its VM: not at the end of the class,
// not after a sweep, not when Cloud DNS fails. Cloud DNS itself is the local stand-in, spoken to
// with the same client as the real one.
import { emulatorTest as test } from '../helpers/emulators.ts';
import { captureOutput } from '../helpers/log-capture.ts';
import { eventually, fromLearner, startTestStack, type TestStack } from '../helpers/stack.ts';
import { TOPICS } from '../../shared/topics.ts';

const DOMAIN = 'seats.localhost';
process.env.SEAT_DOMAIN = DOMAIN;
process.env.SEAT_DNS_ZONE = 'seats';

let stack: TestStack;
const logged = captureOutput();

test.before(async () => {
  stack = await startTestStack();
});

/** The A records the stand-in's Cloud DNS holds, as host → addresses. */
function names(): Map<string, string[]> {
  return new Map(
    stack.standin
      .dnsRecords()
      .filter((r) => r.type === 'A')
      .map((r) => [r.name.replace(/\.$/, ''), r.rrdatas]),
  );
}

async function startClass(seats: number) {
  const created = await stack.api('POST', '/workshops', { name: 'Named seats', seats });
  const id: string = created.body.id;
  const started = await stack.api('POST', `/workshops/${id}/start`);
  if (started.status !== 202) throw new Error(`start answered ${started.status}`);
  return { id, joinCode: created.body.joinCode as string };
}

async function endClass(id: string) {
  await stack.api('DELETE', `/workshops/${id}`);
  await stack.untilStatus(id, 'ended');
}

test.serial(
  'each VM is named once it has its address; joins and the status carry the name; the end removes it',
  async (t) => {
    const { id, joinCode } = await startClass(25);
    const vms = [`ct-${id}-0`, `ct-${id}-1`];
    const hosts = vms.map((vm) => `${vm}.${DOMAIN}`);
    // The stand-in gives every instance the loopback address as its external IP.
    await eventually('both VMs named', () => hosts.every((h) => names().has(h)));
    for (const host of hosts) t.deepEqual(names().get(host), ['127.0.0.1']);
    for (const [n, instance] of stack.instancesOf(id).entries()) {
      t.is(instance.metadata['public-host'], hosts[n], 'the VM is told the name it goes by');
    }

    // The start delivered again, twice at once: the same names, nothing added.
    const before = [...names().keys()].sort();
    const again = await Promise.all([
      stack.deliver(TOPICS.workshopStarted, { workshopId: id }),
      stack.deliver(TOPICS.workshopStarted, { workshopId: id }),
    ]);
    t.deepEqual(again, [204, 204]);
    t.deepEqual([...names().keys()].sort(), before);

    for (const report of await stack.readyReports(id)) {
      t.is(await stack.deliver(TOPICS.vmReady, report), 204);
    }
    const ready = await stack.untilStatus(id, 'ready');
    t.deepEqual(
      ready.vms.map((vm: { publicHost: string }) => vm.publicHost),
      hosts,
    );
    const joined = await stack.api(
      'POST',
      '/join',
      { code: joinCode, name: 'Ada' },
      fromLearner(1),
    );
    t.is(joined.status, 200, joined.text);
    const seat: number = joined.body.seat;
    const vm = seat <= 13 ? 0 : 1;
    const port = 8400 + seat - (vm === 0 ? 1 : 14) + 1;
    t.true(
      joined.body.endpoints.terminal.startsWith(
        `https://${hosts[vm]}:${port}/vm/${seat}/terminal/?t=`,
      ),
      joined.body.endpoints.terminal,
    );

    await endClass(id);
    for (const host of hosts) t.false(names().has(host), `${host} outlives its VM`);
    t.deepEqual(stack.instancesOf(id), []);
  },
);

test.serial(
  "the sweep removes the names of VMs that are gone, never a live VM's nor the operator's own",
  async (t) => {
    const { id } = await startClass(5);
    const live = `ct-${id}-0.${DOMAIN}`;
    await eventually('the live VM named', () => names().has(live));
    const dns = stack.services.dns!;
    const leaked = `ct-aaaaaaaaaaaaaaaa-0.${DOMAIN}`;
    await dns.setAddress(leaked, '192.0.2.7');
    await dns.setAddress(`www.${DOMAIN}`, '192.0.2.8');
    await dns.setAddress(`ct-aaaaaaaaaaaaaaaa-0.www.${DOMAIN}`, '192.0.2.9');

    t.is(await stack.deliver(TOPICS.workshopSweep, {}), 204);
    const held = names();
    t.false(held.has(leaked), 'a name whose VM is gone is removed');
    t.true(held.has(live), "a live VM's name stays");
    t.true(held.has(`www.${DOMAIN}`), "the operator's names are theirs");
    t.true(held.has(`ct-aaaaaaaaaaaaaaaa-0.www.${DOMAIN}`));
    t.true(
      logged.structured.some((line) =>
        line.includes('"message":"removed the name of a VM that is gone"'),
      ),
      'the sweep says what it removed',
    );

    await endClass(id);
    await dns.removeAddress(`www.${DOMAIN}`);
    await dns.removeAddress(`ct-aaaaaaaaaaaaaaaa-0.www.${DOMAIN}`);
  },
);

test.serial('Cloud DNS unavailable once: the start is retried and the VM named', async (t) => {
  stack.standin.injectFault({ op: 'dns', kind: 'http503', times: 1 });
  const { id } = await startClass(5);
  const host = `ct-${id}-0.${DOMAIN}`;
  await eventually('the VM named after a retry', () => names().has(host), 60_000);
  t.is((await stack.workshop(id)).status, 'provisioning', 'a transient failure fails nothing');
  await endClass(id);
  t.false(names().has(host));
});

test.serial(
  'Cloud DNS refusing (no permission): the class fails, saying so, and leaves no VM',
  async (t) => {
    stack.standin.injectFault({ op: 'dns', kind: 'http403', times: 1 });
    const { id } = await startClass(5);
    const failed = await stack.untilStatus(id, 'failed');
    t.regex(`${failed.error.code} ${failed.error.message}`, /403|forbidden|permission/i);
    t.regex(failed.error.message, /seats/, 'it names the zone');
    await eventually('no VM left', () => stack.instancesOf(id).length === 0);
    t.false(names().has(`ct-${id}-0.${DOMAIN}`));
  },
);
