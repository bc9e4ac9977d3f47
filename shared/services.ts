import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { EventBus } from './bus.ts';
import { IdTokenVerifier } from './id-token.ts';
import { ComputeProvisioner, type Provisioner } from './compute.ts';
import { loadConfig, type Config } from './config.ts';
import { Store } from './store.ts';

/** What the functions talk to. Built once per instance, on first use, from the environment. */
export interface Services {
  config: Config;
  store: Store;
  bus: EventBus;
  compute: Provisioner;
  /** Checks instructors' ID tokens; holds the issuers' keys between calls. */
  idTokens: IdTokenVerifier;
  now(): Date;
}

let current: Services | undefined;

export function createServices(config: Config = loadConfig()): Services {
  return {
    config,
    store: new Store(new Firestore({ projectId: config.project, ignoreUndefinedProperties: true })),
    bus: new EventBus(new PubSub({ projectId: config.project })),
    compute: new ComputeProvisioner({
      project: config.project,
      sourceImage: config.vm.sourceImage,
      diskSizeGb: config.vm.diskSizeGb,
      serviceAccount: config.vm.serviceAccount,
      network: config.vm.network,
      subnetwork: config.vm.subnetwork,
      endpoint: config.computeEndpoint,
      operationTimeoutMs: config.operationTimeoutMs,
    }),
    idTokens: new IdTokenVerifier(config.auth.issuers, config.auth.audiences),
    now: () => new Date(),
  };
}

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
  const s = setServices(undefined);
  if (!s) return;
  await Promise.allSettled([
    s.bus.close(),
    s.store.db.terminate(),
    (s.compute as { close?: () => Promise<void> }).close?.(),
  ]);
}
