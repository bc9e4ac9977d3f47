// Seat networks from the script's own pool (CT_SEAT_SUBNET_POOL), on real Docker: two VMs of 20
// seats side by side on one Docker, what a rerun keeps, what a seat still reaches, and how an
// exhausted or overlapping pool fails the VM.
import { randomInt } from 'node:crypto';
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { outside } from '../helpers/outside.ts';
import {
  boot,
  docker,
  instanceFor,
  readyMessages,
  seatReaches,
  seatReachesOpen,
  stopAndCheckNothingLeft,
} from '../helpers/vm.ts';
import { runCommand } from '../../local/commands.ts';
import { cidrRange, overlap } from '../../local/subnets.ts';
import type { BootedInstance } from '../../local/vm-runner.ts';

/** Each seat network of the VM: name → its id and subnet. */
async function seatNetworks(vm: BootedInstance, vmName: string) {
  const names = (
    await docker(
      'network',
      'ls',
      '--filter',
      `label=clarateach.vm=${vmName}`,
      '--format',
      '{{.Name}}',
    )
  )
    .split('\n')
    .filter((name) => name.startsWith(vm.namePrefix));
  const networks: Record<string, { id: string; subnet: string; gateway: string }> = {};
  for (const name of names) {
    const [id, subnet] = (
      await docker(
        'network',
        'inspect',
        '--format',
        '{{.Id}} {{range .IPAM.Config}}{{.Subnet}}{{end}}',
        name,
      )
    ).split(' ');
    // Docker gives a network made with --subnet its first address as the gateway.
    const gateway = (cidrRange(subnet!)!.first + 1)
      .toString(16)
      .padStart(8, '0')
      .match(/../g)!
      .map((octet) => parseInt(octet, 16))
      .join('.');
    networks[name.slice(vm.namePrefix.length)] = { id: id!, subnet: subnet!, gateway };
  }
  return networks;
}

