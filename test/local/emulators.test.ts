import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { startEmulatorPair } from '../../local/emulators.ts';
import { groupExists } from '../../local/process-groups.ts';

/*
 * Start-up of the emulator pair, with `gcloud` replaced on PATH by a script: its firestore
 * "emulator" is a real HTTP server on the port it is given, its pubsub one dies at start-up
 * unless FAKE_PUBSUB=serve. The real emulators are used by every integration test.
 */
const FAKE_GCLOUD = `#!/usr/bin/env bash
set -euo pipefail
for arg in "$@"; do
  case $arg in --host-port=*) port=\${arg##*:} ;; esac
done
serve() {
  echo "$$" >>"$FAKE_DIR/$1.pids"
  exec "$NODE" -e "require('http').createServer((q, s) => s.end('Ok')).listen($port, '127.0.0.1')"
}
case " $* " in
  *" firestore "*) serve firestore ;;
  *) [[ \${FAKE_PUBSUB:-} == serve ]] && serve pubsub
     echo "pubsub start $port" >>"$FAKE_DIR/pubsub.starts"
     echo "java.net.BindException: Address already in use" >&2
     exit 1 ;;
esac
`;

const lines = async (file: string) =>
  (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);

let dir: string;
test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ct-fake-gcloud-'));
  await writeFile(path.join(dir, 'gcloud'), FAKE_GCLOUD);
  await chmod(path.join(dir, 'gcloud'), 0o755);
  Object.assign(process.env, {
    PATH: `${dir}:${process.env.PATH}`,
    FAKE_DIR: dir,
    NODE: process.execPath,
  });
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

// Serial: the two tests share the fake's files and its FAKE_PUBSUB switch.
test.serial(
  'an emulator dying at start-up is tried three times; the one that started is stopped',
  async (t) => {
    const error = await t.throwsAsync(startEmulatorPair('p'));
    t.regex(error!.message, /exited early[\s\S]*BindException/);
    const starts = await lines(path.join(dir, 'pubsub.starts'));
    t.is(starts.length, 3);
    t.is(new Set(starts).size, 3, 'each attempt on a port of its own');
    const [firestore] = await lines(path.join(dir, 'firestore.pids'));
    t.truthy(firestore);
    // Left running, it would keep the test process (and the whole run) from ever exiting.
    t.false(groupExists(Number(firestore)), 'the firestore emulator that did start is gone');
  },
);

test.serial('a pair on ports below the ephemeral range, stopped by its stop()', async (t) => {
  process.env.FAKE_PUBSUB = 'serve';
  t.teardown(() => delete process.env.FAKE_PUBSUB);
  const pair = await startEmulatorPair('p');
  const pids = (await lines(path.join(dir, 'pubsub.pids'))).map(Number);
  for (const host of [pair.firestoreHost, pair.pubsubHost]) {
    const port = Number(host.split(':')[1]);
    t.true(port < 32_768, `${host} below Linux's ephemeral ports`);
    t.is(await (await fetch(`http://${host}/`)).text(), 'Ok');
  }
  await Promise.all(pair.emulators.map((e) => e.stop()));
  t.true(pids.length === 1 && !groupExists(pids[0]!));
  await t.throwsAsync(fetch(`http://${pair.pubsubHost}/`));
});
