import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort } from './ports.ts';
import { groupExists, killGroup, until } from './process-groups.ts';

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

class ExitedEarly extends Error {}

async function waitForHttp(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new ExitedEarly(`emulator exited early:\n${log()}`);
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`emulator did not answer on ${url} within 120 s:\n${log()}`);
}

async function startEmulatorOnce(args: string[]): Promise<Emulator> {
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
  // Stopped means every process of the group is gone: gcloud exits before its Java child does.
  const stop = async () => {
    const pgid = child.pid;
    if (pgid === undefined) return;
    killGroup(pgid, 'SIGTERM');
    if (!(await until(() => !groupExists(pgid), 10_000, 100))) {
      killGroup(pgid, 'SIGKILL');
      await until(() => !groupExists(pgid), 5_000, 100);
    }
  };
  try {
    await waitForHttp(`http://${host}/`, child, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  return { host, stop };
}

/** An emulator that dies at start-up (its port taken in the meantime, say) is tried again. */
async function startEmulator(args: string[]): Promise<Emulator> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEmulatorOnce(args);
    } catch (error) {
      if (!(error instanceof ExitedEarly) || attempt === 3) throw error;
    }
  }
}

function startFirestoreEmulator(): Promise<Emulator> {
  return startEmulator(['emulators', 'firestore', 'start', '--quiet']);
}

function startPubsubEmulator(projectId: string): Promise<Emulator> {
  return startEmulator([
    'beta',
    'emulators',
    'pubsub',
    'start',
    '--quiet',
    `--project=${projectId}`,
  ]);
}

/** Both emulators, started side by side: their hosts, and the emulators to stop later. */
export async function startEmulatorPair(
  projectId: string,
): Promise<{ firestoreHost: string; pubsubHost: string; emulators: Emulator[] }> {
  const results = await Promise.allSettled([
    startFirestoreEmulator(),
    startPubsubEmulator(projectId),
  ]);
  const emulators = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    // The one that did start must not outlive the failure: it would keep this process alive.
    await Promise.all(emulators.map((e) => e.stop()));
    throw failed.reason;
  }
  const [firestore, pubsub] = emulators as [Emulator, Emulator];
  return { firestoreHost: firestore.host, pubsubHost: pubsub.host, emulators };
}
