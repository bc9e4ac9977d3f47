import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';

/**
 * deploy.sh against a recording `gcloud` and `curl` (no cloud here): it must run to the end,
 * deploy every function the code registers under its own entry point, retry the event functions,
 * and never configure the development identity.
 */
const run = promisify(execFile);

function fakeTools(): { dir: string; log: string } {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-'));
  const log = join(dir, 'calls.log');
  // `describe` fails (nothing exists yet), everything else succeeds; rulesets answer with a name.
  writeFileSync(
    join(dir, 'gcloud'),
    `#!/bin/bash\necho "gcloud $*" >> "${log}"\ncase "$*" in *" describe "*) exit 1 ;; *"print-access-token"*) echo token ;; esac\nexit 0\n`,
  );
  writeFileSync(
    join(dir, 'curl'),
    `#!/bin/bash\necho "curl $*" >> "${log}"\ncase "$*" in *@-*) cat >/dev/null ;; esac\necho '{"name":"projects/p/rulesets/r1"}'\n`,
  );
  chmodSync(join(dir, 'gcloud'), 0o755);
  chmodSync(join(dir, 'curl'), 0o755);
  return { dir, log };
}

test('deploy.sh deploys every registered function, retries events, never dev identity', async (t) => {
  const { dir, log } = fakeTools();
  await run('bash', ['deploy.sh'], {
    env: {
      ...process.env,
      PATH: `${dir}:${process.env.PATH}`,
      GCP_PROJECT: 'p',
      PORTAL_SERVICE_ACCOUNT: 'portal@p.iam.gserviceaccount.com',
    },
  });
  const calls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const registered = [
    ...readFileSync('functions/index.ts', 'utf8').matchAll(/ff\.(http|cloudEvent)\('(\w+)'/g),
  ].map((m) => ({ kind: m[1], name: m[2]! }));
  t.is(registered.length, 6);
  for (const { kind, name } of registered) {
    const deploy = calls.find((c) => c.includes(`functions deploy ${name} `));
    t.truthy(deploy, `${name} is deployed`);
    t.true(deploy!.includes(`--entry-point=${name}`));
    t.true(deploy!.includes('--runtime=nodejs20'));
    if (kind === 'http') t.true(deploy!.includes('--no-allow-unauthenticated'), name);
    else if (name !== 'sweep') t.true(deploy!.includes(' --retry'), name);
  }
  t.false(calls.some((c) => c.includes('AUTH_MODE=dev')));
  t.true(calls.some((c) => c.includes('AUTH_MODE=header')));
  t.true(
    calls.some(
      (c) =>
        c.includes('scheduler jobs create pubsub clarateach-sweep') &&
        c.includes('--topic=workshop.sweep'),
    ),
  );
  for (const topic of ['workshop.started', 'vm.ready', 'workshop.ended', 'workshop.sweep']) {
    t.true(
      calls.some((c) => c.includes(`pubsub topics create ${topic}`)),
      topic,
    );
  }
  const indexes = JSON.parse(readFileSync('firestore.indexes.json', 'utf8')) as {
    indexes: unknown[];
  };
  t.is(
    calls.filter((c) => c.includes('firestore indexes composite create')).length,
    indexes.indexes.length,
  );
  t.true(
    calls.some((c) => c.startsWith('curl') && c.includes('releases')),
    'rules released',
  );
});

test('deploy.sh refuses to start without its required settings', async (t) => {
  const { dir } = fakeTools();
  const error = await t.throwsAsync(
    run('bash', ['deploy.sh'], {
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, GCP_PROJECT: '' },
    }),
  );
  t.regex(String((error as { stderr?: string }).stderr), /GCP_PROJECT/);
});
