import test from 'ava';
import { callsOf, flag, newState, runDeploy, words } from './harness.ts';

/**
 * `deploy.sh --browser-api`: browsers call `workshops` and `join` themselves (allUsers may invoke
 * them at IAM) and CORS answers CONSOLE_ORIGINS; without the flag, today's portal-only mode, and a
 * run takes back what an earlier --browser-api run opened.
 */
const ORIGINS = 'https://console.school.example,http://localhost:5173';

const allUsersBindings = (calls: string[][], verb: 'add' | 'remove') =>
  callsOf(calls, `run services ${verb}-iam-policy-binding`)
    .filter((c) => flag(c, 'member')[0] === 'allUsers')
    .map((c) => `${words(c).split(' ').pop()} ${flag(c, 'role')[0]}`);

function consoleOrigins(calls: string[][], fn: string): string | undefined {
  const deploy = calls.find((c) => words(c) === `functions deploy ${fn}`)!;
  const env = flag(deploy, 'set-env-vars')[0]!.slice(3).split('|');
  return env.find((pair) => pair.startsWith('CONSOLE_ORIGINS='))?.slice('CONSOLE_ORIGINS='.length);
}

test('--browser-api needs CONSOLE_ORIGINS, and stops before any call without it', async (t) => {
  const envs: Array<Record<string, string>> = [
    {},
    { CONSOLE_ORIGINS: '*' },
    { CONSOLE_ORIGINS: 'console.example' },
  ];
  for (const env of envs) {
    const run = await runDeploy(env, { args: ['--browser-api'] });
    t.is(run.code, 2, JSON.stringify(env));
    t.regex(run.stderr, /CONSOLE_ORIGINS/);
    t.deepEqual(run.calls, []);
  }
  t.is(
    (await runDeploy({ CONSOLE_ORIGINS: ORIGINS }, { args: ['destroy', '--browser-api'] })).code,
    2,
  );
});

test('--browser-api lets anyone invoke the two HTTP functions, with CORS for the listed origins; a run without it takes that back', async (t) => {
  const state = newState();
  const open = await runDeploy({ CONSOLE_ORIGINS: ORIGINS }, { args: ['--browser-api'], state });
  t.is(open.code, 0, open.stderr);
  t.deepEqual(allUsersBindings(open.calls, 'add').sort(), [
    'join roles/run.invoker',
    'workshops roles/run.invoker',
  ]);
  for (const fn of ['workshops', 'join', 'onVmReady', 'sweep']) {
    t.is(consoleOrigins(open.calls, fn), ORIGINS, fn);
  }
  const again = await runDeploy({ CONSOLE_ORIGINS: ORIGINS }, { args: ['--browser-api'], state });
  t.deepEqual(allUsersBindings(again.calls, 'add'), [], 'a second run grants nothing again');

  // Today's mode, the default: nobody but the portal, no CORS.
  const closed = await runDeploy({ CONSOLE_ORIGINS: ORIGINS }, { state });
  t.is(closed.code, 0, closed.stderr);
  t.deepEqual(allUsersBindings(closed.calls, 'remove').sort(), [
    'join roles/run.invoker',
    'workshops roles/run.invoker',
  ]);
  t.is(consoleOrigins(closed.calls, 'workshops'), '');
  const fresh = await runDeploy({ CONSOLE_ORIGINS: ORIGINS });
  t.deepEqual(allUsersBindings(fresh.calls, 'add'), []);
  t.deepEqual(allUsersBindings(fresh.calls, 'remove'), []);
});
