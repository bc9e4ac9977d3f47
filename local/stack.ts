import { PubSub } from '@google-cloud/pubsub';
import { startComputeStandin, type ComputeStandin } from './compute-standin.ts';
import { startEmulatorPair, type Emulator } from './emulators.ts';
import { startFunctionsServer, type FunctionsServer } from './functions-server.ts';
import { unwireTopics, wireTopics } from './pubsub-wiring.ts';
import { ensureLocalImages } from './images.ts';
import { prepareMachine } from './machine.ts';
import { localCa } from './tls-ca.ts';
import { bootInstance, type BootedInstance } from './vm-runner.ts';
import { closeServices } from '../shared/services.ts';
import { buildPages } from '../web/bundle.ts';
import { TOPICS } from '../shared/topics.ts';

export interface LocalStackOptions {
  projectId: string;
  /** The functions' port; 0 for any free one. */
  port: number;
  /** Emulators already running (host:port); started here when absent. */
  firestoreHost?: string;
  pubsubHost?: string;
  /**
   * Run the startup script for each inserted instance against this machine's Docker (the real
   * thing: Docker is installed and started, and the images built, when missing); off for
   * API-only tests.
   */
  boot: boolean;
  /** Where setup progress goes (installing, starting dockerd, building images). */
  say?: (line: string) => void;
  /** Publish `workshop.sweep` this often, as Cloud Scheduler does; 0 for never. */
  sweepEveryMs: number;
}

export interface LocalStack {
  url: string;
  projectId: string;
  standin: ComputeStandin;
  functions: FunctionsServer;
  firestoreHost: string;
  pubsubHost: string;
  /** Every instance booted so far, still running or not. */
  booted: BootedInstance[];
  stop(): Promise<void>;
}

/**
 * The whole system on this machine (DESIGN.md §7): the official emulators, the local Compute
 * Engine stand-in booting instances with the real startup script, every function behind the
 * Functions Framework, and push subscriptions wiring the topics to them.
 */
export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const owned: Emulator[] = [];
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await Promise.all(owned.map((e) => e.stop()));
  };
  try {
    if (opts.boot) await prepareMachine({ say: opts.say });
    let { firestoreHost, pubsubHost } = opts;
    if (!firestoreHost || !pubsubHost) {
      const pair = await startEmulatorPair(opts.projectId);
      owned.push(...pair.emulators);
      ({ firestoreHost, pubsubHost } = pair);
    }
    const emulatorPubsub = pubsubHost;
    const booted: BootedInstance[] = [];
    Object.assign(process.env, {
      FIRESTORE_EMULATOR_HOST: firestoreHost,
      PUBSUB_EMULATOR_HOST: pubsubHost,
      METADATA_SERVER_DETECTION: 'none',
    });
    // An operator's seat domain (SEAT_DOMAIN, say seats.localhost, which Chromium takes for
    // loopback) is a zone of the stand-in's Cloud DNS.
    const { SEAT_DOMAIN: seatDomain, SEAT_DNS_ZONE: seatZone } = process.env;
    const standin = await startComputeStandin({
      project: opts.projectId,
      ...(seatDomain && seatZone ? { dnsZones: { [seatZone]: `${seatDomain}.` } } : {}),
      onBoot: opts.boot
        ? async (instance) => {
            const vm = await bootInstance(instance, { pubsubEmulatorHost: emulatorPubsub });
            booted.push(vm);
            return vm;
          }
        : undefined,
    });
    stops.push(() => standin.stop());
    stops.push(closeServices);
    // Only what the operator did not set: the VMs run the images built here from images/.
    const images = opts.boot ? await ensureLocalImages(opts.say) : undefined;
    // The CA of the local VMs' certificates, there before any client is started to trust it.
    if (opts.boot) localCa();
    for (const [name, value] of Object.entries({
      GCP_PROJECT: opts.projectId,
      GCP_REGISTRY: 'clarateach-local',
      AUTH_MODE: 'dev',
      // Every local VM's Caddy shares loopback, each on a port of its own.
      ACCEPT_REPORTED_HTTP_PORT: 'true',
      WORKSPACE_IMAGE: images?.workspace,
      CADDY_IMAGE: images?.caddy,
      NEKO_IMAGE: images?.browser,
    })) {
      if (value === undefined) continue;
      process.env[name] ??= value;
    }
    process.env.CT_COMPUTE_ENDPOINT = `127.0.0.1:${standin.port}`;
    // The console and the join page, as `npm run build` makes them for a deploy.
    await buildPages();
    const functions = await startFunctionsServer(opts.port);
    stops.push(() => functions.close());
    stops.push(() => unwireTopics(opts.projectId));
    await wireTopics(opts.projectId, functions.url);
    if (opts.sweepEveryMs > 0) {
      const pubsub = new PubSub({ projectId: opts.projectId });
      const timer = setInterval(() => {
        pubsub
          .topic(TOPICS.workshopSweep)
          .publishMessage({ json: {} })
          .catch(() => undefined);
      }, opts.sweepEveryMs);
      stops.push(async () => {
        clearInterval(timer);
        await pubsub.close();
      });
    }
    return {
      url: functions.url,
      projectId: opts.projectId,
      standin,
      functions,
      firestoreHost,
      pubsubHost: emulatorPubsub,
      booted,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
