import type { Page } from 'playwright-core';
import { readyClass, useChromiumStack } from '../helpers/chromium-stack.ts';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually } from '../helpers/stack.ts';
import { docker } from '../helpers/vm.ts';
import { screenshot, typeLine, waitForTerminalText } from '../seat/browser.ts';

/**
 * The workspace page as a learner uses it, in headless Chromium through /join and the VM's Caddy
 * on real Docker: instructions with a command that runs in the terminal on click, the editor
 * saving over the files API (and asking before overwriting a file changed on disk), the learner's
 * own web app in the App tab and in the seat's browser container, and no way to it from another
 * seat.
 */
const e2e = useChromiumStack(test);

const INSTRUCTIONS = [
  '# Step 1',
  '',
  'Make your first file:',
  '',
  '```bash',
  'echo "hello from step 1" > step1.txt',
  '```',
  '',
  '<script>window.pwned = "script"</script>',
  '<img src="x" onerror="window.pwned = \'onerror\'">',
  '[a trap](javascript:window.pwned="link")',
  '',
].join('\n');

interface Joined {
  seat: number;
  endpoints: { workspace: string; terminal: string };
}

/** The one container of a seat with this role, in this workshop. */
async function container(workshopId: string, seat: number, role: string): Promise<string> {
  const names = await docker(
    'ps',
    '--filter',
    `label=clarateach.workshop=${workshopId}`,
    '--filter',
    `label=clarateach.seat=${seat}`,
    '--filter',
    `label=clarateach.role=${role}`,
    '--format',
    '{{.Names}}',
  );
  return names.trim();
}

/** Runs a command in a container; its output, or null when it failed. */
async function inContainer(name: string, ...cmd: string[]): Promise<string | null> {
  return docker('exec', name, ...cmd).catch(() => null);
}

/**
 * GET / on port 8000 of `host` from a browser container (the stand-in has busybox, whose wget
 * crashes there; its nc speaks the request).
 */
