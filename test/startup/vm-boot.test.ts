// The VM startup script, run for real against this machine's Docker with the images built from
// images/, reporting on vm.ready through the Pub/Sub emulator: what it reports, what its Caddy
// lets through, what a rerun keeps, and how it fails.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emulatorTest } from '../helpers/emulators.ts';
import {
  boot,
  docker,
  get,
  imageWithCommand,
  instanceFor,
  readyMessages,
  request,
  stopAndCheckNothingLeft,
} from '../helpers/vm.ts';
import { runCommand } from '../../local/commands.ts';
import { mountsUnder } from '../../local/vm-runner.ts';

const vmTest = emulatorTest;

vmTest(
  'a 3-seat VM boots, reports ready, and lets each seat in with its own token only',
  async (t) => {
    const plan = await instanceFor({ seatFirst: 4, seatCount: 3, withScriptMetadata: true });
    const messages = await readyMessages(t);
    const vm = await boot(t, plan);

    const [first] = await messages.forVm(plan.vmName);
    const { certificate, ...ready } = first!;
    // The seats' certificate as Caddy serves it: checked now, ending later, renewing without error.
    t.is(certificate?.renewalError, null);
    const checkedAt = Date.parse(certificate?.checkedAt ?? '');
    t.true(Date.parse(certificate?.notAfter ?? '') > checkedAt, 'it ends after it was checked');
    t.true(Math.abs(checkedAt - Date.now()) < 10 * 60_000, 'checked at boot');
    t.deepEqual(ready, {
      workshopId: plan.workshopId,
      vmName: plan.vmName,
      state: 'ready',
      externalIp: '203.0.113.10',
      internalIp: '10.128.0.10',
      httpPort: vm.httpPort,
      seatHttpsBase: vm.seatHttpsBase,
      seatsReady: 3,
      readyToken: plan.readyToken,
      seatResets: '',
    });
    t.is(await vm.exited(), 0);
    // The default docker (CT_DOCKER=docker): once a function that called itself until bash died.
    t.regex(readFileSync(vm.logPath, 'utf8'), /docker is up/);

    for (const [seat, token] of plan.tokens) {
      // The token is exchanged for the cookie by a page that opens the same URL without it.
      const exchange = await get(vm, `/vm/${seat}/terminal/?t=${token}`);
      t.is(exchange.status, 200);
      t.regex(
        exchange.text,
        new RegExp(`http-equiv="refresh" content="0; url=/vm/${seat}/terminal/"`),
      );
      t.is(
        exchange.setCookie,
        `ct_seat_${seat}=${token}; Path=/vm/${seat}; Secure; HttpOnly; SameSite=Strict`,
      );
      t.is(
        exchange.referrerPolicy,
        'no-referrer',
        'the token in the URL never leaves as a Referer',
      );
      const framed = await request(`${vm.seatOrigin(seat)}/vm/${seat}/terminal/?t=${token}`, {
        headers: { 'sec-fetch-dest': 'iframe' },
      });
      t.deepEqual(framed.headers['set-cookie'], [
        `ct_seat_${seat}=${token}; Path=/vm/${seat}; Secure; HttpOnly; SameSite=None; Partitioned`,
      ]);
      const cookie = `ct_seat_${seat}=${token}`;
      const terminal = await get(vm, `/vm/${seat}/terminal/`, cookie);
      t.is(terminal.status, 200);
      t.regex(terminal.text, /<div id="terminal">/);
      // The plain-HTTP URL of a seat leads to its HTTPS origin.
      const plain = await request(`http://127.0.0.1:${vm.httpPort}/vm/${seat}/files/?x=1`);
      t.is(plain.status, 308);
      t.is(plain.headers.location, `${vm.seatOrigin(seat)}/vm/${seat}/files/?x=1`);
      const files = await get(vm, `/vm/${seat}/files/api/list?path=`, cookie);
      t.is(files.status, 200, `seat ${seat}'s files API with its cookie`);
      t.truthy(JSON.parse(files.text), 'a JSON listing');
      t.regex((await get(vm, `/vm/${seat}/browser/`, cookie)).text, /local stand-in/);
      // The browser asks for no password (Caddy's gate is the seat's only door), so holds no token.
      const env = await docker(
        'inspect',
        '--format',
        '{{json .Config.Env}}',
        `${vm.namePrefix}seat-${seat}-browser`,
      );
      t.true(JSON.parse(env).includes('NEKO_MEMBER_PROVIDER=noauth'), env);
      t.false(env.includes(token), 'no seat token in the browser container');
      // The pages use relative URLs, so the bare path is sent to the folder, query and all.
      const bare = await get(vm, `/vm/${seat}/terminal?t=${token}`);
      t.is(bare.status, 308);
      t.is(bare.location, `/vm/${seat}/terminal/?t=${token}`);
    }
    const [seatA, seatB] = [...plan.tokens.keys()] as [number, number];
    const tokenA = plan.tokens.get(seatA)!;
    const tokenB = plan.tokens.get(seatB)!;
    t.not(vm.seatOrigin(seatA), vm.seatOrigin(seatB), 'every seat an origin of its own');
    const onA = `${vm.seatOrigin(seatA)}/vm/${seatB}/terminal/`;
    t.is((await request(`${onA}?t=${tokenB}`)).status, 403, 'no seat on another seat’s origin');
    t.is((await request(onA, { headers: { cookie: `ct_seat_${seatB}=${tokenB}` } })).status, 403);
    // Cookies ignore ports: a page of another seat (same site) or of any other site makes the
    // browser send seat B's cookie to seat B's origin. Only a navigation (GET) gets in then.
    const asBrowser = (site: string, mode: string, method = 'GET') =>
      request(`${vm.seatOrigin(seatB)}/vm/${seatB}/files/api/list?path=`, {
        method,
        headers: {
          cookie: `ct_seat_${seatB}=${tokenB}`,
          'sec-fetch-site': site,
          'sec-fetch-mode': mode,
        },
      }).then((r) => r.status);
    t.deepEqual(
      {
        sameSiteFetch: await asBrowser('same-site', 'cors'),
        crossSiteFetch: await asBrowser('cross-site', 'no-cors'),
        sameSiteSocket: await asBrowser('same-site', 'websocket'),
        crossSiteFormPost: await asBrowser('cross-site', 'navigate', 'POST'),
        crossSiteNavigation: await asBrowser('cross-site', 'navigate'),
        sameOriginFetch: await asBrowser('same-origin', 'cors'),
      },
      {
        sameSiteFetch: 403,
        crossSiteFetch: 403,
        sameSiteSocket: 403,
        crossSiteFormPost: 403,
        crossSiteNavigation: 200,
        sameOriginFetch: 200,
      },
    );
    for (const kind of ['terminal', 'files', 'browser']) {
      t.is(
        (await get(vm, `/vm/${seatB}/${kind}/?t=${tokenA}`)).status,
        403,
        'another seat’s token',
      );
      t.is((await get(vm, `/vm/${seatB}/${kind}/`, `ct_seat_${seatB}=${tokenA}`)).status, 403);
      t.is((await get(vm, `/vm/${seatA}/${kind}/`)).status, 403, 'no token');
    }
    t.is((await get(vm, '/health')).text, 'OK');
    // A mount of a seat's home left outside the VM's directory (Docker leaves its volume's bind
    // mount so when it dies) holds the seat's disk: the stop takes that mount down too.
    const stray = mkdtempSync(path.join(os.tmpdir(), 'ct-stray-mount-'));
    t.teardown(() => rmSync(stray, { recursive: true, force: true }));
    const home = path.join(vm.stateDir, 'vm', 'seats', 'seat-4', 'home');
    t.is((await runCommand('mount', ['--bind', home, stray])).code, 0);
    await stopAndCheckNothingLeft(t, vm);
    t.deepEqual(mountsUnder(stray), [], 'the stray mount is gone');
  },
);

