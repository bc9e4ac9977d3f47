import { PubSub } from '@google-cloud/pubsub';
import type { ComputeStandin } from '../../local/compute-standin.ts';
import type { FunctionsServer } from '../../local/functions-server.ts';
import { startLocalStack, type LocalStack } from '../../local/stack.ts';
import { services, type Services } from '../../shared/services.ts';
import type { Topic } from '../../shared/topics.ts';
import { emulators } from './emulators.ts';

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
  /** Publishes through the Pub/Sub emulator; its push subscription delivers it. */
  publish(topic: Topic, payload: unknown): Promise<void>;
  close(): Promise<void>;
}

let pushCounter = 0;

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

  return {
    url: functions.url,
    local,
    projectId: env.projectId,
    standin,
    functions,
    services: s,
    async api(method, path, body, headers = {}) {
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
    },
    async push(topic, payload, messageId = `m-${++pushCounter}`) {
      const data = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
      const res = await fetch(`${functions.url}/projects/${env.projectId}/topics/${topic}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          subscription: `projects/${env.projectId}/subscriptions/${topic}.push`,
          message: {
            data: data.toString('base64'),
            messageId,
            publishTime: new Date().toISOString(),
          },
        }),
      });
      await res.arrayBuffer();
      return res.status;
    },
    async publish(topic, payload) {
      await pubsub.topic(topic).publishMessage({ json: payload });
    },
    async close() {
      await pubsub.close();
      await local.stop();
    },
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
