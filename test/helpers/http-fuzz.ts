/**
 * The request generator of the HTTP fuzz (test/integration/fuzz*.test.ts): seeded requests of
 * every route of both HTTP functions, with every kind of malformed input, and the contract each
 * answer is held to (DESIGN.md §5). A fuzz file seeds it once with its run's seed (fuzz-seed.ts).
 */
import { mulberry32 } from './fuzz-seed.ts';

export const REQUEST_TIMEOUT_MS = 15_000;
export const POLLUTION_KEYS = ['polluted', 'isAdmin', 'admin', 'x', 'fuzz'];

let random: () => number = () => {
  throw new Error('seed the fuzz first: seedFuzz(seed)');
};
/** Seeds the generator: the same seed gives the same requests. */
export function seedFuzz(seed: number): void {
  random = mulberry32(seed);
}
export const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
export const chance = (p: number) => random() < p;
export const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const str = (value: string) => JSON.stringify(value);

// ---------------------------------------------------------------- values

const LONG_LENGTHS = [61, 101, 257, 5_000, 65_536, 200_000];
const WEIRD_STRINGS: readonly string[] = [
  '',
  ' ',
  '\t\n',
  'NaN',
  'Infinity',
  '-Infinity',
  '-0',
  'null',
  'undefined',
  'true',
  '0x10',
  '1e400',
  '[object Object]',
  'héllo wörld',
  '日本語のクラス',
  '🧪🚀👩🏽‍🔬',
  'Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǫ̗',
  '\u202eevil\u202c',
  '\u200b',
  '\u3000',
  '\ufeff',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'a\ud83d',
  '\udc00\ud800',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  "'; DROP TABLE workshops; --",
  '%s%s%n',
  '${jndi:ldap://x}',
  '{{7*7}}',
  '__proto__',
  'constructor',
  'prototype',
];
const STRING_ALPHABET = 'abcXYZ019 -_./:@%\\"\'\t\n\u00e9\u00ff\u0100\u4e2d\ud83d\ude00\u0000';

function randomString(): string {
  const r = random();
  if (r < 0.45) return pick(WEIRD_STRINGS);
  if (r < 0.55) return 'x'.repeat(pick(LONG_LENGTHS));
  const chars = Array.from(STRING_ALPHABET);
  return Array.from({ length: int(1, 40) }, () => pick(chars)).join('');
}

/** JSON numbers as text, so -0, 1e400 and 30-digit integers reach the server as written. */
const NUMBERS = [
  '0',
  '-0',
  '1',
  '-1',
  '1.0',
  '1.5',
  '2e0',
  '200',
  '201',
  '720',
  '721',
  '15',
  '14',
  '1e308',
  '1e400',
  '-1e400',
  '4.9e-324',
  '1e-400',
  '9007199254740993',
  '-9007199254740993',
  '123456789012345678901234567890',
  '0.30000000000000004',
];
const KEYS = [
  'name',
  'seats',
  'durationMinutes',
  'image',
  'spot',
  'minutes',
  'code',
  'seatToken',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '',
  'polluted',
  'isAdmin',
];

/** Pollution payloads: an own `__proto__` or `constructor.prototype` carrying a marker key. */
function pollutionObject(): string {
  const marker = `{${str(pick(POLLUTION_KEYS))}:true}`;
  return pick([
    `{"__proto__":${marker}}`,
    `{"constructor":{"prototype":${marker}}}`,
    `{"__proto__":{"__proto__":${marker}}}`,
    `{"a":1,"__proto__":${marker},"__proto__":${marker}}`,
  ]);
}

