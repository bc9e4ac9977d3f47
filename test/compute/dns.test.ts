/**
 * The Cloud DNS client (shared/dns.ts) against the stand-in's Cloud DNS, and the stand-in's UDP
 * responder read by Node's own resolver: no mocks on either side.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import {
  startComputeStandin,
  type ComputeStandin,
  type ComputeStandinOptions,
} from '../../local/compute-standin.ts';
import { ComputeError } from '../../shared/core/compute-errors.ts';
import { SeatDns } from '../../shared/dns.ts';

const P = 'ct-test';
const ZONE = 'seats';
const DOMAIN = 'seats.localhost';

async function setup(
  t: ExecutionContext,
  opts: Partial<ComputeStandinOptions> = {},
): Promise<{ s: ComputeStandin; dns: SeatDns }> {
  const s = await startComputeStandin({
    project: P,
    dnsZones: { [ZONE]: `${DOMAIN}.` },
    dnsUdp: true,
    ...opts,
  });
  t.teardown(() => s.stop());
  const dns = new SeatDns({
    project: P,
    zone: ZONE,
    endpoint: { host: '127.0.0.1', port: s.port },
  });
  t.teardown(() => dns.close());
  return { s, dns };
}

function resolver(s: ComputeStandin): Resolver {
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`127.0.0.1:${s.dnsPort}`]);
  return r;
}

/** The A record sets the stand-in holds, as `name → rrdatas`. */
function aRecords(s: ComputeStandin): Record<string, string[]> {
  return Object.fromEntries(
    s
      .dnsRecords()
      .filter((r) => r.type === 'A')
      .map((r) => [r.name, r.rrdatas]),
  );
}

/** The Cloud DNS calls received, as `METHOD path`. */
function dnsCalls(s: ComputeStandin, method?: string): string[] {
  return s.requests
    .filter((r) => r.path.startsWith('/dns/') && (!method || r.method === method))
    .map((r) => `${r.method} ${r.path}`);
}

const writes = (s: ComputeStandin) =>
  ['POST', 'PATCH', 'DELETE'].reduce((n, m) => n + dnsCalls(s, m).length, 0);

async function rejection(t: ExecutionContext, promise: Promise<unknown>): Promise<ComputeError> {
  const err = await t.throwsAsync(promise);
  t.true(err instanceof ComputeError, String(err));
  return err as ComputeError;
}

test('an address set is listed, held with TTL 60 and resolvable over UDP', async (t) => {
  const { s, dns } = await setup(t);
  const host = `ct-abc-1.${DOMAIN}`;
  await dns.setAddress(host, '10.0.0.7');

  t.deepEqual(await dns.listAddresses(DOMAIN), [{ host, ips: ['10.0.0.7'] }]);
  const record = s.dnsRecords().find((r) => r.type === 'A');
  t.like(record, { zone: ZONE, name: `${host}.`, ttl: 60, rrdatas: ['10.0.0.7'] });
  t.deepEqual(await resolver(s).resolve4(host, { ttl: true }), [{ address: '10.0.0.7', ttl: 60 }]);
  // Names are compared without regard to case, and other types of a held name have no answer.
  t.deepEqual(await resolver(s).resolve4(host.toUpperCase()), ['10.0.0.7']);
  await t.throwsAsync(resolver(s).resolve6(host), { code: 'ENODATA' });
  await t.throwsAsync(resolver(s).resolve4(`ct-abc-2.${DOMAIN}`), { code: 'ENOTFOUND' });
  // The stand-in is spoken to without credentials.
  t.true(s.requests.every((r) => r.headers.authorization === undefined));
});

test('setting the address a record already holds writes nothing', async (t) => {
  const { s, dns } = await setup(t);
  const host = `ct-abc-1.${DOMAIN}`;
  await dns.setAddress(host, '10.0.0.7');
  t.is(writes(s), 1);
  await dns.setAddress(host, '10.0.0.7');
  await dns.setAddress(host.toUpperCase(), '10.0.0.7');
  t.is(writes(s), 1);
  t.deepEqual(aRecords(s), { [`${host}.`]: ['10.0.0.7'] });
});

test('setting another address replaces the record', async (t) => {
  const { s, dns } = await setup(t);
  const host = `ct-abc-1.${DOMAIN}`;
  await dns.setAddress(host, '10.0.0.7');
  await dns.setAddress(host, '10.0.0.8');
  t.deepEqual(aRecords(s), { [`${host}.`]: ['10.0.0.8'] });
  t.is(dnsCalls(s, 'PATCH').length, 1);
  t.deepEqual(await resolver(s).resolve4(host), ['10.0.0.8']);
});

