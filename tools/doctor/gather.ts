/**
 * Reads what `npm run doctor` checks, with the Google client libraries. Every read is independent:
 * one that fails becomes an Error in the facts, not a crash, so the table still shows the rest.
 * With `endpoint`, the REST clients talk plain HTTP without credentials to a stand-in (tests);
 * Pub/Sub follows PUBSUB_EMULATOR_HOST as usual.
 */
import { ArtifactRegistryClient } from '@google-cloud/artifact-registry';
import { FirewallsClient } from '@google-cloud/compute';
import { v2 as functionsV2, protos as functionsProtos } from '@google-cloud/functions';
import { PubSub } from '@google-cloud/pubsub';
import { CloudSchedulerClient, protos as schedulerProtos } from '@google-cloud/scheduler';
import { standinClientOptions } from '../../shared/compute.ts';
import {
  DEAD_LETTER,
  DEAD_LETTER_SUB,
  FIREWALL_RULES,
  FUNCTIONS,
  imageReferences,
  SCHEDULER_JOB,
  TOPICS,
  type Facts,
} from './checks.ts';

export interface Target {
  project: string;
  region: string;
  endpoint?: { host: string; port: number };
}

const NOT_FOUND = 5;
const NO_RETRY = { retry: null };

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

export async function gather(target: Target): Promise<Facts> {
  const { project, region, endpoint } = target;
  const options = () =>
    endpoint ? standinClientOptions(endpoint) : { projectId: project, fallback: true as const };
  const scheduler = new CloudSchedulerClient(options());
  const functions = new functionsV2.FunctionServiceClient(options());
  const registry = new ArtifactRegistryClient(options());
  const firewalls = new FirewallsClient(options());
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
            env: { ...(f.serviceConfig?.environmentVariables ?? {}) },
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
    const facts: Facts = {
      project,
      job: await job,
      topics: Object.fromEntries(await topics),
      deadLetterSub: await deadLetterSub,
      functions: Object.fromEntries(await fns),
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
    return facts;
  } finally {
    await Promise.allSettled([
      scheduler.close(),
      functions.close(),
      registry.close(),
      firewalls.close(),
      pubsub.close(),
    ]);
  }
}
