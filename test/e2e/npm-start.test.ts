import { spawn } from 'node:child_process';
import net from 'node:net';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { freePort } from '../../local/ports.ts';

/**
 * What `npm start` runs (`tsx local/start.ts`), as a newcomer sees it: one ready line, a working
 * API, and a clean stop on SIGTERM. (npm itself is left out: it dies by the signal it forwards.)
 */
const listening = (hostPort: string) =>
  new Promise<boolean>((resolve) => {
    const [host, port] = hostPort.split(':');
    const socket = net.connect(Number(port), host!, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });

test('the local stack prints its ready line, serves the API, and stops everything on SIGTERM', async (t) => {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/start.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      GCP_PROJECT: 'npm-start-test',
      CT_LOG_LEVEL: 'silent',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 120_000;
    while (!stdout.includes('ready: ') && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    t.is(stdout.trim().split('\n').at(-1), `ready: http://127.0.0.1:${port}`, stderr);
    const hosts = /FIRESTORE_EMULATOR_HOST=(\S+) PUBSUB_EMULATOR_HOST=(\S+)/.exec(stderr);
    t.truthy(hosts, stderr);

    const health = await fetch(`http://127.0.0.1:${port}/health`);
    t.is(health.status, 200);
    const created = await fetch(`http://127.0.0.1:${port}/workshops`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Smoke', seats: 3 }),
    });
    t.is(created.status, 201);
    t.is(((await created.json()) as { status: string }).status, 'created');

    child.kill('SIGTERM');
    t.is(await exited, 0, stderr);
    t.false(await listening(`127.0.0.1:${port}`));
    t.false(await listening(hosts![1]!), 'the Firestore emulator stopped');
    t.false(await listening(hosts![2]!), 'the Pub/Sub emulator stopped');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
