import test from 'ava';
import { SeatClaims } from '../../shared/lifecycle/seat-claims.ts';

const seats = [1, 2, 3, 4];

test('a seat being claimed here is tried last, one tried or seen taken since the read not at all', (t) => {
  const claims = new SeatClaims();
  const readAt = performance.now();
  claims.claim(1);
  claims.claim(2);
  claims.settle(2, true);
  for (let i = 0; i < 50; i++) {
    t.true([3, 4].includes(claims.next(seats, new Set(), readAt)!), 'neither claimed nor taken');
  }
  t.is(claims.next(seats, new Set([3, 4]), readAt), 1, 'then the one being claimed');
  t.is(claims.next(seats, new Set([1, 3, 4]), readAt), undefined, 'the taken one never');
  claims.settle(1, false);
  t.is(claims.next(seats, new Set([3, 4]), readAt), 1, 'a claim that failed frees its seat');
});

test('a seat seen taken is skipped only by reads that started before', (t) => {
  const claims = new SeatClaims();
  claims.claim(1);
  claims.settle(1, true);
  const later = performance.now() + 1;
  // A read after it shows the seat as it is then: free again (the instructor freed it) is free.
  t.is(claims.next([1], new Set(), later), 1);
  t.is(claims.next([1], new Set(), later - 10_000), undefined);
});

test('prune forgets what is older than any read in use; empty once nothing is left', (t) => {
  const claims = new SeatClaims();
  claims.claim(1);
  claims.settle(1, true);
  claims.claim(2);
  t.false(claims.prune(performance.now() + 1), 'a claim under way is kept');
  t.is(
    claims.next([1, 2], new Set(), 0),
    1,
    'seat 1 forgotten: tried before seat 2, being claimed',
  );
  claims.settle(2, false);
  t.true(claims.prune(performance.now() + 1));
});
