// The startup script's CT_TLS=acme path for real, the way a real VM gets its seats' certificate
// from Let's Encrypt (an IP-address certificate, HTTP-01 on the plain HTTP port): a local ACME
// server (pebble) validates the challenge on the VM's CT_HTTP_PORT and issues the certificate for
// 127.0.0.1, and the VM's Caddy serves it on the seat's origin.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls, { type DetailedPeerCertificate } from 'node:tls';
import { localCa } from '../../local/tls-ca.ts';
import { emulatorTest } from '../helpers/emulators.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { startComputeStandin } from '../../local/compute-standin.ts';
import { SeatDns } from '../../shared/dns.ts';
import {
  boot,
  instanceFor,
  readyMessages,
  request,
  stopAndCheckNothingLeft,
} from '../helpers/vm.ts';

interface Handshake {
  authorized: boolean;
  authorizationError: string | null;
  cert: DetailedPeerCertificate;
}

/** A TLS handshake with `origin` trusting `ca` alone: what the server presents, and whether its
 * chain checks out against `ca`. */
function handshake(origin: string, ca: string, servername?: string): Promise<Handshake> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    // An IP address: no SNI, as a browser sends none (Caddy's default_sni picks the certificate).
    // A name: its SNI, at loopback, where every local VM listens.
    const socket = tls.connect({
      host: servername ? '127.0.0.1' : hostname,
      port: Number(port),
      ca,
      rejectUnauthorized: false,
      ...(servername ? { servername } : {}),
    });
    socket.once('secureConnect', () => {
      resolve({
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : null,
        cert: socket.getPeerCertificate(true),
      });
      socket.end();
    });
    socket.once('error', reject);
  });
}

/** The startup script's settings for certificates from `pebble`. */
const acmeSettings = (pebble: Pebble) => ({
  CT_TLS: 'acme',
  CT_ACME_CA: pebble.directory,
  CT_ACME_CA_ROOT: pebble.tlsRootPath,
  // Profiles need Caddy 2.10; the local image is Debian's 2.6.
  CT_ACME_PROFILE: '',
  // Where pebble fetches http://127.0.0.1:PORT/.well-known/acme-challenge/… (port 80 on a VM).
  CT_HTTP_PORT: String(pebble.httpPort),
});

