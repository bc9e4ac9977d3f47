// A seat's disk share on real Docker: a learner who fills their home gets ENOSPC and nobody else
// notices; /tmp and the container's own layer are bounded too; a VM's disks go with it.
import { emulatorTest as test } from '../helpers/emulators.ts';
import {
  boot,
  docker,
  get,
  instanceFor,
  readyMessages,
  stopAndCheckNothingLeft,
} from '../helpers/vm.ts';
import { runCommand } from '../../local/commands.ts';

test('a full home gives its learner ENOSPC; the other seats and Caddy keep answering', async (t) => {
  const plan = await instanceFor({ seatFirst: 1, seatCount: 2 });
  const messages = await readyMessages(t);
  const vm = await boot(t, plan, { CT_HOME_SIZE: '64M', CT_TMP_SIZE: '16m' });
  const [ready] = await messages.forVm(plan.vmName);
  t.like(ready, { state: 'ready', seatsReady: 2 }, ready?.error);
  const [seat1, seat2] = [`${vm.namePrefix}seat-1`, `${vm.namePrefix}seat-2`];
  const inSeat = (container: string, script: string) =>
    runCommand('docker', ['exec', '-u', 'learner', container, 'bash', '-c', script]);

  // The learner's home came with the image's dotfiles, and is the seat's 64 MB share.
  t.is((await inSeat(seat1, 'test -f ~/.bashrc')).code, 0, 'the image’s home was copied in');
  const size = Number((await inSeat(seat1, 'df -k --output=size ~ | tail -1')).stdout.trim());
  t.true(size > 40_000 && size <= 65_536, `home is about 64 MB (${size} kB)`);

  const fill = await inSeat(seat1, 'head -c 100M /dev/zero > ~/fill');
  t.not(fill.code, 0);
  t.regex(fill.stderr, /No space left on device/);
  // Nobody else notices: the other seat writes and answers, Caddy answers, and so does seat 1.
  t.is((await inSeat(seat2, 'echo mine > ~/notes.txt && cat ~/notes.txt')).stdout, 'mine\n');
  t.is((await get(vm, '/health')).text, 'OK');
  for (const [seat, token] of plan.tokens) {
    for (const kind of ['terminal', 'files', 'browser']) {
      t.is((await get(vm, `/vm/${seat}/${kind}/?t=${token}`)).status, 200, `seat ${seat} ${kind}`);
    }
  }
  t.regex((await inSeat(seat1, 'rm ~/fill && echo freed > ~/x && cat ~/x')).stdout, /freed/);

  // /tmp is a bounded tmpfs, and the rest of the container's own layer is read-only.
  const tmp = await inSeat(seat1, 'head -c 40M /dev/zero > /tmp/fill');
  t.regex(tmp.stderr, /No space left on device/);
  const layer = await inSeat(seat1, 'echo x > /var/tmp/x');
  t.regex(layer.stderr, /Read-only file system/);
  const browser = await docker(
    'inspect',
    '--format',
    '{{json .HostConfig.Tmpfs}} {{range .Mounts}}{{.Name}}:{{.Destination}}{{end}}',
    `${seat1}-browser`,
  );
  t.is(browser, `{"/tmp":"rw,nosuid,nodev,size=16m"} ${seat1}-browser:/home/neko`);

  // A reboot keeps the learner's files on their disk.
  await vm.reboot({ powerCycle: true });
  t.like((await messages.forVm(plan.vmName, 2))[1], { state: 'ready', seatsReady: 2 });
  t.is((await inSeat(seat2, 'cat ~/notes.txt')).stdout, 'mine\n');
  await stopAndCheckNothingLeft(t, vm);
});
