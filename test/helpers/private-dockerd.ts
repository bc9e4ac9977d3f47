// A dockerd of the test's own, for tests that must stop, kill or restart a daemon (never the shared
// one): in a network namespace of its own (so its iptables are its own), with its own data root,
// exec root, socket, pidfile and cgroup parent, holding only the images the test loads into it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { runCommand, type CommandResult } from '../../local/commands.ts';
import { killGroup, processAlive, until } from '../../local/process-groups.ts';
import { mountsUnder } from '../../local/vm-runner.ts';

export interface PrivateDockerd {
  /** Its network namespace (ip netns). */
  netns: string;
  /** DOCKER_HOST for it. */
  host: string;
  /** An iptables executable that acts in its network namespace (for CT_IPTABLES). */
  iptables: string;
  docker(...args: string[]): Promise<CommandResult>;
  /** Copies an image of the shared daemon into it. */
  load(image: string): Promise<void>;
  /** Starts it; resolves once its API answers (containers restored and restarted by then). */
  start(): Promise<void>;
  /**
   * Stops it: `clean` as a shutdown does (SIGTERM: it stops its containers); `unclean` as a
   * power loss does (every process of it, its containerd, shims and containers, killed at once).
   */
  stop(how: 'clean' | 'unclean'): Promise<void>;
  /** What a reboot clears besides processes: every iptables rule and chain of its namespace,
   * every mount at or below `dirs` and below its own directory, its exec root. */
  forgetAsAtReboot(dirs: string[]): Promise<void>;
}

async function must(command: string, args: string[]): Promise<string> {
  const out = await runCommand(command, args);
  if (out.code !== 0) throw new Error(`${command} ${args.join(' ')}: ${out.stderr}`);
  return out.stdout;
}

/** Processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export async function privateDockerd(t: ExecutionContext): Promise<PrivateDockerd> {
  const id = randomBytes(3).toString('hex');
  const netns = `ctdockerd-${id}`;
  const cgroup = `ctdockerd-${id}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ct-dockerd-'));
  const socket = path.join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const iptables = path.join(dir, 'iptables');
  writeFileSync(iptables, `#!/bin/sh\nexec nsenter --net=/run/netns/${netns} iptables "$@"\n`, {
    mode: 0o755,
  });
  writeFileSync(path.join(dir, 'daemon.json'), '{}\n');
  const env = { ...process.env, DOCKER_HOST: host };
  const docker = (...args: string[]) => runCommand('docker', args, env);
  let pid = 0;

  await must('ip', ['netns', 'add', netns]);
  await must('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);

  const start = async () => {
    const log = openSync(path.join(dir, 'dockerd.log'), 'a');
    const child = spawn(
      // nsenter, not `ip netns exec`: the daemon must share this host's mounts (/ is private
      // here), as the seats' disks are mounted by the startup script after it started.
      'nsenter',
      [
        `--net=/run/netns/${netns}`,
        'dockerd',
        '--config-file',
        path.join(dir, 'daemon.json'),
        '--data-root',
        path.join(dir, 'data'),
        '--exec-root',
        path.join(dir, 'exec'),
        '--pidfile',
        path.join(dir, 'docker.pid'),
        '-H',
        host,
        '--bridge',
        'none',
        '--cgroup-parent',
        `/${cgroup}`,
        '--log-level',
        'warn',
      ],
      { detached: true, stdio: ['ignore', log, log] },
    );
    pid = child.pid!;
    child.unref();
    for (let i = 0; ; i++) {
      if ((await docker('info', '--format', '{{.ID}}')).code === 0) return;
      if (!processAlive(pid))
        throw new Error(
          `the private dockerd exited: ${readFileSync(path.join(dir, 'dockerd.log'), 'utf8').slice(-2000)}`,
        );
      if (i > 600) throw new Error('the private dockerd did not answer within 2 minutes');
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const cgroupProcs = () => {
    const base = `/sys/fs/cgroup/pids/${cgroup}`;
    if (!existsSync(base)) return [];
    return readdirSync(base, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .flatMap((e) => readFileSync(path.join(base, e.name, 'cgroup.procs'), 'utf8').split('\n'))
      .filter(Boolean)
      .map(Number);
  };

  const stop = async (how: 'clean' | 'unclean') => {
    if (how === 'clean') {
      killGroup(pid, 'SIGTERM');
      await until(() => !processAlive(pid), 120_000, 100);
    }
    // Everything left of it: the daemon and its containerd, shims (their own sessions), the
    // containers' processes (by cgroup), all at once as a power loss would.
    const victims = [pid, ...processesMentioning(dir), ...cgroupProcs()];
    for (const victim of victims) {
      try {
        process.kill(victim, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    killGroup(pid, 'SIGKILL');
    if (!(await until(() => victims.every((v) => !processAlive(v)), 30_000, 100))) {
      throw new Error('the private dockerd’s processes did not all die');
    }
  };

  const forgetAsAtReboot = async (dirs: string[]) => {
    for (const table of ['filter', 'nat', 'mangle', 'raw']) {
      await must('ip', ['netns', 'exec', netns, 'iptables', '-w', '-t', table, '-F']);
      await must('ip', ['netns', 'exec', netns, 'iptables', '-w', '-t', table, '-X']);
    }
    for (const d of [...dirs, dir]) {
      for (const mountPoint of mountsUnder(d)) await must('umount', ['-l', mountPoint]);
    }
    rmSync(path.join(dir, 'exec'), { recursive: true, force: true });
  };

  t.teardown(async () => {
    if (processAlive(pid)) {
      const left = (await docker('ps', '-aq')).stdout.split('\n').filter(Boolean);
      if (left.length) await docker('rm', '-f', '-v', ...left);
    }
    await stop('clean').catch(() => undefined);
    for (const mountPoint of mountsUnder(dir)) await runCommand('umount', ['-l', mountPoint]);
    for (const controller of readdirSync('/sys/fs/cgroup')) {
      const base = `/sys/fs/cgroup/${controller}/${cgroup}`;
      if (!existsSync(base)) continue;
      for (const e of readdirSync(base, { withFileTypes: true })) {
        if (e.isDirectory()) await runCommand('rmdir', [path.join(base, e.name)]);
      }
      await runCommand('rmdir', [base]);
    }
    await runCommand('ip', ['netns', 'del', netns]);
    rmSync(dir, { recursive: true, force: true });
  });

  await start();
  const load = async (image: string) => {
    const out = await runCommand('bash', [
      '-c',
      'docker save "$1" | DOCKER_HOST="$2" docker load -q',
      'load',
      image,
      host,
    ]);
    if (out.code !== 0) throw new Error(`could not load ${image}: ${out.stderr}`);
  };
  return { netns, host, iptables, docker, load, start, stop, forgetAsAtReboot };
}
