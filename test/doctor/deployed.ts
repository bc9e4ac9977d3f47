/**
 * A project as deploy.sh leaves it, for the doctor's tests: deploy.sh runs against the recording
 * gcloud stand-in (test/deploy/fake-gcloud.sh), and what that recorded (resources with the flags
 * they were given, IAM bindings, composite indexes) is put where the doctor reads it: the REST
 * stand-in (as the Google APIs describe those resources) and the Pub/Sub emulator.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PubSub } from '@google-cloud/pubsub';
import { newState, runDeploy } from '../deploy/harness.ts';
import type { GoogleStandin } from './google-standin.ts';

/**
 * Runs deploy.sh on `project` against the stand-ins, with `env` added to its settings; answers the
 * directory of their state.
 */
export async function deploy(project: string, env: Record<string, string> = {}): Promise<string> {
  const state = newState();
  const run = await runDeploy({ ...env, GCP_PROJECT: project }, { state });
  if (run.code !== 0) throw new Error(`deploy.sh failed (${run.code}):\n${run.stderr}`);
  return state;
}

/** The flags a recorded resource was given (the last value of each), and its bare lines. */
function recorded(state: string, key: string): Map<string, string> {
  const flags = new Map<string, string>();
  for (const line of readFileSync(join(state, 'res', key), 'utf8').split('\n')) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(line);
    if (m) flags.set(m[1]!, m[2] ?? '');
    else if (line) flags.set(line, '');
  }
  return flags;
}

/** The names of the recorded resources of one kind (`pubsub_topics`, `functions`, ...). */
function namesOf(state: string, kind: string): string[] {
  return readdirSync(join(state, 'res'))
    .filter((key) => key.startsWith(`${kind}_`))
    .map((key) => key.slice(kind.length + 1));
}

