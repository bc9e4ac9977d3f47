import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { SeatServer } from '../../images/workspace/server/seat-server.ts';
import { raw, startSeat, tempDir, type RawResponse } from './helpers.ts';

/**
 * The files API on a temp "home" with a sibling `homeX` (same prefix) and an `outside` folder
 * holding a canary. Every escape attempt must get a 4xx JSON error and leave both untouched.
 */

const CANARY = 'canary: nothing outside the home may be read or changed';

interface Fixture {
  base: string;
  home: string;
  seat: SeatServer;
  req: (method: string, p: string, opts?: Parameters<typeof raw>[3]) => Promise<RawResponse>;
  post: (op: string, body: unknown) => Promise<RawResponse>;
  assertUntouched: () => Promise<void>;
}

/** Every path under `dir` with its link target or content: what "unchanged" compares. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await readdir(dir, { recursive: true })) {
    const p = path.join(dir, name);
    const s = await lstat(p);
    out[name] = s.isSymbolicLink()
      ? `link:${await readlink(p)}`
      : s.isDirectory()
        ? 'dir'
        : `file:${await readFile(p, 'utf8')}`;
  }
  return out;
}

async function fixture(
  t: ExecutionContext,
  opts: { uploadMaxBytes?: number } = {},
): Promise<Fixture> {
  const tmp = await tempDir('seat-files-');
  const base = tmp.dir;
  const home = path.join(base, 'home');
  const outside = path.join(base, 'outside');
  const homeX = path.join(base, 'homeX');
  for (const d of [home, outside, homeX, path.join(home, 'sub')]) await mkdir(d);
  await writeFile(path.join(outside, 'canary.txt'), CANARY);
  await writeFile(path.join(homeX, 'canary.txt'), CANARY);
  await writeFile(path.join(home, 'inside.txt'), 'inside');
  await writeFile(path.join(home, 'sub', 'deep.txt'), 'deep');
  await symlink('../outside', path.join(home, 'escape'));
  await symlink('../outside/canary.txt', path.join(home, 'escape-file'));
  await symlink('../outside/new-file.txt', path.join(home, 'dangling'));
  await symlink(outside, path.join(home, 'abs-link'));
  await symlink('../homeX', path.join(home, 'toX'));
  await symlink('sub', path.join(home, 'good-link'));
  const before = { outside: await snapshot(outside), homeX: await snapshot(homeX) };
  const seat = await startSeat({ home, uploadMaxBytes: opts.uploadMaxBytes });
  t.teardown(async () => {
    await seat.close();
    await tmp.remove();
  });
  const req: Fixture['req'] = (method, p, o) => raw(seat.filesUrl, method, p, o);
  const post: Fixture['post'] = (op, body) =>
    req('POST', `/api/${op}`, {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  const assertUntouched = async () => {
    t.deepEqual(await snapshot(outside), before.outside, 'outside unchanged');
    t.deepEqual(await snapshot(homeX), before.homeX, 'homeX unchanged');
    t.deepEqual(
      (await readdir(base)).sort(),
      ['home', 'homeX', 'outside'],
      'nothing created beside home',
    );
  };
  const f: Fixture = { base, home, seat, req, post, assertUntouched };
  return f;
}

function isJsonError(t: ExecutionContext, res: RawResponse, what: string): void {
  t.true(res.status >= 400 && res.status < 500, `${what}: status ${res.status}`);
  t.is(typeof res.json?.error?.code, 'string', `${what}: error code`);
  t.is(typeof res.json?.error?.message, 'string', `${what}: error message`);
  t.false(res.body.toString('utf8').includes('canary'), `${what}: no canary in the answer`);
}

// Query values as sent on the wire: plain, percent-encoded, double-encoded, absolute, NUL.
const ESCAPES = [
  '..',
  '../',
  '../outside',
  '../outside/canary.txt',
  'sub/../../outside/canary.txt',
  './../outside',
  '%2e%2e',
  '%2e%2e%2foutside%2fcanary.txt',
  '..%2foutside%2fcanary.txt',
  '%2E%2E/outside/canary.txt',
  'sub%2f..%2f..%2foutside',
  '%252e%252e%252foutside%252fcanary.txt',
  '..%252foutside',
  '/etc/passwd',
  '%2fetc%2fpasswd',
  '//etc/passwd',
  '../homeX/canary.txt',
  'inside.txt%00',
  '%00',
  'escape',
  'escape/canary.txt',
  'escape-file',
  'abs-link/canary.txt',
  'dangling',
  'toX/canary.txt',
  'good-link/../../outside',
  '..\\outside\\canary.txt',
];

test('reads that try to leave the home get a 4xx, in every encoding', async (t) => {
  const f = await fixture(t);
  for (const q of ESCAPES) {
    for (const op of ['list', 'view', 'download']) {
      isJsonError(t, await f.req('GET', `/api/${op}?path=${q}`), `${op} ${q}`);
    }
  }
  for (const p of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/api/../../outside']) {
    isJsonError(t, await f.req('GET', p), `GET ${p}`);
  }
  await f.assertUntouched();
});

test('writes that try to leave the home get a 4xx and change nothing outside', async (t) => {
  const f = await fixture(t);
  for (const q of ESCAPES) {
    const target = q.endsWith('/') ? `${q}x` : q;
    for (const o of ['', '&overwrite=1']) {
      isJsonError(
        t,
        await f.req('PUT', `/api/upload?path=${target}${o}`, { body: 'pwned' }),
        `upload ${target}${o}`,
      );
      isJsonError(
        t,
        await f.req('PUT', `/api/upload?path=${target}%2fnew.txt${o}`, { body: 'pwned' }),
        `upload ${target}/new.txt${o}`,
      );
    }
  }
  const decoded = [
    '../outside/new',
    '../outside/canary.txt',
    'escape/new',
    'escape/canary.txt',
    'escape-file',
    'dangling',
    'abs-link/new',
    'toX/new',
    'toX',
    '/tmp/new',
    'a\0b',
    '',
    '.',
    'sub/../..',
  ];
  for (const p of decoded) {
    isJsonError(t, await f.post('mkdir', { path: p }), `mkdir ${p}`);
    isJsonError(t, await f.post('delete', { path: p }), `delete ${p}`);
    // Rename checks both ends.
    isJsonError(t, await f.post('rename', { from: 'inside.txt', to: p }), `rename to ${p}`);
    isJsonError(
      t,
      await f.post('rename', { from: 'inside.txt', to: p, overwrite: true }),
      `rename over ${p}`,
    );
    isJsonError(t, await f.post('rename', { from: p, to: 'stolen' }), `rename from ${p}`);
  }
  await f.assertUntouched();
  t.is(await readFile(path.join(f.home, 'inside.txt'), 'utf8'), 'inside');
  t.false(
    await lstat(path.join(f.home, 'stolen')).then(
      () => true,
      () => false,
    ),
  );
});

test('malformed requests of any shape get a 4xx JSON error', async (t) => {
  const f = await fixture(t);
  const json = { 'Content-Type': 'application/json' };
  const cases: [string, string, Parameters<typeof raw>[3]?][] = [
    ['GET', '/api/nothing'],
    ['GET', '/nothing'],
    ['DELETE', '/api/list'],
    ['POST', '/api/list'],
    ['GET', '/api/upload?path=x'],
    ['GET', '/api/view?path=sub'],
    ['GET', '/api/list?path=inside.txt'],
    ['GET', '/api/view'],
    ['GET', '/api/list?path=%E0%A4%A'],
    ['GET', `/api/list?path=${'a/'.repeat(3000)}`],
    ['GET', `/api/list?path=${'n'.repeat(300)}`],
    ['GET', '/api/list?path=missing/folder'],
    ['POST', '/api/mkdir', { headers: json, body: '{not json' }],
    ['POST', '/api/mkdir', { headers: json, body: '[]' }],
    ['POST', '/api/mkdir', { headers: json, body: 'null' }],
    ['POST', '/api/mkdir', { headers: json, body: '{"path":42}' }],
    ['POST', '/api/mkdir', { headers: json, body: '{"path":["a"]}' }],
    ['POST', '/api/mkdir', { headers: json, body: '{}' }],
    ['POST', '/api/mkdir', { headers: json, body: JSON.stringify({ path: 'x'.repeat(70_000) }) }],
    ['POST', '/api/mkdir', { headers: { 'Content-Type': 'text/plain' }, body: '{"path":"a"}' }],
    ['POST', '/api/mkdir', { body: '{"path":"a"}' }],
    ['POST', '/api/rename', { headers: json, body: '{"from":"inside.txt"}' }],
    ['POST', '/api/rename', { headers: json, body: '{"from":"nope","to":"x"}' }],
    ['POST', '/api/rename', { headers: json, body: '{"from":"sub","to":"sub/inner"}' }],
    ['POST', '/api/delete', { headers: json, body: '{"path":"nope"}' }],
    ['PUT', '/api/upload'],
    ['PUT', '/api/upload?path=nope/x.txt', { body: 'x' }],
    ['PUT', '/api/upload?path=inside.txt/x', { body: 'x' }],
    ['PUT', '/api/upload?path=sub', { body: 'x' }],
    ['PUT', '/api/upload?path=sub&overwrite=1', { body: 'x' }],
    [
      'POST',
      '/api/mkdir',
      { headers: { ...json, Origin: 'http://evil.example' }, body: '{"path":"x"}' },
    ],
  ];
  for (const [method, p, opts] of cases) {
    isJsonError(t, await f.req(method, p, opts), `${method} ${p.slice(0, 60)}`);
  }
  // A named pipe is refused at once instead of waiting for a writer.
  t.is(spawnSync('mkfifo', [path.join(f.home, 'pipe')]).status, 0);
  for (const op of ['view', 'download']) {
    isJsonError(t, await f.req('GET', `/api/${op}?path=pipe`), `${op} a named pipe`);
  }
  // The server is still there, and nothing was made by the bad requests.
  const list = await f.req('GET', '/api/list?path=');
  t.is(list.status, 200);
  t.deepEqual(list.json.entries.map((e: any) => e.name).sort(), [
    'abs-link',
    'dangling',
    'escape',
    'escape-file',
    'good-link',
    'inside.txt',
    'pipe',
    'sub',
    'toX',
  ]);
});

test('list, upload, view, download, mkdir, rename and delete work inside the home', async (t) => {
  const f = await fixture(t);
  const up = await f.req('PUT', '/api/upload?path=sub/notes%20%C3%A9.txt', { body: 'hello\n' });
  t.is(up.status, 201);
  t.deepEqual(up.json, { path: 'sub/notes é.txt', size: 6 });

  const list = await f.req('GET', '/api/list?path=sub');
  t.is(list.status, 200);
  t.deepEqual(
    list.json.entries.map((e: any) => [e.name, e.type, e.size]),
    [
      ['deep.txt', 'file', 4],
      ['notes é.txt', 'file', 6],
    ],
  );
  const root = await f.req('GET', '/api/list?path=');
  const byName = Object.fromEntries(root.json.entries.map((e: any) => [e.name, e]));
  t.like(byName['good-link'], { type: 'symlink', target: 'folder' });
  t.like(byName.escape, { type: 'symlink', target: null });
  t.is((await f.req('GET', '/api/list?path=good-link')).json.entries.length, 2);

  const view = await f.req('GET', '/api/view?path=sub/notes%20%C3%A9.txt');
  t.is(view.status, 200);
  t.is(view.body.toString(), 'hello\n');
  t.is(view.headers['content-type'], 'text/plain; charset=utf-8');
  t.is(view.headers['content-security-policy'], 'sandbox');
  t.is(view.headers['x-content-type-options'], 'nosniff');

  await writeFile(path.join(f.home, 'page.html'), '<script>alert(1)</script>');
  const dl = await f.req('GET', '/api/download?path=page.html');
  t.is(dl.status, 200);
  t.is(dl.body.toString(), '<script>alert(1)</script>');
  t.regex(String(dl.headers['content-disposition']), /^attachment; filename="page.html"/);
  t.is(dl.headers['content-type'], 'application/octet-stream');
  t.is(dl.headers['x-content-type-options'], 'nosniff');
  t.is(dl.headers['content-security-policy'], 'sandbox');

  t.is((await f.post('mkdir', { path: 'made' })).status, 201);
  t.is((await f.post('mkdir', { path: 'made' })).status, 409);
  t.true((await lstat(path.join(f.home, 'made'))).isDirectory());

  t.is((await f.post('rename', { from: 'inside.txt', to: 'made/moved.txt' })).status, 200);
  t.is(await readFile(path.join(f.home, 'made', 'moved.txt'), 'utf8'), 'inside');
  t.is((await f.post('rename', { from: 'made/moved.txt', to: 'sub/deep.txt' })).status, 409);
  t.is(
    (await f.post('rename', { from: 'made/moved.txt', to: 'sub/deep.txt', overwrite: true }))
      .status,
    200,
  );
  t.is(await readFile(path.join(f.home, 'sub', 'deep.txt'), 'utf8'), 'inside');

  // Deleting an inside link removes the link, not what it points to.
  t.is((await f.post('delete', { path: 'good-link' })).status, 200);
  t.true((await lstat(path.join(f.home, 'sub'))).isDirectory());
  t.is((await f.post('delete', { path: 'sub' })).status, 200);
  t.false(
    await lstat(path.join(f.home, 'sub')).then(
      () => true,
      () => false,
    ),
  );
  await f.assertUntouched();
});

test('upload: 409 on an existing name unless asked to overwrite', async (t) => {
  const f = await fixture(t);
  const again = await f.req('PUT', '/api/upload?path=inside.txt', { body: 'new' });
  t.is(again.status, 409);
  t.is(again.json.error.code, 'EXISTS');
  t.is(await readFile(path.join(f.home, 'inside.txt'), 'utf8'), 'inside');
  const over = await f.req('PUT', '/api/upload?path=inside.txt&overwrite=1', { body: 'new' });
  t.is(over.status, 201);
  t.is(await readFile(path.join(f.home, 'inside.txt'), 'utf8'), 'new');
  // No temp file is left behind.
  t.false((await readdir(f.home)).some((n) => n.startsWith('.seat-upload-')));
});

test('upload: over UPLOAD_MAX_BYTES is 413, by Content-Length or by counting', async (t) => {
  const f = await fixture(t, { uploadMaxBytes: 1000 });
  t.is((await f.req('PUT', '/api/upload?path=ok.bin', { body: Buffer.alloc(1000) })).status, 201);

  const declared = await f.req('PUT', '/api/upload?path=big1.bin', {
    headers: { 'Content-Length': 5_000_000_000 },
    body: Buffer.alloc(10),
  });
  t.is(declared.status, 413);
  t.is(declared.json.error.code, 'TOO_LARGE');

  // Chunked, so only counting the bytes can catch it.
  const counted = await f.req('PUT', '/api/upload?path=big2.bin', {
    chunks: [Buffer.alloc(600), Buffer.alloc(600)],
  });
  t.is(counted.status, 413);
  t.deepEqual(
    (await readdir(f.home)).filter((n) => n.includes('big') || n.startsWith('.seat-upload')),
    [],
  );
});

test('a folder downloads as a streamed tar.gz of the right entries, links stored not followed', async (t) => {
  const f = await fixture(t);
  await mkdir(path.join(f.home, 'proj', 'src'), { recursive: true });
  await writeFile(path.join(f.home, 'proj', 'README.md'), 'readme');
  await writeFile(path.join(f.home, 'proj', 'src', 'main.py'), 'print(1)');
  await symlink('../../outside/canary.txt', path.join(f.home, 'proj', 'canary-link'));
  const res = await f.req('GET', '/api/download?path=proj');
  t.is(res.status, 200);
  t.is(res.headers['content-type'], 'application/gzip');
  t.regex(String(res.headers['content-disposition']), /^attachment; filename="proj.tar.gz"/);
  const listing = spawnSync('tar', ['-tvzf', '-'], { input: res.body, encoding: 'utf8' });
  t.is(listing.status, 0, listing.stderr);
  const lines = listing.stdout.trim().split('\n');
  const names = lines.map((l) => l.split(/\s+/)[5]).sort();
  t.deepEqual(names, [
    'proj/',
    'proj/README.md',
    'proj/canary-link',
    'proj/src/',
    'proj/src/main.py',
  ]);
  t.true(lines.some((l) => l.startsWith('l') && l.includes('proj/canary-link ->')));
  t.false(gunzipSync(res.body).toString('latin1').includes(CANARY));

  // The whole home works too, under the home's own name.
  const all = await f.req('GET', '/api/download?path=');
  t.is(all.status, 200);
  const top = spawnSync('tar', ['-tzf', '-'], { input: all.body, encoding: 'utf8' });
  t.true(top.stdout.split('\n').includes('home/proj/README.md'));
  t.false(gunzipSync(all.body).toString('latin1').includes(CANARY));
});