function httpFromBrowser(name: string, host: string): Promise<string | null> {
  const request = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 5 ${host} 8000`;
  return inContainer(name, 'sh', '-c', request);
}

async function editorType(page: Page, text: string): Promise<void> {
  await page.click('.cm-content');
  await page.keyboard.press('Control+End');
  await page.keyboard.type(text);
}

test.serial('a learner follows the instructions, edits, saves and opens their app', async (t) => {
  t.timeout(900_000); // a class boots on a machine shared with other test runs
  const { stack, browser } = e2e;
  const ws = await readyClass(t, stack, {
    name: 'Workspace in Chromium',
    seats: 2,
    instructions: INSTRUCTIONS,
  });
  const joined: Joined[] = [];
  for (const name of ['Ada', 'Grace']) {
    const res = await stack.api<Joined>('POST', '/join', { code: ws.joinCode, name });
    t.is(res.status, 200);
    t.regex(res.body.endpoints.workspace, new RegExp(`/vm/${res.body.seat}/\\?t=`));
    joined.push(res.body);
  }
  const [a, b] = joined as [Joined, Joined];

  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.goto(a.endpoints.workspace);
  await page.waitForSelector('#status[data-state="connected"]');
  await page.waitForSelector('#instructions .code-block');
  t.is(await page.textContent('#class-name'), 'Workspace in Chromium');
  t.is(await page.textContent('#seat'), `seat ${a.seat}`);
  // What the instructor wrote as HTML is shown as text, and nothing of it ran.
  t.regex((await page.textContent('#instructions'))!, /<script>window\.pwned/);
  t.is(
    await page.$('#instructions script, #instructions img, #instructions a[href^="javascript"]'),
    null,
  );
  t.is(await page.evaluate(() => (window as { pwned?: string }).pwned), undefined);

  // "Run in terminal" types the block into the shell.
  await page.click('#instructions button[data-action="run"]');
  await typeLine(page, 'cat step1.txt');
  t.truthy(await waitForTerminalText(page, /^hello from step 1$/m));

  // The editor: the tree shows the file; open, edit, Ctrl+S, and the shell sees the edit.
  await page.click('#tab-editor');
  await page.click('.tree button[data-path="step1.txt"]');
  await page.waitForSelector('.cm-editor');
  await editorType(page, 'edited in the editor\n');
  await page.waitForSelector('.file-tabs [data-dirty="true"]');
  await page.keyboard.press('Control+s');
  await page.waitForSelector('.file-tabs [data-dirty="false"]');
  await page.click('#tab-terminal');
  await page.click('.xterm');
  await typeLine(page, 'cat step1.txt');
  t.truthy(await waitForTerminalText(page, /^edited in the editor$/m));

  // The file changes on disk; the next save asks before overwriting it.
  await typeLine(page, 'echo "changed in the shell" >> step1.txt && echo changed-ok');
  await waitForTerminalText(page, /^changed-ok$/m);
  await page.click('#tab-editor');
  await editorType(page, 'second save\n');
  await page.keyboard.press('Control+s');
  await page.waitForSelector('dialog[open]');
  t.regex((await page.textContent('dialog[open]'))!, /changed on disk/);
  t.log(await screenshot(page, 'workspace-save-conflict'));
  await page.click('dialog[open] button[data-choice="overwrite"]');
  await page.waitForSelector('.file-tabs [data-dirty="false"]');
  await page.click('#tab-terminal');
  await page.click('.xterm');
  await typeLine(page, 'grep -c "changed in the shell" step1.txt; tail -n 1 step1.txt');
  t.truthy(await waitForTerminalText(page, /^0\nsecond save$/m));

  // The learner's app: the App tab shows it through the seat's route.
  await typeLine(page, '(python3 -m http.server 8000 >/dev/null 2>&1 &) ; echo started-app');
  await waitForTerminalText(page, /^started-app$/m);
  await page.click('#tab-app');
  const listed = await eventually('the App tab shows the listing', async () => {
    await page.click('#app-form button[type="submit"]');
    const frame = page.frameLocator('#app-frame');
    return (await frame
      .locator('body')
      .textContent({ timeout: 2000 })
      .catch(() => ''))!.includes('step1.txt');
  });
  t.true(listed);
  t.log(await screenshot(page, 'workspace-1280x720'));

  // The seat's browser container reaches the seat's own workspace, by the name `workspace`.
  const browserA = await container(ws.id, a.seat, 'browser');
  const fromOwnBrowser = await httpFromBrowser(browserA, 'workspace');
  t.regex(fromOwnBrowser ?? '', /step1\.txt/);

  // From seat 2's containers, seat 1's app stays out of reach: by its address and by name.
  const workspaceA = await container(ws.id, a.seat, 'workspace');
  const addressA = (
    await docker(
      'inspect',
      '--format',
      '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
      workspaceA,
    )
  ).trim();
  t.regex(addressA, /^\d+\.\d+\.\d+\.\d+$/);
  const browserB = await container(ws.id, b.seat, 'browser');
  const workspaceB = await container(ws.id, b.seat, 'workspace');
  for (const url of [`http://${addressA}:8000/`, 'http://workspace:8000/']) {
    t.notRegex(
      (await httpFromBrowser(browserB, new URL(url).hostname)) ?? '',
      /step1\.txt/,
      `seat 2's browser: ${url}`,
    );
    t.is(
      await inContainer(workspaceB, 'curl', '-fsS', '-m', '5', url),
      null,
      `seat 2's workspace: ${url}`,
    );
  }

  // The app gets no cookie: never the seat's credential.
  await docker(
    'exec',
    '-u',
    'learner',
    '-d',
    workspaceA,
    'python3',
    '-c',
    [
      'import http.server as h',
      'class E(h.BaseHTTPRequestHandler):',
      '  def do_GET(s):',
      '    b = ("cookie=" + str(s.headers.get("Cookie"))).encode()',
      '    s.send_response(200); s.send_header("Content-Length", str(len(b))); s.end_headers(); s.wfile.write(b)',
      'h.HTTPServer(("127.0.0.1", 8001), E).serve_forever()',
    ].join('\n'),
  );
  const echoed = await page.evaluate(async () => {
    for (let i = 0; i < 100; i++) {
      document.cookie = 'theme=dark; path=/';
      const r = await fetch('app/8001/');
      if (r.ok) return r.text();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return 'never answered';
  });
  t.is(echoed, 'cookie=None', 'the app gets no cookie, so never the seat credential');

  // A reload keeps the learner's place: the App tab is still the one shown.
  await page.reload();
  await page.waitForSelector('#tab-app[aria-selected="true"]');
  await page.waitForSelector('#instructions .code-block');

  // A phone in portrait: instructions above, one tool at a time.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('#tab-terminal');
  await page.waitForSelector('#status[data-state="connected"]');
  t.log(await screenshot(page, 'workspace-phone'));
  await page.close();

  await ws.end();
});
