// The VM startup script, run for real by bootInstance (docker stand-in, real Caddy) against the
// Pub/Sub emulator: what a VM reports on vm.ready, and what its proxy lets through.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PubSub, type Message } from '@google-cloud/pubsub';
import type { ExecutionContext } from 'ava';
import { emulators, emulatorTest } from '../helpers/emulators.ts';
import { processAlive } from '../../local/process-groups.ts';
import { bootInstance, type BootedInstance } from '../../local/vm-runner.ts';

const SCRIPT = 'startup/clarateach-startup.sh';
const hasCaddy = spawnSync('caddy', ['version'], { stdio: 'ignore' }).status === 0;
/** The proxy is the real Caddy; without it these tests cannot show anything. */
const vmTest = hasCaddy ? emulatorTest : emulatorTest.skip;

interface VmReady {
  workshopId: string;
  vmName: string;
  state: 'ready' | 'failed';
  externalIp: string;
  internalIp: string;
  httpPort: number;
  seatsReady: number;
  readyToken: string;
  error?: string;
}

const newToken = () => randomBytes(24).toString('base64url');

// --- Pub/Sub: one vm.ready topic per test file, one subscription per test ------------------------

let topicReady: Promise<{ pubsub: PubSub; topicName: string }> | undefined;
function readyTopic() {
  topicReady ??= (async () => {
    const env = await emulators();
    const pubsub = new PubSub({ projectId: env.projectId });
    const [topic] = await pubsub.topic('vm.ready').get({ autoCreate: true });
    return { pubsub, topicName: topic.name };
  })();
  return topicReady;
}

