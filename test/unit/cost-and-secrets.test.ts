import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { estimateCost } from '../../shared/core/cost.ts';
import { hashToken, newSshKeyPair, newToken, tokenMatches } from '../../shared/core/secrets.ts';

test('cost follows the seed: a 4-hour class on one e2-standard-4 is about $0.55', (t) => {
  const cost = estimateCost(['e2-standard-4'], 240, false);
  t.is(cost.currency, 'USD');
  t.is(cost.total, 0.58); // $0.536 compute + $0.047 disk
  t.true(cost.total >= 0.5 && cost.total <= 0.6);
});

test('Spot and bigger machines change the estimate the right way', (t) => {
  const onDemand = estimateCost(['e2-standard-8', 'e2-standard-8'], 120, false);
  const spot = estimateCost(['e2-standard-8', 'e2-standard-8'], 120, true);
  t.true(spot.total < onDemand.total / 2);
  t.true(onDemand.total > estimateCost(['e2-standard-4'], 120, false).total * 3);
  t.throws(() => estimateCost(['n2-unknown'], 60, false), { instanceOf: RangeError });
});

test('tokens are long, random and only match their own hash', (t) => {
  const a = newToken();
  const b = newToken();
  t.not(a, b);
  t.regex(a, /^[A-Za-z0-9_-]{32}$/);
  t.true(tokenMatches(a, hashToken(a)));
  t.false(tokenMatches(b, hashToken(a)));
  t.false(tokenMatches(a, 'not-a-hash'));
});

test('SSH keys are OpenSSH Ed25519 keys that ssh-keygen accepts', (t) => {
  const pair = newSshKeyPair('clarateach');
  t.regex(
    pair.privateKey,
    /^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+\n-----END OPENSSH PRIVATE KEY-----\n$/,
  );
  t.regex(pair.publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/=]+ clarateach$/);
  let derived: string;
  try {
    const dir = mkdtempSync(join(tmpdir(), 'sshkey-'));
    writeFileSync(join(dir, 'key'), pair.privateKey, { mode: 0o600 });
    derived = execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'key')], { encoding: 'utf8' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      t.log('ssh-keygen is not installed; checked the format only');
      return;
    }
    throw error;
  }
  t.is(derived.trim(), pair.publicKey);
});
