import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { issueLocalCert } from '../../local/tls-ca.ts';
import { readyClass, useChromiumStack } from '../helpers/chromium-stack.ts';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { eventually } from '../helpers/stack.ts';
import { docker, request } from '../helpers/vm.ts';
import {
  launchChromium,
  openTerminal,
  screenshot,
  framedTerminal,
  terminalText,
  typeLine,
  waitForTerminalText,
} from '../seat/browser.ts';

/**
 * Issue 16 as two learners and their browsers: every seat is an HTTPS origin of its own, the token
 * leaves the URL after the first load, learner 1's page cannot act as seat 2 in learner 2's
 * browser, and only the portal may frame a seat.
 */
const e2e = useChromiumStack(test);

interface Joined {
  seat: number;
  endpoints: { terminal: string; files: string; browser: string; workspace: string };
}

/**
 * A page served over HTTPS as `name` (a *.localhost name: loopback, no DNS) with a certificate of
 * the local CA; `html` is read at each request, so the page can be set after the server is up.
 */
async function httpsPage(
  t: { teardown(fn: () => unknown): void },
  name: string,
  html: () => string,
): Promise<string> {
  const server = https.createServer(issueLocalCert([name]), (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return `https://${name}:${(server.address() as AddressInfo).port}`;
}

/** The workspace container of seat `seat` of class `workshopId` on the local Docker. */
async function seatContainer(workshopId: string, seat: number): Promise<string> {
  const filters = [`clarateach.workshop=${workshopId}`, `clarateach.seat=${seat}`];
  const names = await docker(
    'ps',
    ...filters.flatMap((f) => ['--filter', `label=${f}`]),
    '--filter',
    'label=clarateach.role=workspace',
    '--format',
    '{{.Names}}',
  );
  return names.trim();
}

/** The URLs of every entry of the tab's history (CDP), to show that none holds the token. */
async function historyUrls(page: Page): Promise<string[]> {
  const cdp = await page.context().newCDPSession(page);
  const { entries } = (await cdp.send('Page.getNavigationHistory')) as {
    entries: Array<{ url: string }>;
  };
  await cdp.detach();
  return entries.map((e) => e.url);
}

/** The attack learner 1 serves from their seat: it reports what it got from seat `target`. */
const attackPage = (target: string) => `<!doctype html><title>my project</title><pre id="r"></pre>
<iframe name="sink" style="display:none"></iframe>
<script>
const target = ${JSON.stringify(target)};
const out = {};
async function attempt() {
  try {
    const r = await fetch(target + 'files/api/list?path=', { credentials: 'include' });
    out.read = 'read ' + r.status + ' ' + (await r.text()).slice(0, 60);
  } catch (e) { out.read = 'blocked'; }
  try {
    const r = await fetch(target + 'files/api/upload?path=pwned-fetch.txt', {
      method: 'PUT', credentials: 'include', body: 'pwned' });
    out.put = 'put ' + r.status;
  } catch (e) { out.put = 'blocked'; }
  try {
    await fetch(target + 'files/api/mkdir', { method: 'POST', mode: 'no-cors',
      credentials: 'include', body: '{"path":"pwned-nocors"}' });
    out.post = 'sent';
  } catch (e) { out.post = 'blocked'; }
  out.ws = await new Promise((resolve) => {
    const ws = new WebSocket(target.replace('https:', 'wss:') + 'terminal/ws');
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { ws.send(new TextEncoder().encode('touch ~/pwned-ws\\r')); resolve('open'); };
    ws.onerror = () => resolve('refused');
  });
  const form = document.createElement('form');
  form.method = 'POST'; form.enctype = 'text/plain'; form.target = 'sink';
  form.action = target + 'files/api/mkdir';
  const field = document.createElement('input');
  field.name = '{"path":"pwned-form","x":"'; field.value = '"}';
  form.append(field); document.body.append(form); form.submit();
  document.getElementById('r').textContent = JSON.stringify(out);
}
attempt();
</script>`;

const tokenOf = (j: Joined) => new URL(j.endpoints.terminal).searchParams.get('t')!;
const originOf = (j: Joined) => new URL(j.endpoints.terminal).origin;

/** Runs the attack page in `page` (at `url`) and returns what it reported. */
async function runAttack(page: Page, url: string): Promise<Record<string, string>> {
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('r')?.textContent, null, {
    timeout: 60_000,
  });
  // The form post goes last; give it time to arrive (or be refused).
  await page.waitForTimeout(2_000);
  return JSON.parse((await page.textContent('#r'))!) as Record<string, string>;
}

test.serial(
  'two learners: each seat its own HTTPS origin; learner 1’s page gets nothing of seat 2',
  async (t) => {
    t.timeout(900_000);
    const { stack, browser } = e2e;
    let portalHtml = '';
    const portal = await httpsPage(t, 'portal.localhost', () => portalHtml);
    const stranger = await httpsPage(t, 'stranger.localhost', () => portalHtml);
    stack.services.config.portalOrigin = portal;
    t.teardown(() => (stack.services.config.portalOrigin = ''));
    const ws = await readyClass(t, stack, { name: 'Seat origins', seats: 3 });
    const joined: Joined[] = [];
    for (const name of ['Ada', 'Grace', 'Linus']) {
      const res = await stack.api<Joined>('POST', '/join', { code: ws.joinCode, name });
      t.is(res.status, 200);
      joined.push(res.body);
    }
    const [ada, grace, linus] = joined as [Joined, Joined, Joined];
    t.is(new Set(joined.map(originOf)).size, 3, 'three seats, three origins');

    // Every seat loads over HTTPS on its own origin; after the first load no URL holds the token.
    const adaPage = await browser.newPage();
    await openTerminal(adaPage, ada.endpoints.terminal);
    t.is(adaPage.url(), `${originOf(ada)}/vm/${ada.seat}/terminal/`);
    t.is(await adaPage.evaluate(() => location.protocol), 'https:');
    t.deepEqual(
      (await historyUrls(adaPage)).filter((u) => u.includes('t=')),
      [],
      'no history entry holds the token',
    );

    // Learner 2's own browser, holding seat 2's credential.
    const victim = await launchChromium();
    t.teardown(() => victim.close());
    const gracePage = await victim.newPage();
    await openTerminal(gracePage, grace.endpoints.terminal);
    t.false((await gracePage.evaluate(() => location.href)).includes('t='));
    t.deepEqual(
      (await historyUrls(gracePage)).filter((u) => u.includes('t=')),
      [],
    );

    // Learner 1, in their terminal, tries to take over their seat's server (each refused), then
    // serves a page from their own seat: /vm/S/app/8080/ on seat 1's origin.
    await typeLine(
      adaPage,
      'S=$(pgrep -f "^node /opt/seat/seat-server.mjs"); kill -USR1 $S; echo usr1=$?; kill -9 $S; echo kill=$?',
    );
    await waitForTerminalText(adaPage, /^kill=1$/m);
    t.regex(await terminalText(adaPage), /^usr1=1$/m);
    await typeLine(adaPage, 'python3 -m http.server 3001 2>/dev/null; echo bind=$?');
    await waitForTerminalText(adaPage, /^bind=1$/m);
    const target = `${originOf(grace)}/vm/${grace.seat}/`;
    const adaCookie = `ct_seat_${ada.seat}=${tokenOf(ada)}`;
    const upload = await request(
      `${originOf(ada)}/vm/${ada.seat}/files/api/upload?path=attack.html&overwrite=1`,
      {
        method: 'PUT',
        headers: { cookie: adaCookie, origin: originOf(ada) },
        body: attackPage(target),
      },
    );
    t.is(upload.status, 201, upload.text);
    await typeLine(adaPage, 'cd ~ && python3 -m http.server 8080 >/dev/null 2>&1 &');
    // Sent once it serves (a link opened before that would show the proxy's 502 and stay there).
    await eventually(
      'learner 1’s app serves the page',
      async () =>
        (
          await request(`${originOf(ada)}/vm/${ada.seat}/app/8080/attack.html`, {
            headers: { cookie: adaCookie },
          })
        ).status === 200,
      60_000,
    );

    // Learner 1 sends learner 2 a link to it, with seat 1's own token so that it opens at all.
    const link = `${originOf(ada)}/vm/${ada.seat}/app/8080/attack.html?t=${tokenOf(ada)}`;
    const attacked = await victim.newPage();
    const fromSeat = await runAttack(attacked, link);
    t.log('from seat 1’s origin:', fromSeat);
    t.false(attacked.url().includes('t='));
    // And the same from a page on any other site learner 1 may run.
    portalHtml = attackPage(target);
    const fromSite = await runAttack(await victim.newPage(), `${stranger}/`);
    t.log('from another site:', fromSite);
    for (const report of [fromSeat, fromSite]) {
      t.is(report.read, 'blocked', 'no request reads seat 2’s files');
      t.is(report.put, 'blocked');
      t.is(report.ws, 'refused', 'none opens seat 2’s terminal');
    }
    const home = await docker(
      'exec',
      await seatContainer(ws.id, grace.seat),
      'ls',
      '-a',
      '/home/learner',
    );
    t.notRegex(home, /pwned/, 'none changes seat 2’s files');
    await screenshot(attacked, 'seat-origins-attack-page');

    // Only the portal frames a seat: its page frames seat 3's terminal (the token in the frame's
    // first URL only), which answers typing; the same page from an unnamed origin stays empty.
    const framer = await launchChromium();
    t.teardown(() => framer.close());
    portalHtml = `<!doctype html><title>portal</title><h1>Portal</h1>
      <iframe id="seat" src="${linus.endpoints.terminal}" width="900" height="420"></iframe>`;
    const portalPage = await framer.newPage();
    const framed = framedTerminal(portalPage);
    await portalPage.goto(`${portal}/`);
    const frame = await (await portalPage.waitForSelector('#seat')).contentFrame();
    await framed.connect(frame!);
    t.false(frame!.url().includes('t='), frame!.url());
    await frame!.click('.xterm');
    await portalPage.keyboard.type('echo framed-$((6*7))');
    await portalPage.keyboard.press('Enter');
    await frame!.waitForFunction(
      () =>
        [...document.querySelectorAll('.xterm-rows > div')].some((r) =>
          /^framed-42/.test(r.textContent ?? ''),
        ),
      null,
      { timeout: 20_000 },
    );
    await screenshot(portalPage, 'seat-origins-portal-frame');
    const strangerPage = await framer.newPage();
    await strangerPage.goto(`${stranger}/`);
    const blocked = await (await strangerPage.waitForSelector('#seat')).contentFrame();
    await strangerPage.waitForTimeout(3_000);
    t.is(await blocked!.$('.xterm'), null, 'an unnamed origin cannot frame the seat');
    t.false(blocked!.url().startsWith(originOf(linus)), blocked!.url());

    // Opened from a link on the portal (a visit from another site), the seat still gets in.
    portalHtml = `<!doctype html><a id="open" href="${linus.endpoints.terminal}">your seat</a>`;
    const linked = await victim.newPage();
    await linked.goto(`${portal}/`);
    await linked.click('#open');
    await linked.waitForSelector('#status[data-state="connected"]', { timeout: 30_000 });
    t.is(linked.url(), `${originOf(linus)}/vm/${linus.seat}/terminal/`);
    await ws.end();
  },
);
