import test from 'ava';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { mayType, roleOf } from '../../images/workspace/server/terminal/roles.ts';
import { TermClient, withSeat } from './helpers.ts';

/**
 * The instructor's read-only view of a seat's terminal, on the seat server itself: a socket that
 * Caddy marks `X-Clarateach-Role: viewer` sees the shell live, and the server drops what it sends.
 */

const VIEWER = { 'x-clarateach-role': 'viewer' };

test('only exactly "viewer" is a viewer; a viewer may not type', (t) => {
  t.is(roleOf(VIEWER), 'viewer');
  t.is(roleOf({}), 'learner');
  t.is(roleOf({ 'x-clarateach-role': 'Viewer ' }), 'learner');
  t.false(mayType('viewer'));
  t.true(mayType('learner'));
});

test('a viewer sees the learner type, and its keystrokes and resizes change nothing', async (t) => {
  const { seat, home, open } = await withSeat(t, 'seat-watch-');
  const learner = await open(seat.terminalUrl);
  // The console opens the socket from its own origin: the viewer's credential is no cookie.
  const viewer = await open(seat.terminalUrl, {
    headers: VIEWER,
    origin: 'http://console.example',
  });
  t.is(viewer.pid, learner.pid, 'the viewer watches the learner’s shell');

  learner.type('echo "wat""ched"\r');
  t.truthy(await viewer.waitFor(/watched/));

  viewer.type('touch viewer-was-here\r');
  viewer.resize(77, 33);
  // A pong comes back once the server has handled every frame the viewer sent before the ping,
  // so the learner's next command runs after whatever of the viewer's reached the shell.
  await new Promise((resolve) => {
    viewer.ws.once('pong', resolve);
    viewer.ws.ping();
  });
  learner.type('stty size; ls viewer-was-here 2>&1 | tr -d "\\n"; echo " [do""ne]"\r');
  const done = await learner.waitFor(/(\d+ \d+)\r\n([^\r\n]*) \[done\]/);
  t.is(done[1], '24 80', 'the pty keeps the learner’s size');
  t.regex(done[2]!, /No such file/);
  t.false(existsSync(path.join(home, 'viewer-was-here')));
  t.notRegex(learner.output, /touch viewer-was-here/, 'the viewer’s keys never reached the shell');

  // Without the role, another origin is refused as before (the learner's cookie guard).
  const refused = await t.throwsAsync(
    TermClient.open(seat.terminalUrl, { origin: 'http://console.example' }),
  );
  t.regex(refused.message, /403/);
});
