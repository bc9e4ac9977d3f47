import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { buildSeat } from '../../images/workspace/server/bundle.ts';
import { TermClient, WAIT_MS, raw, tempDir } from './helpers.ts';

/**
 * The built bundle, as the image runs it (`node seat-server.mjs`, configured by environment):
 * self-contained output, both ports answer, the shell works through the copied pty addon,
 * logs are JSON lines without the token, and SIGTERM stops it cleanly.
 */

test('the built seat-server.mjs serves both ports from its own folder and stops on SIGTERM', async (t) => {
  const out = await tempDir('seat-dist-');
  const home = await tempDir('seat-home-');
  t.teardown(async () => {
    await out.remove();
    await home.remove();
  });
  await buildSeat(out.dir);
  t.deepEqual((await readdir(out.dir)).sort(), ['node_modules', 'public', 'seat-server.mjs']);
  t.deepEqual((await readdir(path.join(out.dir, 'node_modules', '@lydell'))).sort(), [
    'node-pty',
    'node-pty-linux-x64',
  ]);

  // SEAT_TEST_NODE runs the bundle on another Node, e.g. an 18 like the image's.
  const node = process.env.SEAT_TEST_NODE || process.execPath;
  const child: ChildProcess = spawn(node, [path.join(out.dir, 'seat-server.mjs')], {
    // Run from elsewhere, so nothing resolves from this checkout's node_modules.
    cwd: home.dir,
    env: {
      PATH: process.env.PATH,
      HOME: home.dir,
      TERMINAL_PORT: '0',
      FILES_PORT: '0',
      WORKSPACE_PORT: '0',
      SEAT_BIND: '127.0.0.1',
      CLARATEACH_SEAT: '9',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const lines: string[] = [];
  const listening = new Promise<{ terminalUrl: string; filesUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no listening line')), WAIT_MS);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const entry = JSON.parse(line);
      if (entry.message === 'seat server listening') {
        clearTimeout(timer);
        resolve(entry);
      }
    });
  });
  const { terminalUrl, filesUrl } = await listening;

  const page = await raw(terminalUrl, 'GET', '/?t=secret-token-value');
  t.is(page.status, 200);
  t.regex(page.body.toString(), /src="\.\/app\.js"/);
  t.is((await raw(terminalUrl, 'GET', '/app.js')).status, 200);
  t.is((await raw(terminalUrl, 'GET', '/app.css')).status, 200);
  const files = await raw(filesUrl, 'GET', '/?t=secret-token-value');
  t.is(files.status, 200);
  t.regex(files.body.toString(), /src="\.\/files\.js"/);
  t.is(
    (await raw(filesUrl, 'PUT', '/api/upload?path=a.txt', { body: 'private text' })).status,
    201,
  );
  t.is(await readFile(path.join(home.dir, 'a.txt'), 'utf8'), 'private text');

  const term = await TermClient.open(terminalUrl);
  term.type('echo "seat=$CLARATEACH_SEAT node=$(node --version 2>/dev/null || echo none)"\r');
  t.truthy(await term.waitFor(/seat=9 node=/));
  // The files API on the same Node: a folder archive and a listing.
  const archive = await raw(filesUrl, 'GET', '/api/download?path=');
  t.is(archive.status, 200);
  t.is(archive.headers['content-type'], 'application/gzip');
  t.is((await raw(filesUrl, 'GET', '/api/list?path=')).json.entries[0].name, 'a.txt');

  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.is((await term.closed).code, 1001);
  for (const line of lines) {
    const entry = JSON.parse(line);
    t.true(typeof entry.severity === 'string' && typeof entry.message === 'string', line);
  }
  const log = lines.join('\n');
  t.false(log.includes('secret-token-value'), 'no token in the logs');
  t.false(log.includes('private text'), 'no file content in the logs');
  t.true(lines.some((l) => JSON.parse(l).message === 'seat server stopped'));
});
