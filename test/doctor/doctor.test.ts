import { spawn } from 'node:child_process';
import { PubSub } from '@google-cloud/pubsub';
import type { ExecutionContext } from 'ava';
import { PORTAL_SA, REPO } from '../deploy/harness.ts';
import { beforeEmulatorsStop, emulatorTest as test, emulators } from '../helpers/emulators.ts';
import { allRows, formatTable, type Row } from '../../tools/doctor/checks.ts';
import { gather } from '../../tools/doctor/gather.ts';
import { deploy, load } from './deployed.ts';
import { startGoogleStandin, type GoogleStandin } from './google-standin.ts';

/**
 * `npm run doctor` against stand-ins of what it reads: the Pub/Sub emulator and a REST stand-in
 * for Scheduler, Functions, Cloud Run, Firestore Admin, Artifact Registry and Compute, reached by
 * the real client libraries. What they hold is what deploy.sh made (test/doctor/deployed.ts: it
 * runs against the gcloud stand-in once for this file). That passes every check; each thing taken
 * away or not ready is reported as such. The tests share that project, so they run one at a time.
 */

const REGION = 'us-central1';

let deployed: Promise<{ project: string; state: string }> | undefined;
function deployedOnce() {
  deployed ??= (async () => {
    const { projectId: project } = await emulators();
    return { project, state: await deploy(project) };
  })();
  return deployed;
}

async function setUp(t: ExecutionContext) {
  const { project, state } = await deployedOnce();
  const pubsub = new PubSub({ projectId: project });
  beforeEmulatorsStop(() => pubsub.close());
  const standin = await startGoogleStandin();
  t.teardown(() => standin.stop());
  await load(state, project, REGION, standin, pubsub);
  const location = `projects/${project}/locations/${REGION}`;
  return { project, location, pubsub, standin };
}

function failing(rows: Row[]): Row[] {
  return rows.filter((r) => !r.ok);
}

function gatherFrom(project: string, standin: GoogleStandin) {
  return gather({
    project,
    region: REGION,
    portalServiceAccount: PORTAL_SA,
    endpoint: { host: '127.0.0.1', port: standin.port },
  });
}

test.serial(
  'a project as deploy.sh leaves it passes every check, read through the real clients',
  async (t) => {
    const { project, standin } = await setUp(t);
    const rows = allRows(await gatherFrom(project, standin));
    t.deepEqual(failing(rows), [], formatTable(rows));
    // scheduler 3, topics and dead-letter sub 6, functions 6, invokers 6, dead-letter policies 3,
    // indexes 6 (firestore.indexes.json), images 3, firewalls 2
    t.is(rows.length, 3 + 6 + 6 + 6 + 3 + 6 + 3 + 2, formatTable(rows));
    t.regex(formatTable(rows), new RegExp(`invoker of join\\s+ok\\s+serviceAccount:${PORTAL_SA}`));
    t.regex(
      formatTable(rows),
      /dead-letter policy of onVmReady's trigger\s+ok\s+eventarc-us-central1-onVmReady-\S+: to clarateach\.dead-letter after 20/,
    );
    t.regex(
      formatTable(rows),
      /index vmBoots COLLECTION shape:ASCENDING readyAt:DESCENDING\s+ok\s+READY/,
    );
    // Each API was asked by its client, over HTTP.
    for (const prefix of [
      'GET /v1/projects/',
      'GET /v2/projects/',
      'GET /compute/v1/projects/',
      `GET /v1/projects/${project}/databases/(default)/collectionGroups/-/indexes`,
    ]) {
      t.true(
        standin.requests.some((r) => r.startsWith(prefix)),
        prefix,
      );
    }
    t.true(
      standin.requests.some((r) =>
        /^GET \/v2\/.*\/services\/onworkshopstarted:getIamPolicy$/.test(r),
      ),
      standin.requests.join('\n'),
    );
    t.true(
      standin.requests.some((r) => r.includes('/dockerImages/workspace@sha256:')),
      standin.requests.join('\n'),
    );
  },
);

