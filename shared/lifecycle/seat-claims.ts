import { randomInt } from 'node:crypto';

/**
 * What this instance knows of a workshop's seats beyond its last read: the seats its joins are
 * claiming right now, and those it saw taken (won, or lost to someone else) and when. A class
 * joins at once, and the joins that share one read (lookup in join.ts) would otherwise pick among
 * the same free seats and collide, each collision a commit that fails and another round trip.
 *
 * A seat seen taken is skipped only by a join whose read started before that: a later read
 * shows the seat as it is then (taken, or freed by the instructor since). A seat being claimed
 * is tried last, as its claim may yet fail. Seats are still claimed with create(): what this
 * holds only orders the tries, and other instances are not in it.
 */
export class SeatClaims {
  /** Joins of this instance choosing or claiming a seat of the workshop now. */
  users = 0;
  private readonly claiming = new Set<number>();
  /** Seat → when (performance.now()) this instance saw it taken. */
  private readonly seenTaken = new Map<number, number>();

  /**
   * The seat to try next of `candidates` (free in a read started at `readAt`), at random among
   * those nobody here is claiming; undefined when none is left.
   */
  next(candidates: readonly number[], tried: ReadonlySet<number>, readAt: number) {
    const open = candidates.filter(
      (n) => !tried.has(n) && !((this.seenTaken.get(n) ?? -Infinity) >= readAt),
    );
    const unclaimed = open.filter((n) => !this.claiming.has(n));
    const pool = unclaimed.length > 0 ? unclaimed : open;
    return pool.length > 0 ? pool[randomInt(pool.length)] : undefined;
  }

  claim(seat: number): void {
    this.claiming.add(seat);
  }

  /** The claim is over: `taken` when the seat is now someone's (this join's or another's). */
  settle(seat: number, taken: boolean): void {
    this.claiming.delete(seat);
    if (taken) this.seenTaken.set(seat, performance.now());
  }

  /** Forgets what no read still in use can need; true when nothing is left. */
  prune(olderThan: number): boolean {
    for (const [seat, at] of this.seenTaken) if (at < olderThan) this.seenTaken.delete(seat);
    return this.claiming.size === 0 && this.seenTaken.size === 0;
  }
}