test('a record of several addresses is replaced by the one asked for', async (t) => {
  const { s, dns } = await setup(t);
  const host = `ct-abc-1.${DOMAIN}`;
  const res = await fetch(`${s.url}/dns/v1/projects/${P}/managedZones/${ZONE}/rrsets`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name: `${host}.`,
      type: 'A',
      ttl: 300,
      rrdatas: ['10.0.0.7', '10.0.0.9'],
    }),
  });
  t.is(res.status, 200);
  await dns.setAddress(host, '10.0.0.7');
  t.like(
    s.dnsRecords().find((r) => r.type === 'A'),
    { rrdatas: ['10.0.0.7'], ttl: 60 },
  );
});

test('several setAddress of one host at once end with one record', async (t) => {
  const { s, dns } = await setup(t);
  const host = `ct-abc-1.${DOMAIN}`;
  await Promise.all([1, 2, 3, 4].map(() => dns.setAddress(host, '10.0.0.7')));
  t.deepEqual(aRecords(s), { [`${host}.`]: ['10.0.0.7'] });
  // All four found no record and created it: three of those creates answered 409.
  t.true(dnsCalls(s, 'POST').length >= 2, dnsCalls(s).join('\n'));

  // Creates that lose to a different address patch the record: one of the addresses wins whole.
  const other = `ct-abc-2.${DOMAIN}`;
  await Promise.all(['10.0.1.1', '10.0.1.2'].map((ip) => dns.setAddress(other, ip)));
  const held = aRecords(s)[`${other}.`];
  t.true(
    held !== undefined && held.length === 1 && ['10.0.1.1', '10.0.1.2'].includes(held[0]!),
    JSON.stringify(held),
  );
});

test('removing an address twice is fine', async (t) => {
  const { s, dns } = await setup(t);
  const host = `ct-abc-1.${DOMAIN}`;
  await dns.setAddress(host, '10.0.0.7');
  await dns.removeAddress(host);
  await dns.removeAddress(host);
  await dns.removeAddress(`ct-never-1.${DOMAIN}`);
  t.deepEqual(aRecords(s), {});
  t.deepEqual(await dns.listAddresses(DOMAIN), []);
  await t.throwsAsync(resolver(s).resolve4(host), { code: 'ENOTFOUND' });
  // The zone's own records stay.
  t.deepEqual(
    s.dnsRecords().map((r) => r.type),
    ['NS', 'SOA'],
  );
});

test('listing follows pages and keeps only A records under the suffix', async (t) => {
  const { s, dns } = await setup(t, { pageSize: 2 });
  const mine = [1, 2, 3, 4, 5].map((i) => `ct-abc-${i}.ws1.${DOMAIN}`);
  for (const [i, host] of mine.entries()) await dns.setAddress(host, `10.0.0.${i + 1}`);
  await dns.setAddress(`ct-xyz-1.ws2.${DOMAIN}`, '10.0.9.1');
  await dns.setAddress(`ws1.${DOMAIN}`, '10.0.9.2'); // the suffix itself is not under it

  const listed = await dns.listAddresses(`WS1.${DOMAIN}`);
  t.deepEqual(
    listed.sort((a, b) => a.host.localeCompare(b.host)),
    mine.map((host, i) => ({ host, ips: [`10.0.0.${i + 1}`] })),
  );
  // 7 A records and the zone's NS and SOA, two a page.
  t.is(dnsCalls(s, 'GET').filter((c) => c.includes('/rrsets?')).length, 5);
  t.is((await dns.listAddresses(DOMAIN)).length, 7);
});

test('a name outside the zone is refused as invalid', async (t) => {
  const { s, dns } = await setup(t);
  const err = await rejection(t, dns.setAddress('ct-abc-1.example.org', '10.0.0.7'));
  t.like(err, { kind: 'invalid', code: 'DNS_HTTP_400', httpStatus: 400 });
  t.regex(err.message, /ct-abc-1\.example\.org/);
  t.regex(err.message, /zone seats/);
  t.deepEqual(aRecords(s), {});

  const notIp = await rejection(t, dns.setAddress(`ct-abc-1.${DOMAIN}`, 'fe80::1'));
  t.is(notIp.kind, 'invalid');
});

test('an unknown zone or project is invalid', async (t) => {
  const { s } = await setup(t);
  const endpoint = { host: '127.0.0.1', port: s.port };
  for (const dns of [
    new SeatDns({ project: P, zone: 'nope', endpoint }),
    new SeatDns({ project: 'other', zone: ZONE, endpoint }),
  ]) {
    const err = await rejection(t, dns.setAddress(`ct-abc-1.${DOMAIN}`, '10.0.0.7'));
    t.like(err, { kind: 'invalid', code: 'DNS_HTTP_404' });
    t.like(await rejection(t, dns.listAddresses(DOMAIN)), { kind: 'invalid' });
  }
});

