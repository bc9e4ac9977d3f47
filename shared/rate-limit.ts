import { hashToken } from './core/secrets.ts';
import { HttpError } from './http.ts';
import type { Store } from './store.ts';

/**
 * Join codes carry ~40 bits, which only holds against guessing if guesses are slow: each client
 * address may make `limit` join attempts per window that do not find a live workshop, then gets
 * 429 until the window ends. Counts live in `rateLimits/{address hash}-{window}`; `expiresAt`
 * lets a Firestore TTL policy delete them.
 *
 * The count holds under any concurrency without a transaction: an attempt first adds itself with
 * an atomic increment, then reads the count, and its answer depends on the code only if the count
 * it reads is within the limit (the code is looked up meanwhile, to save the learner a round trip). Increments are serialised, so the k-th attempt reads at least k; misses never give their
 * unit back, so at most `limit` misses ever go on, however many arrive at once. An attempt that
 * finds a live workshop gives its unit back: learners joining do not use up the limit.
 */
export const WINDOW_MINUTES = 10;

export interface Attempt<T> {
  /** What the lookup found: given only to an attempt within the limit. */
  found: T;
  /** The attempt found a live workshop: it does not count. */
  refund(): Promise<void>;
}

function windowDoc(store: Store, address: string, now: Date) {
  const window = Math.floor(now.getTime() / (WINDOW_MINUTES * 60_000));
  return {
    ref: store.db.collection('rateLimits').doc(`${hashToken(address).slice(0, 32)}-${window}`),
    expiresAt: new Date((window + 1) * WINDOW_MINUTES * 60_000),
  };
}

function limited(expiresAt: Date, now: Date): HttpError {
  const seconds = Math.max(1, Math.ceil((expiresAt.getTime() - now.getTime()) / 1000));
  return new HttpError(
    429,
    'RATE_LIMITED',
    'too many unknown codes; wait a few minutes',
    { retryAfter: expiresAt.toISOString() },
    { 'Retry-After': String(seconds) },
  );
}

/**
 * Counts one join attempt from this address, or answers 429 when the window's limit is used, and
 * runs `lookup` alongside the count: its answer goes on only for an attempt within the limit, so
 * nothing past the limit learns what a code finds. An address already over its limit is refused
 * before the lookup and without a write.
 */
export async function countAttempt<T>(
  store: Store,
  address: string,
  now: Date,
  limit: number,
  lookup: () => Promise<T>,
): Promise<Attempt<T>> {
  const { ref, expiresAt } = windowDoc(store, address, now);
  const count = async () => ((await ref.get()).data()?.count as number | undefined) ?? 0;
  // Already over: refuse without a write, so a flood costs reads only.
  if ((await count()) >= limit) throw limited(expiresAt, now);
  const counted = (async () => {
    await ref.set({ count: store.increment(1), expiresAt }, { merge: true });
    if ((await count()) > limit) throw limited(expiresAt, now);
  })();
  // Both settle before either answer is used: a refused attempt gets 429 whatever it found.
  const [within, found] = await Promise.allSettled([counted, lookup()]);
  if (within.status === 'rejected') throw within.reason;
  if (found.status === 'rejected') throw found.reason;
  return {
    found: found.value,
    refund: () => ref.update({ count: store.increment(-1) }).then(() => undefined),
  };
}
