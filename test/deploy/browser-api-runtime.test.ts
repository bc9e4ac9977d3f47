import { emulatorTest as test } from '../helpers/emulators.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

/**
 * The functions as `deploy.sh --browser-api` configures them (AUTH_MODE=token, CONSOLE_ORIGINS):
 * CORS answers the listed origins only, and without a verified ID token every instructor call is
 * 401 whatever the origin.
 */
const LISTED = 'https://console.school.example';
let stack: TestStack;

test.before(async () => {
  Object.assign(process.env, {
    AUTH_MODE: 'token',
    ID_TOKEN_AUDIENCES: 'console-client-id',
    INSTRUCTORS: '@school.example',
    CONSOLE_ORIGINS: `${LISTED}, http://localhost:5173/`,
  });
  stack = await startTestStack();
});

const preflight = (path: string, origin: string) =>
  stack.api('OPTIONS', path, undefined, {
    origin,
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'authorization, content-type',
  });

test('a preflight from a listed origin is allowed; from any other it gets no CORS header', async (t) => {
  for (const path of ['/workshops', '/workshops/abcdefghijklmnop/start', '/join', '/join/hand']) {
    for (const origin of [LISTED, 'http://localhost:5173']) {
      const ok = await preflight(path, origin);
      t.is(ok.status, 204, `${path} ${origin}`);
      t.is(ok.headers.get('access-control-allow-origin'), origin);
      t.regex(ok.headers.get('access-control-allow-headers') ?? '', /Authorization/i);
    }
    for (const origin of [
      'https://evil.example',
      'null',
      `${LISTED}.evil.example`,
      'http://console.school.example',
    ]) {
      const refused = await preflight(path, origin);
      t.is(refused.status, 403, `${path} ${origin}`);
      t.is(refused.headers.get('access-control-allow-origin'), null);
    }
  }
});

test('without a verified token every instructor call is 401, from any origin or none', async (t) => {
  const calls: Array<[string, string]> = [
    ['GET', '/workshops'],
    ['POST', '/workshops'],
    ['GET', '/workshops/abcdefghijklmnop/seats'],
    ['DELETE', '/workshops/abcdefghijklmnop/hands/1'],
  ];
  for (const [method, path] of calls) {
    for (const origin of [LISTED, 'https://evil.example', undefined]) {
      const headers: Record<string, string> = origin ? { origin } : {};
      const res = await stack.api(
        method,
        path,
        method === 'POST' ? { name: 'x', seats: 1 } : undefined,
        {
          ...headers,
          authorization: 'Bearer not.a.token',
        },
      );
      t.is(res.status, 401, `${method} ${path} from ${origin}`);
      t.is(res.body.error.code, 'UNAUTHENTICATED');
      // The listed console can read why; no other page can.
      t.is(res.headers.get('access-control-allow-origin'), origin === LISTED ? LISTED : null);
    }
  }
});
