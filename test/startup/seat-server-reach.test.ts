// The seat server is out of the learner's reach (issue 16): from the terminal, as `learner`, on
// real Docker, nothing signals, traces, reads or replaces it, and nothing else listens on its
// ports; what it does for the learner (files API, editor save, archives) is still the learner's.
import { emulatorTest as test } from '../helpers/emulators.ts';
import {
  boot,
  docker,
  instanceFor,
  readyMessages,
  stopAndCheckNothingLeft,
} from '../helpers/vm.ts';
import { TermClient } from '../seat/helpers.ts';

/**
 * Typed into the shell; each prints `R:<name>=<value>` (for an attempt, its status: 0 means the
 * learner got what it asked for). `rep` prints the marker in two parts, so the shell's echo of
 * the typed line never matches it.
 */
const ATTEMPTS = [
  `rep() { printf '%s:%s=%s\\n' R "$1" "$2"; }`,
  'S=$(pgrep -f "^node /opt/seat/seat-server.mjs"); [ -n "$S" ]; rep found $?',
  `rep serverids "$(awk '/^Uid/{print $2"/"$3"/"$4}' /proc/$S/status)"`,
  'cat /proc/$S/environ >/dev/null 2>&1; rep environ $?',
  `python3 -c 'import sys; open("/proc/" + sys.argv[1] + "/mem", "rb")' $S 2>/dev/null; rep mem $?`,
  `python3 -c 'import ctypes,sys; l=ctypes.CDLL(None); sys.exit(0 if l.ptrace(16,int(sys.argv[1]),0,0)==0 else 1)' $S; rep ptrace $?`,
  'kill -0 $S 2>/dev/null; rep signal0 $?',
  'kill -USR1 $S 2>/dev/null; rep usr1 $?; sleep 1; (exec 3<>/dev/tcp/127.0.0.1/9229) 2>/dev/null; rep inspector $?',
  // STOP alone, then CONT: a stopped server would hang the rest; KILL last.
  'ok=1; for s in $(seq 1 31); do case $s in 9 | 19) continue ;; esac; kill -s $s $S 2>/dev/null && ok=0; done; rep anysignal $ok',
  'kill -STOP $S 2>/dev/null; rep stop $?; kill -CONT $S 2>/dev/null',
  'kill -KILL $S 2>/dev/null; rep kill $?',
  // After all that, its ports are still its own; the ports below 1024 are root's.
  `for p in 3001 3002 3003 80; do for a in 0.0.0.0 127.0.0.1; do python3 -c 'import socket,sys; socket.socket().bind((sys.argv[1],int(sys.argv[2])))' $a $p 2>/dev/null; rep bind$p@$a $?; done; done`,
  'rep serverafter "$(pgrep -f "^node /opt/seat/seat-server.mjs")"; rep serverbefore "$S"',
  `rep uid "$(id -u)"; rep groups "$(id -G | tr ' ' ,)"; rep owner "$(stat -c %U:%G ~/owned.txt ~/made | tr '\\n' ,)"`,
  `for f in CapPrm CapEff NoNewPrivs; do rep $f "$(awk "/^$f/{print \\$2}" /proc/self/status)"; done`,
];

test('from the terminal, the learner cannot signal, trace, read or replace the seat server', async (t) => {
  t.timeout(10 * 60_000);
  const plan = await instanceFor({ seatFirst: 1, seatCount: 1 });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan);
  t.like((await messages.forVm(plan.vmName))[0], { state: 'ready' });
  const origin = vm.seatOrigin(1);
  const cookie = `ct_seat_1=${plan.tokens.get(1)!}`;
  const seat = `${vm.namePrefix}seat-1`;

  // The files API and the editor's save write as the learner; tar archives as the learner.
  const api = (pathAndQuery: string, init: RequestInit = {}) =>
    fetch(`${origin}/vm/1/files/api/${pathAndQuery}`, {
      ...init,
      headers: { cookie, origin, ...init.headers },
    });
  t.is((await api('upload?path=owned.txt', { method: 'PUT', body: 'mine' })).status, 201);
  const etag = (
    await api('upload?path=owned.txt&overwrite=1', { method: 'PUT', body: 'v2' })
  ).headers.get('etag')!;
  const save = await api('upload?path=owned.txt&overwrite=1', {
    method: 'PUT',
    body: 'saved',
    headers: { 'if-match': etag },
  });
  t.is(save.status, 201, 'the editor saves over the version it opened');
  const mkdir = await api('mkdir', {
    method: 'POST',
    body: JSON.stringify({ path: 'made' }),
    headers: { 'content-type': 'application/json' },
  });
  t.is(mkdir.status, 201);
  const archive = await api('download?path=made');
  t.is(archive.status, 200);
  t.deepEqual([...new Uint8Array(await archive.arrayBuffer()).slice(0, 2)], [0x1f, 0x8b]);

  // Through Caddy, as the learner's browser does.
  const through = { headers: { cookie }, origin };
  const term = await TermClient.open(`${origin}/vm/1/terminal/`, through);
  // One line at a time, each waited for (a loaded machine is slow to start python).
  for (const [i, line] of ATTEMPTS.entries()) {
    term.type(`${line}; rep step${i} 1\r`);
    await term.waitFor(new RegExp(`^R:step${i}=1\\r?$`, 'm'));
  }
  const result = Object.fromEntries(
    [...term.output.matchAll(/^R:([\w.@]+)=(.*?)\r?$/gm)].map((m) => [m[1]!, m[2]!]),
  );
  t.log(result);
  t.is(result.found, '0', 'the shell sees the server');
  t.is(result.serverids, '0/1000/0', 'the server: real and saved id root, effective learner');
  for (const attempt of ['environ', 'mem', 'ptrace', 'signal0', 'usr1', 'stop', 'kill']) {
    t.not(result[attempt], '0', `${attempt} is refused`);
  }
  t.not(result.inspector, '0', 'no inspector listens on 9229');
  t.is(result.anysignal, '1', 'no signal reaches the server');
  for (const port of [3001, 3002, 3003, 80]) {
    for (const address of ['0.0.0.0', '127.0.0.1']) {
      t.not(result[`bind${port}@${address}`], '0', `binding ${address}:${port} is refused`);
    }
  }
  t.is(result.serverafter, result.serverbefore, 'the same server still runs');
  t.is(result.uid, '1000', 'the shell is learner');
  t.is(result.groups, '1000', 'with no other group');
  t.is(result.owner, 'learner:learner,learner:learner,', 'what the server wrote is the learner’s');
  t.is(result.CapPrm, '0000000000000000', 'the shell holds no capability');
  t.is(result.CapEff, '0000000000000000');
  t.is(result.NoNewPrivs, '1', 'and cannot gain one');
  await term.close();

  // Even a signal the learner cannot send (root's, from `docker exec`) opens no inspector.
  const probe = await docker(
    'exec',
    seat,
    'bash',
    '-c',
    'kill -USR1 "$(pgrep -f "^node /opt/seat/seat-server.mjs")" && sleep 1 && ' +
      '{ (exec 3<>/dev/tcp/127.0.0.1/9229) 2>/dev/null && echo open || echo closed; }',
  );
  t.is(probe, 'closed', 'SIGUSR1 opens no inspector');

  // The server still answers, with the same shell.
  const again = await TermClient.open(`${origin}/vm/1/terminal/`, through);
  t.is(again.pid, term.pid);
  await again.close();
  await stopAndCheckNothingLeft(t, vm);
});
