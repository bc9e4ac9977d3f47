/**
 * The control plane's channel to a running VM, on the local stack on real Docker (one class of
 * two seats): how long until a freed seat's old credential is refused, until the seat is usable by
 * the next learner (free → join succeeds → the new learner's terminal answers through Caddy), and
 * until an extension shows in every seat's clock, each against the bare metadata round trip on
 * the same VM in the same run (a setMetadata through the Compute stand-in, seen by a
 * `wait_for_change` on its metadata server).
 */
import { services } from '../shared/services.ts';
import { fromLearner, instructor, startBootingStack } from './stack.ts';
import { median, ms, times, type Row } from './stats.ts';

const SEATS = 2;
const ROUND_TRIPS = 5;
const FREES = 2;
const EXTENDS = 3;
const READY_WITHIN_MS = 10 * 60_000;
const APPLY_WITHIN_MS = 5 * 60_000;

interface Joined {
  seat: number;
  endpoints: { terminal: string };
}

async function until<T>(what: string, check: () => Promise<T | undefined>, limitMs: number) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function vmControl(
  env: { projectId: string; firestoreHost: string; pubsubHost: string },
  cleanups: Array<() => Promise<void>>,
): Promise<Row[]> {
  const { local, call: request } = await startBootingStack(env, cleanups);
  const s = services();
  const owner = instructor('vm-control');
  const call = <T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = owner,
  ) => request<T>(method, path, body, headers);

  const created = await call<{ id: string; joinCode: string }>('POST', '/workshops', {
    name: 'VM control',
    seats: SEATS,
  });
  if (created.status !== 201) throw new Error(`create: ${JSON.stringify(created.body)}`);
  const { id, joinCode } = created.body;
  cleanups.push(async () => {
    await call('DELETE', `/workshops/${id}`);
    await until(
      'the class over',
      async () => (local.standin.instances().length === 0 ? true : undefined),
      5 * 60_000,
    );
  });
  await call('POST', `/workshops/${id}/start`);
  await until(
    'the class ready',
    async () => {
      const { status, error } = (
        await call<{ status: string; error?: unknown }>('GET', `/workshops/${id}`)
      ).body;
      if (status === 'failed') throw new Error(`the class failed: ${JSON.stringify(error)}`);
      return status === 'ready' ? true : undefined;
    },
    READY_WITHIN_MS,
  );
  const [instance] = local.standin.instances().filter((i) => i.labels.workshop === id);
  const vm = local.booted[local.booted.length - 1]!;

  // The baseline: a metadata change, from setMetadata to a waiting long poll's answer.
  const roundTrips: number[] = [];
  for (let n = 0; n < ROUND_TRIPS; n++) {
    const poll = fetch(
      `${vm.metadataUrl}/instance/attributes/?recursive=true&wait_for_change=true`,
      {
        headers: { 'Metadata-Flavor': 'Google' },
      },
    ).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 200)); // the poll is waiting before the change
    const start = performance.now();
    await s.compute.updateMetadata(instance!, async (current) => ({
      ...current,
      'bench-probe': `${n}`,
    }));
    await poll;
    roundTrips.push(performance.now() - start);
  }
  const roundTrip = median(roundTrips);

  let learner = 0;
  const join = async () =>
    call<Joined>('POST', '/join', { code: joinCode, name: `L${learner}` }, fromLearner(learner++));
  // 0 while nothing answers (Caddy restarting with new credentials closes its port for a moment).
  // As the learner's browser after its first visit: the URL without the token, the seat's cookie.
  const asLearner = (endpoint: string, path = '') => {
    const url = new URL(path, endpoint);
    const seat = /^\/vm\/(\d+)\//.exec(url.pathname)![1];
    const cookie = `ct_seat_${seat}=${new URL(endpoint).searchParams.get('t')}`;
    url.search = '';
    return fetch(url, { headers: { cookie } });
  };
  const status = async (url: string) =>
    asLearner(url).then(
      (r) => r.status,
      () => 0,
    );
  const answers = async (url: string) => (await status(url)) === 200;
  const seated: Joined[] = [];
  for (let i = 0; i < SEATS; i++) {
    const res = await join();
    if (res.status !== 200) throw new Error(`join: ${JSON.stringify(res.body)}`);
    seated.push(res.body);
  }

  // Free → the old learner's URL is refused; → the next learner is seated and their terminal answers.
  const cutoffs: number[] = [];
  const frees: number[] = [];
  for (let n = 0; n < FREES; n++) {
    const freed = seated.shift()!;
    const start = performance.now();
    const done = await call('DELETE', `/workshops/${id}/seats/${freed.seat}`);
    if (done.status !== 200) throw new Error(`free: ${JSON.stringify(done.body)}`);
    await until(
      "the old learner's URL refused",
      async () => ((await status(freed.endpoints.terminal)) === 403 ? true : undefined),
      APPLY_WITHIN_MS,
    );
    cutoffs.push(performance.now() - start);
    const next = await until(
      'the freed seat offered again',
      async () => {
        const res = await join();
        return res.status === 200 ? res.body : undefined;
      },
      APPLY_WITHIN_MS,
    );
    await until(
      "the next learner's terminal",
      async () => ((await answers(next.endpoints.terminal)) ? true : undefined),
      APPLY_WITHIN_MS,
    );
    frees.push(performance.now() - start);
    seated.push(next);
  }

  // Extend → every seat's clock (the terminal's `clock`) shows the new end.
  const clocks = seated.map((j) => j.endpoints.terminal);
  const extends_: number[] = [];
  for (let n = 0; n < EXTENDS; n++) {
    const start = performance.now();
    const res = await call<{ expiresAt: string }>('POST', `/workshops/${id}/extend`, {
      minutes: 5,
    });
    if (res.status !== 200) throw new Error(`extend: ${JSON.stringify(res.body)}`);
    await until(
      'every seat shows the new end',
      async () => {
        const shown = await Promise.all(
          clocks.map(async (url) => {
            const r = await asLearner(url, 'clock').catch(() => undefined);
            return r?.ok ? ((await r.json()) as { endsAt: string | null }).endsAt : null;
          }),
        );
        return shown.every((e) => e === res.body.expiresAt) ? true : undefined;
      },
      APPLY_WITHIN_MS,
    );
    extends_.push(performance.now() - start);
  }

  const base = `bare metadata round trip (setMetadata → wait_for_change answers), median of ${ROUND_TRIPS}: ${ms(roundTrip)}`;
  return [
    {
      what: `free → the old learner cut off (their terminal URL answers 403), ${SEATS}-seat VM`,
      measured: `median ${ms(median(cutoffs))} of ${FREES} (${times(median(cutoffs) / roundTrip)} the round trip)`,
      baseline: base,
      target: 'within 10 s (issue 17)',
      verdict: median(cutoffs) <= 10_000 ? 'met' : 'missed',
    },
    {
      what: `free → seat usable by the next learner (joined, terminal answers), ${SEATS}-seat VM on real Docker`,
      measured: `median ${ms(median(frees))} of ${FREES} (${times(median(frees) / roundTrip)} the round trip)`,
      baseline: base,
      target: 'seconds (issue 17), no ratio target',
      verdict: 'n/a',
    },
    {
      what: `extend → shown in every seat (each seat's clock), ${SEATS} seats`,
      measured: `median ${ms(median(extends_))} of ${EXTENDS} (${times(median(extends_) / roundTrip)} the round trip)`,
      baseline: base,
      target: 'within seconds (issue 17), no ratio target',
      verdict: 'n/a',
    },
  ];
}
