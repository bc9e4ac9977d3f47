/**
 * `npm run demo`: drives one class through the HTTP API of a running local stack and prints its
 * timeline. The end-to-end test runs the same `runDemo` and checks what it returns.
 */
import { localCa } from './tls-ca.ts';

export interface DemoResult {
  workshopId: string;
  status: string;
  seats: number[];
  /** What learner 1 got from its own terminal through the VM's Caddy. */
  ownSeat: { status: number; body: string };
  /** What learner 2's credential got on learner 1's terminal. */
  foreignToken: { status: number };
  /** What no credential at all got on learner 1's terminal. */
  noToken: { status: number };
  vmStatuses: string[];
}

interface Workshop {
  id: string;
  status: string;
  joinCode: string;
  seatsReady: number;
  error: { code: string; message: string } | null;
  estimatedCost: { total: number };
  vms: { name: string; status: string }[];
}

interface Seat {
  seat: number;
  endpoints: { terminal: string; files: string; browser: string };
}

const SEATS = 12;
/** How long the class may take to become ready or to end. */
const TIMEOUT_MS = 180_000;

export async function runDemo(
  baseUrl: string,
  print: (line: string) => void = console.log,
  opts: { end?: boolean } = { end: true },
): Promise<DemoResult> {
  const t0 = Date.now();
  const say = (line: string) =>
    print(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${line}`);
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as T & { error?: { code: string; message: string } };
    if (!res.ok)
      throw new Error(
        `${method} ${path}: ${res.status} ${json.error?.code} ${json.error?.message}`,
      );
    return json;
  };
  const waitFor = async (id: string, done: (w: Workshop) => boolean): Promise<Workshop> => {
    let last = '';
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const w = await call<Workshop>('GET', `/workshops/${id}`);
      const line = `${w.status}; VMs: ${w.vms.map((v) => `${v.name} ${v.status}`).join(', ') || 'none yet'}; seats ready ${w.seatsReady}`;
      if (line !== last) say(line);
      last = line;
      if (done(w)) return w;
      if (Date.now() > deadline) throw new Error(`gave up waiting; last: ${line}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  const created = await call<Workshop>('POST', '/workshops', {
    name: 'Demo: containers 101',
    seats: SEATS,
  });
  say(
    `created workshop ${created.id} for ${SEATS} seats, join code ${created.joinCode}, estimated $${created.estimatedCost.total}`,
  );
  await call<Workshop>('POST', `/workshops/${created.id}/start`);
  say('started: provisioning');
  const ready = await waitFor(created.id, (w) => w.status !== 'provisioning');
  if (ready.status !== 'ready')
    throw new Error(`workshop ${ready.status}: ${ready.error?.message}`);

  const joined = await Promise.all(
    Array.from({ length: SEATS }, (_, i) =>
      call<Seat>('POST', '/join', { code: created.joinCode, name: `Learner ${i + 1}` }),
    ),
  );
  say(
    `${joined.length} learners joined: seats ${joined
      .map((j) => j.seat)
      .sort((a, b) => a - b)
      .join(', ')}`,
  );

  for (const j of [...joined].sort((a, b) => a.seat - b.seat)) {
    print(`  seat ${String(j.seat).padStart(2)}  terminal ${j.endpoints.terminal}`);
    print(`           files    ${j.endpoints.files}`);
  }
  const ca = localCa();
  print(`  every seat is an HTTPS origin of its own, certified by the local CA ${ca.dir}/root.pem`);
  print(`  (Chromium: ${ca.chromiumFlag}; curl: --cacert ${ca.dir}/root.pem)`);
  const [first, second] = [...joined].sort((a, b) => a.seat - b.seat);
  // As a browser does: the token is exchanged for the cookie, which opens the URL without it.
  const exchange = await fetch(first!.endpoints.terminal);
  await exchange.arrayBuffer();
  const cookie = exchange.headers.getSetCookie()[0]?.split(';')[0] ?? '';
  const ownUrl = new URL(first!.endpoints.terminal);
  ownUrl.search = '';
  const own = await fetch(ownUrl, { headers: { cookie } });
  const ownBody = await own.text();
  say(
    `learner on seat ${first!.seat} opens its terminal: ${own.status} ${/<title>([^<]*)/.exec(ownBody)?.[1] ?? ownBody.trim().slice(0, 80)}`,
  );
  const foreignUrl = new URL(first!.endpoints.terminal);
  foreignUrl.searchParams.set('t', new URL(second!.endpoints.terminal).searchParams.get('t')!);
  const foreign = await fetch(foreignUrl);
  await foreign.arrayBuffer();
  say(`seat ${second!.seat}'s credential on seat ${first!.seat}'s terminal: ${foreign.status}`);
  const bare = new URL(first!.endpoints.terminal);
  bare.search = '';
  const none = await fetch(bare);
  await none.arrayBuffer();
  say(`no credential on seat ${first!.seat}'s terminal: ${none.status}`);

  const result = (last: Workshop): DemoResult => ({
    workshopId: created.id,
    status: last.status,
    seats: joined.map((j) => j.seat),
    ownSeat: { status: own.status, body: ownBody },
    foreignToken: { status: foreign.status },
    noToken: { status: none.status },
    vmStatuses: last.vms.map((v) => v.status),
  });
  if (!opts.end) {
    say(`the class keeps running: open the URLs above in a browser`);
    say(`end it with: curl -X DELETE ${baseUrl}/workshops/${created.id} (or stop npm start)`);
    return result(ready);
  }
  await call<Workshop>('DELETE', `/workshops/${created.id}`);
  say('ending');
  const ended = await waitFor(created.id, (w) => w.status === 'ended' || w.status === 'failed');
  say(
    `${ended.status}: every VM ${ended.vms.every((v) => v.status === 'deleted') ? 'deleted' : 'NOT deleted'}`,
  );
  return result(ended);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.DEMO_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`;
  // The class stays up so its seats can be opened; `npm run demo -- --end` ends it too.
  runDemo(url, console.log, { end: process.argv.includes('--end') }).catch((error: unknown) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    console.error(`is the stack running? start it with: npm start`);
    process.exitCode = 1;
  });
}
