// Seat isolation on real Docker: what one learner's containers can reach. Every probe goes to
// this machine's loopback or to containers this test made; the metadata server and a private
// host are stand-ins of the test's own, at addresses it chose.
import { randomInt } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { emulatorTest as test } from '../helpers/emulators.ts';
import {
  boot,
  buildImage,
  docker,
  get,
  instanceFor,
  readyMessages,
  stopAndCheckNothingLeft,
  vmImages,
} from '../helpers/vm.ts';
import { runCommand } from '../../local/commands.ts';
import type { BootedInstance } from '../../local/vm-runner.ts';

/** A container of the test's own on a network of its own: a host a seat must not reach. */
async function target(t: ExecutionContext, name: string, subnet: string, ip: string) {
  const images = await vmImages();
  await docker('network', 'create', '--subnet', subnet, '--label', 'clarateach.test=1', name);
  t.teardown(async () => {
    await runCommand('docker', ['rm', '-f', name]);
    await runCommand('docker', ['network', 'rm', name]);
  });
  await docker('run', '-d', '--name', name, '--network', name, '--ip', ip, images.browser);
  return ip;
}

/** Whether `container` can open a TCP connection to host:port (3 s at most). */
async function reaches(container: string, host: string, port: number): Promise<boolean> {
  const role = await docker(
    'inspect',
    '-f',
    '{{index .Config.Labels "clarateach.role"}}',
    container,
  );
  const probe =
    role === 'workspace'
      ? ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`]
      : ['busybox', 'nc', '-z', '-w', '3', host, String(port)];
  return (await runCommand('docker', ['exec', container, ...probe])).code === 0;
}

async function hostReaches(host: string, port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

const seatContainers = async (vm: BootedInstance, vmName: string) =>
  (await docker('ps', '--format', '{{.Names}}', '--filter', `label=clarateach.vm=${vmName}`))
    .split('\n')
    .filter((name) => /-seat-\d+(-browser)?$/.test(name))
    .sort()
    .map((name) => ({
      name,
      seat: Number(/-seat-(\d+)/.exec(name)![1]),
      port: name.endsWith('-browser') ? 8080 : 3001,
      ip: '',
      vm,
    }));

test('no seat reaches another seat, the metadata server or a private address', async (t) => {
  const n = randomInt(16, 250);
  // The metadata stand-in sits outside the private ranges (as 169.254.169.254 does), so only the
  // metadata rule can keep the seats from it.
  const metadataIp = await target(
    t,
    `ct-test-metadata-${n}`,
    `198.18.${n}.0/24`,
    `198.18.${n}.254`,
  );
  const privateIp = await target(t, `ct-test-private-${n}`, `10.213.${n}.0/24`, `10.213.${n}.7`);
  const plan = await instanceFor({ seatFirst: 1, seatCount: 3 });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan, { CT_METADATA_ADDR: metadataIp });
  t.like((await messages.forVm(plan.vmName))[0], { state: 'ready', seatsReady: 3 });

  const containers = await seatContainers(vm, plan.vmName);
  t.is(containers.length, 6);
  for (const c of containers) {
    c.ip = await docker(
      'inspect',
      '-f',
      '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
      c.name,
    );
  }

  // The host keeps its way to both; the seats have none.
  t.true(await hostReaches(metadataIp, 8080), 'the host reaches the metadata stand-in');
  t.true(await hostReaches(privateIp, 8080), 'the host reaches the private host');
  for (const from of containers) {
    t.false(await reaches(from.name, metadataIp, 8080), `${from.name} → metadata`);
    t.false(await reaches(from.name, privateIp, 8080), `${from.name} → private address`);
    for (const to of containers.filter((c) => c.seat !== from.seat)) {
      t.false(await reaches(from.name, to.ip, to.port), `${from.name} → ${to.name} by address`);
      t.false(await reaches(from.name, to.name, to.port), `${from.name} → ${to.name} by name`);
    }
  }
  // A seat reaches what it serves itself, and names still resolve inside it.
  const ws1 = containers.find((c) => c.seat === 1 && c.port === 3001)!;
  t.true(await reaches(ws1.name, '127.0.0.1', 3001), 'a seat reaches its own terminal');
  t.is(
    (await runCommand('docker', ['exec', ws1.name, 'getent', 'hosts', `${ws1.name}-browser`])).code,
    0,
    'DNS resolves inside the seat',
  );

  // The rules that keep the internet open, by inspection: only DNS to the host's resolvers
  // passes to a closed range, and nothing closes 0.0.0.0/0.
  const chain = (await runCommand('iptables', ['-w', '-S', vm.firewallChain])).stdout;
  const rules = chain.split('\n').filter((r) => r.startsWith('-A '));
  const closed = rules.filter((r) => r.includes('-j REJECT')).map((r) => /-d (\S+)/.exec(r)?.[1]);
  t.deepEqual(closed, [
    `${metadataIp}/32`,
    '10.0.0.0/8',
    '172.16.0.0/12',
    '192.168.0.0/16',
    '100.64.0.0/10',
  ]);
  // ACCEPT only within one seat's own bridge: a seat's two containers, never across seats.
  const accepts = rules.filter((r) => r.includes('-j ACCEPT'));
  t.is(accepts.length, 3);
  for (const r of accepts) t.regex(r, /^-A \S+ -i (\S+) -o \1 -j ACCEPT$/);
  t.true(rules.every((r) => /-j (REJECT|RETURN|ACCEPT)/.test(r)));
  t.true(rules.filter((r) => r.includes('-j RETURN')).every((r) => /--dport 53/.test(r)));
  t.false(chain.includes('0.0.0.0/0'));
  const jumps = async () =>
    (await runCommand('iptables', ['-w', '-S', 'DOCKER-USER'])).stdout
      .split('\n')
      .filter((r) => r.includes(`-j ${vm.firewallChain}`));
  t.is((await jumps()).length, 1);

  // Each seat's routes answer through Caddy with its own credential only.
  for (const [seat, token] of plan.tokens) {
    t.is((await get(vm, `/vm/${seat}/terminal/?t=${token}`)).status, 200);
    const other = plan.tokens.get(seat === 1 ? 2 : 1)!;
    t.is((await get(vm, `/vm/${seat}/terminal/?t=${other}`)).status, 403);
  }

  // A reboot makes the rules again, once.
  await vm.reboot({ powerCycle: true });
  t.like((await messages.forVm(plan.vmName, 2))[1], { state: 'ready' });
  t.is((await jumps()).length, 1, 'no duplicate rule after a reboot');
  const filling = await runCommand('iptables', ['-w', '-S', `${vm.firewallChain}-N`]);
  t.not(filling.code, 0, 'the chain filled under a new name was swapped in, not left beside it');
  t.is((await runCommand('iptables', ['-w', '-S', vm.firewallChain])).stdout, chain);
  t.false(await reaches(ws1.name, metadataIp, 8080), 'still closed after the reboot');

  await stopAndCheckNothingLeft(t, vm);
});

test('seat containers are hardened, and a fork bomb in one leaves the others answering', async (t) => {
  const plan = await instanceFor({ seatFirst: 1, seatCount: 2 });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan);
  t.like((await messages.forVm(plan.vmName))[0], { state: 'ready' });

  for (const c of await seatContainers(vm, plan.vmName)) {
    const [inspect] = JSON.parse(await docker('inspect', c.name)) as any[];
    const host = inspect.HostConfig;
    t.deepEqual(host.CapDrop, ['ALL'], `${c.name} drops every capability`);
    t.true(host.SecurityOpt.includes('no-new-privileges'), `${c.name} no-new-privileges`);
    t.true(host.Memory > 0 && host.MemorySwap === host.Memory, `${c.name} memory bound`);
    t.true(host.PidsLimit > 0, `${c.name} pids bound`);
    t.is(host.CpuShares, 1024, `${c.name} CPU share`);
    t.is(host.Privileged, false);
    t.false(
      JSON.stringify(inspect.Mounts).includes('docker.sock'),
      `${c.name} has no Docker socket`,
    );
    if (c.port === 3001) {
      // The server starts the learner's shell under the learner's ids: see seat-server-reach.
      const added = (host.CapAdd as string[]).map((cap) => cap.replace(/^CAP_/, '')).sort();
      t.deepEqual(added, ['SETGID', 'SETUID'], 'the workspace adds back only what setuid needs');
      t.is(host.Sysctls['net.ipv4.ip_unprivileged_port_start'], '1024');
      t.is(host.PidsLimit, 512);
    }
  }

  const [seat1, seat2] = [`${vm.namePrefix}seat-1`, `${vm.namePrefix}seat-2`];
  // The classic bomb, in the background of seat 1; the pids limit holds it.
  await docker(
    'exec',
    '-u',
    'learner',
    '-d',
    seat1,
    'bash',
    '-c',
    'bomb() { bomb | bomb & }; bomb',
  );
  const pids = async () =>
    Number(
      await docker('exec', seat1, 'cat', '/sys/fs/cgroup/pids/pids.current').catch(() =>
        docker('exec', seat1, 'cat', '/sys/fs/cgroup/pids.current'),
      ),
    );
  let most = 0;
  for (let i = 0; i < 20 && most < 400; i++) {
    most = Math.max(most, await pids().catch(() => 0));
    await new Promise((r) => setTimeout(r, 250));
  }
  t.log(`processes in seat 1 under the bomb: ${most} (limit 512)`);
  t.true(most <= 512);
  const token2 = plan.tokens.get(2)!;
  for (const kind of ['terminal', 'files', 'browser']) {
    t.is((await get(vm, `/vm/2/${kind}/?t=${token2}`)).status, 200, `seat 2's ${kind} answers`);
  }
  t.is(await docker('exec', seat2, 'sh', '-c', 'echo alive'), 'alive');
  await docker('kill', seat1);
  await stopAndCheckNothingLeft(t, vm);
});

