/**
 * Reads what `npm run doctor` checks, with the Google client libraries. Every read is independent:
 * one that fails becomes an Error in the facts, not a crash, so the table still shows the rest.
 * With `endpoint`, the REST clients talk plain HTTP without credentials to a stand-in (tests);
 * Pub/Sub follows PUBSUB_EMULATOR_HOST as usual.
 */
import { ArtifactRegistryClient } from '@google-cloud/artifact-registry';
import { FirewallsClient } from '@google-cloud/compute';
import { v2 as functionsV2, protos as functionsProtos } from '@google-cloud/functions';
import { FirestoreAdminClient, protos as firestoreProtos } from '@google-cloud/firestore-api';
import { PubSub } from '@google-cloud/pubsub';
import { ServicesClient } from '@google-cloud/run';
import { CloudSchedulerClient, protos as schedulerProtos } from '@google-cloud/scheduler';
import { cloudDns } from '../../shared/dns.ts';
import { standinClientOptions } from '../../shared/compute.ts';
import {
  DEAD_LETTER,
  DEAD_LETTER_SUB,
  DNS_ADMIN_ROLE,
  FIREWALL_RULES,
  FUNCTIONS,
  imageReferences,
  indexKey,
  INVOKER_ROLE,
  RETRIED,
  SCHEDULER_JOB,
  seatDomain,
  TOPICS,
  type Facts,
  type Subscription,
} from './checks.ts';

export interface Target {
  project: string;
  region: string;
  portalServiceAccount?: string;
  endpoint?: { host: string; port: number };
}

const NOT_FOUND = 5;
const NO_RETRY = { retry: null };
const DNS_TIMEOUT_MS = 30_000;

/** The value, null for NOT_FOUND, an Error for anything else. */
async function attempt<T>(read: () => Promise<T>): Promise<T | null | Error> {
  try {
    return await read();
  } catch (err) {
    if ((err as { code?: unknown }).code === NOT_FOUND) return null;
    return err instanceof Error ? err : new Error(String(err));
  }
}

const JOB_STATE = schedulerProtos.google.cloud.scheduler.v1.Job.State;
const FUNCTION_STATE = functionsProtos.google.cloud.functions.v2.Function.State;
const INDEX = firestoreProtos.google.firestore.admin.v1.Index;

/** An enum as its name, whether the client hands over the name or the number. */
function enumName(value: unknown, names: Record<number, string>): string {
  if (typeof value === 'number') return names[value] ?? String(value);
  return typeof value === 'string' ? value : 'STATE_UNSPECIFIED';
}

/** `projects/P/locations/L/repositories/R/dockerImages/IMAGE@sha256:…` of L-docker.pkg.dev/P/R/IMAGE@… */
export function dockerImageName(ref: string): string | undefined {
  const m = /^([a-z0-9-]+)-docker\.pkg\.dev\/([^/]+)\/([^/]+)\/(.+@sha256:[0-9a-f]{64})$/.exec(ref);
  if (!m) return undefined;
  const [, location, project, repository, image] = m;
  return `projects/${project}/locations/${location}/repositories/${repository}/dockerImages/${image!.replace(/\//g, '%2F')}`;
}

type DnsCall = (
  method: 'GET' | 'POST',
  zone: string,
  suffix?: string,
  data?: unknown,
) => Promise<unknown>;

/**
 * Cloud DNS v1 over REST, for want of a client library of it here: with Application Default
 * Credentials like the other clients, or plain HTTP without credentials to the stand-in. A 404
 * rejects with NOT_FOUND's code, so that `attempt` answers null for it.
 */
