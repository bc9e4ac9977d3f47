// Booting one VM of the local stack on real Docker, for the startup-script and isolation tests:
// its metadata, the vm.ready messages it publishes (Pub/Sub emulator), HTTP through its Caddy,
// and the check that it leaves nothing behind.
import { randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { LookupFunction } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PubSub, type Message } from '@google-cloud/pubsub';
import type { ExecutionContext } from 'ava';
import { emulators } from './emulators.ts';
import { ensureLocalImages, type LocalImages } from '../../local/images.ts';
import { prepareMachine } from '../../local/machine.ts';
import { runCommand } from '../../local/commands.ts';
import { processAlive } from '../../local/process-groups.ts';
import { localCa } from '../../local/tls-ca.ts';
import {
  bootInstance,
  mountsUnder,
  seatDisksLeft,
  type BootedInstance,
} from '../../local/vm-runner.ts';
import type { CertificateReport } from '../../shared/core/workshop.ts';

export interface VmReady {
  workshopId: string;
  vmName: string;
  state: 'ready' | 'failed';
  externalIp: string;
  internalIp: string;
  httpPort: number;
  seatsReady: number;
  readyToken: string;
  error?: string;
  certificate?: CertificateReport;
}

export const newToken = () => randomBytes(24).toString('base64url');

let imagesReady: Promise<LocalImages> | undefined;
/** Docker running and the local images built (once per process). */
export function vmImages(): Promise<LocalImages> {
  imagesReady ??= prepareMachine({ say: () => undefined }).then(() =>
    ensureLocalImages(() => undefined),
  );
  return imagesReady;
}