test('an injected 503 is transient, a 403 invalid, and neither message holds a credential', async (t) => {
  const { s, dns } = await setup(t);
  const host = `ct-abc-1.${DOMAIN}`;
  const messages: string[] = [];

  s.injectFault({ op: 'dns', kind: 'http503' });
  const unavailable = await rejection(t, dns.setAddress(host, '10.0.0.7'));
  t.like(unavailable, { kind: 'transient', code: 'DNS_HTTP_503', httpStatus: 503 });
  t.true(unavailable.retryable);
  messages.push(unavailable.message);

  s.injectFault({ op: 'dns', kind: 'http403', times: 2 });
  const forbidden = await rejection(t, dns.removeAddress(host));
  t.like(forbidden, { kind: 'invalid', code: 'DNS_HTTP_403', httpStatus: 403 });
  messages.push(forbidden.message);
  t.like(await rejection(t, dns.listAddresses(DOMAIN)), { kind: 'invalid' });

  // Over the control API too, and only for the zone named.
  const res = await fetch(`${s.url}/_standin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ op: 'dns', kind: 'http503', zone: 'elsewhere' }),
  });
  t.is(res.status, 200);
  await dns.setAddress(host, '10.0.0.7');
  const records = (await (await fetch(`${s.url}/_standin/dns`)).json()) as any;
  t.deepEqual(
    records.records.filter((r: any) => r.type === 'A'),
    [{ zone: ZONE, name: `${host}.`, type: 'A', ttl: 60, rrdatas: ['10.0.0.7'] }],
  );

  // Nothing listens here any more: a network failure is transient.
  await s.stop();
  const down = await rejection(t, dns.setAddress(host, '10.0.0.8'));
  t.is(down.kind, 'transient');
  messages.push(down.message);

  for (const message of messages) {
    t.regex(message, new RegExp(host.replace(/\./g, '\\.')));
    t.regex(message, /zone seats/);
    t.notRegex(message, /authorization|bearer|token|ya29/i);
  }
});

test('malformed UDP packets get no answer and the responder goes on answering', async (t) => {
  const { s, dns } = await setup(t);
  await dns.setAddress(`ct-abc-1.${DOMAIN}`, '10.0.0.7');
  const socket = dgram.createSocket('udp4');
  t.teardown(() => socket.close());
  const replies: Buffer[] = [];
  socket.on('message', (msg) => replies.push(msg));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));

  // A query header (id 0x1234, RD, one question) followed by what the test puts after it.
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const packets = [
    Buffer.alloc(0),
    header.subarray(0, 7), // truncated header
    header, // no question at all
    Buffer.concat([header, Buffer.from([63, 0x61, 0x62])]), // a label past the end
    Buffer.concat([header, Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), // a pointer in the question
    Buffer.concat([header, Buffer.from([1, 0x61, 0, 0, 1])]), // qtype/qclass cut short
    Buffer.concat([header, Buffer.alloc(300, 0x3f)]), // a name longer than 255 bytes
    ...Array.from({ length: 20 }, () =>
      Buffer.concat([header, randomBytes((1 + Math.random() * 40) | 0)]).fill(0xff, 12, 13),
    ),
    ...Array.from({ length: 20 }, () => randomBytes((Math.random() * 12) | 0)),
  ];
  for (const packet of packets) {
    await new Promise<void>((resolve, reject) =>
      socket.send(packet, s.dnsPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.deepEqual(replies, []);

  // A well-formed query on the same socket is answered, its question echoed.
  const question = Buffer.from([
    ...[8, ...Buffer.from('ct-abc-1'), 5, ...Buffer.from('seats'), 9, ...Buffer.from('localhost')],
    ...[0, 0, 1, 0, 1],
  ]);
  socket.send(Buffer.concat([header, question]), s.dnsPort, '127.0.0.1');
  for (let i = 0; i < 100 && replies.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const reply = replies[0];
  t.truthy(reply);
  if (reply) {
    t.is(reply.readUInt16BE(0), 0x1234);
    t.is(reply.readUInt16BE(2) & 0x800f, 0x8000); // a response, NOERROR
    t.deepEqual(reply.subarray(12, 12 + question.length), question);
    t.deepEqual([...reply.subarray(reply.length - 4)], [10, 0, 0, 7]);
  }
  t.deepEqual(await resolver(s).resolve4(`ct-abc-1.${DOMAIN}`), ['10.0.0.7']);
});