/** A TCP listener of the test's own on the seat network's gateway (the host's side of it). */
async function listenOn(t: ExecutionContext, address: string): Promise<number> {
  const server = net.createServer((s) => s.on('error', () => undefined).end('gateway\n'));
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

test('two VMs of 20 seats share one Docker, each seat on a /28 of its own; a rerun keeps them', async (t) => {
  t.timeout(1_200_000);
  const world = await outside(t);
  const messages = await readyMessages(t);
  const plans = await Promise.all([
    instanceFor({ seatFirst: 1, seatCount: 20 }),
    instanceFor({ seatFirst: 21, seatCount: 20 }),
  ]);
  const vms = await Promise.all(
    plans.map((plan) => boot(t, plan, { CT_METADATA_ADDR: world.metadataIp, CT_SEAT_WAIT: '600' })),
  );
  for (const plan of plans) {
    const [ready] = await messages.forVm(plan.vmName, 1, 900_000);
    t.like(ready, { state: 'ready', seatsReady: 20 }, ready?.error);
  }

  const all: Array<{ vm: number; name: string; subnet: string }> = [];
  const before = await Promise.all(vms.map((vm, v) => seatNetworks(vm, plans[v]!.vmName)));
  for (const [v, networks] of before.entries()) {
    const pool = cidrRange(vms[v]!.subnetPool)!;
    t.is(Object.keys(networks).length, 20, `VM ${v + 1} has a network per seat`);
    for (const [name, { subnet }] of Object.entries(networks)) {
      const range = cidrRange(subnet)!;
      t.is(range.last - range.first + 1, 16, `${name} is a /28`);
      t.true(range.first >= pool.first && range.last <= pool.last, `${name} is in its VM's pool`);
      all.push({ vm: v, name, subnet });
    }
  }
  // The i-th seat of a VM, the i-th /28 of its pool: seat 21 is the second VM's first.
  t.is(before[0]!['seat-1-net']!.subnet, `${vms[0]!.subnetPool.split('/')[0]}/28`);
  t.is(before[1]!['seat-21-net']!.subnet, `${vms[1]!.subnetPool.split('/')[0]}/28`);
  for (const [i, a] of all.entries()) {
    for (const b of all.slice(i + 1)) {
      t.false(overlap(cidrRange(a.subnet)!, cidrRange(b.subnet)!), `${a.name} and ${b.name}`);
    }
  }

  /** A seat reaches its gateway, Docker's DNS and the internet; nothing private, no metadata. */
  const firewallHolds = async (vm: BootedInstance, seat: number, gateway: string) => {
    const [workspace, browser] = [
      `${vm.namePrefix}seat-${seat}`,
      `${vm.namePrefix}seat-${seat}-browser`,
    ];
    const port = await listenOn(t, gateway);
    for (const c of [workspace, browser]) {
      t.true(await seatReachesOpen(c, gateway, port), `${c} → its gateway`);
      t.true(await seatReachesOpen(c, world.publicIp, world.port), `${c} → the internet`);
      t.false(await seatReaches(c, world.privateIp, world.port), `${c} → a private address`);
      t.false(await seatReaches(c, world.metadataIp, world.port), `${c} → the metadata server`);
    }
    const dns = await runCommand('docker', ['exec', workspace, 'getent', 'hosts', browser]);
    t.is(dns.code, 0, `${workspace} resolves its browser through Docker's DNS`);
  };
  await firewallHolds(vms[0]!, 1, before[0]!['seat-1-net']!.gateway);
  await firewallHolds(vms[1]!, 40, before[1]!['seat-40-net']!.gateway);

  // A reboot of the first VM: every seat finds the very network it had.
  await vms[0]!.reboot({ powerCycle: true });
  const [, again] = await messages.forVm(plans[0]!.vmName, 2, 900_000);
  t.like(again, { state: 'ready', seatsReady: 20 }, again?.error);
  t.deepEqual(await seatNetworks(vms[0]!, plans[0]!.vmName), before[0]);
  await firewallHolds(vms[0]!, 20, before[0]!['seat-20-net']!.gateway);

  for (const vm of vms) await stopAndCheckNothingLeft(t, vm);
});

test('an exhausted seat subnet pool fails the VM, naming the pool and what it needs', async (t) => {
  const plan = await instanceFor({ seatFirst: 1, seatCount: 3 });
  const messages = await readyMessages(t);
  // A /27 holds two /28s: deliberately too small for three seats.
  const vm = await boot(t, plan, { CT_SEAT_SUBNET_POOL: '10.124.255.224/27' });
  const [report] = await messages.forVm(plan.vmName);
  t.like(report, { state: 'failed', seatsReady: 0 });
  t.regex(
    report?.error ?? '',
    /seat subnet pool CT_SEAT_SUBNET_POOL=10\.124\.255\.224\/27 is exhausted: it holds 2 \/28 subnets; 3 seats need 3 \/28 subnets, 48 addresses: a \/26 or larger/,
  );
  t.is(await docker('network', 'ls', '-q', '--filter', `label=clarateach.vm=${plan.vmName}`), '');
  await stopAndCheckNothingLeft(t, vm);
});

test('a seat subnet pool overlapping another network fails the VM and names that network', async (t) => {
  const n = randomInt(1, 250);
  const other = `ct-test-overlap-${n}-${randomInt(1e6)}`;
  await docker('network', 'create', '--subnet', `10.124.${n}.32/28`, other);
  t.teardown(() => runCommand('docker', ['network', 'rm', other]).then(() => undefined));
  const plan = await instanceFor({ seatFirst: 1, seatCount: 4 });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan, { CT_SEAT_SUBNET_POOL: `10.124.${n}.0/24` });
  const [report] = await messages.forVm(plan.vmName);
  t.like(report, { state: 'failed', seatsReady: 0 });
  t.true(
    (report?.error ?? '').includes(
      `seat subnet pool CT_SEAT_SUBNET_POOL=10.124.${n}.0/24 overlaps Docker network ${other} (10.124.${n}.32/28); 4 seats need 4 /28 subnets, 64 addresses: a /26 or larger, free of every other network`,
    ),
    report?.error,
  );
  t.is(await docker('ps', '-aq', '--filter', `label=clarateach.vm=${plan.vmName}`), '');
  await stopAndCheckNothingLeft(t, vm);
});