export const docker = async (...args: string[]) => {
  const out = await runCommand('docker', args);
  if (out.code !== 0) throw new Error(`docker ${args.join(' ')}: ${out.stderr}`);
  return out.stdout.trim();
};

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
export async function readyMessages(t: ExecutionContext) {
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
    /**
     * Waits (bounded) until `count` messages for `vmName` arrived; returns them in order. The bound
     * is generous: vm-boot boots its VMs at once (a 20-seat one among them) on two cores, and a
     * 3-seat VM once took more than 4 minutes there to report.
     */
    async forVm(vmName: string, count = 1, ms = 480_000): Promise<VmReady[]> {
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
    /** Waits (bounded) for the first message for `vmName` that `wanted` accepts. */
    async firstForVm(
      vmName: string,
      wanted: (report: VmReady) => boolean,
      ms = 480_000,
    ): Promise<VmReady> {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = received.find((r) => r.vmName === vmName && wanted(r));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no such vm.ready message for ${vmName}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

// --- instances ----------------------------------------------------------------------------------

export interface Plan {
  seatFirst: number;
  seatCount: number;
  workspaceImage?: string;
  nekoImage?: string;
  withScriptMetadata?: boolean;
}

export async function instanceFor(plan: Plan) {
  const env = await emulators();
  const images = await vmImages();
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
    'workspace-image': plan.workspaceImage ?? images.workspace,
    'neko-image': plan.nekoImage ?? images.browser,
    'caddy-image': images.caddy,
    registry: '',
    'ready-topic': topicName,
    'ready-token': readyToken,
    'seat-tokens': [...tokens].map(([s, tok]) => `${s}:${tok}`).join(' '),
  };
  // What a real VM runs: the script as instance metadata.
  if (plan.withScriptMetadata) {
    metadata['startup-script'] = readFileSync('startup/clarateach-startup.sh', 'utf8');
  }
  const instance = {
    name: vmName,
    zone: 'local-a',
    project: env.projectId,
    metadata,
    labels: { app: 'clarateach', workshop: workshopId },
    externalIp: '203.0.113.10',
    internalIp: '10.128.0.10',
  };
  return { instance, env, workshopId, vmName, tokens, readyToken, images };
}

export type Instance = Awaited<ReturnType<typeof instanceFor>>;

/** Boots; after the test, stops the instance (stopAndCheckNothingLeft checks it left nothing). */
export async function boot(
  t: ExecutionContext,
  instance: Instance,
  scriptEnv: Record<string, string> = {},
): Promise<BootedInstance> {
  const vm = await bootInstance(instance.instance, {
    pubsubEmulatorHost: instance.env.pubsubHost,
    scriptEnv,
  });
  t.teardown(() => vm.stop());
  return vm;
}

/** What of this instance is left on the daemon and in the host firewall. */
export async function leftovers(vm: BootedInstance): Promise<string[]> {
  const names = [
    ...(await docker('ps', '-a', '--format', '{{.Names}}')).split('\n'),
    ...(await docker('network', 'ls', '--format', '{{.Name}}')).split('\n'),
    ...(await docker('volume', 'ls', '--format', '{{.Name}}')).split('\n'),
  ].filter((name) => name.startsWith(vm.namePrefix));
  // The seats' disks: no mount, no loop device on an image of the VM's (but those another
  // process's mount namespace still holds, which go when it ends: local/vm-runner.ts).
  names.push(...mountsUnder(vm.stateDir));
  // A disk another namespace held a copy of when the VM stopped is detached by the kernel once
  // that process ends, a moment later (autoclear): given up to 10 s before it counts as left.
  let disks = await seatDisksLeft(vm.stateDir);
  for (let wait = 0; disks.length > 0 && wait < 20; wait++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    disks = await seatDisksLeft(vm.stateDir);
  }
  names.push(...disks.map((loop) => `seat disk ${loop.name}`));
  if (vm.firewallChain) {
    const rules = await runCommand('iptables', ['-w', '-S']);
    names.push(...rules.stdout.split('\n').filter((rule) => rule.includes(vm.firewallChain)));
  }
  return names;
}

export async function stopAndCheckNothingLeft(t: ExecutionContext, vm: BootedInstance) {
  const before = vm.pids();
  t.true(before.length >= 1, 'the script run was recorded');
  await vm.stop();
  const alive = [...new Set([...before, ...vm.pids()])].filter(processAlive);
  t.deepEqual(alive, [], 'every process of the instance is gone');
  t.deepEqual(
    await leftovers(vm),
    [],
    'no container, network, volume, disk or firewall rule is left',
  );
  t.false(existsSync(vm.stateDir), 'the state dir is removed');
}

// --- probes from inside a seat --------------------------------------------------------------------

/** Whether `container` (a seat's workspace or browser: both have bash) opens a TCP connection to
 * host:port, `seconds` at most. A refusal, a rejection and a timeout all count as not reaching. */
export async function seatReaches(
  container: string,
  host: string,
  port: number,
  seconds = 3,
): Promise<boolean> {
  const probe = ['timeout', String(seconds), 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`];
  return (await runCommand('docker', ['exec', container, ...probe])).code === 0;
}

/**
 * An open path, tried up to three times for 10 s each: under a load of 20 and more, three 3-second
 * probes in a row have missed a path that was open (its rules were all in place when dumped). A
 * closed path is always probed once, with `seatReaches`, so this never hides a rule that lets
 * traffic through. A path that stays closed prints the host's rules and routes as evidence.
 */
export async function seatReachesOpen(container: string, host: string, port: number) {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await seatReaches(container, host, port, 10)) return true;
  }
  for (const [command, args] of [
    ['iptables', ['-L', '-v', '-x', '-n']],
    ['iptables', ['-t', 'nat', '-L', 'POSTROUTING', '-v', '-x', '-n']],
    ['ip', ['route']],
  ] as const) {
    const out = await runCommand(command, [...args]);
    console.error(`${command} ${args.join(' ')}:\n${out.stdout}${out.stderr}`);
  }
  return false;
}

// --- HTTP through the VM's Caddy ----------------------------------------------------------------

/** Where a path goes: /vm/S/… to seat S's HTTPS origin, anything else to Caddy's HTTP port. */
export function urlOf(vm: BootedInstance, pathAndQuery: string): string {
  const seat = /^\/vm\/(\d+)(\/|$)/.exec(pathAndQuery)?.[1];
  return `${seat ? vm.seatOrigin(Number(seat)) : `http://127.0.0.1:${vm.httpPort}`}${pathAndQuery}`;
}

/** A lookup that finds every name at `address`, as curl's --connect-to does. */
export const lookupAt =
  (address: string): LookupFunction =>
  (_host, options, callback) => {
    if (options.all) callback(null, [{ address, family: 4 }]);
    else (callback as (e: null, a: string, f: number) => void)(null, address, 4);
  };

/** A request as a client that trusts the local CA (or `ca`) and nothing else, following no
 * redirect; `resolveTo`: the address every name is found at (a VM's name under a test domain). */
export function request(
  url: string,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    ca?: string;
    resolveTo?: string;
  } = {},
): Promise<{ status: number; text: string; headers: IncomingHttpHeaders }> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: opts.method ?? 'GET',
        headers: opts.headers,
        ca: opts.ca ?? localCa().rootPem,
        ...(opts.resolveTo ? { lookup: lookupAt(opts.resolveTo) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export async function get(vm: BootedInstance, pathAndQuery: string, cookie?: string) {
  const res = await request(urlOf(vm, pathAndQuery), { headers: cookie ? { cookie } : {} });
  return {
    status: res.status,
    text: res.text,
    setCookie: res.headers['set-cookie']?.join(', ') ?? null,
    location: res.headers.location ?? null,
    referrerPolicy: (res.headers['referrer-policy'] as string | undefined) ?? null,
  };
}

/** Builds `name` from a Dockerfile and the files beside it (a context of its own): a real image. */
export async function buildImage(name: string, files: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ct-image-'));
  try {
    for (const [file, text] of Object.entries(files)) {
      writeFileSync(path.join(dir, file), text, { mode: 0o755 });
    }
    const out = await runCommand('docker', ['build', '-q', '-t', name, dir]);
    if (out.code !== 0) throw new Error(`could not build ${name}: ${out.stderr}`);
    return name;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An image FROM `base` whose command is `cmd`: a real image that really fails, say. */
export function imageWithCommand(base: string, name: string, cmd: string[]): Promise<string> {
  return buildImage(name, { Dockerfile: `FROM ${base}\nCMD ${JSON.stringify(cmd)}\n` });
}
