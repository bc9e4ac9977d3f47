import { hashToken } from './core/secrets.ts';
import { HttpError } from './http.ts';
import type { Store } from './store.ts';

/**
 * Join codes carry ~40 bits, which only holds against guessing if guesses are slow: each client
 * address may miss (unknown or ended code) `limit` times per window, then gets 429 until the
 * window ends. Counts live in `rateLimits/{address hash}-{window}`; `expiresAt` lets a Firestore
 * TTL policy delete them. Successful joins never count, so a classroom behind one NAT is fine.
 */
export const WINDOW_MINUTES = 10;

function windowDoc(store: Store, address: string, now: Date) {
  const window = Math.floor(now.getTime() / (WINDOW_MINUTES * 60_000));
  return {
    ref: store.db.collection('rateLimits').doc(`${hashToken(address).slice(0, 32)}-${window}`),
    expiresAt: new Date((window + 1) * WINDOW_MINUTES * 60_000),
  };
}

export async function assertNotLimited(store: Store, address: string, now: Date, limit: number) {
  const { ref, expiresAt } = windowDoc(store, address, now);
  const count = ((await ref.get()).data()?.count as number | undefined) ?? 0;
  if (count >= limit) {
    throw new HttpError(429, 'RATE_LIMITED', 'too many unknown codes; wait a few minutes', {
      retryAfter: expiresAt.toISOString(),
    });
  }
}

export async function recordMiss(store: Store, address: string, now: Date): Promise<void> {
  const { ref, expiresAt } = windowDoc(store, address, now);
  await ref.set({ count: store.increment(1), expiresAt }, { merge: true });
}
