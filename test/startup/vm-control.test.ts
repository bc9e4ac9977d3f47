// The control plane's channel to a running VM, on real Docker: the watcher the startup script
// starts follows the instance metadata (long polls with ETags on the local metadata server), and
// a freed seat really is freed (new credential, old socket closed, containers and home new), a
// reset keeps or wipes the home, and the class end reaches every seat's clock file.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import type { BootedInstance } from '../../local/vm-runner.ts';
import { emulatorTest as vmTest } from '../helpers/emulators.ts';
import { eventually } from '../helpers/stack.ts';
import {
  boot,
  docker,
  get,
  instanceFor,
  newToken,
  readyMessages,
  stopAndCheckNothingLeft,
} from '../helpers/vm.ts';

/** A terminal socket through Caddy, collecting what the shell prints. */
async function openTerminal(vm: BootedInstance, seat: number, token: string) {
  const origin = vm.seatOrigin(seat);
  const ws = new WebSocket(`${origin.replace(/^https/, 'wss')}/vm/${seat}/terminal/ws`, {
    headers: { cookie: `ct_seat_${seat}=${token}`, origin },
  });
  let output = '';
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.on('message', (data, isBinary) => {
    if (isBinary) output += (data as Buffer).toString('utf8');
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, closed, output: () => output };
}

vmTest(
  'a freed seat is new on the VM, a reset keeps or wipes the home, the clock follows',
  async (t) => {
    t.timeout(20 * 60_000); // five runs of the startup script on a shared, loaded machine
    const plan = await instanceFor({ seatFirst: 3, seatCount: 2, withScriptMetadata: true });
    const metadata = plan.instance.metadata;
    metadata['clarateach-watcher'] = readFileSync('startup/clarateach-watcher.sh', 'utf8');
    metadata['class-ends'] = '2030-01-01T10:00:00.000Z';
    const messages = await readyMessages(t);
    const vm = await boot(t, plan, { CT_WATCH_TIMEOUT: '5' });
    t.is((await messages.forVm(plan.vmName))[0]?.state, 'ready');
    const clock = path.join(vm.stateDir, 'vm', 'clock', 'class-ends');
    await eventually('the clock file', () => {
      try {
        return readFileSync(clock, 'utf8') === '2030-01-01T10:00:00.000Z';
      } catch {
        return false;
      }
    });
    const seatA = `${vm.namePrefix}seat-3`;
    const seatB = `${vm.namePrefix}seat-4`;
    t.is(
      await docker('exec', seatA, 'cat', '/run/clarateach/class-ends'),
      '2030-01-01T10:00:00.000Z',
    );

    // Learner A works in seat 3: a file, and a shell that printed something.
    const oldToken = plan.tokens.get(3)!;
    await docker('exec', '-u', 'learner', seatA, 'sh', '-c', 'echo "A was here" > ~/a.txt');
    const terminal = await openTerminal(vm, 3, oldToken);
    terminal.ws.send(Buffer.from('echo TRACE-OF-A\r'));
    await eventually('the shell answers', () => terminal.output().includes('TRACE-OF-A'));
    const idBefore = await docker('inspect', '--format', '{{.Id}}', seatB);

    // The instructor frees seat 3: a new credential and a wiping reset, in the metadata.
    const newSeat3 = newToken();
    const set = (changes: Record<string, string>) => {
      Object.assign(metadata, changes);
      vm.setMetadata({ ...metadata });
    };
    set({
      'seat-tokens': `3:${newSeat3} 4:${plan.tokens.get(4)!}`,
      'seat-resets': '3:1:1',
      'class-ends': '2030-01-01T11:00:00.000Z',
    });
    const [, confirmed] = await messages.forVm(plan.vmName, 2);
    t.like(confirmed, { state: 'ready', seatResets: '3:1', seatsReady: 2 });
    await terminal.closed; // A's open terminal is closed
    t.is((await get(vm, `/vm/3/terminal/?t=${oldToken}`)).status, 403, 'the old URL');
    t.is((await get(vm, '/vm/3/terminal/', `ct_seat_3=${oldToken}`)).status, 403, 'the old cookie');
    t.is((await get(vm, `/vm/3/terminal/?t=${newSeat3}`)).status, 200, 'the new credential');
    // The old credential went first: Caddy took the new one before the seat was redone.
    const rerun = readFileSync(vm.logPath, 'utf8').split(
      'seats changed: running the startup script',
    )[1];
    const caddyAt = rerun?.indexOf(`started ${vm.namePrefix}clarateach-caddy`) ?? -1;
    const resetAt = rerun?.indexOf('seat 3 reset to generation 1') ?? -1;
    t.true(
      caddyAt >= 0 && resetAt > caddyAt,
      'Caddy restarted with the new credential before the reset',
    );
    t.is(
      await docker('exec', seatA, 'sh', '-c', 'ls ~/a.txt 2>&1 || true'),
      "ls: cannot access '/home/learner/a.txt': No such file or directory",
    );
    const next = await openTerminal(vm, 3, newSeat3);
    next.ws.send(Buffer.from('echo NEXT\r'));
    await eventually('the new shell answers', () => next.output().includes('NEXT'));
    t.false(next.output().includes('TRACE-OF-A'), 'no trace of the old shell');
    t.is(readFileSync(clock, 'utf8'), '2030-01-01T11:00:00.000Z', 'an extension reaches the clock');
    t.is(await docker('inspect', '--format', '{{.Id}}', seatB), idBefore, 'seat 4 untouched');
    next.ws.close();

    // Seat 4 is reset keeping its home, then wiping it; the same credential lets it in.
    await docker('exec', '-u', 'learner', seatB, 'sh', '-c', 'echo "B keeps" > ~/b.txt');
    set({ 'seat-resets': '3:1:1 4:1:0' });
    t.like((await messages.forVm(plan.vmName, 3))[2], { state: 'ready', seatResets: '3:1 4:1' });
    t.not(await docker('inspect', '--format', '{{.Id}}', seatB), idBefore, 'a fresh container');
    t.is(await docker('exec', seatB, 'cat', '/home/learner/b.txt'), 'B keeps');
    set({ 'seat-resets': '3:1:1 4:2:2' });
    t.like((await messages.forVm(plan.vmName, 4))[3], { state: 'ready', seatResets: '3:1 4:2' });
    t.is(await docker('exec', seatB, 'sh', '-c', 'cat ~/b.txt 2>/dev/null || echo gone'), 'gone');
    const token4 = plan.tokens.get(4)!;
    t.is((await get(vm, '/vm/4/terminal/', `ct_seat_4=${token4}`)).status, 200);

    // A repeated change (the same values again) and a reboot converge without another reset.
    set({});
    await vm.reboot();
    t.like((await messages.forVm(plan.vmName, 5))[4], { state: 'ready', seatResets: '3:1 4:2' });
    t.regex(readFileSync(vm.logPath, 'utf8'), /clarateach-watcher/);
    await stopAndCheckNothingLeft(t, vm);
  },
);
