// Seat isolation on real Docker: what one learner's containers can reach. Every probe goes to
// this machine's loopback, to containers this test made, or to a network namespace of the test's
// own reached through the host's routing, as the metadata server and the VPC are from a VM.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { outside } from '../helpers/outside.ts';
import {
  boot,
  buildImage,
  docker,
  get,
  instanceFor,
  readyMessages,
  seatReaches,
  seatReachesOpen,
  stopAndCheckNothingLeft,
  vmImages,
} from '../helpers/vm.ts';
import { runCommand } from '../../local/commands.ts';
import { until } from '../../local/process-groups.ts';
import type { BootedInstance } from '../../local/vm-runner.ts';

const seatContainers = async (vm: BootedInstance, vmName: string) =>
  (await docker('ps', '--format', '{{.Names}}', '--filter', `label=clarateach.vm=${vmName}`))
    .split('\n')
    .filter((name) => /-seat-\d+(-browser)?$/.test(name))
    .sort()
    .map((name) => ({
      name,
      seat: Number(/-seat-(\d+)/.exec(name)![1]),
      port: name.endsWith('-browser') ? 8080 : 3001,
      browser: name.endsWith('-browser'),
      ip: '',
    }));

/** Packets matched so far by the chain's REJECT rule for `destination` (as `iptables -L -n`
 * prints it: a single address without /32). */
async function rejected(chain: string, destination: string): Promise<number> {
  const out = await runCommand('iptables', ['-w', '-L', chain, '-v', '-x', '-n']);
  const rule = out.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((cols) => cols[2] === 'REJECT' && cols[8] === destination);
  if (!rule) throw new Error(`no REJECT rule for ${destination} in ${chain}:\n${out.stdout}`);
  return Number(rule[0]);
}

/** A DNS question for an A record, asked over `proto` from the workspace's Python: the answer's
 * address, or '' when none came within 3 s. */
const PY_DNS = `
import socket, struct, sys
proto, server = sys.argv[1], sys.argv[2]
q = struct.pack('>6H', 0x4354, 0x0100, 1, 0, 0, 0) + b'\\x07example\\x04test\\x00' + struct.pack('>2H', 1, 1)
try:
    if proto == 'udp':
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.sendto(q, (server, 53)); r = s.recv(512)
    else:
        s = socket.create_connection((server, 53), 3); s.sendall(struct.pack('>H', len(q)) + q); r = s.recv(514)[2:]
except OSError:
    r = b''
print(socket.inet_ntoa(r[-4:]) if r[:2] == b'\\x43\\x54' and len(r) >= 4 else '')
`;
async function workspaceAsks(container: string, proto: 'udp' | 'tcp', server: string) {
  const out = await runCommand('docker', [
    'exec',
    container,
    'python3',
    '-c',
    PY_DNS,
    proto,
    server,
  ]);
  return out.stdout.trim();
}