/** Random JSON text of any type and nesting, including texts JSON.stringify cannot write. */
function jsonText(depth = 0): string {
  const r = random();
  if (depth > 4 || r < 0.15) return pick(['null', 'true', 'false']);
  if (r < 0.35) return pick(NUMBERS);
  if (r < 0.55) return str(randomString());
  if (r < 0.7) {
    return `[${Array.from({ length: int(0, 4) }, () => jsonText(depth + 1)).join(',')}]`;
  }
  if (r < 0.9) {
    const entries = Array.from(
      { length: int(0, 5) },
      () => `${str(chance(0.8) ? pick(KEYS) : randomString())}:${jsonText(depth + 1)}`,
    );
    return `{${entries.join(',')}}`;
  }
  if (r < 0.95) return pollutionObject();
  const n = pick([100, 1_000, 10_000, 50_000]);
  return chance(0.5) ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n);
}

interface FieldSpec {
  good: readonly string[];
  edge: readonly string[];
  /** May be left out of a valid body. */
  optional?: boolean;
}

/**
 * A body as JSON text, by mutation of a valid one: often valid as it stands, most often with one
 * field broken (a boundary value, anything at all, or left out), sometimes with every field
 * anything. Then maybe an unknown or `__proto__` key on top.
 */
function bodyText(spec: Record<string, FieldSpec>): string {
  const names = Object.keys(spec);
  const r = random();
  const broken = r < 0.3 ? undefined : r < 0.85 ? pick(names) : 'all';
  const entries: Array<[string, string]> = [];
  for (const name of names) {
    const { good, edge, optional } = spec[name]!;
    if (broken === name || (broken === 'all' && chance(0.5))) {
      const how = random();
      if (how < 0.7) entries.push([name, pick(edge)]);
      else if (how < 0.9) entries.push([name, jsonText(1)]);
      // else: left out
    } else if (!optional || chance(0.4)) {
      entries.push([name, pick(good)]);
    }
  }
  if (chance(0.08)) entries.push([pick(KEYS), jsonText(2)]);
  if (chance(0.04)) entries.push(['__proto__', `{${str(pick(POLLUTION_KEYS))}:true}`]);
  if (chance(0.1)) entries.reverse();
  return `{${entries.map(([k, v]) => `${str(k)}:${v}`).join(',')}}`;
}

const GOOD_NAMES = ['Intro to Python', 'a', 'x'.repeat(60), '日本語クラス', '🧪 lab', '  padded  '];
const EDGE_NAMES = [
  '""',
  '"   "',
  str('x'.repeat(101)),
  str('x'.repeat(200_000)),
  str('\ud800'),
  str('a\udfffb'),
  str('\udbff\udbff'),
  str(`Python ${'\ud83d'}`),
  str('\u0000'),
  str('\u200b'),
  str('\u3000'),
  '123',
  'null',
  '["a"]',
];

function createBody(): string {
  return bodyText({
    name: { good: GOOD_NAMES.map(str), edge: EDGE_NAMES },
    seats: {
      good: ['1', '2', '5', '12', '25', '1.0'],
      edge: ['0', '-0', '201', '2.5', '"3"', '1e400', '-1e400', 'null', '9007199254740993'],
    },
    durationMinutes: {
      good: ['15', '240', '720', 'null'],
      edge: ['14', '721', '"60"', '60.5', '-0', '1e400'],
      optional: true,
    },
    image: {
      good: ['"python:3.12"', '"ubuntu"', '"us-docker.pkg.dev/p/r/img:1"', 'null'],
      edge: ['"x;rm -rf /"', '"A"', '"../x"', str('a'.repeat(300)), '""', str('\ud800')],
      optional: true,
    },
    spot: { good: ['true', 'false', 'null'], edge: ['"yes"', '0', '1', '[]'], optional: true },
  });
}

function extendBody(): string {
  return bodyText({
    minutes: {
      good: ['1', '30', '720'],
      edge: ['0', '-0', '-30', '721', '1.5', '"30"', '1e400', 'null', '{}'],
    },
  });
}

