import { readFile } from 'node:fs/promises';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

/**
 * firestore.rules, loaded into the emulator, evaluated for direct client access: nobody but the
 * functions (server SDK, `Bearer owner` on the emulator) reads or writes anything.
 */
let stack: TestStack;
let base: string;
let workshop: { id: string; joinCode: string; ownerId: string };

test.before(async () => {
  stack = await startTestStack();
  const host = process.env.FIRESTORE_EMULATOR_HOST!;
  const rules = await readFile(new URL('../../firestore.rules', import.meta.url), 'utf8');
  const loaded = await fetch(
    `http://${host}/emulator/v1/projects/${stack.projectId}:securityRules`,
    {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rules: { files: [{ name: 'firestore.rules', content: rules }] } }),
    },
  );
  if (!loaded.ok) throw new Error(`rules did not load: ${loaded.status} ${await loaded.text()}`);
  base = `http://${host}/v1/projects/${stack.projectId}/databases/(default)/documents`;
  workshop = (await stack.api('POST', '/workshops', { name: 'Rules', seats: 2 })).body;
  await stack.api('POST', `/workshops/${workshop.id}/start`);
});

test.after(async () => {
  await stack.api('DELETE', `/workshops/${workshop.id}`);
  await stack.untilStatus(workshop.id, 'ended');
});

/** An ID token as the emulator accepts it (unsigned), for a signed-in end user. */
function idToken(uid: string): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: `https://securetoken.google.com/${stack.projectId}`,
    aud: stack.projectId,
    sub: uid,
    user_id: uid,
    email: uid,
    auth_time: now,
    iat: now,
    exp: now + 3600,
    firebase: { sign_in_provider: 'password', identities: {} },
  };
  return `${enc({ alg: 'none', kid: 'fakekid', typ: 'JWT' })}.${enc(payload)}.`;
}

const callers = () => ({
  anonymous: {} as Record<string, string>,
  // Even the workshop's own instructor, signed in, gets nothing directly.
  instructor: { authorization: `Bearer ${idToken(workshop.ownerId)}` },
});

const paths = () => [
  `workshops/${workshop.id}`,
  `workshops/${workshop.id}/private/secrets`,
  `workshops/${workshop.id}/vms/ct-${workshop.id}-0`,
  `joinCodes/${workshop.joinCode}`,
];

test('the functions themselves (server SDK) read every path', async (t) => {
  for (const path of paths()) {
    const res = await fetch(`${base}/${path}`, { headers: { authorization: 'Bearer owner' } });
    t.is(res.status, 200, path);
  }
});

test('no client reads a document, signed in or not', async (t) => {
  for (const [who, headers] of Object.entries(callers())) {
    for (const path of paths()) {
      const res = await fetch(`${base}/${path}`, { headers });
      t.is(res.status, 403, `${who} GET ${path}`);
      t.false((await res.text()).includes('privateKey'), 'no secret in the refusal');
    }
  }
});

test('no client lists a collection or writes a document', async (t) => {
  for (const [who, headers] of Object.entries(callers())) {
    const list = await fetch(`${base}/workshops`, { headers });
    t.is(list.status, 403, `${who} lists workshops`);
    const write = await fetch(`${base}/workshops/${workshop.id}?updateMask.fieldPaths=status`, {
      method: 'PATCH',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ fields: { status: { stringValue: 'ended' } } }),
    });
    t.is(write.status, 403, `${who} writes a workshop`);
    const seat = await fetch(`${base}/workshops/${workshop.id}/seats?documentId=1`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ fields: { name: { stringValue: 'me' } } }),
    });
    t.is(seat.status, 403, `${who} claims a seat`);
  }
  t.not((await stack.workshop(workshop.id)).status, 'ended', 'nothing was written');
});
