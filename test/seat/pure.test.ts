import test from 'ava';
import { parseSeatConfig } from '../../images/workspace/server/config.ts';
import { tarArgs } from '../../images/workspace/server/files/archive.ts';
import { httpErrorOf } from '../../images/workspace/server/files/errors.ts';
import { isInside, parseRelPath } from '../../images/workspace/server/files/scope.ts';
import { attachmentDisposition, HttpError } from '../../images/workspace/server/http-util.ts';
import { originMatchesHost } from '../../images/workspace/server/origin.ts';
import { sessionOfStat } from '../../images/workspace/server/terminal/kill.ts';
import { parseClientControl } from '../../images/workspace/server/terminal/protocol.ts';
import { ReplayBuffer, replayStart } from '../../images/workspace/server/terminal/replay-buffer.ts';

/** The seat server's functional core: no sockets, no files. */

test('parseRelPath splits a relative path and refuses every escape by shape', (t) => {
  t.deepEqual(parseRelPath(''), []);
  t.deepEqual(parseRelPath('.'), []);
  t.deepEqual(parseRelPath('a//b/./c/'), ['a', 'b', 'c']);
  t.deepEqual(parseRelPath('a\\b'), ['a\\b']);
  t.deepEqual(parseRelPath('...'), ['...']);
  const code = (input: unknown) => (t.throws(() => parseRelPath(input)) as HttpError).code;
  t.is(code('..'), 'PATH_TRAVERSAL');
  t.is(code('a/../../b'), 'PATH_TRAVERSAL');
  t.is(code('..\\etc'), 'PATH_TRAVERSAL');
  t.is(code('/etc'), 'ABSOLUTE_PATH');
  t.is(code('a\0b'), 'INVALID_PATH');
  t.is(code('%2e%2e'), 'ENCODED_PATH');
  t.is(code('a%2Fb'), 'ENCODED_PATH');
  t.is(code(42), 'INVALID_PATH');
  t.is(code(null), 'INVALID_PATH');
  t.is(code('x'.repeat(256)), 'INVALID_PATH');
  t.is(code('a/'.repeat(2100)), 'INVALID_PATH');
});

test('isInside compares with root + "/", so a sibling with the same prefix is outside', (t) => {
  t.true(isInside('/home/learner', '/home/learner'));
  t.true(isInside('/home/learner', '/home/learner/a/b'));
  t.false(isInside('/home/learner', '/home/learnerX'));
  t.false(isInside('/home/learner', '/home/learnerX/a'));
  t.false(isInside('/home/learner', '/home'));
  t.true(isInside('/', '/anything'));
});

test('originMatchesHost: absent passes, same host passes, anything else fails', (t) => {
  t.true(originMatchesHost(undefined, 'h:3001'));
  t.true(originMatchesHost('http://h:3001', 'h:3001'));
  t.true(originMatchesHost('https://ex.com', 'ex.com:443'));
  t.true(originMatchesHost('http://EX.com', 'ex.com'));
  t.false(originMatchesHost('http://ex.com', 'ex.com:8080'));
  t.false(originMatchesHost('http://evil.com', 'ex.com'));
  t.false(originMatchesHost('http://ex.com.evil.com', 'ex.com'));
  t.false(originMatchesHost('null', 'ex.com'));
  t.false(originMatchesHost('file:///x', 'ex.com'));
  t.false(originMatchesHost('http://ex.com', undefined));
  t.false(originMatchesHost('http://ex.com', 'ex.com/path'));
  t.false(originMatchesHost('http://ex.com', 'user@ex.com'));
});

test('the replay starts at a line start and never inside a UTF-8 sequence', (t) => {
  const b = (s: string) => Buffer.from(s, 'utf8');
  t.is(replayStart(b('whole\nbuffer'), false).toString(), 'whole\nbuffer');
  t.is(replayStart(b('cut line\nnext\n'), true).toString(), 'next\n');
  const euro = b('€uro'); // e2 82 ac ...
  t.is(replayStart(euro.subarray(1), true).toString(), 'uro');
  t.is(replayStart(Buffer.alloc(0), true).length, 0);

  const replay = new ReplayBuffer(16);
  replay.append(b('abc\n'));
  t.is(replay.snapshot().toString(), 'abc\n');
  for (let i = 0; i < 10; i++) replay.append(b(`line ${i} é\n`));
  const snap = replay.snapshot().toString('utf8');
  t.true(snap.length > 0 && snap.length <= 16);
  t.true(snap.startsWith('line '), snap);
  t.false(snap.includes('\ufffd'));
  t.true(snap.endsWith('line 9 é\n'));
});