test('Caddy keeps an app from planting another seat’s access cookie', async (t) => {
  const images = await vmImages();
  // A browser seat whose app tries: busybox's httpd runs this CGI script.
  const planting = await buildImage('clarateach-test/browser-planting:1', {
    Dockerfile: `FROM ${images.browser}\nCOPY plant /srv/cgi-bin/plant\n`,
    plant: [
      '#!/bin/sh',
      'printf "Content-Type: text/plain\\r\\n"',
      'printf "Set-Cookie: ct_seat_2=planted; Path=/vm/2\\r\\n"',
      'printf "Set-Cookie: CT_SEAT_1=planted; Path=/vm/1\\r\\n"',
      'printf "Set-Cookie: theme=dark; Path=/vm/1\\r\\n"',
      'printf "\\r\\nplanted\\n"',
      '',
    ].join('\n'),
  });
  const plan = await instanceFor({ seatFirst: 1, seatCount: 2, nekoImage: planting });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan);
  t.like((await messages.forVm(plan.vmName))[0], { state: 'ready' });

  const res = await fetch(`http://127.0.0.1:${vm.httpPort}/vm/1/browser/cgi-bin/plant`, {
    headers: { cookie: `ct_seat_1=${plan.tokens.get(1)!}` },
  });
  t.is(await res.text(), 'planted\n', 'the app answered');
  const cookies = res.headers.getSetCookie();
  t.deepEqual(cookies, [
    'blocked_ct_seat_2=planted; Path=/vm/2',
    'blocked_ct_seat_1=planted; Path=/vm/1',
    'theme=dark; Path=/vm/1',
  ]);
  await stopAndCheckNothingLeft(t, vm);
});
