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
/** deploy.sh's settings for an operator's seat domain, with the zone that holds it already. */
const SEATS = {
  SEAT_DOMAIN: 'seats.school.example',
  SEAT_DNS_ZONE: 'seats',
  FAKE_DNS_ZONE: 'seats school.example. public',
};

/** One deploy.sh run per set of settings, shared by the tests that ask for it. */
const deployed = new Map<string, Promise<{ project: string; state: string }>>();
function deployedOnce(env: Record<string, string>) {
  const key = JSON.stringify(env);
  if (!deployed.has(key))
    deployed.set(
      key,
      (async () => {
        const { projectId: project } = await emulators();
        return { project, state: await deploy(project, env) };
      })(),
    );
  return deployed.get(key)!;
}

async function setUp(t: ExecutionContext, env: Record<string, string> = {}) {
  const { project, state } = await deployedOnce(env);
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
    // No seat domain: no row for it, and Cloud DNS is not asked.
    t.false(
      rows.some((r) => r.check === 'seat domain'),
      formatTable(rows),
    );
    t.false(
      standin.requests.some((r) => r.includes('/dns/')),
      standin.requests.join('\n'),
    );
  },
);

/** Deployed with SEATS, and the operator's zone `seats` in the stand-in: public, over the domain. */
async function setUpSeats(t: ExecutionContext) {
  const set = await setUp(t, SEATS);
  const zonePath = `/dns/v1/projects/${set.project}/managedZones/seats`;
  set.standin.resources.set(zonePath, {
    kind: 'dns#managedZone',
    name: 'seats',
    dnsName: 'school.example.',
    visibility: 'public',
  });
  return { ...set, zonePath, policyPath: `${zonePath}:getIamPolicy` };
}

test.serial(
  "a seat domain as deploy.sh leaves it: its zone is public, holds it, and the functions' account is its DNS admin",
  async (t) => {
    const { project, standin, zonePath, policyPath } = await setUpSeats(t);
    const rows = allRows(await gatherFrom(project, standin));
    const table = formatTable(rows);
    t.deepEqual(failing(rows), [], table);
    t.is(rows.length, 3 + 6 + 6 + 6 + 3 + 6 + 3 + 2 + 1, table);
    t.regex(
      table,
      /seat domain\s+ok\s+seats\.school\.example in public zone seats \(school\.example\.\), the functions' roles\/dns\.admin/,
    );
    // Read as Cloud DNS v1 serves them: the zone with GET, its policy with POST.
    t.true(standin.requests.includes(`GET ${zonePath}`), standin.requests.join('\n'));
    t.true(standin.requests.includes(`POST ${policyPath}`), standin.requests.join('\n'));
  },
);

test.serial(
  'a private zone, a domain outside it, no DNS admin binding, no zone, an unreadable policy or half the settings each fail the seat domain row',
  async (t) => {
    const { project, location, standin, zonePath, policyPath } = await setUpSeats(t);
    const account = `clarateach-functions@${project}.iam.gserviceaccount.com`;
    const zone = standin.resources.get(zonePath) as Record<string, unknown>;
    const policy = standin.resources.get(policyPath) as {
      bindings: { role: string; members: string[]; condition?: unknown }[];
    };
    t.true(
      policy.bindings.some(
        (b) => b.role === 'roles/dns.admin' && b.members.includes(`serviceAccount:${account}`),
      ),
      JSON.stringify(policy),
    );
    const started = standin.resources.get(`/v2/${location}/functions/onWorkshopStarted`) as {
      serviceConfig: { environmentVariables: Record<string, string> };
    };
    const env = { ...started.serviceConfig.environmentVariables };
    const withoutAdmin = policy.bindings.filter((b) => b.role !== 'roles/dns.admin');
    const cases: [string, () => void, string][] = [
      ['private zone', () => (zone.visibility = 'private'), 'zone seats is private'],
      [
        'domain outside the zone',
        () => (zone.dnsName = 'other.example.'),
        'seats.school.example is not in zone seats (other.example.)',
      ],
      [
        'no binding',
        () => (policy.bindings = withoutAdmin),
        `${account} lacks roles/dns.admin on zone seats`,
      ],
      [
        'a conditioned binding only',
        () =>
          (policy.bindings = [
            ...withoutAdmin,
            {
              role: 'roles/dns.admin',
              members: [`serviceAccount:${account}`],
              condition: {
                title: 'until',
                expression: 'request.time < timestamp("2020-01-01T00:00:00Z")',
              },
            },
          ]),
        `${account} lacks roles/dns.admin on zone seats`,
      ],
      [
        'no zone',
        () => {
          standin.resources.delete(zonePath);
          standin.resources.delete(policyPath);
        },
        `zone seats does not exist in ${project}`,
      ],
      [
        'an unreadable policy',
        () => standin.faults.set(policyPath, 403),
        `cannot read: HTTP 403: ${policyPath}: PERMISSION_DENIED`,
      ],
      [
        'half the settings',
        () => delete started.serviceConfig.environmentVariables.SEAT_DNS_ZONE,
        'SEAT_DOMAIN without SEAT_DNS_ZONE on onWorkshopStarted',
      ],
    ];
    for (const [what, breakIt, detail] of cases) {
      const healthy = { zone: structuredClone(zone), policy: structuredClone(policy) };
      breakIt();
      const rows = allRows(await gatherFrom(project, standin));
      t.deepEqual(failing(rows), [{ check: 'seat domain', ok: false, detail }], what);
      // Put it back for the next case.
      Object.assign(zone, healthy.zone);
      policy.bindings = healthy.policy.bindings;
      standin.resources.set(zonePath, zone);
      standin.resources.set(policyPath, policy);
      standin.faults.clear();
      started.serviceConfig.environmentVariables = { ...env };
    }
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
