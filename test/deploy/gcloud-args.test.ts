import { spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import test from 'ava';
import { unrunnable } from '../helpers/prerequisites.ts';
import { newState, runDeploy, tamper, words, type DeployRun } from './harness.ts';

/**
 * The recording fake accepts any arguments; the real Google Cloud CLI does not. Every distinct
 * kind of gcloud call deploy.sh makes is handed to the real gcloud, with no credentials and a
 * throwaway configuration: it must fail only for want of credentials (or network), never because
 * it rejects the command line (`ERROR: (gcloud.…) argument …`, `unrecognized arguments`, status 2),
 * as it does when --set-env-vars and --update-env-vars are both given.
 */

// Generous: a timeout fails the test, and this machine may be shared and slow.
const PER_CALL_TIMEOUT_MS = 120_000;
const PARALLEL = 2;

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Resolved now, before any test puts a fake gcloud first on PATH. */
const realGcloud = onPath('gcloud');

/** gcloud's command tree on disk (SDK/lib/surface), to tell command words from positionals. */
function surfaceDir(gcloud: string): string | undefined {
  try {
    const dir = join(dirname(dirname(realpathSync(gcloud))), 'lib', 'surface');
    return existsSync(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** `functions deploy` for `functions deploy NAME ...`; without the SDK tree, the first 3 words. */
function commandPath(call: readonly string[], surface: string | undefined): string {
  const plain = words(call).split(' ');
  if (!surface) return plain.slice(0, 3).join(' ');
  const path: string[] = [];
  let dir = surface;
  for (const word of plain) {
    const name = word.replace(/-/g, '_');
    if (existsSync(join(dir, name, '__init__.py'))) {
      path.push(word);
      dir = join(dir, name);
    } else if (existsSync(join(dir, `${name}.py`)) || existsSync(join(dir, `${name}.yaml`))) {
      path.push(word);
      break;
    } else break;
  }
  return path.length > 0 ? path.join(' ') : plain.slice(0, 3).join(' ');
}

/**
 * One call of each kind: the same command with the same flag names (values aside) is checked
 * once, so `functions deploy` is checked for an HTTP, a retried and a non-retried function.
 */
function representatives(calls: readonly string[][], surface: string | undefined): string[][] {
  const chosen = new Map<string, string[]>();
  for (const call of calls) {
    const flags = call
      .filter((a) => a.startsWith('-'))
      .map((a) => a.split('=')[0])
      .sort();
    const key = `${commandPath(call, surface)} ${[...new Set(flags)].join(' ')}`;
    if (!chosen.has(key)) chosen.set(key, call);
  }
  return [...chosen.values()];
}

type Verdict = 'rejected-arguments' | 'needs-credentials' | 'timeout' | 'other';
interface Outcome {
  args: string[];
  status: number | null;
  stderr: string;
  verdict: Verdict;
}

const REJECTED =
  /^ERROR: \(gcloud[\w.-]*\) (argument |unrecognized arguments|Invalid choice|Error parsing \[)/m;

function runReal(gcloud: string, args: string[], cwd: string): Promise<Outcome> {
  const config = mkdtempSync(join(tmpdir(), 'deploy-gcloud-config-'));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: config,
    LANG: 'C.UTF-8',
    CLOUDSDK_CONFIG: config,
    CLOUDSDK_CORE_PROJECT: 'p',
    CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
    CLOUDSDK_CORE_CHECK_GCE_METADATA: 'false',
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    CLOUDSDK_CORE_ENABLE_FEATURE_FLAGS: 'false',
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
    // Should a command get as far as the network without credentials, it meets a closed port.
    HTTPS_PROXY: 'http://127.0.0.1:9',
    HTTP_PROXY: 'http://127.0.0.1:9',
  };
  if (process.env.CLOUDSDK_PYTHON) env.CLOUDSDK_PYTHON = process.env.CLOUDSDK_PYTHON;
  return new Promise((resolve) => {
    // Its own process group, so that a timeout also ends the Python process the wrapper starts.
    const child = spawn(gcloud, args, {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let timedOut = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, PER_CALL_TIMEOUT_MS);
    const done = (status: number | null) => {
      clearTimeout(timer);
      rmSync(config, { recursive: true, force: true });
      const verdict: Verdict =
        status === 2 || REJECTED.test(stderr)
          ? 'rejected-arguments'
          : timedOut
            ? 'timeout'
            : /active account|gcloud auth login|credential/i.test(stderr)
              ? 'needs-credentials'
              : 'other';
      resolve({ args, status, stderr, verdict });
    };
    child.on('error', (e) => {
      stderr += String(e);
      done(null);
    });
    child.on('close', done);
  });
}

async function runAll(gcloud: string, jobs: string[][], cwd: string): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      outcomes[i] = await runReal(gcloud, jobs[i]!, cwd);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return outcomes;
}

/**
 * A first run creates everything (on a custom-mode network); after hand edits a second one takes
 * the update paths (and mirrors one image again without a source); destroy deletes it all.
 */
async function everyKindOfRun(): Promise<DeployRun[]> {
  const state = newState();
  const first = await runDeploy({ FAKE_CUSTOM_VPC: '1', SUBNETWORK: 'class-subnet' }, { state });
  tamper(state, 'compute_firewall-rules_clarateach-http', '--description=by hand');
  tamper(state, 'pubsub_subscriptions_clarateach.dead-letter.sub', '--labels=clarateach_spec=x');
  tamper(state, 'scheduler_jobs_clarateach-sweep', '--schedule=0 * * * *');
  tamper(state, 'scheduler_jobs_clarateach-sweep', 'state=PAUSED');
  unlinkSync(`${state}/res/artifacts_docker_images_caddy:2.10.2`);
  const second = await runDeploy({ ADMIN_EMAILS: 'new@school.example' }, { state });
  const destroy = await runDeploy(
    { FAKE_INSTANCES: 'ct-abc-0\tus-central1-a\n' },
    { state, args: ['destroy', '--delete-data'] },
  );
  return [first, second, destroy];
}

if (realGcloud) {
  test('the real gcloud accepts the arguments of every kind of call deploy.sh makes', async (t) => {
    const runs = await everyKindOfRun();
    for (const run of runs) t.is(run.code, 0, run.stderr);
    const cwd = mkdtempSync(join(tmpdir(), 'deploy-gcloud-cwd-'));
    t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
    // The build configurations are gone with the run: hand the real gcloud a copy of each.
    const configs = runs.flatMap((run) => run.buildConfigs);
    let built = 0;
    const calls = runs
      .flatMap((run) => run.calls)
      .map((call) => {
        if (!call.some((a) => a.startsWith('--config='))) return call;
        const copy = join(cwd, `build-${built}.json`);
        writeFileSync(copy, configs[built++] ?? '');
        return call.map((a) => (a.startsWith('--config=') ? `--config=${copy}` : a));
      });
    const jobs = representatives(calls, surfaceDir(realGcloud));
    t.log(`${calls.length} gcloud calls, ${jobs.length} kinds checked`);
    // Probes that show the check can tell the two apart: the old double env-var flag must be
    // rejected, and a plain valid command must merely lack credentials.
    const bad = [
      '--project=p',
      '--quiet',
      'functions',
      'deploy',
      'probe',
      '--gen2',
      '--region=us-central1',
      '--set-env-vars=A=1',
      '--update-env-vars=^|^B=2,3',
    ];
    const good = ['--project=p', '--quiet', 'pubsub', 'topics', 'describe', 'probe-topic'];
    const [badOutcome, goodOutcome, ...outcomes] = await runAll(
      realGcloud,
      [bad, good, ...jobs],
      cwd,
    );

    t.is(badOutcome!.verdict, 'rejected-arguments', badOutcome!.stderr);
    t.regex(badOutcome!.stderr, /At most one of .*--set-env-vars/);
    t.is(goodOutcome!.verdict, 'needs-credentials', goodOutcome!.stderr);
    // Anything but "needs credentials" is a failure: a timeout or an odd error proves nothing
    // about the arguments, so it must not pass for an accepted command line.
    for (const o of outcomes) {
      t.is(o.verdict, 'needs-credentials', `gcloud ${o.args.join(' ')} (${o.status})\n${o.stderr}`);
    }
  });
} else {
  unrunnable(
    'the real gcloud accepts deploy.sh arguments',
    'the Google Cloud CLI `gcloud` is not on PATH',
  );
}
