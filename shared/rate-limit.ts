import { addressKey } from './core/client-address.ts';
import { hashToken } from './core/secrets.ts';
import { HttpError } from './http.ts';
import type { DocumentReference, DocumentSnapshot } from '@google-cloud/firestore';
import type { Store } from './store.ts';

/**
 * Join codes carry ~40 bits, which only holds against guessing if guesses are slow. Misses are
 * counted, never learners: a join whose code finds a live workshop writes nothing here, so a room
 * of learners behind one NAT never fills the count, however many join at once. Each client
 * address (an IPv6 one by its /64) may miss `limit` times per window, then gets 429 until the
 * window ends, for any code: past the limit no answer tells what a code finds. Counts live in
 * `rateLimits/{address hash}-{window}`; `expiresAt` lets a Firestore TTL policy delete them.
 *
 * A miss holds under any concurrency without a transaction: it adds itself with an atomic
 * increment, then reads the count, and answers 404 only if that count is within the limit.
 * Increments are serialised, so the k-th miss reads at least k: at most `limit` misses get 404,
 * however many arrive at once.
 */
export const WINDOW_MINUTES = 10;

export interface MissWindow {
  /** The window's count document, for reading it together with others (one getAll). */
  ref: DocumentReference;
  /** The misses a snapshot of `ref` holds. */
  countIn(snap: DocumentSnapshot): number;
  /** 429 with Retry-After until the window ends. */
  limited(): HttpError;
  /** Counts one miss: true while it is within `limit`. */
  miss(limit: number): Promise<boolean>;
}

export function missWindow(store: Store, address: string, now: Date): MissWindow {
  const window = Math.floor(now.getTime() / (WINDOW_MINUTES * 60_000));
  const key = hashToken(addressKey(address)).slice(0, 32);
  const ref = store.db.collection('rateLimits').doc(`${key}-${window}`);
  const expiresAt = new Date((window + 1) * WINDOW_MINUTES * 60_000);
  const countIn = (snap: DocumentSnapshot) => (snap.data()?.count as number | undefined) ?? 0;
  const count = async () => countIn(await ref.get());
  return {
    ref,
    countIn,
    limited() {
      const seconds = Math.max(1, Math.ceil((expiresAt.getTime() - now.getTime()) / 1000));
      return new HttpError(
        429,
        'RATE_LIMITED',
        'too many unknown codes; wait a few minutes',
        { retryAfter: expiresAt.toISOString() },
        { 'Retry-After': String(seconds) },
      );
    },
    async miss(limit) {
      await ref.set({ count: store.increment(1), expiresAt }, { merge: true });
      return (await count()) <= limit;
    },
  };
}
