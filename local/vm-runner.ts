import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BootableInstance } from './compute-standin.ts';
import { runCommand, type CommandResult } from './commands.ts';
import { startMetadataServer, type MetadataServer } from './metadata-server.ts';
import { freePort, pickPortBlock, releasePortBlock } from './ports.ts';
import { localCa } from './tls-ca.ts';
import { pickSubnetPool, releaseSubnetPool } from './subnets.ts';
import { killGroup, processGroupMembers, until } from './process-groups.ts';

/** What the local Compute Engine stand-in knows of an inserted instance. */
export type InstanceToBoot = BootableInstance;

export interface BootEnv {
  /** host:port of the Pub/Sub emulator; the script publishes `vm.ready` there over REST. */
  pubsubEmulatorHost: string;
  /** The Docker daemon the VM uses (DOCKER_HOST); this process's when absent. */
  dockerHost?: string;
  /** Extra environment for the startup script (e.g. shorter bounded waits in tests). */
  scriptEnv?: Record<string, string>;
}

export interface BootedInstance {
  /** Caddy's plain HTTP port on 127.0.0.1 (what a real VM serves on :80). */
  httpPort: number;
  /** Seat i's HTTPS origin is https://127.0.0.1:(seatHttpsBase + i) (8400 + i on a real VM). */
  seatHttpsBase: number;
  /** The HTTPS origin of (global) seat `seat` of this instance, as learners reach it. */
  seatOrigin(seat: number): string;
  /** Prefix of this instance's container, network and volume names on the shared daemon. */
  namePrefix: string;
  /** The network its seat networks' subnets are cut from (CT_SEAT_SUBNET_POOL), its own. */
  subnetPool: string;
  /** The iptables chain of its seat firewall (empty when the host's firewall is left alone). */
  firewallChain: string;
  /** The instance's private directory (removed by stop()). */
  stateDir: string;
  /** The startup script's log (CT_LOG). */
  logPath: string;
  /** Runs docker against the daemon the script uses. */
  docker(...args: string[]): Promise<CommandResult>;
  /** Exit status of the current run of the script (null when it was killed). */
  exited(): Promise<number | null>;
  /**
   * Runs the startup script again on the same instance, like a reboot does (a run still going
   * is stopped first). With `powerCycle`, every container of the instance is killed first, as
   * on a real reboot, so the script finds its containers stopped.
   */
  reboot(opts?: { powerCycle?: boolean }): Promise<void>;
  /** Its metadata server's base URL (…/computeMetadata/v1), as the guest sees it. */
  metadataUrl: string;
  /** The instance's new metadata (`instances.setMetadata`), served by its metadata server. */
  setMetadata(metadata: Record<string, string>): void;
  /** Every process started for this instance's script runs so far. */
  pids(): number[];
  /**
   * Stops the script, removes every container, network and volume of this instance and its
   * firewall chain, closes the metadata server, and removes the state directory.
   */
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO_SCRIPT = path.join(here, '..', 'startup', 'clarateach-startup.sh');
/** Seats a VM can hold at most (sizing table: 20); port blocks and seat subnet pools are
 * reserved for that many. */
const MAX_SEATS_PER_VM = 20;

/** Firewalling seats needs root's iptables; elsewhere the seats run open, and the log says so. */
const canFirewall = process.getuid?.() === 0;

/** A mount table (`/proc/PID/mountinfo`): each mount's device (`major:minor`) and mount point. */
function mountTable(file = '/proc/self/mountinfo'): { device: string; mountPoint: string }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' '))
    .map((fields) => ({ device: fields[2]!, mountPoint: fields[4]!.replace(/\\040/g, ' ') }));
}

const deepestFirst = (a: string, b: string) => b.length - a.length;

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  return mountTable()
    .map((m) => m.mountPoint)
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(`${dir}/`))
    .sort(deepestFirst);
}

/** Loop devices whose backing file lies below `dir` (deleted ones too): name and device number. */
async function loopsUnder(
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ name: string; device: string }[]> {
  const out = await runCommand(
    'losetup',
    ['--list', '--json', '--output', 'NAME,MAJ:MIN,BACK-FILE'],
    env,
  );
  if (!out.stdout.trim()) return [];
  const { loopdevices } = JSON.parse(out.stdout) as {
    loopdevices: { name: string; 'maj:min': string; 'back-file': string | null }[];
  };
  return loopdevices
    .filter((loop) => loop['back-file']?.startsWith(`${dir}/`))
    .map((loop) => ({ name: loop.name, device: loop['maj:min'].trim() }));
}

