import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { SEAT_HTTPS_BASE } from '../../shared/core/workshop.ts';
import {
  ADMIN_EMAILS,
  AUDIENCE,
  callsOf,
  flag,
  FN_SA,
  INSTRUCTORS,
  newState,
  PORTAL_SA,
  PROJECT,
  PUBSUB_AGENT,
  REPO,
  runDeploy,
  stateOf,
  tamper,
  VM_SA,
  words,
  type DeployRun,
} from './harness.ts';

/**
 * deploy.sh against a recording, stateful `gcloud`, `curl` and `npm` (no cloud here): it must run
 * to the end, deploy every function the code registers under its own entry point on Node.js 24,
 * retry the event functions, let Eventarc invoke them, dead-letter poison messages, open only the
 * ports the VMs use, build and mirror the images and hand the functions their digests, stop on
 * real errors, and never configure the development identity. A second run changes nothing,
 * --dry-run runs nothing, and destroy removes what the deploy made.
 */

const DEAD_LETTER = 'clarateach.dead-letter';
const BUILD_SA = `clarateach-build@${PROJECT}.iam.gserviceaccount.com`;
const REGISTRY = `us-central1-docker.pkg.dev/${PROJECT}/clarateach`;
const REPO_PATH = `projects/${PROJECT}/locations/us-central1/repositories/clarateach`;
/** The commands that only read; everything else changes the project. */
const READS = /^(\S+ )*(describe|list|get-iam-policy|print-access-token)( |$)/;
const mutations = (run: DeployRun) => run.calls.filter((c) => !READS.test(words(c)));
const ENV_FLAG = /^--(set-env-vars|update-env-vars|remove-env-vars|clear-env-vars|env-vars-file)\b/;