/** Join codes: the live one as typed (any case, dashes), another, and nonsense. */
function joinBody(codes: { ready: string; created: string }): string {
  const live = codes.ready;
  return bodyText({
    code: {
      good: [live, live.toLowerCase(), `${live.slice(0, 4)}-${live.slice(4)}`, ` ${live} `].map(
        str,
      ),
      edge: [
        str(codes.created),
        '"ZZZZZZZZ"',
        '""',
        str('x'.repeat(33)),
        str('\ud800'.repeat(8)),
        '12345678',
        str(`${live}0`),
        '"OOOOIIII"',
      ],
    },
    name: {
      good: ['"Learner"', '"é"', '"🧑‍🎓"', str('x'.repeat(60))],
      edge: EDGE_NAMES.concat([str('x'.repeat(61))]),
    },
    seatToken: {
      good: ['"abc"', str('t'.repeat(128)), 'null'],
      edge: ['""', str('t'.repeat(129)), '7', str('\ud800')],
      optional: true,
    },
  });
}

// ---------------------------------------------------------------- requests

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'] as const;
const CONTENT_TYPES = [
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/json; charset=bogus',
  'application/json, text/plain',
  'text/plain',
  'text/plain; charset=bogus',
  'text/html',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'multipart/form-data; boundary=zzz',
  'application/cloudevents+json',
  'application/merge-patch+json',
  '*/*',
  'garbage',
  ';;;',
  undefined,
];

/** Header values fetch can send: Latin-1, no control characters. */
export function headerText(max: number): string {
  const chars = ' !"#$%&\'()*+,-./0123456789:;<=>?@AZaz[\\]^_`{|}~\u00a0\u00e9\u00ff\t';
  return Array.from({ length: int(1, max) }, () => chars[int(0, chars.length - 1)]).join('');
}

const USERS = [
  '',
  'DEV@LOCALHOST',
  'teacher@school.example',
  'Teacher@School.Example',
  ' spaced@school.example ',
  'not an email',
  '@',
  'a@',
  '@b',
  'a@b@c',
  `${'x'.repeat(65)}@b.example`,
  `a@${'b'.repeat(190)}`,
  'é@ü.example',
  'a b@c',
  'admin@localhost',
  '__proto__@constructor',
];
const CLIENT_IPS = ['', 'x'.repeat(4_000), 'é', '::1', 'unknown', '1.2.3.4, 5.6.7.8', '%00'];

function oddHeaders(n: number): Record<string, string> {
  const h: Record<string, string> = {};
  if (chance(0.25)) h['x-clarateach-user'] = chance(0.85) ? pick(USERS) : headerText(100);
  // A fresh address per request keeps most joins clear of the miss limit; some share one.
  h['x-clarateach-client-ip'] = chance(0.9) ? `fuzz-${n}` : pick(CLIENT_IPS);
  if (chance(0.1)) {
    h[pick(['authorization', 'x-serverless-authorization'])] = pick([
      'Bearer',
      'Bearer ',
      'Bearer a.b.c',
      'Basic Zm9vOmJhcg==',
      `Bearer ${headerText(400)}`,
      headerText(100),
    ]);
  }
  if (chance(0.1)) h['x-forwarded-for'] = pick(['', 'garbage', '::ffff:1.2.3.4', headerText(200)]);
  if (chance(0.08)) h['content-encoding'] = pick(['gzip', 'deflate', 'br', 'identity', 'bogus']);
  if (chance(0.08)) h.accept = pick(['text/html', 'application/xml', '*/*', 'nonsense']);
  if (chance(0.08)) h['x-fuzz'] = headerText(2_000);
  return h;
}

export interface Fixtures {
  created: { id: string; joinCode: string };
  ready: { id: string; joinCode: string };
  ended: { id: string };
}

