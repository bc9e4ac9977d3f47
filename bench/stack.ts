/**
 * The local stack the API benches run on (emulators, every function, the Compute stand-in), with
 * VMs that report `vm.ready` as soon as they are inserted: a class is ready as fast as the
 * control plane can make it, with no VM boot in the way. Probes record the time spent in each
 * kind of call, for the control-plane split.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { Firestore, WriteBatch } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { startLocalStack, type LocalStack } from '../local/stack.ts';
import type { InstanceSpec } from '../shared/compute.ts';
import { USER_HEADER } from '../shared/identity.ts';
import { services, type Services } from '../shared/services.ts';
import { TOPICS } from '../shared/topics.ts';
import type { Interval } from './stats.ts';

/**
 * The headers of learner `i`, joining from a network of their own as the portal forwards it
 * (the join limits are per address), like test/helpers/stack.ts.
 */
export const fromLearner = (i: number) => ({
  'x-clarateach-client-ip': `198.18.${i >> 8}.${i & 255}`,
});

export type ProbeKind = 'firestore' | 'compute';

/** Where each kind of call spent its time, and when each push delivery reached a function. */
export class Probes {
  readonly intervals: Record<ProbeKind, Interval[]> = { firestore: [], compute: [] };
  /** [start time, topic] of every publish call, in order. */
  readonly published: Array<[number, string]> = [];
  /** [arrival time, topic] of every push delivery, in order. */
  readonly deliveries: Array<[number, string]> = [];
  /** [finish time, topic] of every push delivery's answer. */
  readonly answered: Array<[number, string]> = [];

  clear(): void {
    for (const list of Object.values(this.intervals)) list.length = 0;
    this.published.length = 0;
    this.deliveries.length = 0;
    this.answered.length = 0;
  }

  async time<T>(kind: ProbeKind, call: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await call();
    } finally {
      this.intervals[kind].push([start, performance.now()]);
    }
  }
}

export interface BenchClass {
  id: string;
  joinCode: string;
  /** The headers its instructor calls with. */
  owner: Record<string, string>;
}

/** The headers of instructor `name` (the local stack trusts the header: AUTH_MODE=dev). */
export const instructor = (name: string) => ({ [USER_HEADER]: `${name}@bench.example` });

