import { spawn } from 'node:child_process';
import { PubSub } from '@google-cloud/pubsub';
import type { ExecutionContext } from 'ava';
import { REPO } from '../deploy/harness.ts';
import { beforeEmulatorsStop, emulatorTest as test, emulators } from '../helpers/emulators.ts';
import { allRows, formatTable, FUNCTIONS } from '../../tools/doctor/checks.ts';
import { gather } from '../../tools/doctor/gather.ts';
import { startGoogleStandin, type GoogleStandin } from './google-standin.ts';

/**
 * `npm run doctor` against stand-ins of what it reads: the Pub/Sub emulator and a REST stand-in
 * for Scheduler, Functions, Artifact Registry and Compute, reached by the real client libraries.
 * A healthy project passes every check; a paused job and a missing dead-letter subscription are
 * reported as such.
 */

const REGION = 'us-central1';
const DIGEST = `sha256:${'ab'.repeat(32)}`;

/** What deploy.sh makes, as the REST APIs describe it. */
function healthy(standin: GoogleStandin, project: string): void {
  const location = `projects/${project}/locations/${REGION}`;
  const registry = `${REGION}-docker.pkg.dev/${project}/clarateach`;
  standin.resources.set(`/v1/${location}/jobs/clarateach-sweep`, {
    name: `${location}/jobs/clarateach-sweep`,
    schedule: '* * * * *',
    state: 'ENABLED',
    pubsubTarget: { topicName: `projects/${project}/topics/workshop.sweep`, data: 'e30=' },
  });
  const env = Object.fromEntries(
    ['workspace', 'neko', 'caddy'].map((i) => [
      `${i.toUpperCase()}_IMAGE`,
      `${registry}/${i}@${DIGEST}`,
    ]),
  );
  for (const name of FUNCTIONS) {
    standin.resources.set(`/v2/${location}/functions/${name}`, {
      name: `${location}/functions/${name}`,
      state: 'ACTIVE',
      buildConfig: { runtime: 'nodejs24' },
      serviceConfig: { environmentVariables: env },
    });
  }
  for (const image of ['workspace', 'neko', 'caddy']) {
    const name = `${location}/repositories/clarateach/dockerImages/${image}@${DIGEST}`;
    standin.resources.set(`/v1/${name}`, { name, uri: `${registry}/${image}@${DIGEST}` });
  }
  const vm = `clarateach-vm@${project}.iam.gserviceaccount.com`;
  standin.resources.set(`/compute/v1/projects/${project}/global/firewalls/clarateach-http`, {
    name: 'clarateach-http',
    allowed: [{ IPProtocol: 'tcp', ports: ['80'] }],
    targetServiceAccounts: [vm],
    disabled: false,
  });
  standin.resources.set(`/compute/v1/projects/${project}/global/firewalls/clarateach-webrtc`, {
    name: 'clarateach-webrtc',
    allowed: [
      { IPProtocol: 'tcp', ports: ['30001-30020'] },
      { IPProtocol: 'udp', ports: ['30001-30020'] },
    ],
    targetServiceAccounts: [vm],
  });
}

async function setUp(t: ExecutionContext, withDeadLetterSub: boolean) {
  const { projectId } = await emulators();
  const project = `${projectId}-${Math.random().toString(36).slice(2, 8)}`;
  const pubsub = new PubSub({ projectId: project });
  beforeEmulatorsStop(() => pubsub.close());
  for (const topic of [
    'workshop.started',
    'vm.ready',
    'workshop.ended',
    'workshop.sweep',
    'clarateach.dead-letter',
  ]) {
    await pubsub.createTopic(topic);
  }
  if (withDeadLetterSub)
    await pubsub.topic('clarateach.dead-letter').createSubscription('clarateach.dead-letter.sub');
  const standin = await startGoogleStandin();
  t.teardown(() => standin.stop());
  healthy(standin, project);
  return { project, standin };
}

test('a project as deploy.sh leaves it passes every check, read through the real clients', async (t) => {
  const { project, standin } = await setUp(t, true);
  const rows = allRows(
    await gather({ project, region: REGION, endpoint: { host: '127.0.0.1', port: standin.port } }),
  );
  t.deepEqual(
    rows.filter((r) => !r.ok),
    [],
    formatTable(rows),
  );
  t.is(rows.length, 3 + 6 + 6 + 3 + 2);
  // Each API was asked by its client, over HTTP.
  for (const prefix of ['GET /v1/projects/', 'GET /v2/projects/', 'GET /compute/v1/projects/']) {
    t.true(
      standin.requests.some((r) => r.startsWith(prefix)),
      prefix,
    );
  }
  t.true(
    standin.requests.some((r) => r.includes('/dockerImages/workspace@sha256:')),
    standin.requests.join('\n'),
  );
});

test('the doctor reports a paused job and a missing dead-letter subscription, and exits 1', async (t) => {
  const { project, standin } = await setUp(t, false);
  const location = `projects/${project}/locations/${REGION}`;
  const job = standin.resources.get(`/v1/${location}/jobs/clarateach-sweep`) as Record<
    string,
    unknown
  >;
  job.state = 'PAUSED';
  const child = spawn(
    process.execPath,
    [
      '--import=tsx',
      'tools/doctor.ts',
      '--project',
      project,
      '--endpoint',
      `127.0.0.1:${standin.port}`,
    ],
    { cwd: REPO, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 1, out);
  const failing = out.split('\n').filter((l) => /\bFAIL\b/.test(l));
  t.is(failing.length, 2, out);
  t.regex(failing[0]!, /scheduler job clarateach-sweep: enabled\s+FAIL\s+state PAUSED/);
  t.regex(failing[1]!, /dead-letter subscription clarateach\.dead-letter\.sub\s+FAIL\s+missing/);
  t.regex(out, /firewall clarateach-webrtc\s+ok/);
});