/** Collects vm.ready messages from a fresh subscription (de-duplicated by message id). */
async function readyMessages(t: ExecutionContext) {
  const { pubsub } = await readyTopic();
  const [subscription] = await pubsub
    .topic('vm.ready')
    .createSubscription(`vm-ready-${randomBytes(4).toString('hex')}`);
  const seen = new Set<string>();
  const received: VmReady[] = [];
  subscription.on('message', (m: Message) => {
    m.ack();
    if (seen.has(m.id)) return;
    seen.add(m.id);
    received.push(JSON.parse(m.data.toString()) as VmReady);
  });
  t.teardown(async () => {
    await subscription.close();
    await subscription.delete();
  });
  return {
    /** Waits (bounded) until `count` messages for `vmName` arrived; returns them in order. */
    async forVm(vmName: string, count = 1, ms = 90_000): Promise<VmReady[]> {
      const deadline = Date.now() + ms;
      for (;;) {
        const mine = received.filter((r) => r.vmName === vmName);
        if (mine.length >= count) return mine;
        if (Date.now() > deadline) {
          throw new Error(`only ${mine.length} of ${count} vm.ready messages for ${vmName}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

// --- instances ----------------------------------------------------------------------------------

interface Plan {
  seatFirst: number;
  seatCount: number;
  workspaceImage?: string;
  nekoImage?: string;
  withScriptMetadata?: boolean;
}

async function instanceFor(plan: Plan) {
  const env = await emulators();
  const { topicName } = await readyTopic();
  const workshopId = `ws${randomBytes(6).toString('hex')}`;
  const vmName = `ct-${workshopId}-vm-${plan.seatFirst}`;
  const tokens = new Map<number, string>();
  for (let s = plan.seatFirst; s < plan.seatFirst + plan.seatCount; s++) tokens.set(s, newToken());
  const readyToken = newToken();
  const metadata: Record<string, string> = {
    'workshop-id': workshopId,
    'vm-name': vmName,
    'seat-first': String(plan.seatFirst),
    'seat-count': String(plan.seatCount),
    'workspace-image': plan.workspaceImage ?? 'local/clarateach-workspace:latest',
    'neko-image': plan.nekoImage ?? 'ghcr.io/m1k1o/neko/firefox:latest',
    'caddy-image': 'caddy:2',
    registry: '',
    'ready-topic': topicName,
    'ready-token': readyToken,
    'seat-tokens': [...tokens].map(([s, tok]) => `${s}:${tok}`).join(' '),
  };
  // What a real VM runs: the script as instance metadata.
  if (plan.withScriptMetadata) metadata['startup-script'] = readFileSync(SCRIPT, 'utf8');
  const instance = {
    name: vmName,
    zone: 'local-a',
    project: env.projectId,
    metadata,
    labels: { app: 'clarateach', workshop: workshopId },
    externalIp: '203.0.113.10',
    internalIp: '10.128.0.10',
  };
  return { instance, env, workshopId, vmName, tokens, readyToken };
}

/** Boots, and after the test stops the instance and checks that none of its processes is left. */
async function boot(
  t: ExecutionContext,
  instance: Awaited<ReturnType<typeof instanceFor>>,
  scriptEnv: Record<string, string> = {},
) {
  const vm = await bootInstance(instance.instance, {
    pubsubEmulatorHost: instance.env.pubsubHost,
    scriptEnv,
  });
  t.teardown(() => vm.stop());
  return vm;
}

async function stopAndCheckNothingLeft(t: ExecutionContext, vm: BootedInstance) {
  const before = vm.pids();
  t.true(before.length >= 1, 'the script run was recorded');
  await vm.stop();
  const alive = [...new Set([...before, ...vm.pids()])].filter(processAlive);
  t.deepEqual(alive, [], 'every process of the instance is gone');
  t.false(existsSync(vm.stateDir), 'the state dir is removed');
}

// --- HTTP through the VM's Caddy ----------------------------------------------------------------

async function get(vm: BootedInstance, pathAndQuery: string, cookie?: string) {
  const res = await fetch(`http://127.0.0.1:${vm.httpPort}${pathAndQuery}`, {
    headers: cookie ? { cookie } : {},
    redirect: 'manual',
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return {
    status: res.status,
    text,
    json,
    setCookie: res.headers.get('set-cookie'),
    referrerPolicy: res.headers.get('referrer-policy'),
  };
}

const KINDS = [
  { kind: 'terminal', suffix: '', containerPort: 3001 },
  { kind: 'files', suffix: '', containerPort: 3002 },
  { kind: 'browser', suffix: '-browser', containerPort: 8080 },
] as const;

async function assertSeatRouted(
  t: ExecutionContext,
  vm: BootedInstance,
  seat: number,
  token: string,
): Promise<void> {
  for (const { kind, suffix, containerPort } of KINDS) {
    const viaQuery = await get(vm, `/vm/${seat}/${kind}?t=${token}`);
    t.is(viaQuery.status, 200, `seat ${seat} ${kind} with ?t`);
    t.like(viaQuery.json, { container: `seat-${seat}${suffix}`, containerPort, path: '/' });
    t.is(viaQuery.setCookie, `ct_seat_${seat}=${token}; Path=/vm/${seat}; HttpOnly; SameSite=Lax`);
    t.is(
      viaQuery.referrerPolicy,
      'strict-origin',
      'the token in the URL never leaves as a Referer',
    );

    const viaCookie = await get(vm, `/vm/${seat}/${kind}/ws/deep?x=1`, `ct_seat_${seat}=${token}`);
    t.is(viaCookie.status, 200, `seat ${seat} ${kind} with the cookie`);
    t.like(viaCookie.json, { container: `seat-${seat}${suffix}`, containerPort, path: '/ws/deep' });
    t.is(viaCookie.setCookie, null);
  }
}

/**
 * An iptables that records its calls and keeps one rule set: `-C` succeeds once `-A` added the
 * rule. `reset()` forgets the rules, as a reboot does.
 */
async function fakeIptables(t: ExecutionContext) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ct-iptables-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const command = path.join(dir, 'iptables');
  const calls = path.join(dir, 'calls');
  const rules = path.join(dir, 'rules');
  writeFileSync(
    command,
    [
      '#!/bin/bash',
      `echo "$*" >>'${calls}'`,
      'args="$*"; rule="${args/ -C / }"; rule="${rule/ -A / }"',
      `case " $* " in`,
      `*" -C "*) grep -qxF -- "$rule" '${rules}' 2>/dev/null ;;`,
      `*" -A "*) echo "$rule" >>'${rules}' ;;`,
      'esac',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return {
    command,
    calls: () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : []),
    reset: () => rmSync(rules, { force: true }),
  };
}

// --- tests --------------------------------------------------------------------------------------

vmTest(
  'a 3-seat VM boots, reports ready, and lets each seat in with its own token only',
  async (t) => {
    const plan = await instanceFor({ seatFirst: 4, seatCount: 3, withScriptMetadata: true });
    const messages = await readyMessages(t);
    const vm = await boot(t, plan);

    const [ready] = await messages.forVm(plan.vmName);
    t.deepEqual(ready, {
      workshopId: plan.workshopId,
      vmName: plan.vmName,
      state: 'ready',
      externalIp: '203.0.113.10',
      internalIp: '10.128.0.10',
      httpPort: vm.httpPort,
      seatsReady: 3,
      readyToken: plan.readyToken,
    });
    t.is(await vm.exited(), 0);

    // The rendered Caddyfile is valid for the real Caddy, not just accepted by this one run.
    const validate = spawnSync('caddy', [
      'validate',
      '--adapter',
      'caddyfile',
      '--config',
      vm.caddyfilePath,
    ]);
    t.is(validate.status, 0, validate.stderr?.toString());

    const health = await get(vm, '/health');
    t.is(health.status, 200);
    t.is(health.text, 'OK');

    for (const [seat, token] of plan.tokens) await assertSeatRouted(t, vm, seat, token);

    const tok4 = plan.tokens.get(4)!;
    const tok5 = plan.tokens.get(5)!;
    for (const { kind } of KINDS) {
      const refused = [
        await get(vm, `/vm/4/${kind}`),
        await get(vm, `/vm/4/${kind}?t=${newToken()}`),
        await get(vm, `/vm/4/${kind}?t=${tok5}`),
        await get(vm, `/vm/4/${kind}`, `ct_seat_4=${tok5}`),
        await get(vm, `/vm/4/${kind}`, `ct_seat_5=${tok5}`),
      ];
      t.deepEqual(
        refused.map((r) => [r.status, r.json, r.setCookie]),
        refused.map(() => [403, undefined, null]),
        `seat 4 ${kind} refuses a missing, wrong or other seat's token`,
      );
    }
    // Seats 1-3 and 7+ belong to other VMs of the workshop: never routed here, whatever the token.
    for (const seat of [1, 3, 7]) {
      const other = await get(vm, `/vm/${seat}/terminal?t=${tok4}`);
      t.is(other.status, 403);
      t.is(other.json, undefined);
    }
    t.is((await get(vm, '/elsewhere')).status, 404);

    // Each browser has its own WebRTC mux port (tcp+udp) and is told the VM's external address.
    const [browser, workspace] = JSON.parse(
      (await vm.docker('inspect', 'seat-4-browser', 'seat-4')).stdout,
    ) as Array<{
      Config: { Env: string[]; Labels: Record<string, string> };
      HostConfig: {
        PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
        Memory: number;
        ShmSize: number;
        PidsLimit: number | null;
      };
    }>;
    const mux = String(vm.muxPortBase + 1);
    t.like(browser?.Config.Labels, { 'clarateach.seat': '4', 'clarateach.vm': plan.vmName });
    t.true(browser?.Config.Env.includes(`NEKO_PASSWORD=${tok4}`));
    t.true(browser?.Config.Env.includes(`NEKO_WEBRTC_TCPMUX=${mux}`));
    t.true(browser?.Config.Env.includes(`NEKO_WEBRTC_UDPMUX=${mux}`));
    t.true(browser?.Config.Env.includes('NEKO_WEBRTC_NAT1TO1=203.0.113.10'));
    // Neko v2 names too, with the same values.
    t.true(browser?.Config.Env.includes('NEKO_NAT1TO1=203.0.113.10'));
    t.true(browser?.Config.Env.includes(`NEKO_UDPMUX=${mux}`));
    t.deepEqual(browser?.HostConfig.PortBindings, {
      '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(vm.portBase + 13) }],
      [`${mux}/tcp`]: [{ HostIp: '', HostPort: mux }],
      [`${mux}/udp`]: [{ HostIp: '', HostPort: mux }],
    });

    // Each container is bounded: a seat's share of memory, a process limit; Firefox gets 2 GB shm.
    const memTotal = Number(
      /^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1],
    );
    const share = Math.floor((memTotal * 85) / 100 / 3 / 1024) * 1024 ** 2;
    for (const c of [browser, workspace]) {
      t.like(c?.HostConfig, { Memory: share, PidsLimit: 2048 });
    }
    t.is(browser?.HostConfig.ShmSize, 2 * 1024 ** 3);

    // The log names what happened and never a token.
    const log = readFileSync(vm.logPath, 'utf8');
    t.regex(log, /published vm\.ready: state=ready seatsReady=3/);
    for (const token of [...plan.tokens.values(), plan.readyToken]) t.false(log.includes(token));

    await stopAndCheckNothingLeft(t, vm);
  },
);

vmTest(
  'running the script again keeps exactly one set of containers and reports ready again',
  async (t) => {
    const plan = await instanceFor({ seatFirst: 1, seatCount: 2 });
    const messages = await readyMessages(t);
    const firewall = await fakeIptables(t);
    const vm = await boot(t, plan, { CT_IPTABLES: firewall.command });

    const containers = async () => {
      const out = await vm.docker(
        'ps',
        '-a',
        '--no-trunc',
        '--format',
        '{{.Names}} {{.ID}} {{.State}}',
      );
      return Object.fromEntries(
        out.stdout
          .trim()
          .split('\n')
          .map((line) => line.split(' '))
          .map(([name, id, state]) => [name!, { id: id!, state: state! }]),
      );
    };
    const names = ['clarateach-caddy', 'seat-1', 'seat-1-browser', 'seat-2', 'seat-2-browser'];

    const [first] = await messages.forVm(plan.vmName, 1);
    t.is(first?.state, 'ready');
    const boot1 = await containers();
    t.deepEqual(Object.keys(boot1).sort(), names);
    const rule = `INPUT -p tcp --dport ${vm.httpPort} -j ACCEPT`;
    t.deepEqual(firewall.calls(), [`-w -C ${rule}`, `-w -A ${rule}`], "Caddy's port opened");

    // A second run while everything still runs.
    await vm.reboot();
    const [, second] = await messages.forVm(plan.vmName, 2);
    t.like(second, { state: 'ready', seatsReady: 2, httpPort: vm.httpPort });
    t.is(await vm.exited(), 0);
    const boot2 = await containers();
    t.deepEqual(Object.keys(boot2).sort(), names, 'no duplicates, nothing missing');
    t.deepEqual(firewall.calls().slice(2), [`-w -C ${rule}`], 'the rule is there: not added twice');
    for (const name of names) t.is(boot2[name]?.state, 'running');
    for (const name of names.filter((n) => n.startsWith('seat-'))) {
      t.is(boot2[name]?.id, boot1[name]?.id, `${name} is kept, learners keep their work`);
    }
    t.not(boot2['clarateach-caddy']?.id, boot1['clarateach-caddy']?.id, 'Caddy is recreated');
    for (const [seat, token] of plan.tokens) await assertSeatRouted(t, vm, seat, token);

    // A reboot proper: every container process died with the VM (and the iptables rules with
    // it), the containers remain.
    firewall.reset();
    // And the registry is down meanwhile: the images on the VM do.
    writeFileSync(path.join(vm.stateDir, 'docker', 'registry-offline'), '');
    await vm.reboot({ powerCycle: true });
    const [, , third] = await messages.forVm(plan.vmName, 3);
    t.like(third, { state: 'ready', seatsReady: 2 });
    const boot3 = await containers();
    t.deepEqual(Object.keys(boot3).sort(), names);
    for (const name of names) t.is(boot3[name]?.state, 'running');
    t.is(boot3['seat-2']?.id, boot1['seat-2']?.id);
    t.regex(readFileSync(vm.logPath, 'utf8'), /started existing seat-2\b/);
    t.regex(readFileSync(vm.logPath, 'utf8'), /could not pull caddy:2; using the copy already/);
    t.deepEqual(firewall.calls().slice(3), [`-w -C ${rule}`, `-w -A ${rule}`]);
    for (const [seat, token] of plan.tokens) await assertSeatRouted(t, vm, seat, token);

    await stopAndCheckNothingLeft(t, vm);
  },
);

vmTest('a seat container that cannot start is reported as failed with the log tail', async (t) => {
  const plan = await instanceFor({
    seatFirst: 3,
    seatCount: 2,
    workspaceImage: 'local/clarateach-workspace-broken:1',
  });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan);

  const [report] = await messages.forVm(plan.vmName);
  t.like(report, {
    workshopId: plan.workshopId,
    vmName: plan.vmName,
    state: 'failed',
    externalIp: '203.0.113.10',
    internalIp: '10.128.0.10',
    httpPort: vm.httpPort,
    seatsReady: 0,
    readyToken: plan.readyToken,
  });
  t.regex(report?.error ?? '', /unable to start container/);
  t.regex(report?.error ?? '', /startup failed/);
  t.true((report?.error ?? '').length <= 4000);
  for (const token of plan.tokens.values()) t.false(report?.error?.includes(token));
  t.not(await vm.exited(), 0);

  // Nothing was published as ready, and the broken seat never ran.
  t.deepEqual(
    (await messages.forVm(plan.vmName)).map((m) => m.state),
    ['failed'],
  );
  const states = (await vm.docker('ps', '-a', '--format', '{{.Names}}={{.State}}')).stdout;
  t.regex(states, /^seat-3=created$/m);

  await stopAndCheckNothingLeft(t, vm);
});

vmTest('an image that cannot be pulled is reported as failed', async (t) => {
  const plan = await instanceFor({
    seatFirst: 1,
    seatCount: 1,
    nekoImage: 'local/unpullable-neko:1',
  });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan, { CT_PULL_ATTEMPTS: '1' });

  const [report] = await messages.forVm(plan.vmName);
  t.is(report?.state, 'failed');
  t.regex(report?.error ?? '', /manifest unknown/);
  t.regex(report?.error ?? '', /could not pull every image/);
  t.deepEqual(await vm.docker('ps', '-aq'), { code: 0, stdout: '', stderr: '' }, 'no container');
  await stopAndCheckNothingLeft(t, vm);
});

vmTest('metadata without a token for one of the seats is reported as failed', async (t) => {
  const plan = await instanceFor({ seatFirst: 5, seatCount: 2 });
  plan.instance.metadata['seat-tokens'] = `5:${plan.tokens.get(5)!}`;
  const messages = await readyMessages(t);
  const vm = await boot(t, plan);

  const [report] = await messages.forVm(plan.vmName);
  t.like(report, { state: 'failed', seatsReady: 0, readyToken: plan.readyToken });
  t.regex(report?.error ?? '', /no access token for seat 6/);
  t.deepEqual(await vm.docker('ps', '-aq'), { code: 0, stdout: '', stderr: '' }, 'no container');
  await stopAndCheckNothingLeft(t, vm);
});

vmTest('a VM without an external IP is reported as failed', async (t) => {
  const plan = await instanceFor({ seatFirst: 1, seatCount: 1 });
  plan.instance.externalIp = '';
  const messages = await readyMessages(t);
  const vm = await boot(t, plan);

  const [report] = await messages.forVm(plan.vmName);
  t.like(report, { state: 'failed', externalIp: '', internalIp: '10.128.0.10', seatsReady: 0 });
  t.regex(report?.error ?? '', /no external IP/);
  t.deepEqual(await vm.docker('ps', '-aq'), { code: 0, stdout: '', stderr: '' }, 'no container');
  await stopAndCheckNothingLeft(t, vm);
});

vmTest(
  'a seat that starts and then crashes is reported with what its container said',
  async (t) => {
    const plan = await instanceFor({
      seatFirst: 2,
      seatCount: 2,
      workspaceImage: 'local/clarateach-workspace-crashing:1',
    });
    const messages = await readyMessages(t);
    const vm = await boot(t, plan, { CT_SEAT_WAIT: '5' });

    const [report] = await messages.forVm(plan.vmName);
    t.like(report, { state: 'failed', seatsReady: 0 });
    t.regex(report?.error ?? '', /seats not answering: 2 3/);
    t.regex(
      report?.error ?? '',
      /last output of seat-2:\n(?: {2}.*\n)* {2}fatal: the workspace crashed/,
    );
    for (const token of plan.tokens.values()) t.false(report?.error?.includes(token));
    await stopAndCheckNothingLeft(t, vm);
  },
);
