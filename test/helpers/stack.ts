import { PubSub } from '@google-cloud/pubsub';
import type { ComputeStandin } from '../../local/compute-standin.ts';
import type { FunctionsServer } from '../../local/functions-server.ts';
import { startLocalStack, type LocalStack } from '../../local/stack.ts';
import { services, type Services } from '../../shared/services.ts';
import type { Topic } from '../../shared/topics.ts';
import type { VmReadyEvent } from '../../shared/schemas.ts';
import { beforeEmulatorsStop, emulators } from './emulators.ts';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export interface TestStack {
  url: string;
  local: LocalStack;
  projectId: string;
  standin: ComputeStandin;
  functions: FunctionsServer;
  services: Services;
  api<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiResponse<T>>;
  /** Posts a push delivery straight to the functions server, as Pub/Sub would. */
  push(topic: Topic, payload: unknown, messageId?: string): Promise<number>;
  /**
   * One message delivered as Pub/Sub does: a 5xx (the handler asking for a retry) is delivered
   * again, with the same message id, up to 5 times. Returns the last status; says on stderr why
   * an attempt failed. For tests of what a message does, not of how a failure is answered.
   */
  deliver(topic: Topic, payload: unknown): Promise<number>;
  /** Publishes through the Pub/Sub emulator; its push subscription delivers it. */
  publish(topic: Topic, payload: unknown): Promise<void>;
  /** The stand-in's instances labelled for this workshop, by name. */
  instancesOf(id: string): ReturnType<ComputeStandin['instances']>;
  /** GET /workshops/{id}, as the portal sees it. */
  workshop(id: string): Promise<any>;
  /** Polls GET /workshops/{id} until it has this status; returns it. */
  untilStatus(id: string, status: string): Promise<any>;
  /** The `vm.ready` reports the workshop's VMs would publish, from what they were given. */
  readyReports(id: string): Promise<VmReadyEvent[]>;
  /**
   * Stops the stack (idempotent; also done for the file before its emulators stop). Fails when
   * the Compute stand-in still holds an instance: a VM the tests leave running is a leak.
   */
  close(): Promise<void>;
}

/**
 * The headers of learner `i` joining from a network of their own, as the portal forwards it:
 * learners of a burst do not share one address's join limits.
 */
export const fromLearner = (i: number) => ({
  'x-clarateach-client-ip': `198.18.${i >> 8}.${i & 255}`,
});

let pushCounter = 0;

/** A push delivery straight to the functions server at `url`, as Pub/Sub would post it. */
async function pushTo(
  url: string,
  projectId: string,
  topic: Topic,
  payload: unknown,
  messageId = `m-${++pushCounter}`,
): Promise<{ status: number; text: string }> {
  const data = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const res = await fetch(`${url}/projects/${projectId}/topics/${topic}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      subscription: `projects/${projectId}/subscriptions/${topic}.push`,
      message: { data: data.toString('base64'), messageId, publishTime: new Date().toISOString() },
    }),
  });
  return { status: res.status, text: await res.text() };
}

/**
 * The whole system in this test process, on this file's emulators: every function behind the
 * Functions Framework, push subscriptions for every topic, and the local Compute stand-in, whose
 * instances boot with the real startup script only when `boot` is set.
 */
export async function startTestStack(opts: { boot?: boolean } = {}): Promise<TestStack> {
  const env = await emulators();
  process.env.CT_LOG_LEVEL ??= 'silent';
  const local = await startLocalStack({
    projectId: env.projectId,
    port: 0,
    firestoreHost: env.firestoreHost,
    pubsubHost: env.pubsubHost,
    boot: opts.boot ?? false,
    sweepEveryMs: 0,
  });
  const { functions, standin } = local;
  const pubsub = new PubSub({ projectId: env.projectId });
  const s = services();
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      try {
        // No VM outlives its class: every file must leave the stand-in empty (teardowns still
        // in flight get a moment to finish).
        await eventually('no instance left', () => standin.instances().length === 0).catch(() => {
          const names = standin.instances().map((i) => i.name);
          throw new Error(`the tests left instances in the Compute stand-in: ${names.join(', ')}`);
        });
      } finally {
        await pubsub.close();
        await local.stop();
      }
    })());
  beforeEmulatorsStop(close);

  const api: TestStack['api'] = async (method, path, body, headers = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${functions.url}${path}`, init);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: leave the text
    }
    return { status: res.status, body: parsed as any, text, headers: res.headers };
  };
  const workshop = async (id: string) => (await api('GET', `/workshops/${id}`)).body;
  const post = (topic: Topic, payload: unknown, messageId?: string) =>
    pushTo(functions.url, env.projectId, topic, payload, messageId);

  return {
    url: functions.url,
    local,
    api,
    workshop,
    instancesOf: (id) =>
      standin
        .instances()
        .filter((i) => i.labels.workshop === id)
        .sort((a, b) => a.name.localeCompare(b.name)),
    untilStatus: (id, status) =>
      eventually(`workshop ${id} ${status}`, async () => {
        const w = await workshop(id);
        return w.status === status ? w : undefined;
      }),
    async readyReports(id) {
      const [secrets, vms] = await Promise.all([s.store.getSecrets(id), s.store.getVms(id)]);
      return vms
        .sort((a, b) => a.index - b.index)
        .map((vm, n) => ({
          workshopId: id,
          vmName: vm.name,
          state: 'ready' as const,
          externalIp: `198.51.100.${n + 1}`,
          internalIp: `10.0.0.${n + 1}`,
          httpPort: 80,
          seatsReady: vm.seatCount,
          readyToken: secrets!.readyTokens[vm.name]!,
        }));
    },
    projectId: env.projectId,
    standin,
    functions,
    services: s,
    async push(topic, payload, messageId) {
      return (await post(topic, payload, messageId)).status;
    },
    async deliver(topic, payload) {
      const messageId = `m-${++pushCounter}`;
      for (let attempt = 1; ; attempt++) {
        const { status, text } = await post(topic, payload, messageId);
        if (status < 500 || attempt === 5) return status;
        // The Functions Framework answers a failed event with its error's message (not in
        // production); Pub/Sub would redeliver after its backoff.
        console.error(`${topic} ${messageId}: attempt ${attempt} answered ${status}: ${text}`);
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
    },
    async publish(topic, payload) {
      await pubsub.topic(topic).publishMessage({ json: payload });
    },
    close,
  };
}

/** Polls until `check` returns a value (not undefined/false), or fails after `ms`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