/** `--set-env-vars=^|^A=1|B=2` (gcloud's escaping with a chosen delimiter) as an object. */
function envVars(flag: string | undefined): Record<string, string> {
  if (!flag) return {};
  const m = /^\^(.)\^(.*)$/s.exec(flag);
  const [delimiter, list] = m ? [m[1]!, m[2]!] : [',', flag];
  return Object.fromEntries(
    list
      .split(delimiter)
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
}

/**
 * Puts what deploy.sh made (recorded in `state`) into the stand-in and the Pub/Sub emulator,
 * replacing what either held for `project`. Composite indexes are READY: built, as they are
 * some minutes after deploy.sh created them.
 */
export async function load(
  state: string,
  project: string,
  region: string,
  standin: GoogleStandin,
  pubsub: PubSub,
): Promise<void> {
  const location = `projects/${project}/locations/${region}`;
  const topicName = (t: string) => `projects/${project}/topics/${t}`;
  const set = (path: string, body: unknown) => standin.resources.set(path, body);
  standin.resources.clear();

  for (const name of namesOf(state, 'scheduler_jobs')) {
    const job = recorded(state, `scheduler_jobs_${name}`);
    set(`/v1/${location}/jobs/${name}`, {
      name: `${location}/jobs/${name}`,
      schedule: job.get('schedule'),
      state: job.has('state=PAUSED') ? 'PAUSED' : 'ENABLED',
      pubsubTarget: { topicName: topicName(job.get('topic') ?? ''), data: 'e30=' },
    });
  }

  const functions = namesOf(state, 'functions');
  for (const name of functions) {
    const fn = recorded(state, `functions_${name}`);
    const service = existsSync(join(state, 'res', `run_services_${name.toLowerCase()}`));
    const topic = fn.get('trigger-topic');
    set(`/v2/${location}/functions/${name}`, {
      name: `${location}/functions/${name}`,
      state: fn.has('state=FAILED') ? 'FAILED' : 'ACTIVE',
      buildConfig: { runtime: fn.get('runtime'), entryPoint: fn.get('entry-point') },
      serviceConfig: {
        environmentVariables: envVars(fn.get('set-env-vars')),
        maxInstanceRequestConcurrency: Number(fn.get('concurrency') ?? 1),
        ...(service ? { service: `${location}/services/${name.toLowerCase()}` } : {}),
      },
      ...(topic
        ? {
            eventTrigger: {
              pubsubTopic: topicName(topic),
              retryPolicy: fn.has('retry') ? 'RETRY_POLICY_RETRY' : 'RETRY_POLICY_DO_NOT_RETRY',
            },
          }
        : {}),
    });
  }

  // IAM policies of the Cloud Run services, and of the Cloud DNS zones deploy.sh granted on (the
  // zones themselves are the operator's: the tests put them in), from the recorded bindings.
  const bindings = readFileSync(join(state, 'iam'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('\t') as [string, string, string]);
  const policy = (resource: string) => {
    const roles = new Map<string, string[]>();
    for (const [key, member, role] of bindings) {
      if (key === resource) roles.set(role, [...(roles.get(role) ?? []), member]);
    }
    return {
      version: 1,
      bindings: [...roles].map(([role, members]) => ({ role, members })),
      etag: 'BwY=',
    };
  };
  for (const service of namesOf(state, 'run_services')) {
    set(`/v2/${location}/services/${service}:getIamPolicy`, policy(`run_services_${service}`));
  }
  const zones = new Set(
    bindings.map(([key]) => key).filter((key) => key.startsWith('dns_managed-zones_')),
  );
  for (const key of zones) {
    const zone = key.slice('dns_managed-zones_'.length);
    set(`/dns/v1/projects/${project}/managedZones/${zone}:getIamPolicy`, policy(key));
  }

  const repository = namesOf(state, 'artifacts_repositories')[0];
  for (const image of namesOf(state, 'artifacts_docker_images')) {
    // The digest fake-gcloud.sh answers for the image: a hash of its resource key.
    const digest = createHash('sha256').update(`artifacts_docker_images_${image}`).digest('hex');
    const name = `${location}/repositories/${repository}/dockerImages/${image.slice(0, image.indexOf(':'))}@sha256:${digest}`;
    set(`/v1/${name}`, { name });
  }

  for (const name of namesOf(state, 'compute_firewall-rules')) {
    const rule = recorded(state, `compute_firewall-rules_${name}`);
    const ports = new Map<string, string[]>();
    for (const allow of (rule.get('allow') ?? '').split(',')) {
      const [protocol, port] = allow.split(':') as [string, string | undefined];
      ports.set(protocol, [...(ports.get(protocol) ?? []), ...(port ? [port] : [])]);
    }
    set(`/compute/v1/projects/${project}/global/firewalls/${name}`, {
      name,
      allowed: [...ports].map(([IPProtocol, p]) => ({
        IPProtocol,
        ...(p.length ? { ports: p } : {}),
      })),
      targetServiceAccounts: (rule.get('target-service-accounts') ?? '').split(','),
      disabled: false,
    });
  }

  const indexes = readFileSync(join(state, 'indexes'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const index = JSON.parse(line) as { name: string };
      const name = index.name.replace(/^projects\/[^/]+\//, `projects/${project}/`);
      return { ...index, name, state: 'READY' };
    });
  set(`/v1/projects/${project}/databases/(default)/collectionGroups/-/indexes`, { indexes });

  // Pub/Sub: the topics, then the subscriptions (the Eventarc ones on their function's topic).
  for (const sub of (await pubsub.getSubscriptions())[0]) await sub.delete();
  for (const topic of (await pubsub.getTopics())[0]) await topic.delete();
  for (const topic of namesOf(state, 'pubsub_topics')) await pubsub.createTopic(topic);
  for (const name of namesOf(state, 'pubsub_subscriptions')) {
    const sub = recorded(state, `pubsub_subscriptions_${name}`);
    const fn = functions.find((f) => name.startsWith(`eventarc-${region}-${f}-`));
    const topic =
      sub.get('topic') ?? (fn && recorded(state, `functions_${fn}`).get('trigger-topic'));
    if (!topic) throw new Error(`subscription ${name}: no topic recorded`);
    const deadLetterTopic = sub.get('dead-letter-topic');
    await pubsub.topic(topic).createSubscription(name, {
      ...(deadLetterTopic
        ? {
            deadLetterPolicy: {
              deadLetterTopic: topicName(deadLetterTopic),
              maxDeliveryAttempts: Number(sub.get('max-delivery-attempts')),
            },
          }
        : {}),
    });
  }
}
