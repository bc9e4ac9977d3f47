import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { freePort } from '../../local/ports.ts';
import { processAlive } from '../../local/process-groups.ts';

const DOCKER = path.resolve('local/docker-standin/docker');
const hasCaddy = spawnSync('caddy', ['version'], { stdio: 'ignore' }).status === 0;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(env: NodeJS.ProcessEnv, args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(DOCKER, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A fresh stand-in state dir; everything it started is removed after the test. */
async function standin(t: ExecutionContext) {
  const state = await mkdtemp(path.join(os.tmpdir(), 'docker-standin-test-'));
  const env = { ...process.env, CT_DOCKER_STATE: state };
  const docker = (...args: string[]) => run(env, args);
  const startedPids = async () =>
    (await readFile(path.join(state, 'pids.log'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((line) => Number(line.split(' ')[0]));
  t.teardown(async () => {
    const ids = (await docker('ps', '-aq')).stdout.split('\n').filter(Boolean);
    if (ids.length) await docker('rm', '-f', ...ids);
    await rm(state, { recursive: true, force: true });
  });
  return { state, docker, startedPids };
}

async function getJson(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

test('run starts a container that answers on its published ports with its name', async (t) => {
  const { docker } = await standin(t);
  const [p1, p2, mux] = [await freePort(), await freePort(), await freePort()];
  const started = await docker(
    'run',
    '-d',
    '--name',
    'seat-7',
    '--restart',
    'unless-stopped',
    '--label',
    'clarateach.seat=7',
    '--label',
    'clarateach.vm=vm-x',
    '-e',
    'A=b',
    '-p',
    `127.0.0.1:${p1}:3001`,
    '-p',
    `${p2}:3002`,
    '-p',
    `${mux}:${mux}/tcp`,
    '-p',
    `${mux}:${mux}/udp`,
    'local/workspace:1',
  );
  t.is(started.code, 0, started.stderr);
  t.regex(started.stdout.trim(), /^[0-9a-f]{64}$/);

  const terminal = await getJson(`http://127.0.0.1:${p1}/some/path?x=1`);
  t.is(terminal.status, 200);
  t.like(terminal.body, {
    container: 'seat-7',
    containerPort: 3001,
    seat: '7',
    path: '/some/path',
  });
  t.like((await getJson(`http://127.0.0.1:${p2}/`)).body, {
    container: 'seat-7',
    containerPort: 3002,
  });
  t.like((await getJson(`http://127.0.0.1:${mux}/`)).body, { containerPort: mux });

  const listed = await docker(
    'ps',
    '--filter',
    'label=clarateach.vm=vm-x',
    '--format',
    '{{.Names}} {{.Label "clarateach.seat"}} {{.State}}',
  );
  t.is(listed.stdout, 'seat-7 7 running\n');
  t.deepEqual(await docker('ps', '-q', '--filter', 'label=clarateach.vm=other'), {
    code: 0,
    stdout: '',
    stderr: '',
  });
  const inspected = await docker(
    'inspect',
    '--format',
    '{{index .Config.Labels "clarateach.seat"}} {{.State.Running}} {{.HostConfig.RestartPolicy.Name}}',
    'seat-7',
  );
  t.is(inspected.stdout, '7 true unless-stopped\n');
  const [shape] = JSON.parse((await docker('inspect', 'seat-7')).stdout) as Array<{
    Config: { Env: string[] };
  }>;
  t.deepEqual(shape?.Config.Env, ['A=b']);
});

test('a name in use fails like docker (125, Conflict) and leaves the first container alone', async (t) => {
  const { docker } = await standin(t);
  const port = await freePort();
  t.is((await docker('run', '-d', '--name', 'seat-1', '-p', `${port}:3001`, 'ws:1')).code, 0);
  const again = await docker('run', '-d', '--name', 'seat-1', 'ws:1');
  t.is(again.code, 125);
  t.regex(again.stderr, /Conflict\. The container name "\/seat-1" is already in use/);
  t.is((await getJson(`http://127.0.0.1:${port}/`)).status, 200);
  const all = await docker('ps', '-a', '-q');
  t.is(all.code, 0);
  t.is(all.stdout.trim().split('\n').length, 1);
});

test('an image reference containing "broken" cannot start (125) and stays as created', async (t) => {
  const { docker, startedPids } = await standin(t);
  const port = await freePort();
  const res = await docker('run', '-d', '--name', 'seat-2', '-p', `${port}:3001`, 'ws-broken:1');
  t.is(res.code, 125);
  t.regex(res.stderr, /unable to start container/);
  t.deepEqual(await startedPids(), []);
  t.true(await refused(port));
  t.is((await docker('ps', '-a', '--format', '{{.Names}} {{.State}}')).stdout, 'seat-2 created\n');
  t.deepEqual(await docker('ps', '-q'), { code: 0, stdout: '', stderr: '' });
  t.is((await docker('rm', '-f', 'seat-2')).code, 0);
  t.deepEqual(await docker('ps', '-aq'), { code: 0, stdout: '', stderr: '' });
});

test('a published port already in use fails the run and leaves no process behind', async (t) => {
  const { docker, startedPids } = await standin(t);
  const port = await freePort();
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const res = await docker('run', '-d', '--name', 'seat-3', '-p', `${port}:3001`, 'ws:1');
  t.is(res.code, 125);
  t.regex(res.stderr, new RegExp(`${port}`));
  const pids = await startedPids();
  t.is(pids.length, 1);
  t.false(processAlive(pids[0]!));
});

test('stop and start, then rm -f ends the process and forgets the container', async (t) => {
  const { docker, startedPids } = await standin(t);
  const port = await freePort();
  t.is((await docker('run', '-d', '--name', 'seat-4', '-p', `${port}:3001`, 'ws:1')).code, 0);
  t.is((await docker('stop', 'seat-4')).code, 0);
  t.true(await refused(port));
  t.is((await docker('inspect', '-f', '{{.State.Running}}', 'seat-4')).stdout, 'false\n');
  t.is((await docker('start', 'seat-4')).code, 0);
  t.is((await getJson(`http://127.0.0.1:${port}/`)).status, 200);
  t.is((await docker('inspect', '-f', '{{.State.Running}}', 'seat-4')).stdout, 'true\n');

  const pids = await startedPids();
  t.is(pids.length, 2);
  t.is((await docker('rm', '-f', 'seat-4')).code, 0);
  for (const pid of pids) t.false(processAlive(pid), `pid ${pid} still runs`);
  t.true(await refused(port));
  t.deepEqual(await docker('ps', '-aq'), { code: 0, stdout: '', stderr: '' });
  const missing = await docker('inspect', 'seat-4');
  t.is(missing.code, 1);
  t.regex(missing.stderr, /No such object: seat-4/);
  // Like docker, rm -f of a container that does not exist reports it but succeeds.
  t.is((await docker('rm', '-f', 'seat-4')).code, 0);
});

test('networks: inspect fails until create, create twice fails', async (t) => {
  const { docker } = await standin(t);
  t.is((await docker('network', 'inspect', 'clarateach-net')).code, 1);
  t.is((await docker('network', 'create', 'clarateach-net')).code, 0);
  t.is((await docker('network', 'inspect', 'clarateach-net')).code, 0);
  const again = await docker('network', 'create', 'clarateach-net');
  t.is(again.code, 1);
  t.regex(again.stderr, /already exists/);
  t.is((await docker('run', '-d', '--network', 'nope', 'ws:1')).code, 125);
});

test('pull records an image; "unpullable" fails; unknown commands and flags fail', async (t) => {
  const { docker } = await standin(t);
  const pulled = await docker('pull', 'us-docker.pkg.dev/p/r/workspace:1');
  t.is(pulled.code, 0);
  t.regex(pulled.stdout, /Downloaded newer image/);
  const failed = await docker('pull', 'r/unpullable:1');
  t.is(failed.code, 1);
  t.regex(failed.stderr, /manifest unknown/);
  t.is((await docker('compose', 'up')).code, 1);
  t.is((await docker('run', '-d', '--privileged', 'ws:1')).code, 125);
  t.is((await docker('info')).code, 0);
});

test('without CT_DOCKER_STATE it refuses to run', async (t) => {
  const env = { ...process.env };
  delete env.CT_DOCKER_STATE;
  const res = await run(env, ['info']);
  t.is(res.code, 1);
  t.regex(res.stderr, /CT_DOCKER_STATE/);
});

(hasCaddy ? test : test.skip)(
  'a caddy image runs the real caddy on the mounted Caddyfile',
  async (t) => {
    const { state, docker, startedPids } = await standin(t);
    const port = await freePort();
    const caddyfile = path.join(state, 'Caddyfile');
    await writeFile(
      caddyfile,
      `{\n\tadmin off\n\tauto_https off\n}\n:${port} {\n\tbind 127.0.0.1\n\trespond /health "OK" 200\n}\n`,
    );
    const res = await docker(
      'run',
      '-d',
      '--name',
      'clarateach-caddy',
      '--network',
      'host',
      '-v',
      `${caddyfile}:/etc/caddy/Caddyfile:ro`,
      'caddy:2',
      'caddy',
      'run',
      '--config',
      '/etc/caddy/Caddyfile',
      '--adapter',
      'caddyfile',
    );
    t.is(res.code, 0, res.stderr);
    // docker run returns before the server listens; poll with a deadline.
    let body = '';
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      body = await fetch(`http://127.0.0.1:${port}/health`)
        .then((r) => r.text())
        .catch(() => '');
      if (body) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.is(body, 'OK');
    const [pid] = await startedPids();
    t.is((await docker('rm', '-f', 'clarateach-caddy')).code, 0);
    t.false(processAlive(pid!));
  },
);

test('limits are validated like docker and shown by inspect', async (t) => {
  const { docker } = await standin(t);
  const port = await freePort();
  const ran = await docker(
    'run',
    '-d',
    '--name',
    'seat-5',
    '--memory',
    '512m',
    '--shm-size=2g',
    '--pids-limit',
    '100',
    '-p',
    `${port}:3001`,
    'ws:1',
  );
  t.is(ran.code, 0, ran.stderr);
  const [shape] = JSON.parse((await docker('inspect', 'seat-5')).stdout) as Array<{
    HostConfig: { Memory: number; ShmSize: number; PidsLimit: number | null };
  }>;
  t.deepEqual(
    [shape?.HostConfig.Memory, shape?.HostConfig.ShmSize, shape?.HostConfig.PidsLimit],
    [512 * 1024 ** 2, 2 * 1024 ** 3, 100],
  );
  for (const bad of [
    ['--memory', 'lots'],
    ['--shm-size', '2x'],
    ['--pids-limit', 'many'],
  ]) {
    const res = await docker('run', '-d', '--name', 'seat-6', ...bad, 'ws:1');
    t.is(res.code, 125, bad.join(' '));
    t.regex(res.stderr, /invalid argument/);
  }
  t.is((await docker('ps', '-aq')).stdout.trim().split('\n').length, 1, 'no container made');
});

test('logs --tail shows the last lines; a "crashing" image exits after it started', async (t) => {
  const { docker } = await standin(t);
  const port = await freePort();
  t.is(
    (await docker('run', '-d', '--name', 'seat-7', '-p', `${port}:3001`, 'ws-crashing:1')).code,
    0,
  );
  let state = '';
  for (let i = 0; i < 100 && state !== 'exited'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    state = (await docker('ps', '-a', '--format', '{{.State}}')).stdout.trim();
  }
  t.is(state, 'exited');
  const all = await docker('logs', 'seat-7');
  t.regex(all.stdout, /^seat-7: starting\nfatal: the workspace crashed/);
  t.deepEqual(await docker('logs', '--tail', '1', 'seat-7'), {
    code: 0,
    stdout: 'fatal: the workspace crashed (stand-in image)\n',
    stderr: '',
  });
  t.is((await docker('logs', '--tail', 'x', 'seat-7')).code, 1);
});

test('image inspect knows pulled images; a registry outage fails every pull', async (t) => {
  const { state, docker } = await standin(t);
  t.is((await docker('image', 'inspect', 'ws:1')).code, 1);
  t.is((await docker('pull', 'ws:1')).code, 0);
  const inspected = await docker('image', 'inspect', 'ws:1');
  t.is(inspected.code, 0);
  t.like(JSON.parse(inspected.stdout), [{ RepoTags: ['ws:1'] }]);
  await writeFile(path.join(state, 'registry-offline'), '');
  const offline = await docker('pull', 'ws:1');
  t.is(offline.code, 1);
  t.regex(offline.stderr, /no such host/);
  t.is((await docker('image', 'inspect', 'ws:1')).code, 0, 'what was pulled stays');
});
