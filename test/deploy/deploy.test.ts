import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  ADMIN_EMAILS,
  callsOf,
  flag,
  FN_SA,
  PORTAL_SA,
  PROJECT,
  PUBSUB_AGENT,
  REPO,
  runDeploy,
  VM_SA,
  words,
  type DeployRun,
} from './harness.ts';

/**
 * deploy.sh against a recording `gcloud` and `curl` (no cloud here): it must run to the end,
 * deploy every function the code registers under its own entry point, retry the event functions,
 * let Eventarc invoke them, dead-letter poison messages, open only the ports the VMs use, stop on
 * real errors, and never configure the development identity.
 */

const DEAD_LETTER = 'clarateach.dead-letter';
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
    t.deepEqual(flag(deploy, 'runtime'), ['nodejs20']);
    if (kind === 'http') t.deepEqual(flag(deploy, 'no-allow-unauthenticated'), [''], name);
    else if (name !== 'sweep') t.deepEqual(flag(deploy, 'retry'), [''], name);
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
    const invokers = callsOf(run.calls, `functions add-invoker-policy-binding ${name}`);
    t.deepEqual(
      invokers.map((c) => flag(c, 'member')),
      [[`serviceAccount:${FN_SA}`]],
      name,
    );
    t.true(run.calls.indexOf(invokers[0]!) > run.calls.indexOf(deploy), `${name}: after deploy`);
  }
  for (const name of ['workshops', 'join']) {
    t.deepEqual(
      callsOf(run.calls, `functions add-invoker-policy-binding ${name}`).map((c) =>
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

test('the firewall opens Caddy and the seats mux ports the startup script uses, nothing else', async (t) => {
  const run = await fresh();
  // Derive the ports from their sources, so that a change there shows up here.
  const startup = readFileSync(join(REPO, 'startup/clarateach-startup.sh'), 'utf8');
  const httpPort = Number(/^CT_HTTP_PORT=\$\{CT_HTTP_PORT:-(\d+)\}/m.exec(startup)?.[1]);
  const muxBase = Number(/^CT_MUX_PORT_BASE=\$\{CT_MUX_PORT_BASE:-(\d+)\}/m.exec(startup)?.[1]);
  const plan = readFileSync(join(REPO, 'shared/core/plan.ts'), 'utf8');
  const maxSeats = Number(/MAX_SEATS_PER_VM = (\d+)/.exec(plan)?.[1]);
  t.deepEqual([httpPort, muxBase, maxSeats], [80, 30000, 20]);
  const mux = `${muxBase + 1}-${muxBase + maxSeats}`;

  t.true(run.calls.some((c) => words(c) === 'compute networks describe default'));
  const rules = callsOf(run.calls, 'compute firewall-rules create');
  const allowed = rules.flatMap((c) => flag(c, 'allow').flatMap((a) => a.split(',')));
  t.deepEqual(allowed.sort(), [`tcp:${httpPort}`, `tcp:${mux}`, `udp:${mux}`].sort());
  for (const rule of rules) {
    t.deepEqual(flag(rule, 'network'), ['default']);
    t.deepEqual(flag(rule, 'target-service-accounts'), [VM_SA]);
    t.deepEqual(flag(rule, 'direction'), ['INGRESS']);
  }
  t.false(run.lines.some((c) => c.includes('443')));
});

test('the VMs may read the one image repository, not every repository of the project', async (t) => {
  const run = await fresh();
  const grants = callsOf(run.calls, 'artifacts repositories add-iam-policy-binding');
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

test('a second run updates what exists instead of creating it again', async (t) => {
  const run = await runDeploy({ FAKE_EXISTS: '1' });
  t.is(run.code, 0, run.stderr);
  for (const what of [
    'compute firewall-rules create',
    'pubsub topics create',
    'pubsub subscriptions create',
    'iam service-accounts create',
    'artifacts repositories create',
    'firestore databases create',
    'scheduler jobs create',
  ]) {
    t.is(callsOf(run.calls, what).length, 0, what);
  }
  const updates = callsOf(run.calls, 'compute firewall-rules update');
  t.deepEqual(
    updates.map((c) => [words(c), flag(c, 'allow')[0]]),
    [
      ['compute firewall-rules update clarateach-http', 'tcp:80'],
      ['compute firewall-rules update clarateach-webrtc', 'tcp:30001-30020,udp:30001-30020'],
    ],
  );
  t.is(callsOf(run.calls, `pubsub subscriptions update ${DEAD_LETTER}.sub`).length, 1);
  t.is(callsOf(run.calls, 'scheduler jobs update pubsub clarateach-sweep').length, 1);
});

test('an index that already exists is fine', async (t) => {
  const run = await runDeploy({
    FAKE_FAIL: 'firestore indexes composite create',
    FAKE_FAIL_MESSAGE: 'ALREADY_EXISTS: index already exists',
  });
  t.is(run.code, 0, run.stderr);
  const indexes = JSON.parse(readFileSync(join(REPO, 'firestore.indexes.json'), 'utf8')) as {
    indexes: unknown[];
  };
  t.is(callsOf(run.calls, 'firestore indexes composite create').length, indexes.indexes.length);
  t.is(callsOf(run.calls, 'functions deploy').length, registered.length);
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