emulatorTest(
  'CT_TLS=acme: the ACME server validates HTTP-01 for 127.0.0.1 and issues the seat certificate, and Caddy serves it',
  async (t) => {
    const pebble = await startPebble();
    t.teardown(() => pebble.stop());
    const plan = await instanceFor({ seatFirst: 1, seatCount: 1 });
    const messages = await readyMessages(t);
    const vm = await boot(t, plan, acmeSettings(pebble));
    t.is(vm.httpPort, pebble.httpPort, 'the instance reports the HTTP port the script was given');

    // Ready only once the seat answers on its origin, i.e. with a certificate.
    const [ready] = await messages.forVm(plan.vmName);
    t.like(ready, { state: 'ready', seatsReady: 1, httpPort: pebble.httpPort }, ready?.error);
    t.is(await vm.exited(), 0);

    const { root, intermediate } = await pebble.issuance();
    const issuer = new X509Certificate(intermediate);
    const origin = vm.seatOrigin(1);
    // Chain and IP identity checked against pebble's issuing root alone.
    const seen = await handshake(origin, root);
    t.true(
      seen.authorized,
      `${seen.authorizationError}: the seat presents a certificate from ${seen.cert.issuer?.CN}`,
    );
    t.is(tls.checkServerIdentity('127.0.0.1', seen.cert), undefined, 'valid for 127.0.0.1');
    t.is(seen.cert.subjectaltname, 'IP Address:127.0.0.1');
    const leaf = new X509Certificate(seen.cert.raw);
    t.is(leaf.issuer, issuer.subject, `issued by pebble's intermediate (${issuer.subject})`);
    t.true(leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey), "signed by pebble's key");
    t.is(
      seen.cert.issuerCertificate.fingerprint256,
      issuer.fingerprint256,
      'Caddy presents the intermediate pebble issued with',
    );
    // Pebble issued exactly this certificate, over ACME.
    const status = await pebble.certStatus(BigInt(`0x${leaf.serialNumber}`).toString(16));
    t.is(status.Status, 'Valid');
    t.is(new X509Certificate(status.Certificate).fingerprint256, leaf.fingerprint256);
    t.true(
      pebble.log().includes('Identifier{Type:"ip", Value:"127.0.0.1"}'),
      'an IP-address identifier (RFC 8738)',
    );
    t.regex(
      pebble.log(),
      new RegExp(
        `validate w/ HTTP: http://127\\.0\\.0\\.1:${pebble.httpPort}/\\.well-known/acme-challenge/`,
      ),
      'HTTP-01, on the VM’s CT_HTTP_PORT',
    );
    // Not a certificate of the local stack's CA (what CT_TLS=internal serves).
    const local = await handshake(origin, localCa().rootPem);
    t.false(local.authorized);

    // A learner's visit, trusting pebble's root alone: token for cookie, then the terminal.
    const token = plan.tokens.get(1)!;
    const exchange = await request(`${origin}/vm/1/terminal/?t=${token}`, { ca: root });
    t.is(exchange.status, 200);
    t.deepEqual(exchange.headers['set-cookie'], [
      `ct_seat_1=${token}; Path=/vm/1; Secure; HttpOnly; SameSite=Strict`,
    ]);
    const terminal = await request(`${origin}/vm/1/terminal/`, {
      ca: root,
      headers: { cookie: `ct_seat_1=${token}` },
    });
    t.is(terminal.status, 200);
    t.regex(terminal.text, /<div id="terminal">/);

    await stopAndCheckNothingLeft(t, vm);
  },
);

emulatorTest(
  'SEAT_DOMAIN: the VM named in Cloud DNS gets a certificate for its name by HTTP-01, and serves it on every seat',
  async (t) => {
    // Cloud DNS is the local stand-in, whose records pebble resolves over DNS, as Let's Encrypt
    // resolves the operator's zone; the name is written with the control plane's own client.
    const standin = await startComputeStandin({
      project: 'ct-acme',
      dnsZones: { seats: 'seats.test.' },
      dnsUdp: true,
    });
    t.teardown(() => standin.stop());
    const pebble = await startPebble({ dnsServer: `127.0.0.1:${standin.dnsPort}` });
    t.teardown(() => pebble.stop());
    const plan = await instanceFor({ seatFirst: 1, seatCount: 2 });
    const host = `${plan.vmName}.seats.test`;
    plan.instance.metadata['public-host'] = host;
    const dns = new SeatDns({
      project: 'ct-acme',
      zone: 'seats',
      endpoint: { host: '127.0.0.1', port: standin.port },
    });
    await dns.setAddress(host, '127.0.0.1');

    const messages = await readyMessages(t);
    const vm = await boot(t, plan, acmeSettings(pebble));
    const [ready] = await messages.forVm(plan.vmName);
    t.like(ready, { state: 'ready', seatsReady: 2 }, ready?.error);
    t.is(await vm.exited(), 0);
    t.regex(readFileSync(vm.logPath, 'utf8'), /starting/);

    const { root } = await pebble.issuance();
    for (const seat of [1, 2]) {
      const origin = vm.seatOrigin(seat);
      t.is(new URL(origin).hostname, host, 'the seat’s origin carries the VM’s name');
      const seen = await handshake(origin, root, host);
      t.true(seen.authorized, `${seen.authorizationError}`);
      t.is(tls.checkServerIdentity(host, seen.cert), undefined, `valid for ${host}`);
      t.is(seen.cert.subjectaltname, `DNS:${host}`);
      const token = plan.tokens.get(seat)!;
      const exchange = await request(`${origin}/vm/${seat}/terminal/?t=${token}`, {
        ca: root,
        resolveTo: '127.0.0.1',
      });
      t.is(exchange.status, 200);
      t.deepEqual(exchange.headers['set-cookie'], [
        `ct_seat_${seat}=${token}; Path=/vm/${seat}; Secure; HttpOnly; SameSite=Strict`,
      ]);
    }
    t.true(
      pebble.log().includes(`Identifier{Type:"dns", Value:"${host}"}`),
      'a DNS identifier, validated by HTTP-01 at the address the zone gives',
    );
    // One certificate for the VM, whatever its seat count.
    t.is((pebble.log().match(/Issued certificate serial/g) ?? []).length, 1);

    await stopAndCheckNothingLeft(t, vm);
    await dns.removeAddress(host);
  },
);