interface FuzzRequest {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

const ODD_IDS = [
  'abcdefghijklmnop',
  'a'.repeat(5_000),
  '..',
  '.',
  '%2e%2e',
  '..%2F..%2Fetc%2Fpasswd',
  '%2F',
  '%00',
  '%ZZ',
  '%',
  '%E0%A4%A',
  '%C3%A9',
  encodeURIComponent('日本'),
  '__proto__',
  'constructor',
  'prototype',
  'null',
  '%20',
  '-1',
  '1e400',
  ';',
  '*',
];

export type HttpFunction = 'workshops' | 'join';

/** The `workshops` routes the fuzz makes (weighted towards create, plus odd paths, in `generate`). */
export const WORKSHOP_ROUTES = [
  'create',
  'list',
  'get',
  'delete',
  'start',
  'extend',
  'ssh-key',
  'free-seat',
];

export function generate(
  fn: HttpFunction,
  n: number,
  fx: Fixtures,
  createdIds: readonly string[],
): FuzzRequest {
  const randomId = () => {
    const r = random();
    if (r < 0.2) return fx.created.id;
    if (r < 0.35) return fx.ready.id;
    if (r < 0.45) return fx.ended.id;
    if (r < 0.55 && createdIds.length > 0) return pick(createdIds);
    if (r < 0.6) return fx.ready.id.toUpperCase();
    if (r < 0.65) return `${fx.created.id}a`;
    return pick(ODD_IDS);
  };
  const route =
    fn === 'join'
      ? pick(['join', 'join', 'join', 'odd-join'])
      : pick(['create', 'create', ...WORKSHOP_ROUTES, 'odd']);
  let method: string;
  let path: string;
  let body: string | Buffer | undefined;
  switch (route) {
    case 'create':
      [method, path, body] = ['POST', '/workshops', createBody()];
      break;
    case 'list':
      [method, path] = ['GET', '/workshops'];
      break;
    case 'get':
      [method, path] = ['GET', `/workshops/${randomId()}`];
      break;
    case 'delete':
      [method, path] = ['DELETE', `/workshops/${randomId()}`];
      break;
    case 'start':
      [method, path] = ['POST', `/workshops/${randomId()}/start`];
      break;
    case 'extend':
      [method, path, body] = ['POST', `/workshops/${randomId()}/extend`, extendBody()];
      break;
    case 'ssh-key':
      [method, path] = ['GET', `/workshops/${randomId()}/ssh-key`];
      break;
    case 'free-seat':
      [method, path] = [
        'DELETE',
        `/workshops/${randomId()}/seats/${pick(['1', '2', '0', '-1', '201', '1e3', '01', 'x', '%00', '1.0', '99999999999'])}`,
      ];
      break;
    case 'join':
      [method, path, body] = [
        'POST',
        '/join',
        joinBody({ ready: fx.ready.joinCode, created: fx.created.joinCode }),
      ];
      break;
    case 'odd-join':
      [method, path] = [
        pick(METHODS),
        pick(['/join/', '/join//', '/join/x', '/join/%', '/join%2F', '/JOIN', '/join?code=x']),
      ];
      break;
    default:
      [method, path] = [
        pick(METHODS),
        pick([
          '//workshops',
          '/workshops/',
          '/workshops//',
          '/WORKSHOPS',
          `/workshops/${randomId()}/reboot`,
          `/workshops/${randomId()}/start/now`,
          `/workshops/${randomId()}/ssh-key/`,
          `/workshops/${randomId()}%2Fstart`,
          `/workshops/${randomId()}/seats`,
          `/workshops/${randomId()}/seats/1/2`,
          `/workshops/${randomId()}/seats/%31`,
          `/workshops/../join`,
          `/workshops/%2e%2e/join`,
          '/workshops/%2F%2F',
        ]),
      ];
  }

  if (chance(0.2)) method = pick(METHODS);
  if (chance(0.15)) {
    const mutate = pick(['double', 'trailing', 'query', 'encoded', 'suffix']);
    if (mutate === 'double') path = path.replace('/', '//').replace(/\/(?=[^/]*$)/, '//');
    else if (mutate === 'trailing') path += '/';
    else if (mutate === 'query') {
      path += pick([
        '?',
        '?x=%ZZ',
        '?__proto__[polluted]=1',
        '?seats=1&seats=2',
        `?q=${'q'.repeat(3_000)}`,
      ]);
    } else if (mutate === 'encoded') path = path.replace(/(?<=.)\/(?=[^/]+$)/, '%2F');
    else path += pick(['/..', '/.', '/%2e%2e', '/%00', '/;']);
  }

  // Ending the ready workshop would leave the join route nothing to join for the rest of the run.
  if (method === 'DELETE' && route !== 'free-seat') {
    path = path.replaceAll(fx.ready.id, fx.created.id);
  }

  const headers = oddHeaders(n);
  if (method === 'GET' || method === 'HEAD') {
    body = undefined; // fetch cannot send one
  } else {
    const r = random();
    if (body === undefined) {
      if (r < 0.4) body = undefined;
      else if (r < 0.7) body = jsonText();
      else body = pick(['', '{}', '[]', 'null']);
    } else if (r < 0.08) {
      body = body.slice(0, int(0, body.length - 1)); // truncated
    } else if (r < 0.14) {
      body = jsonText();
    } else if (r < 0.17) {
      body = Buffer.from(Array.from({ length: int(0, 300) }, () => int(0, 255)));
    } else if (r < 0.2) {
      body = pick([
        '',
        ' ',
        'hello',
        '\ufeff{}',
        '<a>xml</a>',
        'name=a&seats=2&__proto__[polluted]=1',
        `a${'[a]'.repeat(100)}=1`,
        Array.from({ length: 1_200 }, (_, i) => `k${i}=1`).join('&'),
        '--zzz\r\nContent-Disposition: form-data; name="name"\r\n\r\na\r\n--zzz--',
      ]);
    }
    if (body !== undefined) {
      const type = chance(0.7) ? 'application/json' : pick(CONTENT_TYPES);
      if (type !== undefined) headers['content-type'] = type;
    }
  }
  return {
    kind: route,
    method,
    path,
    headers,
    body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body),
  };
}