/**
 * Whether a mount namespace other than this process's holds a mount of device `major:minor`. A
 * process that makes a namespace of its own (Chromium's sandbox, a container being set up) while
 * a seat disk is mounted gets a copy of that mount, which no unmount here reaches: the disk stays
 * attached until that process ends, and then clears itself. That is not the VM's leftover.
 */
export function heldElsewhere(device: string): boolean {
  const own = readlinkSync('/proc/self/ns/mnt');
  const seen = new Set([own]);
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const ns = readlinkSync(`/proc/${pid}/ns/mnt`);
      if (seen.has(ns)) continue;
      seen.add(ns);
      if (mountTable(`/proc/${pid}/mountinfo`).some((m) => m.device === device)) return true;
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return false;
}

/**
 * The seat disks of `dir` left attached by this side: mounted in this namespace, or attached and
 * held by no other namespace (as `losetup` names them).
 */
export async function seatDisksLeft(dir: string, env: NodeJS.ProcessEnv = process.env) {
  const loops = await loopsUnder(dir, env);
  return loops.filter((loop) => mountsOf(loop.device).length > 0 || !heldElsewhere(loop.device));
}

/** Mount points, anywhere, of the filesystem on device `major:minor`, deepest first. */
function mountsOf(device: string): string[] {
  return mountTable()
    .filter((m) => m.device === device)
    .map((m) => m.mountPoint)
    .sort(deepestFirst);
}

interface ScriptRun {
  child: ChildProcess;
  exited: Promise<number | null>;
}

/**
 * "Boots" an instance the way Compute Engine would: a metadata server for it, then its
 * `startup-script` (the metadata value when present, else startup/clarateach-startup.sh) run
 * by bash against this machine's Docker daemon, with every outside address pointed at the local
 * stack. Returns as soon as the script has started: like a VM, it reports on `vm.ready` when it
 * is done.
 */
