import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort } from './ports.ts';

export interface Emulator {
  /** host:port, the value for FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST. */
  host: string;
  stop(): Promise<void>;
}

/** Names what is missing to run the official emulators, or returns null when all is there. */
export function missingEmulatorPrerequisite(): string | null {
  if (spawnSync('java', ['-version'], { stdio: 'ignore' }).status !== 0) {
    return 'java is missing (install it: apt-get install -y default-jre-headless)';
  }
  // `gcloud version` lists the installed components without touching the network.
  const gcloud = spawnSync('gcloud', ['version'], { encoding: 'utf8' });
  if (gcloud.error || gcloud.status !== 0) {
    return 'gcloud is missing (install the Google Cloud CLI: apt-get install google-cloud-cli)';
  }
  const components: Record<string, string> = {
    'cloud-firestore-emulator': 'google-cloud-cli-firestore-emulator',
    'pubsub-emulator': 'google-cloud-cli-pubsub-emulator',
  };
  for (const [component, pkg] of Object.entries(components)) {
    if (!new RegExp(`^${component} `, 'm').test(gcloud.stdout)) {
      return `the gcloud component ${component} is missing (install it: apt-get install ${pkg}, or gcloud components install ${component})`;
    }
  }
  return null;
}

async function waitForHttp(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`emulator exited early:\n${log()}`);
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`emulator did not answer on ${url} within 90 s:\n${log()}`);
}

/** Whether any process of the group still runs (signal 0 only asks). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function groupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!groupAlive(pgid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !groupAlive(pgid);
}

async function startEmulator(args: string[], probePath: string): Promise<Emulator> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  // detached: the emulator's Java child gets its own process group, so stop() can end all of it.
  const child = spawn('gcloud', [...args, `--host-port=${host}`], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // the group is gone
    }
  };
  // Stopped means every process of the group is gone: gcloud exits before its Java child does.
  const stop = async () => {
    const pgid = child.pid;
    if (pgid === undefined) return;
    signal('SIGTERM');
    if (!(await groupGone(pgid, 10_000))) {
      signal('SIGKILL');
      await groupGone(pgid, 5_000);
    }
  };
  try {
    await waitForHttp(`http://${host}${probePath}`, child, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  return { host, stop };
}

export function startFirestoreEmulator(): Promise<Emulator> {
  return startEmulator(['emulators', 'firestore', 'start', '--quiet'], '/');
}

export function startPubsubEmulator(projectId: string): Promise<Emulator> {
  return startEmulator(
    ['beta', 'emulators', 'pubsub', 'start', '--quiet', `--project=${projectId}`],
    '/',
  );
}
