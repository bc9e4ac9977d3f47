import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAppPath } from '../../images/workspace/server/workspace/app-proxy.ts';
import { renderInstructions } from '../../images/workspace/server/workspace/render-markdown.ts';
import { timeLeft } from '../../images/workspace/server/client/clock.ts';
import { raw, startSeat, tempDir } from './helpers.ts';

/**
 * The workspace page's server side: instructions rendered inert, which instructions win, the
 * learner's app behind /app/PORT/, and the files API's If-Match that keeps the editor from
 * overwriting a file changed on disk.
 */

test('instructions: raw HTML, script, onerror and javascript: links stay inert', (t) => {
  const html = renderInstructions(
    [
      '<script>alert(1)</script>',
      '<img src=x onerror="alert(2)">',
      '<a href="javascript:alert(3)">raw link</a>',
      '[md link](javascript:alert(4)) [vb](vbscript:msgbox) [data](data:text/html;base64,PHNjcmlwdD4=)',
      '![img](javascript:alert(5))',
      '[ok](https://example.com/step)',
    ].join('\n\n'),
  );
  t.notRegex(html, /<script/i);
  t.notRegex(html, /<img[^>]*onerror/i);
  t.notRegex(html, /<a [^>]*href="(javascript|vbscript|data):/i);
  t.notRegex(html, /<img[^>]*src="javascript:/i);
  t.regex(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  t.regex(
    html,
    /<a href="https:\/\/example.com\/step" target="_blank" rel="noopener noreferrer">ok<\/a>/,
  );
});

test('instructions: shell blocks get copy and run, other code only copy, content escaped', (t) => {
  const html = renderInstructions(
    '```bash\necho "hello from step 1" > step1.txt\n```\n\n```python\nprint("<b>")\n```\n',
  );
  const blocks = html.split('<div class="code-block">').slice(1);
  t.is(blocks.length, 2);
  t.regex(blocks[0]!, /echo &quot;hello from step 1&quot; &gt; step1.txt/);
  t.regex(blocks[0]!, /data-action="run"/);
  t.regex(blocks[1]!, /print\(&quot;&lt;b&gt;&quot;\)/);
  t.notRegex(blocks[1]!, /data-action="run"/);
  t.regex(blocks[1]!, /data-action="copy"/);
});

test('app paths: a port and a path, the seat server’s own ports refused', (t) => {
  t.deepEqual(parseAppPath('/app/8000/a/b?x=1', [3001]), { port: 8000, path: '/a/b?x=1' });
  t.deepEqual(parseAppPath('/app/8000', []), { port: 8000, path: '' });
  t.is(parseAppPath('/apple', []), null);
  t.is(parseAppPath('/app/', []), null);
  t.throws(() => parseAppPath('/app/3001/', [3001]), { message: /seat's own server/ });
  t.throws(() => parseAppPath('/app/70000/', []), { message: /1 to 65535/ });
  t.throws(() => parseAppPath('/app/0/', []), { message: /1 to 65535/ });
});

test('the class clock reads as time left', (t) => {
  const now = Date.parse('2026-01-01T10:00:00Z');
  t.is(timeLeft('2026-01-01T11:25:30Z', now), '1 h 25 min left');
  t.is(timeLeft('2026-01-01T10:09:00Z', now), '9 min left');
  t.is(timeLeft('2026-01-01T09:00:00Z', now), 'under a minute left');
  t.is(timeLeft('not a date', now), null);
});

test('the workspace server: the instructor’s instructions win, the app is proxied sandboxed', async (t) => {
  const home = await tempDir('ws-home-');
  const etc = await tempDir('ws-etc-');
  const app = http.createServer((req, res) => {
    res.setHeader('Content-Security-Policy', 'default-src *');
    res.end(`app saw ${req.url} cookie=${req.headers.cookie ?? ''}`);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const workshopFile = path.join(etc.dir, 'workshop.md');
  const imageFile = path.join(etc.dir, 'image.md');
  await writeFile(workshopFile, '# From the instructor\n');
  await writeFile(imageFile, '# From the image\n');
  const seat = await startSeat({
    home: home.dir,
    className: 'Intro to shells',
    seat: '4',
    instructionFiles: { workshop: workshopFile, image: imageFile },
  });
  const onlyImage = await startSeat({
    home: home.dir,
    instructionFiles: { workshop: path.join(etc.dir, 'absent.md'), image: imageFile },
  });
  t.teardown(async () => {
    await seat.close();
    await onlyImage.close();
    app.close();
    await home.remove();
    await etc.remove();
  });

  const info = (await raw(seat.workspaceUrl, 'GET', '/seat.json')).json;
  t.is(info.className, 'Intro to shells');
  t.is(info.seat, '4');
  t.is(info.instructions.source, 'workshop');
  t.regex(info.instructions.html, /From the instructor/);
  const fallback = (await raw(onlyImage.workspaceUrl, 'GET', '/seat.json')).json;
  t.is(fallback.instructions.source, 'image');
  t.regex(fallback.instructions.html, /From the image/);

  const port = (app.address() as AddressInfo).port;
  const proxied = await raw(seat.workspaceUrl, 'GET', `/app/${port}/x?y=1`, {
    headers: { Cookie: 'theme=dark' },
  });
  t.is(proxied.status, 200);
  t.is(proxied.body.toString(), 'app saw /x?y=1 cookie=theme=dark');
  // The app's own policy is replaced: its pages run in an opaque origin, away from the seat's.
  t.regex(String(proxied.headers['content-security-policy']), /^sandbox /);
  t.notRegex(String(proxied.headers['content-security-policy']), /allow-same-origin/);
  const bare = await raw(seat.workspaceUrl, 'GET', `/app/${port}`);
  t.is(bare.status, 308);
  t.is(bare.headers.location, `${port}/`);
  const own = Number(new URL(seat.terminalUrl).port);
  t.is((await raw(seat.workspaceUrl, 'GET', `/app/${own}/`)).json.error.code, 'RESERVED_PORT');
  app.close();
  await new Promise((r) => setTimeout(r, 50));
  const down = await raw(seat.workspaceUrl, 'GET', `/app/${port}/`);
  t.is(down.status, 502);
  t.regex(down.body.toString(), /Nothing answers on port/);
  t.is((await raw(seat.workspaceUrl, 'GET', '/nope')).status, 404);
});

test('files API: a save with a stale If-Match is refused with 412 and changes nothing', async (t) => {
  const home = await tempDir('ws-etag-');
  const seat = await startSeat({ home: home.dir });
  t.teardown(async () => {
    await seat.close();
    await home.remove();
  });
  await writeFile(path.join(home.dir, 'step1.txt'), 'one\n');
  const opened = await raw(seat.filesUrl, 'GET', '/api/view?path=step1.txt');
  const etag = opened.headers.etag as string;
  t.regex(etag, /^"[0-9a-z]+-[0-9a-z]+"$/);

  const put = (body: string, headers: Record<string, string>) =>
    raw(seat.filesUrl, 'PUT', '/api/upload?path=step1.txt&overwrite=1', { body, headers });
  const saved = await put('two\n', { 'If-Match': etag });
  t.is(saved.status, 201);
  const next = saved.headers.etag as string;
  t.not(next, etag);

  // The old version's tag no longer matches.
  const stale = await put('three\n', { 'If-Match': etag });
  t.is(stale.status, 412);
  t.is(stale.json.error.code, 'CHANGED_ON_DISK');

  // Changed on disk by the shell (same size, another time): the editor's tag is stale.
  await writeFile(path.join(home.dir, 'step1.txt'), 'TWO\n');
  await utimes(path.join(home.dir, 'step1.txt'), new Date(), new Date(Date.now() + 5000));
  t.is((await put('four\n', { 'If-Match': next })).status, 412);
  t.is((await raw(seat.filesUrl, 'GET', '/api/view?path=step1.txt')).body.toString(), 'TWO\n');

  // Removed since it was opened: also a conflict. Without If-Match, a plain overwrite.
  t.is((await put('x', { 'If-Match': '"gone"' })).status, 412);
  t.is((await put('five\n', {})).status, 201);
});