export async function bootInstance(
  instance: InstanceToBoot,
  env: BootEnv,
): Promise<BootedInstance> {
  const seatCount = Number(instance.metadata['seat-count'] ?? '0');
  const seatsReserved = Math.max(MAX_SEATS_PER_VM, Number.isFinite(seatCount) ? seatCount : 0);
  const safeName = instance.name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
  // Names on the shared daemon: short, so a seat's bridge (`ct<id><seat>`) fits in 15 characters.
  const id = randomBytes(3).toString('hex');
  const namePrefix = `ct${id}-`;
  const firewallChain = canFirewall ? `CT-${id}` : '';
  const stateDir = await mkdtemp(path.join(os.tmpdir(), `clarateach-vm-${safeName}-`));
  const vmDir = path.join(stateDir, 'vm');
  const logPath = path.join(stateDir, 'clarateach-startup.log');
  await mkdir(vmDir, { recursive: true });

  const basePath = `${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  const dockerHost = env.dockerHost ?? process.env.DOCKER_HOST;
  const dockerEnv: Record<string, string> = dockerHost ? { DOCKER_HOST: dockerHost } : {};
  const toolEnv: NodeJS.ProcessEnv = { PATH: basePath, HOME: process.env.HOME, ...dockerEnv };
  const docker = (...args: string[]) => runCommand('docker', args, toolEnv);

  let metadata: MetadataServer;
  let ports: Awaited<ReturnType<typeof pickPortBlock>>;
  let subnetPool: string;
  try {
    metadata = await startMetadataServer({
      projectId: instance.project,
      zone: instance.zone,
      instanceName: instance.name,
      attributes: instance.metadata,
      externalIp: instance.externalIp,
      internalIp: instance.internalIp,
    });
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
  try {
    ports = await pickPortBlock(seatsReserved);
  } catch (error) {
    await metadata.close();
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
  try {
    subnetPool = await pickSubnetPool(seatsReserved, docker);
  } catch (error) {
    releasePortBlock(ports.portBase);
    await metadata.close();
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
  const { portBase, muxPortBase, seatHttpsBase } = ports;
  // The caller's CT_HTTP_PORT when it names one (the port an ACME server validates HTTP-01 on).
  const httpPort = Number(env.scriptEnv?.CT_HTTP_PORT) || (await freePort());

  // The very script a real VM runs: its `startup-script` metadata when the caller set one. A copy
  // of its own, as a VM's metadata is: bash reads a script as it runs, and an edit of the
  // repository's file would otherwise change the running scripts (and every reboot of them).
  const scriptPath = path.join(stateDir, 'startup-script.sh');
  const scriptText = instance.metadata['startup-script'] || readFileSync(REPO_SCRIPT, 'utf8');
  await writeFile(scriptPath, scriptText, { mode: 0o700 });

  const vmName = instance.metadata['vm-name'] || instance.name;
  const scriptEnv: NodeJS.ProcessEnv = {
    PATH: basePath,
    LANG: 'C.UTF-8',
    TMPDIR: os.tmpdir(),
    HOME: vmDir,
    CT_METADATA_URL: metadata.url,
    CT_PUBSUB_URL: `http://${env.pubsubEmulatorHost}`,
    // No Artifact Registry locally: `true` accepts configure-docker and does nothing.
    CT_CREDENTIAL_HELPER: 'true',
    // Only the seats' chain: Caddy binds loopback, so the host's INPUT rules stay as they are.
    CT_IPTABLES: canFirewall ? 'iptables' : '',
    CT_FIREWALL_CHAIN: firewallChain,
    CT_BRIDGE_PREFIX: `ct${id}`,
    CT_LOG: logPath,
    CT_STATE_DIR: vmDir,
    CT_HTTP_PORT: String(httpPort),
    // Caddy's own CA, the same for every local VM (local/tls-ca.ts): what the tests trust.
    CT_TLS: 'internal',
    CT_TLS_CA_DIR: localCa().dir,
    // Loopback, where every local VM's Caddy listens, unless the VM has a name under a seat
    // domain, which the script reads from its metadata as on a real VM.
    ...(instance.metadata['public-host'] ? {} : { CT_PUBLIC_HOST: '127.0.0.1' }),
    CT_HTTPS_PORT: String(await freePort()),
    CT_SEAT_HTTPS_BASE: String(seatHttpsBase),
    CT_HTTP_BIND: '127.0.0.1',
    CT_PORT_BASE: String(portBase),
    CT_MUX_PORT_BASE: String(muxPortBase),
    CT_NAME_PREFIX: namePrefix,
    CT_SEAT_SUBNET_POOL: subnetPool,
    // The local images are built here, not pulled: a pull of them could only fail.
    CT_PULL_POLICY: 'missing',
    // Every local VM's seat disks are files on this machine's disk: small shares.
    CT_HOME_SIZE: '128M',
    CT_DOCKER_WAIT: '30',
    CT_SEAT_WAIT: '240',
    CT_METADATA_RETRIES: '3',
    ...dockerEnv,
    ...env.scriptEnv,
  };
  const scriptPids: number[] = [];
  let current: ScriptRun | undefined;
  let stopping: Promise<void> | undefined;

  const startRun = (): void => {
    // detached: its own process group, so stopping it also ends its curl, sleep and log tail.
    const child = spawn('bash', [scriptPath], {
      env: scriptEnv,
      cwd: vmDir,
      detached: true,
      // Its output is in CT_LOG.
      stdio: 'ignore',
    });
    const run: ScriptRun = {
      child,
      exited: new Promise((resolve) => {
        child.once('error', () => resolve(null));
        child.once('exit', (code) => resolve(code));
      }),
    };
    if (child.pid !== undefined) scriptPids.push(child.pid);
    current = run;
  };

  const stopScript = async (): Promise<void> => {
    const run = current;
    if (!run || run.child.pid === undefined) return;
    const pid = run.child.pid;
    if (run.child.exitCode === null && run.child.signalCode === null) {
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), 5000);
      await run.exited;
      clearTimeout(timer);
    }
    // What is left of its group (the log mirror `tail --pid` outlives the script by up to a
    // second, a curl or docker client may still be finishing) goes too.
    killGroup(pid, 'SIGKILL');
    await until(() => processGroupMembers(pid).length === 0, 5000);
  };

  /** This instance's containers, networks or volumes: its label, and its own name prefix (a
   * replacement VM of the same name has another). */
  const ours = async (kind: 'container' | 'network' | 'volume', extra: string[] = []) => {
    const args =
      kind === 'container'
        ? ['container', 'ls', '-a', '--format', '{{.Names}}']
        : [kind, 'ls', '--format', '{{.Name}}'];
    args.push('--filter', `label=clarateach.vm=${vmName}`, ...extra);
    const out = await docker(...args);
    if (out.code !== 0) throw new Error(`docker ${args.join(' ')}: ${out.stderr}`);
    return out.stdout.split('\n').filter((name) => name.startsWith(namePrefix));
  };

  /** Removes what the script made on the daemon and the host firewall; throws if any is left. */
  const removeEverything = async (): Promise<void> => {
    const failures: string[] = [];
    for (const [kind, rmArgs] of [
      ['container', ['rm', '-f', '-v']],
      ['network', ['network', 'rm']],
      ['volume', ['volume', 'rm', '-f']],
    ] as const) {
      const names = await ours(kind);
      if (names.length === 0) continue;
      const out = await docker(...rmArgs, ...names);
      if (out.code !== 0) failures.push(out.stderr.trim());
    }
    // The seats' disks (loop mounts, detached as they are unmounted), before the state dir goes.
    for (const mountPoint of mountsUnder(vmDir)) {
      const out = await runCommand('umount', [mountPoint], toolEnv);
      if (out.code !== 0) failures.push(out.stderr.trim());
    }
    // A seat disk stays attached while any mount of it is left: Docker's own bind mount of a
    // seat's home volume (under its data root) when the daemon did not take it down, say after a
    // crash. Those go too. The kernel then detaches the device (autoclear) in a work queue of
    // its own, which on a busy machine takes a moment after umount returns. Copies in another
    // process's mount namespace are out of reach and go with it (heldElsewhere).
    for (let attempt = 0; ; attempt++) {
      const loops = await seatDisksLeft(vmDir, toolEnv);
      if (loops.length === 0) break;
      if (attempt === 20) {
        const held = loops.map((loop) => `${loop.name} (${mountsOf(loop.device).join(', ')})`);
        failures.push(`seat disks still attached: ${held.join('; ')}`);
        break;
      }
      for (const loop of loops) {
        const mounts = mountsOf(loop.device);
        for (const mountPoint of mounts) {
          const out = await runCommand('umount', [mountPoint], toolEnv);
          if (out.code !== 0) await runCommand('umount', ['-l', mountPoint], toolEnv);
        }
        // Unmounted and held by nobody, yet still there: not set to clear itself, so detached.
        if (mounts.length === 0 && attempt > 0) {
          await runCommand('losetup', ['-d', loop.name], toolEnv);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
    // The jumps to DOCKER-USER the script keeps first in FORWARD (two tagged copies take turns).
    for (const tag of firewallChain ? ['a', 'b'] : []) {
      const rule = [
        'FORWARD',
        '-i',
        `ct${id}+`,
        '-m',
        'comment',
        '--comment',
        `${firewallChain}-${tag}`,
      ];
      while (
        (await runCommand('iptables', ['-w', '-D', ...rule, '-j', 'DOCKER-USER'], toolEnv)).code ===
        0
      );
    }
    // The chain, and the one a run cut short was filling (the script swaps `-N` in).
    for (const chain of firewallChain ? [firewallChain, `${firewallChain}-N`] : []) {
      const rule = ['DOCKER-USER', '-i', `ct${id}+`, '-j', chain];
      while ((await runCommand('iptables', ['-w', '-D', ...rule], toolEnv)).code === 0);
      await runCommand('iptables', ['-w', '-F', chain], toolEnv);
      await runCommand('iptables', ['-w', '-X', chain], toolEnv);
    }
    if (failures.length > 0) {
      throw new Error(`could not remove everything of ${vmName}: ${failures.join('; ')}`);
    }
  };

  startRun();

  const seatFirst = Number(instance.metadata['seat-first'] || 1);
  return {
    httpPort,
    seatHttpsBase,
    seatOrigin: (seat) =>
      `https://${scriptEnv.CT_PUBLIC_HOST || instance.metadata['public-host']}:${seatHttpsBase + seat - seatFirst + 1}`,
    namePrefix,
    subnetPool,
    firewallChain,
    stateDir,
    logPath,
    docker,
    exited: () => current?.exited ?? Promise.resolve(null),
    async reboot(opts = {}) {
      if (stopping) throw new Error(`instance ${instance.name} is stopped`);
      await stopScript();
      if (opts.powerCycle) {
        const running = await ours('container', ['--filter', 'status=running']);
        if (running.length) await docker('kill', ...running);
      }
      startRun();
    },
    metadataUrl: metadata.url,
    setMetadata: (next) => metadata.setAttributes(next),
    pids: () => [...new Set([...scriptPids, ...scriptPids.flatMap(processGroupMembers)])],
    stop() {
      stopping ??= (async () => {
        await stopScript();
        try {
          await removeEverything();
        } finally {
          await metadata.close();
          releasePortBlock(portBase);
          releaseSubnetPool(subnetPool);
          await rm(stateDir, { recursive: true, force: true });
        }
      })();
      return stopping;
    },
  };
}
