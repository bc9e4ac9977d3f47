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
 * an atomic increment, then reads the count, and goes on only if the count it reads is within the
 * limit. Increments are serialised, so the k-th attempt reads at least k; misses never give their
 * unit back, so at most `limit` misses ever go on, however many arrive at once. An attempt that
 * finds a live workshop gives its unit back: learners joining do not use up the limit.
 */
export const WINDOW_MINUTES = 10;

export interface Attempt {
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

/** Counts one join attempt from this address, or answers 429 when the window's limit is used. */
export async function countAttempt(
  store: Store,
  address: string,
  now: Date,
  limit: number,
): Promise<Attempt> {
  const { ref, expiresAt } = windowDoc(store, address, now);
  const count = async () => ((await ref.get()).data()?.count as number | undefined) ?? 0;
  // Already over: refuse without a write, so a flood costs reads only.
  if ((await count()) >= limit) throw limited(expiresAt, now);
  await ref.set({ count: store.increment(1), expiresAt }, { merge: true });
  if ((await count()) > limit) throw limited(expiresAt, now);
  return { refund: () => ref.update({ count: store.increment(-1) }).then(() => undefined) };
}