function dnsClient(project: string, endpoint: Target['endpoint']): DnsCall {
  const { client, zones } = cloudDns(project, endpoint);
  return async (method, zone, suffix = '', data) => {
    const res = await client.request<{ error?: { message?: string } } | undefined>({
      url: `${zones}${encodeURIComponent(zone)}${suffix}`,
      method,
      ...(data === undefined ? {} : { data }),
      retry: false,
      timeout: DNS_TIMEOUT_MS,
      validateStatus: () => true,
    });
    if (res.status === 404) throw Object.assign(new Error('not found'), { code: NOT_FOUND });
    if (res.status !== 200)
      throw new Error(`HTTP ${res.status}: ${res.data?.error?.message ?? res.statusText}`);
    return res.data;
  };
}

/** The seat zone as Cloud DNS describes it, and who holds DNS_ADMIN_ROLE on it unconditioned. */
async function readSeatZone(
  dns: DnsCall,
  zone: string,
): Promise<Pick<Facts, 'seatZone' | 'seatZoneAdmins'>> {
  const [seatZone, seatZoneAdmins] = await Promise.all([
    attempt(async () => {
      const z = (await dns('GET', zone)) as { dnsName?: string; visibility?: string };
      return { dnsName: z.dnsName ?? '', visibility: z.visibility ?? 'of unknown visibility' };
    }),
    attempt(async () => {
      // Version 3 shows conditions, so that a conditioned binding does not pass for a plain one.
      const policy = (await dns('POST', zone, ':getIamPolicy', {
        options: { requestedPolicyVersion: 3 },
      })) as { bindings?: { role?: string; members?: string[]; condition?: unknown }[] };
      return (policy.bindings ?? [])
        .filter((b) => b.role === DNS_ADMIN_ROLE && !b.condition)
        .flatMap((b) => b.members ?? []);
    }),
  ]);
  return { seatZone, seatZoneAdmins };
}

