import { spawn, spawnSync } from 'node:child_process';
import { openSync } from 'node:fs';
import { until } from './process-groups.ts';

/**
 * Readies this machine for the local stack's VMs and the tests, as a newcomer would by hand:
 * Debian's packages that are missing, and a Docker daemon. As root on Debian it installs and
 * starts them, saying each step; elsewhere it stops with the exact command to run.
 */

/** A command the stack needs, and the Debian package that provides it. */
interface Need {
  command: string;
  pkg: string;
}

const VM_NEEDS: Need[] = [
  { command: 'dockerd', pkg: 'docker.io' },
  { command: 'docker', pkg: 'docker.io' },
  { command: 'iptables', pkg: 'iptables' },
  { command: 'debootstrap', pkg: 'debootstrap' },
  // The startup script's seat disks (mkfs.ext4) and subnet check (ip).
  { command: 'mkfs.ext4', pkg: 'e2fsprogs' },
  { command: 'ip', pkg: 'iproute2' },
  // The local CA of the seats' certificates (local/tls-ca.ts).
  { command: 'openssl', pkg: 'openssl' },
];
const BROWSER_NEED: Need = { command: 'chromium', pkg: 'chromium' };
/** Let's Encrypt's ACME test server: the CA of the startup script's ACME test. */
const ACME_NEED: Need = { command: 'pebble', pkg: 'pebble' };

const has = (command: string) =>
  spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
const isRoot = () => process.getuid?.() === 0;

class MachineNotReady extends Error {}

function aptInstall(packages: string[], say: (line: string) => void): void {
  const command = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  if (!isRoot() || !has('apt-get')) {
    throw new MachineNotReady(`missing ${packages.join(', ')}: install them (${command})`);
  }
  say(`installing ${packages.join(', ')} from Debian's packages`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { env, encoding: 'utf8' });
  const install =
    update.status === 0
      ? spawnSync('sh', ['-c', `${command} -qq`], { env, encoding: 'utf8' })
      : update;
  if (install.status !== 0) {
    throw new MachineNotReady(`could not run ${command}:\n${install.stderr ?? ''}`);
  }
}

function dockerAnswers(): boolean {
  return (
    spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
      stdio: 'ignore',
      timeout: 10_000,
    }).status === 0
  );
}

async function startDockerDaemon(say: (line: string) => void): Promise<void> {
  if (dockerAnswers()) return;
  if (!isRoot()) {
    throw new MachineNotReady('no Docker daemon answers: start one (sudo systemctl start docker)');
  }
  if (spawnSync('systemctl', ['start', 'docker'], { stdio: 'ignore' }).status === 0) {
    say('started docker with systemctl');
  } else {
    // No init system (a container, CI): dockerd runs on its own, outliving this process like a
    // service would, so VMs and images stay between runs.
    const log = '/var/log/clarateach-dockerd.log';
    say(`starting dockerd (log: ${log})`);
    const out = openSync(log, 'a');
    spawn('dockerd', [], { detached: true, stdio: ['ignore', out, out] }).unref();
  }
  const up = await until(dockerAnswers, 60_000, 500);
  if (!up) throw new MachineNotReady('dockerd did not answer within 60 s');
}

/**
 * Installs what is missing (docker.io, debootstrap, Chromium when `browser`, pebble when `acme`)
 * and starts Docker.
 */
export async function prepareMachine(
  opts: { browser?: boolean; acme?: boolean; say?: (line: string) => void } = {},
): Promise<void> {
  const say = opts.say ?? ((line: string) => console.error(`setup: ${line}`));
  const needs = [
    ...VM_NEEDS,
    ...(opts.browser ? [BROWSER_NEED] : []),
    ...(opts.acme ? [ACME_NEED] : []),
  ];
  const missing = [...new Set(needs.filter((n) => !has(n.command)).map((n) => n.pkg))];
  if (missing.length > 0) aptInstall(missing, say);
  await startDockerDaemon(say);
}