test('parseClientControl accepts resize and ack in range and nothing else', (t) => {
  t.deepEqual(parseClientControl('{"type":"resize","cols":80,"rows":24}'), {
    type: 'resize',
    cols: 80,
    rows: 24,
  });
  t.deepEqual(parseClientControl('{"type":"ack","bytes":5000}'), { type: 'ack', bytes: 5000 });
  for (const bad of [
    '',
    'x',
    '1',
    'null',
    '[]',
    '{"type":"resize","cols":0,"rows":24}',
    '{"type":"resize","cols":80,"rows":-1}',
    '{"type":"resize","cols":100000,"rows":24}',
    '{"type":"resize","cols":1.5,"rows":24}',
    '{"type":"ack","bytes":0}',
    '{"type":"ack","bytes":"5"}',
    '{"type":"input","data":"ls"}',
  ]) {
    t.is(parseClientControl(bad), null, bad);
  }
});

test('sessionOfStat reads the session id past a command name with spaces and parentheses', (t) => {
  t.is(sessionOfStat('123 (bash) S 1 123 123 34816 123 4194560 0'), 123);
  t.is(sessionOfStat('77 (we ird) (x)) R 5 70 60 0 -1'), 60);
  t.is(sessionOfStat('garbage'), null);
});

test('attachmentDisposition survives quotes, backslashes and non-ASCII names', (t) => {
  t.is(
    attachmentDisposition('a "b"\\ é.txt'),
    `attachment; filename="a _b__ _.txt"; filename*=UTF-8''a%20%22b%22%5C%20%C3%A9.txt`,
  );
});

test('tarArgs archives a folder by its name from its parent, without following links', (t) => {
  const args = tarArgs('/home/learner/-rf proj');
  t.deepEqual(args.slice(-3), ['--directory=/home/learner', '--', '-rf proj']);
  t.false(args.includes('-h') || args.includes('--dereference'));
});

test('file-system errors map to 4xx answers; unknown ones are left to the caller', (t) => {
  const e = (code: string) => Object.assign(new Error(code), { code });
  t.like(httpErrorOf(e('ENOENT')), { status: 404, code: 'NOT_FOUND' });
  t.like(httpErrorOf(e('EEXIST')), { status: 409 });
  t.like(httpErrorOf(e('EACCES')), { status: 403 });
  t.is(httpErrorOf(e('EWHAT')), null);
  t.is(httpErrorOf('boom'), null);
});

test('parseSeatConfig reads the environment with the documented defaults', (t) => {
  t.deepEqual(parseSeatConfig({ HOME: '/home/learner' }), {
    home: '/home/learner',
    terminalPort: 3001,
    filesPort: 3002,
    workspacePort: 3003,
    uploadMaxBytes: 100 * 1024 * 1024,
    shell: '/bin/bash',
    host: '0.0.0.0',
    className: '',
    seat: '',
    instructionFiles: {
      workshop: '/etc/clarateach/instructions.md',
      image: '/opt/workshop/instructions.md',
    },
    user: undefined,
    portalOrigin: undefined,
  });
  const portal = (value: string) =>
    parseSeatConfig({ HOME: '/h', CLARATEACH_PORTAL_ORIGIN: value }).portalOrigin;
  t.is(portal('https://portal.example:8443'), 'https://portal.example:8443');
  // It becomes a CSP source: a path, a wildcard or a second source is refused.
  for (const bad of [
    'https://p.example/x',
    '*',
    "https://a.example 'unsafe-inline'",
    'p.example',
  ]) {
    t.throws(() => portal(bad), { message: /CLARATEACH_PORTAL_ORIGIN/ }, bad);
  }
  t.deepEqual(parseSeatConfig({ HOME: '/h', SEAT_UID: '1000', SEAT_GID: '1001' }).user, {
    uid: 1000,
    gid: 1001,
  });
  t.throws(() => parseSeatConfig({ HOME: '/h', SEAT_UID: '1000' }));
  t.throws(() => parseSeatConfig({ HOME: '/h', SEAT_UID: '0', SEAT_GID: '0' }));
  t.throws(() => parseSeatConfig({ HOME: '/h', SEAT_UID: 'learner', SEAT_GID: '1000' }));
  t.like(
    parseSeatConfig({
      HOME: '/h',
      SEAT_HOME: '/seat',
      TERMINAL_PORT: '4001',
      FILES_PORT: '0',
      UPLOAD_MAX_BYTES: '10',
      SEAT_SHELL: '/bin/sh',
    }),
    { home: '/seat', terminalPort: 4001, filesPort: 0, uploadMaxBytes: 10, shell: '/bin/sh' },
  );
  t.throws(() => parseSeatConfig({}));
  t.throws(() => parseSeatConfig({ HOME: '/h', TERMINAL_PORT: 'x' }));
  t.throws(() => parseSeatConfig({ HOME: '/h', UPLOAD_MAX_BYTES: '-1' }));
});
