import test from 'ava';
import { imageAllowed } from '../../shared/core/images.ts';
import { instructorQuotaProblem } from '../../shared/core/quota.ts';
import { peekJwt, verifiedEmail } from '../../shared/id-token.ts';
import { isInstructor } from '../../shared/identity.ts';

const folders = ['us-docker.pkg.dev/p/clarateach/', 'ghcr.io/school/'];

test('an image must lie under the registry or an allowed folder', (t) => {
  for (const ok of [
    'us-docker.pkg.dev/p/clarateach/python:3.12',
    'us-docker.pkg.dev/p/clarateach/labs/go@sha256:' + 'a'.repeat(64),
    'ghcr.io/school/k8s',
  ]) {
    t.true(imageAllowed(ok, folders), ok);
  }
  for (const bad of [
    'docker.io/library/python:3.12',
    'us-docker.pkg.dev/p/clarateach-evil/x',
    'us-docker.pkg.dev/p/clarateach/../other/x',
    'us-docker.pkg.dev/p/clarateach/./x',
    'us-docker.pkg.dev/p/clarateach//x',
    'ghcr.io/schoolboy/x',
    'ghcr.io/school',
  ]) {
    t.false(imageAllowed(bad, folders), bad);
  }
  t.false(imageAllowed('anything/x', ['/']), 'a bare / allows nothing');
});

test('instructor quota: active workshops, then active seats, named with what is free', (t) => {
  const limits = { activeWorkshops: 2, activeSeats: 30 };
  t.is(instructorQuotaProblem([], 30, limits), null);
  t.is(instructorQuotaProblem([10], 20, limits), null);
  t.regex(instructorQuotaProblem([5, 5], 1, limits)!, /2 active workshops/);
  t.is(
    instructorQuotaProblem([20], 11, limits),
    'instructor limit of 30 active seats: 11 needed, 10 free',
  );
  t.regex(instructorQuotaProblem([], 31, limits)!, /30 active seats: 31 needed, 30 free/);
});

test('a JWT is peeked at without trust; only a verified email counts', (t) => {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  t.deepEqual(peekJwt(`${enc({ alg: 'RS256' })}.${enc({ iss: 'i' })}.sig`), {
    header: { alg: 'RS256' },
    payload: { iss: 'i' },
  });
  for (const bad of ['', 'a.b', 'a.b.c.d', `${enc([1])}.${enc({})}.s`, `!!.${enc({})}.s`]) {
    t.is(peekJwt(bad), null, bad);
  }
  t.is(verifiedEmail({ email: 'A@B.example', email_verified: true }), 'a@b.example');
  t.is(verifiedEmail({ email: 'a@b.example', email_verified: 'true' }), null);
  t.is(verifiedEmail({ email: 'a@b.example' }), null);
  t.is(verifiedEmail({ email: 'not an email', email_verified: true }), null);
});

test('an instructor is whom the operator lists: an email, or a domain by its hd claim', (t) => {
  const auth = {
    admins: new Set(['ops@elsewhere.example']),
    instructors: {
      emails: new Set(['guest@gmail.com', 'ci@p1.iam.gserviceaccount.com']),
      domains: new Set(['school.example']),
    },
  };
  for (const who of [
    { email: 'ann@school.example', hostedDomain: 'school.example' },
    { email: 'ann@alias.example', hostedDomain: 'school.example' },
    { email: 'guest@gmail.com' },
    { email: 'ci@p1.iam.gserviceaccount.com' },
    { email: 'ops@elsewhere.example' },
  ]) {
    t.true(isInstructor(who, auth), who.email);
  }
  for (const who of [
    { email: 'ann@school.example' },
    { email: 'ann@school.example', hostedDomain: 'evil.example' },
    { email: 'intruder@p2.iam.gserviceaccount.com' },
    { email: 'other@gmail.com' },
  ]) {
    t.false(isInstructor(who, auth), JSON.stringify(who));
  }
});
