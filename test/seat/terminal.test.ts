import test from 'ava';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { HIGH_WATERMARK, MAX_BATCH } from '../../images/workspace/server/terminal/shell-session.ts';
import { TermClient, eventually, startSeat, tempDir, withSeat } from './helpers.ts';

/**
 * The terminal over its WebSocket, from Node: one real login shell in a real pty per seat.
 * Each test has a seat of its own, so the shell state of one never leaks into another.
 */

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('input reaches the shell and its output comes back; resize changes the pty size', async (t) => {
  const { seat, open } = await withSeat(t);
  const c = await open(seat.terminalUrl);
  t.true(c.pid > 0);
  c.type('echo "seat=$CLARATEACH_SEAT sum=$((40+2))"\r');
  // The typed line echoes `$((40+2))`; only the shell's output holds 42.
  t.truthy(await c.waitFor(/seat=5 sum=42/));
  c.resize(100, 30);
  c.type('stty size\r');
  t.truthy(await c.waitFor(/\r30 100\r\n/));
});

test('the shell is a login shell started in the home folder with TERM set', async (t) => {
  const { seat, open } = await withSeat(t);
  const c = await open(seat.terminalUrl);
  // The quotes split the marker, so the echoed command line cannot match.
  c.type('shopt -q login_shell && echo "lo""gin=yes term=$TERM cwd=$(pwd)"\r');
  const m = await c.waitFor(/login=yes term=(\S+) cwd=(\S+)/);
  t.is(m[1], 'xterm-256color');
  t.regex(m[2]!, /seat-term-/);
});

test('a viewer that comes back reattaches to the same shell and sees its recent output', async (t) => {
  const { seat, open } = await withSeat(t);
  const first = await open(seat.terminalUrl);
  first.type('echo "pid=$$"\r');
  const pid = (await first.waitFor(/pid=(\d+)/))[1]!;
  await first.close();

  const again = await open(seat.terminalUrl);
  t.is(String(again.pid), pid);
  t.true(again.controls[0]?.type === 'attached' && (again.controls[0].replay ?? 0) > 0);
  t.regex(again.replay, new RegExp(`pid=${pid}`));
  again.type('echo "again=$$"\r');
  t.is((await again.waitFor(/again=(\d+)/))[1], pid);
});

test('two viewers see the same shell live', async (t) => {
  const { seat, open } = await withSeat(t);
  const a = await open(seat.terminalUrl);
  const b = await open(seat.terminalUrl);
  t.is(a.pid, b.pid);
  a.type('echo "both-$((6*7))"\r');
  await Promise.all([a.waitFor(/both-42/), b.waitFor(/both-42/)]);
  b.type('echo "from-b-$((5+5))"\r');
  await Promise.all([a.waitFor(/from-b-10/), b.waitFor(/from-b-10/)]);
  t.pass();
});

test('flow control: a flood stops at the high watermark until acked; Ctrl-C then works', async (t) => {
  const { seat, open } = await withSeat(t);
  const c = await open(seat.terminalUrl, { ack: false });
  c.type('yes flood-line\r');
  await c.until(() => c.received > HIGH_WATERMARK, 'a flood past the high watermark');
  // Paused: what arrived is bounded by the watermark plus what was in flight (one batch of
  // up to MAX_BATCH plus one pty read), however long we look.
  const bound = HIGH_WATERMARK + 2 * MAX_BATCH + 64 * 1024;
  await new Promise((r) => setTimeout(r, 500));
  const seen = c.received;
  t.true(seen <= bound, `received ${seen} bytes without acking, bound ${bound}`);
  await new Promise((r) => setTimeout(r, 500));
  t.is(c.received, seen, 'nothing more arrives while nothing is acknowledged');

  c.type('\x03');
  c.acking = true;
  c.ackAll();
  c.type('echo "alive-$((2+3))"\r');
  t.truthy(await c.waitFor(/alive-5/));
});