test('no seat reaches another seat, the metadata server or a private address; DNS to a resolver there passes', async (t) => {
  const world = await outside(t);
  // The GCE case: the host's resolver is the metadata address itself.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ct-resolv-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const resolvConf = path.join(dir, 'resolv.conf');
  writeFileSync(resolvConf, `search example.internal\nnameserver ${world.metadataIp}\n`);
  const plan = await instanceFor({ seatFirst: 1, seatCount: 3 });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan, {
    CT_METADATA_ADDR: world.metadataIp,
    CT_RESOLV_CONF: resolvConf,
  });
  t.like((await messages.forVm(plan.vmName))[0], { state: 'ready', seatsReady: 3 });
  const chainName = vm.firewallChain;

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

  // Every container reaches the internet (so the probe can tell an open path), and neither the
  // metadata server nor a private address: no connection arrives, and the REJECT rules counted
  // the tries.
  const [metadataBefore, privateBefore] = [
    await rejected(chainName, world.metadataIp),
    await rejected(chainName, '10.0.0.0/8'),
  ];
  await Promise.all(
    containers.map(async (from) => {
      t.true(
        await seatReachesOpen(from.name, world.publicIp, world.port),
        `${from.name} → internet`,
      );
      t.false(
        await seatReaches(from.name, world.metadataIp, world.port),
        `${from.name} → metadata`,
      );
      t.false(await seatReaches(from.name, world.privateIp, world.port), `${from.name} → private`);
    }),
  );
  // The listener reports each connection a moment after the probe sees it.
  t.true(
    await until(() => world.hits(world.publicIp) >= containers.length, 30_000, 100),
    'the internet saw every container',
  );
  t.is(world.hits(world.metadataIp), 0, 'the metadata stand-in saw no connection');
  t.is(world.hits(world.privateIp), 0, 'the private host saw no connection');
  t.true(
    (await rejected(chainName, world.metadataIp)) - metadataBefore >= containers.length,
    'the metadata rule rejected each try',
  );
  t.true(
    (await rejected(chainName, '10.0.0.0/8')) - privateBefore >= containers.length,
    'the private-range rule rejected each try',
  );

  // DNS to the resolver on the metadata address passes, UDP and TCP, from both containers.
  const ws1 = containers.find((c) => c.seat === 1 && !c.browser)!;
  const browser1 = containers.find((c) => c.seat === 1 && c.browser)!;
  t.is(await workspaceAsks(ws1.name, 'udp', world.metadataIp), '192.0.2.1', 'DNS over UDP');
  t.is(await workspaceAsks(ws1.name, 'tcp', world.metadataIp), '192.0.2.1', 'DNS over TCP');
  const lookup = await runCommand('docker', [
    'exec',
    browser1.name,
    'busybox',
    'nslookup',
    'example.test',
    world.metadataIp,
  ]);
  t.regex(lookup.stdout, /192\.0\.2\.1/, `the browser's lookup: ${lookup.stdout}${lookup.stderr}`);
  t.true(
    await until(() => world.hits('dns/udp') >= 2 && world.hits('dns/tcp') >= 1, 30_000, 100),
    'the resolver answered',
  );
  t.is(world.hits(world.metadataIp), 0, 'and nothing but DNS reached that address');

  // No seat reaches another, by address or by name; a seat reaches what it serves itself, and
  // names still resolve inside it.
  await Promise.all(
    containers.map(async (from) => {
      for (const to of containers.filter((c) => c.seat !== from.seat)) {
        t.false(
          await seatReaches(from.name, to.ip, to.port),
          `${from.name} → ${to.name} by address`,
        );
        t.false(
          await seatReaches(from.name, to.name, to.port),
          `${from.name} → ${to.name} by name`,
        );
      }
    }),
  );
  t.true(await seatReaches(ws1.name, '127.0.0.1', 3001), 'a seat reaches its own terminal');
  t.true(await seatReachesOpen(browser1.name, ws1.name, 3001), 'and its browser reaches it');
  t.is(
    (await runCommand('docker', ['exec', ws1.name, 'getent', 'hosts', browser1.name])).code,
    0,
    'DNS resolves inside the seat',
  );

  // The rules by inspection: DNS to the host's resolvers only, the closed ranges, and nothing
  // that closes 0.0.0.0/0.
  const chain = (await runCommand('iptables', ['-w', '-S', chainName])).stdout;
  const rules = chain.split('\n').filter((r) => r.startsWith('-A '));
  const closed = rules.filter((r) => r.includes('-j REJECT')).map((r) => /-d (\S+)/.exec(r)?.[1]);
  t.deepEqual(closed, [
    `${world.metadataIp}/32`,
    '10.0.0.0/8',
    '172.16.0.0/12',
    '192.168.0.0/16',
    '100.64.0.0/10',
  ]);
  t.deepEqual(
    rules.filter((r) => r.includes('-j RETURN')),
    ['udp', 'tcp'].map(
      (p) => `-A ${chainName} -d ${world.metadataIp}/32 -p ${p} -m ${p} --dport 53 -j RETURN`,
    ),
  );
  // ACCEPT only within one seat's own bridge: a seat's two containers, never across seats.
  const accepts = rules.filter((r) => r.includes('-j ACCEPT'));
  t.is(accepts.length, 3);
  for (const r of accepts) t.regex(r, /^-A \S+ -i (\S+) -o \1 -j ACCEPT$/);
  t.true(rules.every((r) => /-j (REJECT|RETURN|ACCEPT)/.test(r)));
  t.false(chain.includes('0.0.0.0/0'));
  const jumps = async () =>
    (await runCommand('iptables', ['-w', '-S', 'DOCKER-USER'])).stdout
      .split('\n')
      .filter((r) => r.includes(`-j ${chainName}`));
  t.is((await jumps()).length, 1);

  // Each seat's routes answer through Caddy with its own credential only.
  for (const [seat, token] of plan.tokens) {
    t.is((await get(vm, `/vm/${seat}/terminal/?t=${token}`)).status, 200);
    const other = plan.tokens.get(seat === 1 ? 2 : 1)!;
    t.is((await get(vm, `/vm/${seat}/terminal/?t=${other}`)).status, 403);
  }

  // The control: without a rule, the same probes get through (the checks above could fail).
  for (const [dest, target] of [
    [`${world.metadataIp}/32`, world.metadataIp],
    ['10.0.0.0/8', world.privateIp],
  ] as const) {
    const rule = ['-d', dest, '-j', 'REJECT', '--reject-with', 'icmp-net-prohibited'];
    t.is((await runCommand('iptables', ['-w', '-D', chainName, ...rule])).code, 0);
    t.true(await seatReachesOpen(ws1.name, target, world.port), `without its rule, → ${target}`);
    t.true(await until(() => world.hits(target) > 0, 30_000, 100), `${target} saw it`);
  }

  // A reboot makes the rules again, once.
  await vm.reboot({ powerCycle: true });
  t.like((await messages.forVm(plan.vmName, 2))[1], { state: 'ready' });
  t.is((await jumps()).length, 1, 'no duplicate rule after a reboot');
  const filling = await runCommand('iptables', ['-w', '-S', `${chainName}-N`]);
  t.not(filling.code, 0, 'the chain filled under a new name was swapped in, not left beside it');
  t.is((await runCommand('iptables', ['-w', '-S', chainName])).stdout, chain);
  const hitsBefore = world.hits(world.metadataIp);
  t.false(await seatReaches(ws1.name, world.metadataIp, world.port), 'closed after the reboot');
  t.is(world.hits(world.metadataIp), hitsBefore);

  await stopAndCheckNothingLeft(t, vm);
});