export interface BenchStack {
  local: LocalStack;
  services: Services;
  probes: Probes;
  /** Calls a function over HTTP; `ms` is the round trip as the caller sees it. */
  call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T; ms: number }>;
  /**
   * Creates `count` classes of `seats`, each by an instructor of its own (an instructor may run
   * only a few at once), starts them and waits (bounded) until all are ready.
   */
  readyClasses(count: number, seats: number): Promise<BenchClass[]>;
  /** Every class made and not yet ended (each is ended when its part is over, even on failure). */
  made: Set<string>;
  /** Ends the classes (all those made) and waits (bounded) until they are over, VMs gone. */
  endClasses(ids?: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

/** The topic a push delivery is for; `floor` for the bench's own bare deliveries to /health. */
const topicOf = (url: string | undefined) =>
  url?.startsWith('/health?floor') ? 'floor' : (/\/topics\/([^/?]+)/.exec(url ?? '')?.[1] ?? '');

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startBenchStack(env: {
  projectId: string;
  firestoreHost: string;
  pubsubHost: string;
}): Promise<BenchStack> {
  const local = await startLocalStack({ ...env, port: 0, boot: false, sweepEveryMs: 0 });
  const s = services();
  const probes = new Probes();
  const vmPubsub = new PubSub({ projectId: env.projectId });
  // Time in Firestore writes: batches (every set/create/update is one) and transactions.
  const commit = WriteBatch.prototype.commit;
  WriteBatch.prototype.commit = function (this: WriteBatch) {
    return probes.time('firestore', () => commit.call(this));
  };
  const runTransaction = Firestore.prototype.runTransaction;
  Firestore.prototype.runTransaction = function (this: Firestore, update, options) {
    return probes.time('firestore', () => runTransaction.call(this, update, options));
  } as typeof runTransaction;
  // Time in Compute calls; an inserted VM reports at once, from its metadata, as its script would.
  const compute = { ...s.compute };
  s.compute.get = (...args) => probes.time('compute', () => compute.get(...args));
  s.compute.list = (...args) => probes.time('compute', () => compute.list(...args));
  s.compute.delete = (...args) => probes.time('compute', () => compute.delete(...args));
  s.compute.insert = async (...args) => {
    await probes.time('compute', () => compute.insert(...args));
    reportWhenBooting(args[0]);
  };
  // The VM reports as soon as the insert is recorded (status booting). A real VM boots for tens
  // of seconds first, so its report never races that record; the Firestore emulator fails such a
  // race (INVALID_ARGUMENT, "Transaction is invalid or closed") where Firestore would retry it.
  const reportWhenBooting = (spec: InstanceSpec) => {
    const ref = s.store.vms(spec.metadata['workshop-id']!).doc(spec.metadata['vm-name']!);
    const stop = ref.onSnapshot((snap) => {
      if (snap.data()?.status === 'pending') return;
      stop();
      probes.published.push([performance.now(), TOPICS.vmReady]);
      vmPubsub
        .topic(TOPICS.vmReady)
        .publishMessage({
          json: {
            workshopId: spec.metadata['workshop-id'],
            vmName: spec.metadata['vm-name'],
            state: 'ready',
            seatsReady: Number(spec.metadata['seat-count']),
            readyToken: spec.metadata['ready-token'],
          },
        })
        .catch(() => undefined);
    });
  };
  const publish = s.bus.publish;
  s.bus.publish = (...args) => {
    probes.published.push([performance.now(), args[0]]);
    return publish(...args);
  };
  // When push deliveries reach the functions server, and when their function has answered.
  const onRequest = (message: unknown) => {
    const request = (message as { request: IncomingMessage }).request;
    const topic = topicOf(request.url);
    if (topic) probes.deliveries.push([performance.now(), topic]);
  };
  const onFinish = (message: unknown) => {
    const { request } = message as { request: IncomingMessage };
    const topic = topicOf(request.url);
    if (topic) probes.answered.push([performance.now(), topic]);
  };
  subscribe('http.server.request.start', onRequest);
  subscribe('http.server.response.finish', onFinish);

  const call: BenchStack['call'] = async (method, path, body, headers = {}) => {
    const start = performance.now();
    const res = await fetch(`${local.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const parsed = (await res.json()) as never;
    return { status: res.status, body: parsed, ms: performance.now() - start };
  };

  const made = new Set<string>();
  const statusOf = async (id: string) => (await s.store.getWorkshop(id))?.status;

  return {
    local,
    services: s,
    probes,
    call,
    async readyClasses(count, seats) {
      // One after another: the setup is not what is measured, and the emulator serialises the
      // start transactions (their quota query) with lock timeouts when they come all at once.
      const classes: BenchClass[] = [];
      for (let i = 0; i < count; i++) {
        const owner = instructor(`teacher${i}`);
        const created = await call('POST', '/workshops', { name: `Bench ${i}`, seats }, owner);
        if (created.status !== 201) throw new Error(`create: ${JSON.stringify(created.body)}`);
        const id = created.body.id as string;
        made.add(id);
        const started = await call('POST', `/workshops/${id}/start`, undefined, owner);
        if (started.status !== 202) throw new Error(`start: ${JSON.stringify(started.body)}`);
        classes.push({ id, joinCode: created.body.joinCode as string, owner });
      }
      await until(
        `${count} classes ready`,
        async () =>
          (await Promise.all(classes.map((c) => statusOf(c.id)))).every((st) => st === 'ready'),
        120_000,
      );
      return classes;
    },
    made,
    async endClasses(ids = [...made]) {
      await Promise.all(ids.map((id) => call('DELETE', `/workshops/${id}`)));
      for (const id of ids) made.delete(id);
      // Until every class is over, not just its VMs: the next measurement starts on a quiet stack.
      await until(
        'every class ended and its instances deleted',
        async () =>
          local.standin.instances().length === 0 &&
          (await Promise.all(ids.map(statusOf))).every((st) => st === 'ended'),
        60_000,
      );
    },
    async stop() {
      unsubscribe('http.server.request.start', onRequest);
      unsubscribe('http.server.response.finish', onFinish);
      WriteBatch.prototype.commit = commit;
      Firestore.prototype.runTransaction = runTransaction;
      await vmPubsub.close();
      await local.stop();
    },
  };
}

/**
 * The local stack booting its VMs for real on this machine's Docker (no sweep), stopped by
 * `cleanups`, with a JSON caller of its API: the VM benches' common start.
 */
export async function startBootingStack(
  env: { projectId: string; firestoreHost: string; pubsubHost: string },
  cleanups: Array<() => Promise<void>>,
) {
  const local = await startLocalStack({
    ...env,
    port: 0,
    boot: true,
    sweepEveryMs: 0,
    say: () => undefined,
  });
  cleanups.push(() => local.stop());
  const call = async <T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const res = await fetch(`${local.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  return { local, call };
}