export async function gather(target: Target): Promise<Facts> {
  const { project, region, endpoint, portalServiceAccount } = target;
  const options = () =>
    endpoint ? standinClientOptions(endpoint) : { projectId: project, fallback: true as const };
  const scheduler = new CloudSchedulerClient(options());
  const functions = new functionsV2.FunctionServiceClient(options());
  const registry = new ArtifactRegistryClient(options());
  const firewalls = new FirewallsClient(options());
  const run = new ServicesClient(options());
  const firestoreAdmin = new FirestoreAdminClient(options());
  const pubsub = new PubSub({ projectId: project });
  const location = `projects/${project}/locations/${region}`;
  try {
    const job = attempt(async () => {
      const [j] = await scheduler.getJob({ name: `${location}/jobs/${SCHEDULER_JOB}` }, NO_RETRY);
      return {
        state: enumName(j.state, JOB_STATE),
        schedule: j.schedule ?? '',
        topic: j.pubsubTarget?.topicName ?? '',
      };
    });
    const topics = Promise.all(
      [...TOPICS, DEAD_LETTER].map(async (t) => {
        const found = await attempt(async () => (await pubsub.topic(t).exists())[0]);
        return [t, found ?? false] as const;
      }),
    );
    const deadLetterSub = attempt(async () => {
      const [sub] = await pubsub.subscription(DEAD_LETTER_SUB).getMetadata();
      return { topic: sub.topic ?? '' };
    });
    const fns = Promise.all(
      FUNCTIONS.map(async (name) => {
        const fn = await attempt(async () => {
          const [f] = await functions.getFunction(
            { name: `${location}/functions/${name}` },
            NO_RETRY,
          );
          return {
            state: enumName(f.state, FUNCTION_STATE),
            runtime: f.buildConfig?.runtime ?? '',
            // Unset reads as 0 (proto3's default): the service's default, one at a time.
            concurrency: f.serviceConfig?.maxInstanceRequestConcurrency || 1,
            env: { ...(f.serviceConfig?.environmentVariables ?? {}) },
            service: f.serviceConfig?.service ?? '',
            topic: f.eventTrigger?.pubsubTopic ?? '',
          };
        });
        return [name, fn] as const;
      }),
    );
    const rules = Promise.all(
      Object.keys(FIREWALL_RULES).map(async (name) => {
        const rule = await attempt(async () => {
          const [r] = await firewalls.get({ project, firewall: name }, NO_RETRY);
          return {
            allowed: (r.allowed ?? []).flatMap((a) =>
              (a.ports?.length ? a.ports : ['']).map((p) => `${a.IPProtocol}${p ? `:${p}` : ''}`),
            ),
            disabled: r.disabled === true,
            targetServiceAccounts: r.targetServiceAccounts ?? [],
          };
        });
        return [name, rule] as const;
      }),
    );
    const indexes = attempt(async () => {
      const [list] = await firestoreAdmin.listIndexes(
        { parent: `projects/${project}/databases/(default)/collectionGroups/-` },
        NO_RETRY,
      );
      return Object.fromEntries(
        list.map((i) => [
          indexKey(
            i.name?.split('/').at(-3) ?? '',
            enumName(i.queryScope, INDEX.QueryScope),
            (i.fields ?? []).map((f) => ({
              fieldPath: f.fieldPath ?? '',
              mode: f.order
                ? enumName(f.order, INDEX.IndexField.Order)
                : enumName(f.arrayConfig, INDEX.IndexField.ArrayConfig),
            })),
          ),
          enumName(i.state, INDEX.State),
        ]),
      );
    });
    const functionFacts = Object.fromEntries(await fns);
    const invokers = Promise.all(
      FUNCTIONS.map(async (name) => {
        const fn = functionFacts[name];
        if (fn instanceof Error) return [name, fn] as const;
        if (!fn?.service) return [name, null] as const;
        const members = await attempt(async () => {
          const [policy] = await run.getIamPolicy({ resource: fn.service }, NO_RETRY);
          return (policy.bindings ?? [])
            .filter((b) => b.role === INVOKER_ROLE && !b.condition)
            .flatMap((b) => b.members ?? []);
        });
        return [name, members] as const;
      }),
    );
    const triggerSubscriptions = Promise.all(
      RETRIED.map(async (name) => {
        const fn = functionFacts[name];
        if (fn instanceof Error) return [name, fn] as const;
        if (!fn?.topic) return [name, null] as const;
        const subs = await attempt(async () => {
          const [found] = await pubsub.topic(fn.topic).getSubscriptions();
          return Promise.all(
            found.map(async (sub): Promise<Subscription> => {
              const [meta] = await sub.getMetadata();
              return {
                name: sub.name,
                deadLetterTopic: meta.deadLetterPolicy?.deadLetterTopic ?? '',
                maxDeliveryAttempts: meta.deadLetterPolicy?.maxDeliveryAttempts ?? 0,
              };
            }),
          );
        });
        return [name, subs] as const;
      }),
    );
    const facts: Facts = {
      project,
      ...(portalServiceAccount ? { portalServiceAccount } : {}),
      job: await job,
      topics: Object.fromEntries(await topics),
      deadLetterSub: await deadLetterSub,
      functions: functionFacts,
      invokers: Object.fromEntries(await invokers),
      triggerSubscriptions: Object.fromEntries(await triggerSubscriptions),
      indexes: (await indexes) ?? new Error('no Firestore database (default)'),
      images: {},
      firewalls: Object.fromEntries(await rules),
    };
    for (const ref of Object.values(imageReferences(facts))) {
      const name = dockerImageName(ref);
      if (!name) continue;
      const found = await attempt(async () => {
        await registry.getDockerImage({ name }, NO_RETRY);
        return true;
      });
      facts.images[ref] = found ?? false;
    }
    const { domain, zone } = seatDomain(facts);
    if (domain && zone)
      Object.assign(facts, await readSeatZone(dnsClient(project, endpoint), zone));
    return facts;
  } finally {
    await Promise.allSettled([
      scheduler.close(),
      functions.close(),
      registry.close(),
      firewalls.close(),
      run.close(),
      firestoreAdmin.close(),
      pubsub.close(),
    ]);
  }
}