/** The host's cgroup directory holding `container`'s pids controller (cgroup v1 or v2). */
async function pidsCgroup(container: string): Promise<string> {
  const pid = await docker('inspect', '-f', '{{.State.Pid}}', container);
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes('pids'));
  if (v1) return `/sys/fs/cgroup/pids${v1.split(':')[2]}`;
  return `/sys/fs/cgroup${lines.find((l) => l.startsWith('0::'))!.slice(3)}`;
}

test('seat containers are hardened, and a fork bomb in one leaves the others answering', async (t) => {
  const plan = await instanceFor({ seatFirst: 1, seatCount: 2 });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan);
  t.like((await messages.forVm(plan.vmName))[0], { state: 'ready' });

  // The script's figure: a seat's share (two containers each) of 85% of the machine's memory.
  const memKb = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]);
  const memory = Math.floor(Math.floor((memKb * 85) / 100) / 2 / 1024) * 1024 * 1024;
  for (const c of await seatContainers(vm, plan.vmName)) {
    const [inspect] = JSON.parse(await docker('inspect', c.name)) as any[];
    const host = inspect.HostConfig;
    t.deepEqual(host.CapDrop, ['ALL'], `${c.name} drops every capability`);
    t.deepEqual(host.SecurityOpt, ['no-new-privileges'], `${c.name} no-new-privileges`);
    t.is(host.Memory, memory, `${c.name} memory`);
    t.is(host.MemorySwap, memory, `${c.name} no swap beyond it`);
    t.is(host.CpuShares, 1024, `${c.name} CPU share`);
    t.deepEqual(host.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 5 });
    t.is(host.Privileged, false);
    t.false(
      JSON.stringify(inspect.Mounts).includes('docker.sock'),
      `${c.name} has no Docker socket`,
    );
    const added = ((host.CapAdd ?? []) as string[]).map((cap) => cap.replace(/^CAP_/, '')).sort();
    if (c.browser) {
      t.deepEqual(added, ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'KILL', 'SETGID', 'SETUID']);
      t.is(host.PidsLimit, 2048);
      t.is(host.ShmSize, 2 * 1024 ** 3, 'Firefox gets 2 GiB of /dev/shm');
    } else {
      // The server starts the learner's shell under the learner's ids: see seat-server-reach.
      t.deepEqual(added, ['SETGID', 'SETUID'], 'the workspace adds back only what setuid needs');
      t.is(host.Sysctls['net.ipv4.ip_unprivileged_port_start'], '1024');
      t.is(host.PidsLimit, 512);
      t.is(host.ShmSize, 64 * 1024 ** 2, "Docker's default /dev/shm");
    }
  }

  const [seat1, seat2] = [`${vm.namePrefix}seat-1`, `${vm.namePrefix}seat-2`];
  // The classic bomb, in the background of seat 1: it must really reach the pids limit, read on
  // the host, and the limit must hold.
  const cgroup = await pidsCgroup(seat1);
  const read = (file: string) => readFileSync(path.join(cgroup, file), 'utf8').trim();
  t.is(read('pids.max'), '512');
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
  let most = 0;
  for (let i = 0; i < 240 && most < 512; i++) {
    most = Math.max(most, Number(read('pids.current')));
    await new Promise((r) => setTimeout(r, 250));
  }
  const refused = Number(/^max (\d+)$/m.exec(read('pids.events'))?.[1] ?? 0);
  t.log(`seat 1 under the bomb: at most ${most} processes, ${refused} forks refused (limit 512)`);
  t.is(most, 512, 'the bomb reached the limit');
  t.true(refused > 0, 'and the limit refused its forks');
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

  const res = await fetch(`${vm.seatOrigin(1)}/vm/1/browser/cgi-bin/plant`, {
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