vmTest('a 20-seat VM reports ready with every seat answering', async (t) => {
  // 40 containers on a shared 2-core machine, beside the rest of the suite: the script gets the
  // seats the time it gives them on a slow VM, and the test waits past that for its report.
  t.timeout(1_200_000);
  const plan = await instanceFor({ seatFirst: 21, seatCount: 20 });
  const messages = await readyMessages(t);
  const started = Date.now();
  const vm = await boot(t, plan, { CT_SEAT_WAIT: '600' });
  const [ready] = await messages.forVm(plan.vmName, 1, 900_000);
  t.log(
    `boot-to-ready for 20 seats, images present: ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  t.like(ready, { state: 'ready', seatsReady: 20 }, ready?.error);
  const running = await docker('ps', '--filter', `label=clarateach.vm=${plan.vmName}`, '-q');
  t.is(running.split('\n').length, 41, '20 workspaces, 20 browsers and Caddy');
  await stopAndCheckNothingLeft(t, vm);
});

vmTest('running the script again keeps the containers and the learner’s files', async (t) => {
  const plan = await instanceFor({ seatFirst: 1, seatCount: 2 });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan);
  const containers = async () =>
    Object.fromEntries(
      (
        await docker(
          'ps',
          '-a',
          '--no-trunc',
          '--format',
          '{{.Names}} {{.ID}} {{.State}}',
          '--filter',
          `label=clarateach.vm=${plan.vmName}`,
        )
      )
        .split('\n')
        .map((line) => line.split(' '))
        .map(([name, id, state]) => [
          name!.slice(vm.namePrefix.length),
          { id: id!, state: state! },
        ]),
    );
  const names = ['clarateach-caddy', 'seat-1', 'seat-1-browser', 'seat-2', 'seat-2-browser'];
  const seat1 = `${vm.namePrefix}seat-1`;

  t.is((await messages.forVm(plan.vmName, 1))[0]?.state, 'ready');
  const boot1 = await containers();
  t.deepEqual(Object.keys(boot1).sort(), names);
  await docker('exec', '-u', 'learner', seat1, 'sh', '-c', 'echo "my work" > ~/notes.txt');

  // A second run while everything still runs.
  await vm.reboot();
  t.like((await messages.forVm(plan.vmName, 2))[1], { state: 'ready', seatsReady: 2 });
  const boot2 = await containers();
  t.deepEqual(Object.keys(boot2).sort(), names, 'no duplicates, nothing missing');
  for (const name of names.filter((n) => n.startsWith('seat-'))) {
    t.is(boot2[name]?.id, boot1[name]?.id, `${name} is kept`);
  }
  t.is(
    boot2['clarateach-caddy']?.id,
    boot1['clarateach-caddy']?.id,
    'Caddy is kept: its Caddyfile did not change, so no open connection drops',
  );

  // A reboot proper: every container died with the VM; the script starts them again.
  await vm.reboot({ powerCycle: true });
  t.like((await messages.forVm(plan.vmName, 3))[2], { state: 'ready', seatsReady: 2 });
  const boot3 = await containers();
  for (const name of names) t.is(boot3[name]?.state, 'running', `${name} runs again`);
  t.is(boot3['seat-1']?.id, boot1['seat-1']?.id);
  const log = readFileSync(vm.logPath, 'utf8');
  t.regex(log, /started existing ct\w+-seat-1\b/);
  t.regex(log, /using clarateach-local\/workspace:\w+, already on this VM/, 'no pull retries');
  t.is(await docker('exec', seat1, 'cat', '/home/learner/notes.txt'), 'my work');
  const token = plan.tokens.get(1)!;
  t.is((await get(vm, `/vm/1/terminal/?t=${token}`)).status, 200);
  await stopAndCheckNothingLeft(t, vm);
});

vmTest(
  'a workspace whose app dies is reported as failed with what its container said',
  async (t) => {
    const images = (await instanceFor({ seatFirst: 1, seatCount: 1 })).images;
    const crashing = await imageWithCommand(
      images.workspace,
      'clarateach-test/workspace-crashing:1',
      ['sh', '-c', 'echo "fatal: the seat server cannot start" >&2; exit 3'],
    );
    const plan = await instanceFor({ seatFirst: 2, seatCount: 2, workspaceImage: crashing });
    const messages = await readyMessages(t);
    const vm = await boot(t, plan, { CT_SEAT_WAIT: '10' });

    const [report] = await messages.forVm(plan.vmName);
    t.like(report, { state: 'failed', seatsReady: 0 });
    t.regex(report?.error ?? '', /seats not answering: 2 3/);
    t.regex(
      report?.error ?? '',
      /last output of ct\w+-seat-2:\n(?: {2}.*\n)* {2}fatal: the seat server cannot start/,
    );
    t.true((report?.error ?? '').length <= 4000);
    for (const token of plan.tokens.values()) t.false(report?.error?.includes(token));
    t.not(await vm.exited(), 0);
    await stopAndCheckNothingLeft(t, vm);
  },
);

vmTest(
  'a VM whose certificate cannot be had is reported as failed, with what Caddy said of it',
  async (t) => {
    const plan = await instanceFor({ seatFirst: 1, seatCount: 1 });
    const messages = await readyMessages(t);
    // An ACME server that is not there: no certificate, so no seat answers over HTTPS.
    const vm = await boot(t, plan, {
      CT_TLS: 'acme',
      CT_ACME_CA: 'https://127.0.0.1:9/directory',
      CT_ACME_PROFILE: '',
      CT_SEAT_WAIT: '30',
    });
    const [report] = await messages.forVm(plan.vmName);
    t.like(report, { state: 'failed', seatsReady: 0 });
    t.regex(report?.error ?? '', /seats not answering: 1/);
    t.regex(
      report?.error ?? '',
      /what ct\w+-clarateach-caddy said of certificates:\n {2}.*(obtain|certificate).*127\.0\.0\.1/,
    );
    await stopAndCheckNothingLeft(t, vm);
  },
);

vmTest(
  'an image that cannot be pulled is reported as failed, and no container is made',
  async (t) => {
    const plan = await instanceFor({
      seatFirst: 1,
      seatCount: 1,
      workspaceImage: 'clarateach-test/no-such-image:1',
    });
    const messages = await readyMessages(t);
    const vm = await boot(t, plan, { CT_PULL_ATTEMPTS: '1' });
    const [report] = await messages.forVm(plan.vmName);
    t.is(report?.state, 'failed');
    t.regex(report?.error ?? '', /pulling clarateach-test\/no-such-image:1 failed/);
    t.regex(report?.error ?? '', /could not pull every image/);
    t.is(await docker('ps', '-aq', '--filter', `label=clarateach.vm=${plan.vmName}`), '');
    await stopAndCheckNothingLeft(t, vm);
  },
);

vmTest('metadata without a token for one of the seats is reported as failed', async (t) => {
  const plan = await instanceFor({ seatFirst: 5, seatCount: 2 });
  plan.instance.metadata['seat-tokens'] = `5:${plan.tokens.get(5)!}`;
  const messages = await readyMessages(t);
  const vm = await boot(t, plan);
  const [report] = await messages.forVm(plan.vmName);
  t.like(report, { state: 'failed', seatsReady: 0, readyToken: plan.readyToken });
  t.regex(report?.error ?? '', /no access token for seat 6/);
  t.is(await docker('ps', '-aq', '--filter', `label=clarateach.vm=${plan.vmName}`), '');
  await stopAndCheckNothingLeft(t, vm);
});

vmTest('a VM without an external IP is reported as failed', async (t) => {
  const plan = await instanceFor({ seatFirst: 1, seatCount: 1 });
  plan.instance.externalIp = '';
  const messages = await readyMessages(t);
  const vm = await boot(t, plan);
  const [report] = await messages.forVm(plan.vmName);
  t.like(report, { state: 'failed', externalIp: '', internalIp: '10.128.0.10', seatsReady: 0 });
  t.regex(report?.error ?? '', /no external IP/);
  await stopAndCheckNothingLeft(t, vm);
});
