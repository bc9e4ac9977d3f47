import { Firestore } from '@google-cloud/firestore';
import type { EventBus } from './bus.ts';
import type { IdTokenVerifier } from './id-token.ts';
import type { ComputeProvisioner, Provisioner } from './compute.ts';
import type { SeatDns } from './dns.ts';
import { loadConfig, type Config } from './config.ts';
import { Store } from './store.ts';

/**
 * What the functions talk to. Built once per instance from the environment; each client is made on
 * its first use, and the Pub/Sub, Compute and ID-token libraries are loaded only then: an instance
 * of `join` never loads them, and a cold start pays only for the clients its function calls.
 */
export interface Services {
  config: Config;
  store: Store;
  bus: Pick<EventBus, 'publish'>;
  compute: Provisioner;
  /** The VMs' names under SEAT_DOMAIN (Cloud DNS); null when the operator has no seat domain. */
  dns: Pick<SeatDns, 'setAddress' | 'removeAddress' | 'listAddresses'> | null;
  /** Checks instructors' ID tokens; holds the issuers' keys between calls. */
  idTokens: Pick<IdTokenVerifier, 'verify'>;
  now(): Date;
  /** Closes the clients made so far. */
  close(): Promise<void>;
}

/** Loads and builds a client on the first call of `get`; a failed load is tried again. */
function onFirstUse<T>(load: () => Promise<T>) {
  let made: Promise<T> | undefined;
  return {
    get: () =>
      (made ??= load().catch((error: unknown) => {
        made = undefined;
        throw error;
      })),
    /** The client, when one was made. */
    made: () => made?.catch(() => undefined),
  };
}

export function createServices(config: Config = loadConfig()): Services {
  let store: Store | undefined;
  const bus = onFirstUse(async () => {
    const [{ PubSub }, { EventBus }] = await Promise.all([
      import('@google-cloud/pubsub'),
      import('./bus.ts'),
    ]);
    return new EventBus(new PubSub({ projectId: config.project }));
  });
  const compute = onFirstUse(async (): Promise<ComputeProvisioner> => {
    const { ComputeProvisioner } = await import('./compute.ts');
    return new ComputeProvisioner({
      project: config.project,
      sourceImage: config.vm.sourceImage,
      diskSizeGb: config.vm.diskSizeGb,
      serviceAccount: config.vm.serviceAccount,
      network: config.vm.network,
      subnetwork: config.vm.subnetwork,
      endpoint: config.computeEndpoint,
      operationTimeoutMs: config.operationTimeoutMs,
    });
  });
  const seatDomain = config.seatDomain;
  const dns = onFirstUse(async (): Promise<SeatDns> => {
    const { SeatDns } = await import('./dns.ts');
    // The stand-in that plays Compute Engine locally plays Cloud DNS too.
    return new SeatDns({
      project: config.project,
      zone: seatDomain?.zone ?? '',
      endpoint: config.computeEndpoint,
    });
  });
  const idTokens = onFirstUse(async () => {
    const { IdTokenVerifier } = await import('./id-token.ts');
    return new IdTokenVerifier(config.auth.issuers, config.auth.audiences);
  });
  return {
    config,
    get store() {
      store ??= new Store(
        new Firestore({ projectId: config.project, ignoreUndefinedProperties: true }),
      );
      return store;
    },
    bus: { publish: async (...args) => (await bus.get()).publish(...args) },
    compute: {
      insert: async (...args) => (await compute.get()).insert(...args),
      delete: async (...args) => (await compute.get()).delete(...args),
      get: async (...args) => (await compute.get()).get(...args),
      list: async (...args) => (await compute.get()).list(...args),
      regionQuotas: async (...args) => (await compute.get()).regionQuotas(...args),
      updateMetadata: async (...args) => (await compute.get()).updateMetadata(...args),
    },
    dns: seatDomain
      ? {
          setAddress: async (...args) => (await dns.get()).setAddress(...args),
          removeAddress: async (...args) => (await dns.get()).removeAddress(...args),
          listAddresses: async (...args) => (await dns.get()).listAddresses(...args),
        }
      : null,
    idTokens: { verify: async (...args) => (await idTokens.get()).verify(...args) },
    now: () => new Date(),
    async close() {
      await Promise.allSettled([
        store?.db.terminate(),
        bus.made()?.then((b) => b?.close()),
        compute.made()?.then((c) => c?.close()),
        dns.made()?.then((d) => d?.close()),
      ]);
    },
  };
}

let current: Services | undefined;

export function services(): Services {
  current ??= createServices();
  return current;
}

/** Replaces the services, for tests and the local stack; returns the previous ones. */
export function setServices(next: Services | undefined): Services | undefined {
  const previous = current;
  current = next;
  return previous;
}

/** Closes the clients of the current services (tests and the local stack, at shutdown). */
export async function closeServices(): Promise<void> {
  await setServices(undefined)?.close();
}