// ---------------------------------------------------------------- the run

export interface Sent {
  request: FuzzRequest;
  status: number;
  contentType: string | null;
  text: string;
  /** Set when the request broke the contract. */
  problem?: string;
}

/** Sends `request` to the function at `url`; a failure to answer is the problem. */
export async function send(url: string, request: FuzzRequest): Promise<Sent> {
  const { method, path, headers, body } = request;
  try {
    const res = await fetch(`${url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : new Uint8Array(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    return { request, status: res.status, contentType: res.headers.get('content-type'), text };
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    const timedOut = (error as Error).name === 'TimeoutError';
    return {
      request,
      status: 0,
      contentType: null,
      text: '',
      problem: timedOut
        ? `no answer within ${REQUEST_TIMEOUT_MS} ms`
        : `request failed: ${String(error)} ${cause ? String(cause) : ''}`,
    };
  }
}

/** What, if anything, about this answer breaks DESIGN.md §5. */
export function contractProblem(sent: Sent): string | undefined {
  if (sent.problem) return sent.problem;
  if (sent.status >= 500) return `status ${sent.status}`;
  if (sent.status < 400 || sent.request.method === 'HEAD') return undefined;
  let parsed: any;
  try {
    parsed = JSON.parse(sent.text);
  } catch {
    return `${sent.status} error is not JSON (${sent.contentType})`;
  }
  if (!/^[A-Z_]+$/.test(String(parsed?.error?.code))) {
    return `${sent.status} error has no UPPER_SNAKE error.code`;
  }
  if (typeof parsed.error.message !== 'string') return `${sent.status} error has no message`;
  if (!sent.contentType?.startsWith('application/json')) {
    return `${sent.status} error is served as ${sent.contentType}`;
  }
  return undefined;
}

export function describe(sent: Sent): string {
  const { method, path, headers, body } = sent.request;
  const preview = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length})` : s);
  return [
    `${sent.problem}: ${method} ${preview(path, 120)}`,
    `  headers ${preview(JSON.stringify(headers), 300)}`,
    `  body ${body === undefined ? '(none)' : preview(JSON.stringify(body.toString('utf8')), 300)}`,
    `  → ${sent.status} ${sent.contentType} ${preview(sent.text, 200)}`,
  ].join('\n');
}
