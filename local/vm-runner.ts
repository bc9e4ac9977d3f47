import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BootableInstance } from './compute-standin.ts';
import { startMetadataServer, type MetadataServer } from './metadata-server.ts';
import { freePort, pickPortBlock, releasePortBlock } from './ports.ts';
import { killGroup, processGroupMembers, until } from './process-groups.ts';

/** What the local Compute Engine stand-in knows of an inserted instance. */
export type InstanceToBoot = BootableInstance;

export interface BootEnv {
  /** host:port of the Pub/Sub emulator; the script publishes `vm.ready` there over REST. */
  pubsubEmulatorHost: string;
  /**
   * `auto`: real Docker when a daemon answers, the stand-in otherwise. Default: the
   * CT_LOCAL_DOCKER environment variable (`auto`, `standin`, `real`), else `auto`.
   */
  docker?: DockerMode;
  /** Extra environment for the startup script (e.g. shorter bounded waits in tests). */
  scriptEnv?: Record<string, string>;
}

export type DockerMode = 'auto' | 'standin' | 'real';

function dockerMode(requested: DockerMode | undefined): DockerMode {
  const mode = requested ?? process.env.CT_LOCAL_DOCKER ?? 'auto';
  if (mode !== 'auto' && mode !== 'standin' && mode !== 'real') {
    throw new Error(`CT_LOCAL_DOCKER must be auto, standin or real, not ${mode}`);
  }
  return mode;
}

export interface DockerResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface BootedInstance {
  /** Caddy's port on 127.0.0.1 (what a real VM serves on :80). */
  httpPort: number;
  /** Seat i's ports are portBase+10i+1..3; its WebRTC mux port is muxPortBase+i. */
  portBase: number;
  muxPortBase: number;
  /** The instance's private directory (removed by stop()). */
  stateDir: string;
  /** The startup script's log (CT_LOG). */
  logPath: string;
  /** The Caddyfile the script renders (CT_STATE_DIR/Caddyfile). */
  caddyfilePath: string;
  /** Runs the instance's docker (the same binary and environment the script uses). */
  docker(...args: string[]): Promise<DockerResult>;
  /** Exit status of the current run of the script (null when it was killed). */
  exited(): Promise<number | null>;
  /**
   * Runs the startup script again on the same instance, like a reboot does (a run still going
   * is stopped first). With `powerCycle`, every container process dies first, as on a real
   * reboot, so the script finds its containers stopped.
   */
  reboot(opts?: { powerCycle?: boolean }): Promise<void>;
  /** Every process started for this instance so far (script runs and containers). */
  pids(): number[];
  /** Stops the script and every container of this instance, closes the metadata server, and
   * removes the state directory. Afterwards no process of this instance is left. */
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO_SCRIPT = path.join(here, '..', 'startup', 'clarateach-startup.sh');
const STANDIN = path.join(here, 'docker-standin', 'docker');
/** Seats a VM can hold at most (sizing table: 20); port blocks are reserved for that many. */
const MAX_SEATS_PER_VM = 20;

// --- docker detection ---------------------------------------------------------------------------

interface RealDocker {
  available: boolean;
  /** The endpoint of the current docker context: the script runs with its own HOME. */
  dockerHost?: string;
}
let realDocker: RealDocker | undefined;

function detectRealDocker(): RealDocker {
  realDocker ??= (() => {
    const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
      timeout: 5000,
      stdio: 'ignore',
    });
    if (info.error || info.status !== 0) return { available: false };
    const host =
      process.env.DOCKER_HOST ??
      spawnSync('docker', ['context', 'inspect', '--format', '{{.Endpoints.docker.Host}}'], {
        timeout: 5000,
        encoding: 'utf8',
      }).stdout?.trim();
    return { available: true, dockerHost: host || undefined };
  })();
  return realDocker;
}

// --- processes ----------------------------------------------------------------------------------

function runCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<DockerResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (error) => resolve({ code: null, stdout, stderr: stderr + String(error) }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface ScriptRun {
  child: ChildProcess;
  exited: Promise<number | null>;
}

/**
 * "Boots" an instance the way Compute Engine would: a metadata server for it, then its
 * `startup-script` (the metadata value when present, else startup/clarateach-startup.sh) run
 * by bash with every outside address pointed at the local stack. Returns as soon as the script
 * has started: like a VM, it reports on `vm.ready` when it is done.
 */
export async function bootInstance(
  instance: InstanceToBoot,
  env: BootEnv,
): Promise<BootedInstance> {
  const mode = dockerMode(env.docker);
  const real = mode === 'standin' ? { available: false } : detectRealDocker();
  if (mode === 'real' && !real.available) throw new Error('no Docker daemon answers `docker info`');
  const useReal = real.available;

  const seatCount = Number(instance.metadata['seat-count'] ?? '0');
  const seatsReserved = Math.max(MAX_SEATS_PER_VM, Number.isFinite(seatCount) ? seatCount : 0);
  const safeName = instance.name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
  const stateDir = await mkdtemp(path.join(os.tmpdir(), `clarateach-vm-${safeName}-`));
  const vmDir = path.join(stateDir, 'vm');
  const dockerState = path.join(stateDir, 'docker');
  const logPath = path.join(stateDir, 'clarateach-startup.log');
  await mkdir(vmDir, { recursive: true });
  await mkdir(dockerState, { recursive: true });

  let metadata: MetadataServer;
  let ports: { portBase: number; muxPortBase: number };
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
  const { portBase, muxPortBase } = ports;
  const httpPort = await freePort();

  // The very script a real VM runs: its `startup-script` metadata when the caller set one.
  let scriptPath = REPO_SCRIPT;
  const scriptText = instance.metadata['startup-script'];
  if (scriptText) {
    scriptPath = path.join(stateDir, 'startup-script.sh');
    await writeFile(scriptPath, scriptText, { mode: 0o700 });
  }

  const vmName = instance.metadata['vm-name'] || instance.name;
  const dockerCommand = useReal ? 'docker' : STANDIN;
  // The docker the script and docker() use: the stand-in's state dir, or real Docker's endpoint.
  const dockerEnv: Record<string, string> = useReal
    ? real.dockerHost
      ? { DOCKER_HOST: real.dockerHost }
      : {}
    : { CT_DOCKER_STATE: dockerState };
  const basePath = `${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  const scriptEnv: NodeJS.ProcessEnv = {
    PATH: basePath,
    LANG: 'C.UTF-8',
    TMPDIR: os.tmpdir(),
    HOME: vmDir,
    CT_METADATA_URL: metadata.url,
    CT_PUBSUB_URL: `http://${env.pubsubEmulatorHost}`,
    CT_DOCKER: dockerCommand,
    // No Artifact Registry locally: `true` accepts configure-docker and does nothing.
    CT_CREDENTIAL_HELPER: 'true',
    // The host's firewall is not the local stack's to change.
    CT_IPTABLES: '',
    CT_LOG: logPath,
    CT_STATE_DIR: vmDir,
    CT_HTTP_PORT: String(httpPort),
    CT_HTTP_BIND: '127.0.0.1',
    CT_PORT_BASE: String(portBase),
    CT_MUX_PORT_BASE: String(muxPortBase),
    // On a shared real daemon, names must not collide with another local VM's.
    CT_NAME_PREFIX: useReal ? `${safeName}-` : '',
    CT_DOCKER_WAIT: '30',
    CT_SEAT_WAIT: '120',
    CT_METADATA_RETRIES: '3',
    ...dockerEnv,
    ...env.scriptEnv,
  };
  const toolEnv: NodeJS.ProcessEnv = {
    PATH: basePath,
    HOME: process.env.HOME,
    ...dockerEnv,
  };
  const docker = (...args: string[]) => runCommand(dockerCommand, args, toolEnv);

  const scriptPids: number[] = [];
  let current: ScriptRun | undefined;
  let stopping: Promise<void> | undefined;
  let finalPids: number[] | undefined;

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
    // second, a curl may still be finishing) goes too.
    killGroup(pid, 'SIGKILL');
    await until(() => processGroupMembers(pid).length === 0, 5000);
  };

  /** Live stand-in processes (pid → container id), from the stand-in's live/ directory. */
  const liveStandinPids = async (): Promise<Array<[number, string]>> => {
    const liveDir = path.join(dockerState, 'live');
    const names = await readdir(liveDir).catch(() => [] as string[]);
    const found: Array<[number, string]> = [];
    for (const name of names) {
      const id = (await readFile(path.join(liveDir, name), 'utf8').catch(() => '')).trim();
      if (/^\d+$/.test(name) && id) found.push([Number(name), id]);
    }
    return found;
  };
  const isStandinProcess = (pid: number, id: string): boolean => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'latin1').includes(
        `CT_DOCKER_STANDIN_ID=${id}\0`,
      );
    } catch {
      return false;
    }
  };
  const killStandinProcesses = async (): Promise<void> => {
    const live = (await liveStandinPids()).filter(([pid, id]) => isStandinProcess(pid, id));
    for (const [pid] of live) killGroup(pid, 'SIGKILL');
    await until(() => live.every(([pid, id]) => !isStandinProcess(pid, id)), 5000);
  };

  const containerPids = (): number[] => {
    if (useReal) return [];
    try {
      return readFileSync(path.join(dockerState, 'pids.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => Number(line.split(' ')[0]))
        .filter((pid) => Number.isInteger(pid) && pid > 0);
    } catch {
      return [];
    }
  };
  const allPids = (): number[] => [
    ...new Set([
      ...scriptPids,
      ...scriptPids.flatMap((pid) => processGroupMembers(pid)),
      ...containerPids(),
    ]),
  ];

  const removeContainers = async (): Promise<void> => {
    const listed = await docker('ps', '-aq', '--filter', `label=clarateach.vm=${vmName}`);
    const ids = listed.stdout.split('\n').filter(Boolean);
    const removed = ids.length ? await docker('rm', '-f', ...ids) : listed;
    if (useReal) {
      await docker('network', 'rm', `${safeName}-clarateach-net`);
      // Real containers have no other way out: say so rather than leave them silently.
      if (listed.code !== 0 || removed.code !== 0) {
        throw new Error(
          `could not remove the containers of ${vmName}: ${listed.stderr}${removed.stderr}`,
        );
      }
    } else {
      // Anything the stand-in started that its records no longer name (e.g. a run cut short).
      const rest = await docker('ps', '-aq');
      const others = rest.stdout.split('\n').filter(Boolean);
      if (others.length) await docker('rm', '-f', ...others);
      await killStandinProcesses();
    }
  };

  startRun();

  return {
    httpPort,
    portBase,
    muxPortBase,
    stateDir,
    logPath,
    caddyfilePath: path.join(vmDir, 'Caddyfile'),
    docker,
    exited: () => current?.exited ?? Promise.resolve(null),
    async reboot(opts = {}) {
      if (stopping) throw new Error(`instance ${instance.name} is stopped`);
      await stopScript();
      if (opts.powerCycle) {
        if (useReal) {
          const listed = await docker('ps', '-q', '--filter', `label=clarateach.vm=${vmName}`);
          const ids = listed.stdout.split('\n').filter(Boolean);
          if (ids.length) await docker('kill', ...ids);
        } else {
          await killStandinProcesses();
        }
      }
      startRun();
    },
    pids: () => finalPids ?? allPids(),
    stop() {
      stopping ??= (async () => {
        await stopScript();
        try {
          await removeContainers();
        } finally {
          finalPids = allPids();
          await metadata.close();
          releasePortBlock(portBase);
          await rm(stateDir, { recursive: true, force: true });
        }
      })();
      return stopping;
    },
  };
}
