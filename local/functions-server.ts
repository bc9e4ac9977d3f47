import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import '../functions/index.ts';
import { TOPICS, type Topic } from '../shared/topics.ts';

/** Which function each topic's push subscription reaches, as deployed by deploy.sh. */
const TOPIC_FUNCTIONS: Record<Topic, string> = {
  [TOPICS.workshopStarted]: 'onWorkshopStarted',
  [TOPICS.vmReady]: 'onVmReady',
  [TOPICS.workshopEnded]: 'onWorkshopEnded',
  [TOPICS.workshopSweep]: 'sweep',
};

/** A malformed escape names no topic (rather than throwing out of the request handler). */
function safeDecode(component: string): string | undefined {
  try {
    return decodeURIComponent(component);
  } catch {
    return undefined;
  }
}

/** How long close() lets running handlers finish. */
const DRAIN_MS = 10_000;

export interface FunctionsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves every function on one port through the Functions Framework itself: `/workshops…` and
 * `/join` for the HTTP functions, `/projects/P/topics/T` for push deliveries of topic T (the
 * framework turns such a push body into a CloudEvent).
 */
export async function startFunctionsServer(port = 0): Promise<FunctionsServer> {
  const servers = new Map<string, http.Server>();
  const serverFor = (name: string) => {
    let server = servers.get(name);
    if (!server) {
      server = getTestServer(name);
      servers.set(name, server);
    }
    return server;
  };
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const front = http.createServer((req, res) => {
    inFlight++;
    res.once('close', () => {
      if (--inFlight === 0) drained?.();
    });
    const path = (req.url ?? '/').split('?')[0]!;
    const topic = /^\/projects\/[^/]+\/topics\/([^/]+)$/.exec(path)?.[1];
    let target: string | undefined;
    if (topic) target = TOPIC_FUNCTIONS[safeDecode(topic) as Topic];
    else if (path === '/workshops' || path.startsWith('/workshops/')) target = 'workshops';
    // The console, at the root as the workshops function serves it deployed.
    else if (path === '/' || path.startsWith('/assets/')) target = 'workshops';
    else if (path === '/join' || path.startsWith('/join/')) target = 'join';
    else if (path === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
      return;
    }
    if (!target) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such route' } }));
      return;
    }
    serverFor(target).emit('request', req, res);
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (front.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    // Stop taking requests, let the handlers running finish (bounded), then drop the
    // connections: the clients they use are closed right after, and a handler cut off
    // half-way would only log errors about them.
    close: async () => {
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      front.closeIdleConnections();
      if (inFlight > 0) {
        const idle = new Promise<void>((resolve) => (drained = resolve));
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([idle, new Promise((r) => (timer = setTimeout(r, DRAIN_MS)))]);
        clearTimeout(timer);
      }
      front.closeAllConnections();
      await closed;
    },
  };
}