emulatorTest(
  'a renewal that fails, and one that succeeds after, is logged on the VM and reported on vm.ready with the certificate’s end',
  async (t) => {
    t.timeout(10 * 60_000);
    // Certificates of a minute: Caddy renews them in their last third, looking every 2 s.
    const pebble = await startPebble({ validitySeconds: 60 });
    t.teardown(() => pebble.stop());
    const plan = await instanceFor({ seatFirst: 1, seatCount: 1, withScriptMetadata: true });
    plan.instance.metadata['clarateach-watcher'] = readFileSync(
      'startup/clarateach-watcher.sh',
      'utf8',
    );
    const messages = await readyMessages(t);
    const vm = await boot(t, plan, {
      ...acmeSettings(pebble),
      CT_RENEW_INTERVAL: '2s',
      CT_WATCH_TIMEOUT: '2',
      CT_CERT_CHECK: '1',
    });
    const [ready] = await messages.forVm(plan.vmName);
    t.like(ready, { state: 'ready', seatsReady: 1 }, ready?.error);
    const first = ready!.certificate!;
    t.is(first.renewalError, null, 'a certificate just issued');
    // The end of the certificate the seat serves, to the second.
    const served = await handshake(vm.seatOrigin(1), pebble.tlsRootPem);
    t.is(Date.parse(first.notAfter!), Date.parse(new X509Certificate(served.cert.raw).validTo));
    t.true(
      Math.abs(Date.parse(first.checkedAt) - Date.now()) < 10 * 60_000,
      'checked at the VM’s now',
    );

    // The ACME server goes away: the next renewal fails.
    await pebble.cutOff();
    const report = await messages.firstForVm(
      plan.vmName,
      (r) => Boolean(r.certificate?.renewalError),
      5 * 60_000,
    );
    t.is(
      report.state,
      'ready',
      'the seats still answer: the certificate has not ended yet, or only just',
    );
    t.log('reported:', report.certificate);
    t.regex(report.certificate!.renewalError!, /connection refused|dial tcp|certificate/i);
    t.notRegex(report.certificate!.renewalError!, /\\"|"attempt"/, 'Caddy’s message, not its JSON');
    t.regex(report.certificate!.notAfter!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    t.regex(readFileSync(vm.logPath, 'utf8'), /clarateach-watcher: certificate renewal failing: /);

    // It comes back: Caddy's next try renews, and the VM says so with the new end.
    await pebble.reconnect();
    const renewed = await messages.firstForVm(
      plan.vmName,
      (r) =>
        r.certificate?.renewalError === null &&
        Date.parse(r.certificate.checkedAt) > Date.parse(report.certificate!.checkedAt),
      5 * 60_000,
    );
    t.true(
      Date.parse(renewed.certificate!.notAfter!) > Date.parse(report.certificate!.notAfter!),
      'a certificate that ends later',
    );
    t.regex(readFileSync(vm.logPath, 'utf8'), /clarateach-watcher: certificate renewed/);

    await stopAndCheckNothingLeft(t, vm);
  },
);