test.serial(
  'a missing invoker binding, a trigger subscription without dead-letter policy and an index still building each fail',
  async (t) => {
    const { project, location, pubsub, standin } = await setUp(t);
    // The functions' account may no longer invoke onVmReady's service.
    const policy = standin.resources.get(`/v2/${location}/services/onvmready:getIamPolicy`) as {
      bindings: { role: string; members: string[] }[];
    };
    policy.bindings = policy.bindings.filter((b) => b.role !== 'roles/run.invoker');
    // onWorkshopEnded's trigger subscription, made again by hand without its dead-letter policy.
    const [subs] = await pubsub.topic('workshop.ended').getSubscriptions();
    t.is(subs.length, 1);
    const name = subs[0]!.name.split('/').at(-1)!;
    await subs[0]!.delete();
    await pubsub.topic('workshop.ended').createSubscription(name);
    // One index is still being built.
    const list = standin.resources.get(
      `/v1/projects/${project}/databases/(default)/collectionGroups/-/indexes`,
    ) as { indexes: { fields: { fieldPath: string }[]; state: string }[] };
    const index = list.indexes.find((i) => i.fields.some((f) => f.fieldPath === 'endingAt'))!;
    index.state = 'CREATING';
    // join redeployed by hand without its concurrency: one request per instance, gen2's default.
    const join = standin.resources.get(`/v2/${location}/functions/join`) as {
      serviceConfig: Record<string, unknown>;
    };
    delete join.serviceConfig.maxInstanceRequestConcurrency;

    const rows = allRows(await gatherFrom(project, standin));
    const table = formatTable(rows);
    t.deepEqual(
      failing(rows).map((r) => r.check),
      [
        'function join',
        'invoker of onVmReady',
        "dead-letter policy of onWorkshopEnded's trigger",
        'index workshops COLLECTION status:ASCENDING endingAt:ASCENDING',
      ],
      table,
    );
    t.regex(
      table,
      new RegExp(
        `invoker of onVmReady\\s+FAIL\\s+serviceAccount:clarateach-functions@${project}\\.iam\\.gserviceaccount\\.com lacks roles/run\\.invoker \\(has it: nobody\\)`,
      ),
    );
    t.regex(
      table,
      new RegExp(
        `dead-letter policy of onWorkshopEnded's trigger\\s+FAIL\\s+${name}: no dead-letter policy`,
      ),
    );
    t.regex(
      table,
      /index workshops COLLECTION status:ASCENDING endingAt:ASCENDING\s+FAIL\s+CREATING/,
    );
    t.regex(table, /function join\s+FAIL\s+ACTIVE, nodejs24, 1 at once/);
    t.regex(table, /function workshops\s+ok\s+ACTIVE, nodejs24, 80 at once/);
  },
);

test.serial(
  'the doctor reports a paused job and a missing dead-letter subscription, and exits 1',
  async (t) => {
    const { project, location, pubsub, standin } = await setUp(t);
    const job = standin.resources.get(`/v1/${location}/jobs/clarateach-sweep`) as Record<
      string,
      unknown
    >;
    job.state = 'PAUSED';
    await pubsub.subscription('clarateach.dead-letter.sub').delete();
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
      {
        cwd: REPO,
        env: { ...process.env, PORTAL_SERVICE_ACCOUNT: PORTAL_SA },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    t.is(code, 1, out);
    const failed = out.split('\n').filter((l) => /\bFAIL\b/.test(l));
    t.is(failed.length, 2, out);
    t.regex(failed[0]!, /scheduler job clarateach-sweep: enabled\s+FAIL\s+state PAUSED/);
    t.regex(failed[1]!, /dead-letter subscription clarateach\.dead-letter\.sub\s+FAIL\s+missing/);
    t.regex(out, new RegExp(`invoker of workshops\\s+ok\\s+serviceAccount:${PORTAL_SA}`));
    t.regex(out, /firewall clarateach-webrtc\s+ok/);
  },
);
