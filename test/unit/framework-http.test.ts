import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import * as ff from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import '../../functions/index.ts';
import { captureOutput } from '../helpers/log-capture.ts';

// What a deployed HTTP function runs under: the framework's server, with functions/index.ts loaded.
ff.http('ctDomain', (_req, res) => {
  res.json({ inDomain: Boolean((process as { domain?: unknown }).domain) });
});
ff.http('ctRejects', () => Promise.reject(new Error('the import failed')));
ff.http('ctThrows', () => {
  throw new Error('thrown before any promise');
});

async function call(name: string) {
  const server = getTestServer(name);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST' });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } finally {
    await new Promise<void>((resolve) => (server as http.Server).close(() => resolve()));
  }
}

test.serial(
  'an HTTP function runs outside any domain (no async hooks on every request)',
  async (t) => {
    const { status, body } = await call('ctDomain');
    t.is(status, 200);
    t.false(body.inDomain);
  },
);

test.serial(
  'an HTTP function that fails answers 503 in the JSON contract, and is logged',
  async (t) => {
    const output = captureOutput();
    for (const name of ['ctRejects', 'ctThrows']) {
      const { status, body } = await call(name);
      t.is(status, 503, name);
      t.deepEqual(body, {
        error: { code: 'UNAVAILABLE', message: 'the service is busy, try again' },
      });
    }
    const failures = output.structured.map((line) => JSON.parse(line) as Record<string, unknown>);
    t.deepEqual(
      failures.filter((f) => f.message === 'function failed').map((f) => f.severity),
      ['ERROR', 'ERROR'],
    );
    // The server still answers after both.
    t.is((await call('ctDomain')).status, 200);
  },
);