test('malformed frames are ignored and never stop the server', async (t) => {
  const { seat, open } = await withSeat(t);
  const c = await open(seat.terminalUrl);
  for (const frame of [
    'garbage',
    '',
    'null',
    '[]',
    '{"type":"resize","cols":-1,"rows":5}',
    '{"type":"resize","cols":0,"rows":0}',
    '{"type":"resize","cols":1e9,"rows":1}',
    '{"type":"resize","cols":"80","rows":"24"}',
    '{"type":"resize","cols":80.5,"rows":24}',
    '{"type":"ack","bytes":-5}',
    '{"type":"ack","bytes":1e300}',
    '{"type":"nope"}',
    '{"__proto__":{"type":"ack"}}',
  ]) {
    c.send(frame);
  }
  c.send(Buffer.alloc(0), true);
  c.send(Buffer.from([0xff, 0xfe, 0xc3]), true);
  c.type('\r echo "still-$((1+1))"\r');
  t.truthy(await c.waitFor(/still-2/));

  // A frame above the size limit closes that socket only.
  const big = await open(seat.terminalUrl);
  big.send(Buffer.alloc(2 * 1024 * 1024, 0x61), true);
  t.is((await big.closed).code, 1009);
  const next = await open(seat.terminalUrl);
  next.type('echo "after-$((3+3))"\r');
  t.truthy(await next.waitFor(/after-6/));
});

test('a WebSocket from another origin is refused with 403; same origin and none pass', async (t) => {
  const { seat, open } = await withSeat(t);
  const err = await t.throwsAsync(
    TermClient.open(seat.terminalUrl, { origin: 'http://evil.example' }),
  );
  t.is((err as Error & { status?: number }).status, 403);
  const lookalike = await t.throwsAsync(
    TermClient.open(seat.terminalUrl, { origin: seat.terminalUrl.replace(/:(\d+)\/$/, ':1$1') }),
  );
  t.is((lookalike as Error & { status?: number }).status, 403);
  const wrongPath = await t.throwsAsync(TermClient.open(seat.terminalUrl, { path: 'other' }));
  t.is((wrongPath as Error & { status?: number }).status, 404);

  const same = await open(seat.terminalUrl, { origin: new URL(seat.terminalUrl).origin });
  const none = await open(seat.terminalUrl);
  t.is(same.pid, none.pid);
});

test('when the shell exits viewers are told, and the next connection starts a new shell', async (t) => {
  const { seat, open } = await withSeat(t);
  const a = await open(seat.terminalUrl);
  const b = await open(seat.terminalUrl);
  a.type('exit 3\r');
  const [ca, cb] = await Promise.all([a.closed, b.closed]);
  t.is(ca.code, 1000);
  t.is(cb.code, 1000);
  t.like(a.controls.at(-1), { type: 'exit', code: 3 });
  t.like(b.controls.at(-1), { type: 'exit', code: 3 });
  const c = await open(seat.terminalUrl);
  t.not(c.pid, a.pid);
  c.type('echo "new-$((8+1))"\r');
  t.truthy(await c.waitFor(/new-9/));
});

test('closing the server ends the shell and its background jobs', async (t) => {
  const home = await tempDir('seat-term-');
  t.teardown(() => home.remove());
  const seat = await startSeat({ home: home.dir });
  const c = await TermClient.open(seat.terminalUrl);
  c.type('sleep 12345 & echo "bg=$!"\r');
  const bg = Number((await c.waitFor(/bg=(\d+)/))[1]);
  t.true(alive(bg) && alive(c.pid));
  await seat.close();
  const { code } = await c.closed;
  t.is(code, 1001);
  t.false(alive(c.pid), 'shell gone');
  // A killed job stays a zombie until whoever adopted it reaps it.
  t.true(await eventually(() => !alive(bg) || isZombie(bg)), 'background job gone');
  t.is(c.ws.readyState, WebSocket.CLOSED);
});

function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