const registered = [
  ...readFileSync(join(REPO, 'functions/index.ts'), 'utf8').matchAll(
    /ff\.(http|cloudEvent)\('(\w+)'/g,
  ),
].map((m) => ({ kind: m[1], name: m[2]! }));
const eventFunctions = registered.filter((f) => f.kind === 'cloudEvent').map((f) => f.name);

/** The first run (nothing exists yet) is shared by the tests that only read what it did. */
let firstRun: Promise<DeployRun> | undefined;
const fresh = () => (firstRun ??= runDeploy());

function deployOf(run: DeployRun, name: string): string[] {
  const deploy = run.calls.find((c) => words(c) === `functions deploy ${name}`);
  if (!deploy) throw new Error(`${name} is not deployed`);
  return deploy;
}

/** The --set-env-vars value as a map, checking gcloud's `^|^` alternate-delimiter syntax. */
function envOf(deploy: string[]): Map<string, string> {
  const [value] = flag(deploy, 'set-env-vars');
  if (!value?.startsWith('^|^')) throw new Error(`--set-env-vars without ^|^: ${value}`);
  return new Map(
    value
      .slice(3)
      .split('|')
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
}

test('deploy.sh deploys every registered function, retries events, never dev identity', async (t) => {
  const run = await fresh();
  t.is(run.code, 0, run.stderr);
  t.is(registered.length, 6);
  for (const { kind, name } of registered) {
    const deploy = deployOf(run, name);
    t.deepEqual(flag(deploy, 'entry-point'), [name]);
    t.deepEqual(flag(deploy, 'runtime'), ['nodejs24']);
    t.deepEqual(flag(deploy, 'build-service-account'), [
      `projects/${PROJECT}/serviceAccounts/${BUILD_SA}`,
    ]);
    t.deepEqual(flag(deploy, 'docker-repository'), [REPO_PATH]);
    if (kind === 'http') {
      t.deepEqual(flag(deploy, 'no-allow-unauthenticated'), [''], name);
      t.deepEqual(flag(deploy, 'ingress-settings'), [], name);
      // A class's joins come all at once: one warm instance serves many, with the vCPU that needs.
      t.deepEqual(flag(deploy, 'concurrency'), ['80'], name);
      t.deepEqual(flag(deploy, 'cpu'), ['1'], name);
    } else {
      // Pub/Sub and Eventarc deliveries are internal: nothing else reaches an event function.
      t.deepEqual(flag(deploy, 'ingress-settings'), ['internal-only'], name);
      if (name !== 'sweep') t.deepEqual(flag(deploy, 'retry'), [''], name);
    }
  }
  t.false(run.lines.some((c) => c.includes('AUTH_MODE=dev')));
  t.true(run.lines.some((c) => c.includes('AUTH_MODE=token')));
  t.true(
    run.lines.some(
      (c) =>
        c.includes('scheduler jobs create pubsub clarateach-sweep') &&
        c.includes('--topic=workshop.sweep'),
    ),
  );
  for (const topic of ['workshop.started', 'vm.ready', 'workshop.ended', 'workshop.sweep']) {
    t.true(
      run.lines.some((c) => c.includes(`pubsub topics create ${topic}`)),
      topic,
    );
  }
  const indexes = JSON.parse(readFileSync(join(REPO, 'firestore.indexes.json'), 'utf8')) as {
    indexes: unknown[];
  };
  t.is(callsOf(run.calls, 'firestore indexes composite create').length, indexes.indexes.length);
  t.true(
    run.lines.some((c) => c.startsWith('curl') && c.includes('releases')),
    'rules released',
  );
});

test('each functions deploy has exactly one env-var flag, whose values keep their commas', async (t) => {
  const run = await fresh();
  const deploys = callsOf(run.calls, 'functions deploy');
  t.is(deploys.length, registered.length);
  for (const deploy of deploys) {
    t.deepEqual(
      deploy.filter((a) => ENV_FLAG.test(a)).map((a) => a.split('=')[0]),
      ['--set-env-vars'],
      words(deploy),
    );
    const env = envOf(deploy);
    t.is(env.get('ADMIN_EMAILS'), ADMIN_EMAILS);
    t.is(env.get('ID_TOKEN_AUDIENCES'), AUDIENCE);
    t.is(env.get('INSTRUCTORS'), INSTRUCTORS);
    t.is(env.get('AUTH_MODE'), 'token');
    t.is(env.get('GCP_PROJECT'), PROJECT);
    t.is(env.get('VM_SERVICE_ACCOUNT'), VM_SA);
    t.is(env.get('VM_NETWORK'), 'default');
    t.is(env.get('GCP_REGISTRY'), `us-central1-docker.pkg.dev/${PROJECT}/clarateach`);
  }
});

test('Eventarc delivers as the functions account, which may invoke each event function', async (t) => {
  const run = await fresh();
  t.is(eventFunctions.length, 4);
  for (const name of eventFunctions) {
    const deploy = deployOf(run, name);
    t.deepEqual(flag(deploy, 'trigger-service-account'), [FN_SA], name);
    t.deepEqual(flag(deploy, 'service-account'), [FN_SA], name);
    const invokers = callsOf(
      run.calls,
      `run services add-iam-policy-binding ${name.toLowerCase()}`,
    );
    t.deepEqual(
      invokers.map((c) => [flag(c, 'member'), flag(c, 'role')]),
      [[[`serviceAccount:${FN_SA}`], ['roles/run.invoker']]],
      name,
    );
    t.true(run.calls.indexOf(invokers[0]!) > run.calls.indexOf(deploy), `${name}: after deploy`);
  }
  for (const name of ['workshops', 'join']) {
    t.deepEqual(
      callsOf(run.calls, `run services add-iam-policy-binding ${name}`).map((c) =>
        flag(c, 'member'),
      ),
      [[`serviceAccount:${PORTAL_SA}`]],
    );
  }
  t.deepEqual(flag(deployOf(run, 'sweep'), 'timeout'), ['540s']);
});

test('poison messages land in a dead-letter topic that Pub/Sub may use and that keeps them', async (t) => {
  const run = await fresh();
  const agent = `serviceAccount:${PUBSUB_AGENT}`;
  t.true(
    callsOf(run.calls, `pubsub topics add-iam-policy-binding ${DEAD_LETTER}`).some(
      (c) => flag(c, 'member')[0] === agent && flag(c, 'role')[0] === 'roles/pubsub.publisher',
    ),
    'the Pub/Sub service agent may publish to the dead-letter topic',
  );
  const [sub, ...more] = callsOf(run.calls, `pubsub subscriptions create ${DEAD_LETTER}.sub`);
  t.is(more.length, 0);
  t.deepEqual(flag(sub!, 'topic'), [DEAD_LETTER]);
  t.deepEqual(flag(sub!, 'message-retention-duration'), ['7d']);
  t.deepEqual(flag(sub!, 'expiration-period'), ['never']);

  const updates = callsOf(run.calls, 'pubsub subscriptions update');
  for (const name of eventFunctions) {
    const trigger = run.calls.find(
      (c) =>
        words(c) === `functions describe ${name}` &&
        flag(c, 'format')[0] === 'value(eventTrigger.trigger)',
    );
    const mine = updates.filter((c) => words(c).includes(`-${name}-`));
    const grants = callsOf(run.calls, 'pubsub subscriptions add-iam-policy-binding').filter((c) =>
      words(c).includes(`-${name}-`),
    );
    if (name === 'sweep') {
      // Not retried: no dead-letter policy, hence no need to look its trigger up.
      t.is(trigger, undefined);
      t.is(mine.length + grants.length, 0, 'sweep has no dead-letter policy');
      continue;
    }
    t.truthy(trigger, `${name}: its trigger is looked up`);
    t.is(mine.length, 1, name);
    t.deepEqual(flag(mine[0]!, 'dead-letter-topic'), [DEAD_LETTER]);
    t.deepEqual(flag(mine[0]!, 'max-delivery-attempts'), ['20']);
    t.is(grants.length, 1, name);
    t.deepEqual(flag(grants[0]!, 'member'), [agent]);
    t.deepEqual(flag(grants[0]!, 'role'), ['roles/pubsub.subscriber']);
  }
});

test('the firewall opens Caddy, the seats’ HTTPS origins and mux ports the startup script uses, nothing else', async (t) => {
  const run = await fresh();
  // Derive the ports from their sources, so that a change there shows up here.
  const startup = readFileSync(join(REPO, 'startup/clarateach-startup.sh'), 'utf8');
  const setting = (name: string) =>
    Number(new RegExp(`^${name}=\\$\\{${name}:-(\\d+)\\}`, 'm').exec(startup)?.[1]);
  const httpPort = setting('CT_HTTP_PORT');
  const muxBase = setting('CT_MUX_PORT_BASE');
  const seatBase = setting('CT_SEAT_HTTPS_BASE');
  const plan = readFileSync(join(REPO, 'shared/core/plan.ts'), 'utf8');
  const maxSeats = Number(/MAX_SEATS_PER_VM = (\d+)/.exec(plan)?.[1]);
  t.deepEqual([httpPort, muxBase, seatBase, maxSeats], [80, 30000, SEAT_HTTPS_BASE, 20]);
  const mux = `${muxBase + 1}-${muxBase + maxSeats}`;
  const seats = `${seatBase + 1}-${seatBase + maxSeats}`;

  t.true(run.calls.some((c) => words(c) === 'compute networks describe default'));
  const rules = callsOf(run.calls, 'compute firewall-rules create');
  const allowed = rules.flatMap((c) => flag(c, 'allow').flatMap((a) => a.split(',')));
  t.deepEqual(
    allowed.sort(),
    [`tcp:${httpPort}`, `tcp:${seats}`, `tcp:${mux}`, `udp:${mux}`].sort(),
  );
  for (const rule of rules) {
    t.deepEqual(flag(rule, 'network'), ['default']);
    t.deepEqual(flag(rule, 'target-service-accounts'), [VM_SA]);
    t.deepEqual(flag(rule, 'direction'), ['INGRESS']);
  }
  // No command opens 443: no allow or ports flag names it (a hash in a label may hold "443").
  const opened = run.calls.flatMap((c) => [...flag(c, 'allow'), ...flag(c, 'ports')]);
  t.false(
    opened.some((p) => /(^|[:,])443($|[,-])/.test(p)),
    opened.join(' '),
  );
});

test('the VMs may read the one image repository, not every repository of the project', async (t) => {
  const run = await fresh();
  const grants = callsOf(run.calls, 'artifacts repositories add-iam-policy-binding').filter(
    (c) => flag(c, 'member')[0] === `serviceAccount:${VM_SA}`,
  );
  t.deepEqual(
    grants.map((c) => [words(c).split(' ')[3], flag(c, 'member')[0], flag(c, 'role')[0]]),
    [
      [
        `projects/${PROJECT}/locations/us-central1/repositories/clarateach`,
        `serviceAccount:${VM_SA}`,
        'roles/artifactregistry.reader',
      ],
    ],
  );
  t.false(
    callsOf(run.calls, 'projects add-iam-policy-binding').some(
      (c) => flag(c, 'role')[0] === 'roles/artifactregistry.reader',
    ),
  );
});

test('a second run against what the first one made changes nothing', async (t) => {
  const state = newState();
  const first = await runDeploy({}, { state });
  t.is(first.code, 0, first.stderr);
  const before = stateOf(state);
  t.deepEqual(
    before.ttls!.split('\n').filter(Boolean),
    ['rateLimits/expiresAt', 'vmBoots/expiresAt'],
    'join counters and recorded VM boots delete themselves',
  );
  const second = await runDeploy({}, { state });
  t.is(second.code, 0, second.stderr);
  // Only reads, and the one idempotent call that names the Pub/Sub service agent.
  t.deepEqual(
    mutations(second).map((c) => words(c)),
    ['beta services identity create'],
  );
  t.deepEqual(
    second.lines.filter((l) => l.startsWith('curl') && / -X /.test(l)),
    [],
    'the rules are read, not written again',
  );
  t.false(
    second.lines.some((l) => l.startsWith('npm ')),
    'no image is built again',
  );
  t.deepEqual(stateOf(state), before);
});

test('a second run changes only what differs: new settings redeploy the functions alone', async (t) => {
  const state = newState();
  t.is((await runDeploy({}, { state })).code, 0);
  const changed = await runDeploy({ ADMIN_EMAILS: 'new@school.example' }, { state });
  t.is(changed.code, 0, changed.stderr);
  t.deepEqual(
    [...new Set(mutations(changed).map((c) => words(c).split(' ').slice(0, 2).join(' ')))],
    ['beta services', 'functions deploy'],
  );
  t.is(callsOf(changed.calls, 'functions deploy').length, registered.length);
});

test('a second run puts right what was changed by hand, and only that', async (t) => {
  const state = newState();
  t.is((await runDeploy({}, { state })).code, 0);
  tamper(state, 'compute_firewall-rules_clarateach-http', '--description=opened by hand');
  tamper(state, `pubsub_subscriptions_${DEAD_LETTER}.sub`, '--update-labels=clarateach_spec=old');
  tamper(state, 'scheduler_jobs_clarateach-sweep', 'state=PAUSED');
  const again = await runDeploy({}, { state });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(
    mutations(again).map((c) => words(c)),
    [
      'beta services identity create',
      `pubsub subscriptions update ${DEAD_LETTER}.sub`,
      'compute firewall-rules update clarateach-http',
      'scheduler jobs resume clarateach-sweep',
    ],
  );
  const [rule] = callsOf(again.calls, 'compute firewall-rules update');
  t.deepEqual(flag(rule!, 'allow'), ['tcp:80,tcp:8401-8420']);
  t.deepEqual(flag(rule!, 'target-service-accounts'), [VM_SA]);
});

test('a failed first deploy leaves a FAILED function with its label, which the next run deploys again', async (t) => {
  const state = newState();
  const join = 'functions deploy join';
  const first = await runDeploy(
    { FAKE_FAIL: join, FAKE_FAIL_MESSAGE: 'INVALID_ARGUMENT: Build failed: npm ERR!' },
    { state },
  );
  t.not(first.code, 0);
  t.is(callsOf(first.calls, 'run services add-iam-policy-binding join').length, 0);
  const second = await runDeploy({}, { state });
  t.is(second.code, 0, second.stderr);
  t.is(callsOf(second.calls, join).length, 1, 'the FAILED function is deployed again');
  t.is(callsOf(second.calls, 'functions deploy workshops').length, 0, 'an ACTIVE one is not');
  const invoker = callsOf(second.calls, 'run services add-iam-policy-binding join');
  t.is(invoker.length, 1);
  t.deepEqual(flag(invoker[0]!, 'member'), [`serviceAccount:${PORTAL_SA}`]);
});

test('the invoker grant names the Cloud Run service the function reports, and stops when it is gone', async (t) => {
  const state = newState();
  t.is((await runDeploy({}, { state })).code, 0);
  const services = callsOf((await runDeploy({}, { state })).calls, 'run services get-iam-policy');
  // Each service once or more (the HTTP ones also lose or gain allUsers): the reported names only.
  t.deepEqual([...new Set(services.map((c) => words(c).split(' ')[3]))].sort(), [
    'join',
    'onvmready',
    'onworkshopended',
    'onworkshopstarted',
    'sweep',
    'workshops',
  ]);
  rmSync(join(state, 'res', 'run_services_join'));
  const gone = await runDeploy({}, { state });
  t.not(gone.code, 0);
  t.regex(gone.stderr, /NOT_FOUND: Resource 'join' was not found/);
});

test('index creates wait for the database, go one at a time and retry 409 contention', async (t) => {
  const contention = 'ABORTED: too much contention on these datastore entities. please try again.';
  const run = await runDeploy({
    FAKE_FAIL: 'firestore indexes composite create',
    FAKE_FAIL_TIMES: '2',
    FAKE_FAIL_MESSAGE: contention,
  });
  t.is(run.code, 0, run.stderr);
  const creates = callsOf(run.calls, 'firestore indexes composite create');
  const indexes = JSON.parse(readFileSync(join(REPO, 'firestore.indexes.json'), 'utf8')) as {
    indexes: unknown[];
  };
  t.is(creates.length, indexes.indexes.length + 2);
  for (const create of creates) t.deepEqual(flag(create, 'async'), [], 'each create is waited for');
  t.regex(run.stdout, /index creation met contention, retrying/);
  const firstCreate = run.calls.findIndex((c) => words(c).startsWith('firestore indexes'));
  const dbCreate = run.calls.findIndex((c) => words(c) === 'firestore databases create');
  t.true(
    run.calls
      .slice(dbCreate + 1, firstCreate)
      .some((c) => words(c) === 'firestore databases describe'),
    'the new database is looked for before its indexes',
  );
  const slow = await runDeploy({
    FAKE_FAIL: 'firestore databases describe',
    FAKE_FAIL_TIMES: '3',
  });
  t.is(slow.code, 0, slow.stderr);
  t.is(callsOf(slow.calls, 'firestore databases describe').length, 4);
});

test('an organization policy that forbids external IPs stops deploy.sh before anything is made', async (t) => {
  const state = newState();
  mkdirSync(join(state, 'org-policies'));
  writeFileSync(
    join(state, 'org-policies', 'compute.vmExternalIpAccess.json'),
    JSON.stringify({
      name: `projects/123456789012/policies/compute.vmExternalIpAccess`,
      spec: { rules: [{ denyAll: true }] },
    }),
  );
  const run = await runDeploy({}, { state });
  t.not(run.code, 0);
  t.regex(run.stderr, /constraints\/compute\.vmExternalIpAccess \(deny\) keeps the workshop VMs/);
  t.regex(run.stderr, /Fix: .*gcloud org-policies reset compute\.vmExternalIpAccess --project=p/);
  t.deepEqual(
    mutations(run).map((c) => words(c).split(' ').slice(0, 2).join(' ')),
    ['services enable'],
    'nothing but the APIs was touched',
  );
});

test('other organization policies warn, or stop when they rule the region out', async (t) => {
  const state = newState();
  mkdirSync(join(state, 'org-policies'));
  const policy = (name: string, values: Record<string, string[]>) =>
    writeFileSync(
      join(state, 'org-policies', `${name}.json`),
      JSON.stringify({ name: `projects/1/policies/${name}`, spec: { rules: [{ values }] } }),
    );
  policy('gcp.resourceLocations', { allowedValues: ['in:europe-locations'] });
  policy('iam.allowedPolicyMemberDomains', { allowedValues: ['C0abc123'] });
  const warned = await runDeploy({}, { state });
  t.is(warned.code, 0, warned.stderr);
  t.regex(warned.stderr, /gcp.resourceLocations allows only: in:europe-locations/);
  t.regex(warned.stderr, /allowedPolicyMemberDomains allows only members of: C0abc123/);
  policy('gcp.resourceLocations', { deniedValues: ['in:us-central1-locations'] });
  const denied = await runDeploy({}, { state });
  t.not(denied.code, 0);
  t.regex(denied.stderr, /gcp.resourceLocations denies us-central1/);
});

test('an index the database has is not created again; a missing one is', async (t) => {
  const state = newState();
  t.is((await runDeploy({}, { state })).code, 0);
  const indexes = join(state, 'indexes');
  const lines = readFileSync(indexes, 'utf8').split('\n').filter(Boolean);
  writeFileSync(indexes, `${lines.slice(1).join('\n')}\n`);
  const again = await runDeploy({}, { state });
  t.is(again.code, 0, again.stderr);
  const creates = callsOf(again.calls, 'firestore indexes composite create');
  t.is(creates.length, 1);
  const first = JSON.parse(lines[0]!) as { name: string };
  t.deepEqual(flag(creates[0]!, 'collection-group'), [first.name.split('/').at(-3)]);
});

test('any other failure to create an index stops deploy.sh', async (t) => {
  const run = await runDeploy({
    FAKE_FAIL: 'firestore indexes composite create',
    FAKE_FAIL_MESSAGE: 'PERMISSION_DENIED: The caller does not have permission',
  });
  t.not(run.code, 0);
  t.regex(run.stderr, /PERMISSION_DENIED/);
  t.is(callsOf(run.calls, 'firestore indexes composite create').length, 1);
  t.is(callsOf(run.calls, 'functions deploy').length, 0);
});

test('a failing TTL policy stops deploy.sh too', async (t) => {
  const run = await runDeploy({
    FAKE_FAIL: 'firestore fields ttls update',
    FAKE_FAIL_MESSAGE: 'FAILED_PRECONDITION: database does not exist',
  });
  t.not(run.code, 0);
  t.regex(run.stderr, /FAILED_PRECONDITION/);
  t.is(callsOf(run.calls, 'functions deploy').length, 0);
});

test('an IAM binding for a service account IAM does not see yet is retried', async (t) => {
  const binding = `iam service-accounts add-iam-policy-binding ${VM_SA}`;
  const run = await runDeploy({
    FAKE_FAIL: binding,
    FAKE_FAIL_TIMES: '2',
    FAKE_FAIL_MESSAGE: `INVALID_ARGUMENT: Service account ${VM_SA} does not exist.`,
  });
  t.is(run.code, 0, run.stderr);
  t.is(callsOf(run.calls, binding).length, 3);
});

test('a deploy names its audience and instructors: neither is assumed, and it stops first', async (t) => {
  for (const [unset, message] of [
    ['ID_TOKEN_AUDIENCES', /ID_TOKEN_AUDIENCES to the OAuth client id/],
    ['INSTRUCTORS', /INSTRUCTORS to who may run workshops/],
  ] as const) {
    const run = await runDeploy({ [unset]: '' });
    t.not(run.code, 0, unset);
    t.regex(run.stderr, message);
    t.deepEqual(run.lines, [], `${unset}: no call was made`);
  }
});

test('an IAM binding refused while rights propagate ("or it may not exist") is retried', async (t) => {
  const binding = `iam service-accounts add-iam-policy-binding ${VM_SA}`;
  const run = await runDeploy({
    FAKE_FAIL: binding,
    FAKE_FAIL_TIMES: '2',
    FAKE_FAIL_MESSAGE: `PERMISSION_DENIED: Permission 'iam.serviceAccounts.setIamPolicy' denied on resource (or it may not exist).`,
  });
  t.is(run.code, 0, run.stderr);
  t.is(callsOf(run.calls, binding).length, 3);
});

test('the first build is retried while the build account roles propagate', async (t) => {
  const run = await runDeploy({
    FAKE_FAIL: 'builds submit',
    FAKE_FAIL_TIMES: '2',
    FAKE_FAIL_MESSAGE: `PERMISSION_DENIED: The caller does not have permission to act as service account projects/p/serviceAccounts/clarateach-build@p.iam.gserviceaccount.com (iam.serviceAccounts.actAs)`,
  });
  t.is(run.code, 0, run.stderr);
  t.is(callsOf(run.calls, 'builds submit').length, 3);
  const other = await runDeploy({
    FAKE_FAIL: 'builds submit',
    FAKE_FAIL_MESSAGE: 'INVALID_ARGUMENT: invalid build step',
  });
  t.not(other.code, 0);
  t.is(callsOf(other.calls, 'builds submit').length, 1);
});

test('an IAM binding that fails for another reason stops deploy.sh at once', async (t) => {
  const binding = `iam service-accounts add-iam-policy-binding ${VM_SA}`;
  const run = await runDeploy({
    FAKE_FAIL: binding,
    FAKE_FAIL_MESSAGE: 'PERMISSION_DENIED: Permission iam.serviceAccounts.setIamPolicy denied',
  });
  t.not(run.code, 0);
  t.regex(run.stderr, /PERMISSION_DENIED/);
  t.is(callsOf(run.calls, binding).length, 1);
});

test('an event function without a trigger subscription stops deploy.sh loudly', async (t) => {
  const run = await runDeploy({ FAKE_NO_TRIGGER: '1' });
  t.not(run.code, 0);
  t.regex(run.stderr, /onWorkshopStarted has no Eventarc trigger/);
  t.is(callsOf(run.calls, 'pubsub subscriptions update').length, 0);
});

test('the network is a setting, and a missing one stops deploy.sh before any rule', async (t) => {
  const custom = await runDeploy({ NETWORK: 'classroom-vpc' });
  t.is(custom.code, 0, custom.stderr);
  for (const rule of callsOf(custom.calls, 'compute firewall-rules create')) {
    t.deepEqual(flag(rule, 'network'), ['classroom-vpc']);
  }
  t.is(envOf(deployOf(custom, 'workshops')).get('VM_NETWORK'), 'classroom-vpc');

  const missing = await runDeploy({
    FAKE_FAIL: 'compute networks describe',
    FAKE_FAIL_MESSAGE: 'NOT_FOUND: network default',
  });
  t.not(missing.code, 0);
  t.regex(missing.stderr, /VPC network "default" does not exist.*NETWORK/);
  t.is(callsOf(missing.calls, 'compute firewall-rules').length, 0);
});

test('deploy.sh refuses to start without its required settings', async (t) => {
  const run = await runDeploy({ GCP_PROJECT: '' });
  t.not(run.code, 0);
  t.regex(run.stderr, /GCP_PROJECT/);
  t.is(run.lines.length, 0);
});

test('every Firebase Rules call names the quota project and carries the token in a header file', async (t) => {
  const run = await fresh();
  const rules = run.lines.filter((l) => l.startsWith('curl'));
  t.true(rules.length >= 3, rules.join('\n'));
  for (const call of rules) {
    t.true(call.includes(`-H x-goog-user-project: ${PROJECT}`), call);
    t.regex(call, / -H @\S+ /, call);
    t.false(call.includes('fake-token'), 'the token is never on a command line');
  }
  t.deepEqual(
    run.curlHeaderFiles,
    rules.map(() => 'Authorization: Bearer fake-token'),
  );
  t.false(run.stdout.includes('fake-token'));
});

test('images: the workspace is built and Caddy and Neko mirrored by the build account; functions get digests', async (t) => {
  const run = await fresh();
  const npm = run.lines.filter((l) => l.startsWith('npm '));
  t.deepEqual(npm, ['npm ci --no-audit --no-fund', 'npm run build:seat']);
  const [submit, ...more] = callsOf(run.calls, 'builds submit');
  t.is(more.length, 0);
  t.is(words(submit!), 'builds submit images/workspace');
  t.true(
    run.lines.indexOf('npm run build:seat') <
      run.lines.findIndex((l) => l.includes('builds submit')),
    'the seat bundle is built before the image',
  );
  const config = JSON.parse(/build config: (.*)/.exec(run.stdout)![1]!) as {
    steps: { name: string; args: string[] }[];
    images: string[];
    serviceAccount: string;
    options: { logging: string };
  };
  const tag = /workspace:(src-[0-9a-f]{16})/.exec(config.images[0]!)![1]!;
  t.deepEqual(
    config.steps.map((s) => s.args),
    [
      ['build', '-t', `${REGISTRY}/workspace:${tag}`, '.'],
      ['pull', 'caddy:2.10.2'],
      ['tag', 'caddy:2.10.2', `${REGISTRY}/caddy:2.10.2`],
      ['pull', 'ghcr.io/m1k1o/neko/firefox:3.1.5'],
      ['tag', 'ghcr.io/m1k1o/neko/firefox:3.1.5', `${REGISTRY}/neko:3.1.5`],
    ],
  );
  t.deepEqual(config.images, [
    `${REGISTRY}/workspace:${tag}`,
    `${REGISTRY}/caddy:2.10.2`,
    `${REGISTRY}/neko:3.1.5`,
  ]);
  t.is(config.serviceAccount, `projects/${PROJECT}/serviceAccounts/${BUILD_SA}`);
  t.is(config.options.logging, 'CLOUD_LOGGING_ONLY');

  // Each reference is the digest read back after the build, in the repository the VMs may read.
  const submitted = run.calls.indexOf(submit!);
  for (const [variable, image] of [
    ['WORKSPACE_IMAGE', `workspace:${tag}`],
    ['CADDY_IMAGE', 'caddy:2.10.2'],
    ['NEKO_IMAGE', 'neko:3.1.5'],
  ] as const) {
    const read = run.calls.findIndex(
      (c, i) =>
        i > submitted &&
        words(c) === `artifacts docker images describe ${REGISTRY}/${image}` &&
        flag(c, 'format')[0] === 'value(image_summary.digest)',
    );
    t.true(read > submitted, `${image}: digest read after the build`);
    for (const deploy of callsOf(run.calls, 'functions deploy')) {
      t.regex(
        envOf(deploy).get(variable) ?? '',
        new RegExp(`^${REGISTRY}/${image.split(':')[0]}@sha256:[0-9a-f]{64}$`),
        variable,
      );
    }
  }
});

test('the build account has Cloud Run Builder and may push to the one repository, nothing more', async (t) => {
  const run = await fresh();
  t.is(callsOf(run.calls, 'iam service-accounts create clarateach-build').length, 1);
  const member = `serviceAccount:${BUILD_SA}`;
  const grants = run.calls
    .filter((c) => words(c).includes('add-iam-policy-binding') && flag(c, 'member')[0] === member)
    .map((c) => [words(c).replace(/ add-iam-policy-binding /, ' '), flag(c, 'role')[0]]);
  t.deepEqual(grants, [
    [`projects ${PROJECT}`, 'roles/run.builder'],
    [`artifacts repositories ${REPO_PATH}`, 'roles/artifactregistry.writer'],
  ]);
});

test('the Pub/Sub service identity is created before anything is granted to it', async (t) => {
  const run = await fresh();
  const identity = run.calls.findIndex((c) => words(c) === 'beta services identity create');
  t.true(identity >= 0);
  t.deepEqual(flag(run.calls[identity]!, 'service'), ['pubsub.googleapis.com']);
  const grants = run.calls
    .map((c, i) => [c, i] as const)
    .filter(([c]) => flag(c, 'member')[0] === `serviceAccount:${PUBSUB_AGENT}`);
  t.true(grants.length >= 5);
  for (const [, i] of grants) t.true(i > identity);
});

const EVENTARC_NOT_READY =
  'INVALID_ARGUMENT: Invalid resource state for "": Permission denied while using the Eventarc Service Agent. If you recently started to use Eventarc, it may take a few minutes before all necessary permissions are propagated to the Service Agent.';

test('the first trigger deploy of a new project is retried while Eventarc gets its rights', async (t) => {
  const fn = 'functions deploy onWorkshopStarted';
  const run = await runDeploy({
    FAKE_FAIL: fn,
    FAKE_FAIL_TIMES: '2',
    FAKE_FAIL_MESSAGE: EVENTARC_NOT_READY,
  });
  t.is(run.code, 0, run.stderr);
  t.is(callsOf(run.calls, fn).length, 3);
  t.regex(
    run.stdout,
    /new rights are not in effect yet, retrying: functions deploy onWorkshopStarted/,
  );
  t.is(callsOf(run.calls, 'functions deploy').length, registered.length + 2);
});

test('the Eventarc retry is bounded, and no other deploy error is retried', async (t) => {
  const fn = 'functions deploy onWorkshopStarted';
  const forever = await runDeploy({ FAKE_FAIL: fn, FAKE_FAIL_MESSAGE: EVENTARC_NOT_READY });
  t.not(forever.code, 0);
  t.is(callsOf(forever.calls, fn).length, 5);
  const other = await runDeploy({
    FAKE_FAIL: fn,
    FAKE_FAIL_MESSAGE: 'INVALID_ARGUMENT: Build failed: npm ERR!',
  });
  t.not(other.code, 0);
  t.regex(other.stderr, /Build failed/);
  t.is(callsOf(other.calls, fn).length, 1);
});

test('--dry-run runs nothing and prints, in order, every command a first deploy runs', async (t) => {
  const dry = await runDeploy({}, { args: ['--dry-run'] });
  t.is(dry.code, 0, dry.stderr);
  t.deepEqual(dry.lines, [], 'no gcloud, curl or npm call');
  const printed = dry.stdout
    .split('\n')
    .filter((l) => l.startsWith('+ '))
    .map((l) => l.slice(2));
  const path = (line: string) =>
    line
      .replace(/^gcloud --project=p --quiet /, 'gcloud ')
      .split(' ')
      .filter((w) => !w.startsWith('-'))
      .slice(0, 4)
      .join(' ');
  const real = await fresh();
  const changes = (lines: string[]) =>
    lines
      .map(path)
      .filter((p) => !/ (describe|list|get-iam-policy|print-access-token)\b/.test(p))
      .filter((p) => !p.startsWith('curl') || true);
  const realLines = real.lines.map((l) => l.replace(/^gcloud --project=p --quiet /, 'gcloud '));
  // curl calls differ only by the reads a fresh project answers with "not there".
  t.deepEqual(
    changes(printed).filter((p) => !p.startsWith('curl')),
    changes(realLines).filter((p) => !p.startsWith('curl')),
  );
  t.is(printed.filter((l) => l.startsWith('curl') && / -X /.test(l)).length, 2);
  for (const name of registered.map((f) => f.name)) {
    const line = printed.find((l) => l.includes(` functions deploy ${name} `));
    t.truthy(line, name);
    t.true(line!.includes('--runtime=nodejs24'), name);
  }
});

test('destroy removes everything the deploy made but the Firestore data; --delete-data that too', async (t) => {
  const state = newState();
  t.is((await runDeploy({}, { state })).code, 0);
  const deployed = stateOf(state);
  const destroy = await runDeploy(
    { PORTAL_SERVICE_ACCOUNT: '', FAKE_INSTANCES: 'ct-abc-0\tus-central1-a\n' },
    { state, args: ['destroy'] },
  );
  t.is(destroy.code, 0, destroy.stderr);
  t.deepEqual(
    callsOf(destroy.calls, 'compute instances delete').map((c) => [words(c), flag(c, 'zone')]),
    [['compute instances delete ct-abc-0', ['us-central1-a']]],
  );
  const left = stateOf(state);
  t.deepEqual(
    Object.keys(left).filter((k) => k.startsWith('res/')),
    ['res/firestore_databases_'],
  );
  t.is(left.iam, '', 'no binding left for an account or resource of the deploy');
  t.is(left.indexes, deployed.indexes, 'the indexes stay with the data');
  t.true(Object.keys(deployed).filter((k) => k.startsWith('res/')).length > 20);

  const again = await runDeploy(
    { PORTAL_SERVICE_ACCOUNT: '' },
    { state, args: ['destroy', '--delete-data'] },
  );
  t.is(again.code, 0, again.stderr);
  t.deepEqual(
    mutations(again).map((c) => words(c)),
    ['firestore databases delete'],
  );
  t.deepEqual(
    Object.keys(stateOf(state)).filter((k) => k.startsWith('res/')),
    [],
  );
});

test('destroy --dry-run runs nothing', async (t) => {
  const dry = await runDeploy({}, { args: ['destroy', '--dry-run'] });
  t.is(dry.code, 0, dry.stderr);
  t.deepEqual(dry.lines, []);
  for (const what of [
    'functions delete sweep',
    'pubsub topics delete vm.ready',
    'iam service-accounts delete clarateach-build@',
    'artifacts repositories delete clarateach',
    'projects remove-iam-policy-binding p',
  ]) {
    t.true(dry.stdout.includes(`+ gcloud --project=p --quiet ${what}`), what);
  }
  t.false(dry.stdout.includes('firestore databases delete'));
});

test('a custom-mode network needs SUBNETWORK, which the functions then get', async (t) => {
  const missing = await runDeploy({ FAKE_CUSTOM_VPC: '1' });
  t.not(missing.code, 0);
  t.regex(missing.stderr, /custom-mode: set SUBNETWORK/);
  t.is(callsOf(missing.calls, 'compute firewall-rules').length, 0);

  const given = await runDeploy({ FAKE_CUSTOM_VPC: '1', SUBNETWORK: 'class-subnet' });
  t.is(given.code, 0, given.stderr);
  t.true(
    given.calls.some(
      (c) =>
        words(c) === 'compute networks subnets describe class-subnet' &&
        flag(c, 'region')[0] === 'us-central1',
    ),
  );
  t.is(envOf(deployOf(given, 'workshops')).get('VM_SUBNETWORK'), 'class-subnet');
  t.is(envOf(deployOf(await fresh(), 'workshops')).get('VM_SUBNETWORK'), '');
});

test('SEAT_DOMAIN: the zone must hold it and be public; the functions may change that zone alone, and learn the domain', async (t) => {
  const seats = {
    SEAT_DOMAIN: 'seats.school.example',
    SEAT_DNS_ZONE: 'seats',
    FAKE_DNS_ZONE: 'seats school.example. public',
  };
  const state = newState();
  const run = await runDeploy(seats, { state });
  t.is(run.code, 0, run.stderr);
  const deployed = stateOf(state);
  t.true(deployed.enabled!.includes('dns.googleapis.com'));
  const env = envOf(deployOf(run, 'workshops'));
  t.is(env.get('SEAT_DOMAIN'), 'seats.school.example');
  t.is(env.get('SEAT_DNS_ZONE'), 'seats');
  const bindings = deployed.iam!.split('\n').filter((line) => line.includes('dns'));
  t.deepEqual(bindings, [`dns_managed-zones_seats\tserviceAccount:${FN_SA}\troles/dns.admin`]);

  const again = await runDeploy(seats, { state });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(callsOf(again.calls, 'dns managed-zones set-iam-policy'), [], 'granted once');

  // Destroy removes the VMs' names (the operator's other names stay) and the zone binding.
  const destroy = await runDeploy(
    {
      ...seats,
      PORTAL_SERVICE_ACCOUNT: '',
      FAKE_DNS_RECORDS: 'www.seats.school.example.\nct-abcdefghij-0.seats.school.example.\n',
    },
    { state, args: ['destroy'] },
  );
  t.is(destroy.code, 0, destroy.stderr);
  t.deepEqual(
    callsOf(destroy.calls, 'dns record-sets delete').map((c) => words(c)),
    ['dns record-sets delete ct-abcdefghij-0.seats.school.example.'],
  );
  t.is(stateOf(state).iam, '', 'no binding left');

  for (const [zone, why] of [
    ['', /does not exist/],
    ['seats other.example. public', /not inside the zone/],
    ['seats school.example. private', /private: the seats' names must be public/],
  ] as const) {
    const refused = await runDeploy({ ...seats, FAKE_DNS_ZONE: zone });
    t.not(refused.code, 0);
    t.regex(refused.stderr, why);
    t.is(callsOf(refused.calls, 'functions deploy').length, 0);
  }
  const half = await runDeploy({ SEAT_DOMAIN: 'seats.school.example' });
  t.is(half.code, 2);
  t.regex(half.stderr, /go together/);
});
