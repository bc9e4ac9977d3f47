import type { DocumentSnapshot } from '@google-cloud/firestore';
import type {
  JoinCodeRecord,
  VmRecord,
  WorkshopRecord,
  WorkshopSecrets,
} from '../core/workshop.ts';
import type { Services } from '../services.ts';

/**
 * The reads of a workshop that its joins need (its record, VMs, secrets and taken seats), shared by
 * the joins of one instance: a class joins at once.
 */

const LIVE = new Set<WorkshopRecord['status']>(['created', 'provisioning', 'ready']);

/** A live workshop the code names, with everything a seat in it needs. */
export interface Found {
  workshop: WorkshopRecord;
  vms: VmRecord[];
  secrets: WorkshopSecrets | null;
  taken: Set<number>;
  /** When (performance.now()) the read of it started. */
  readAt: number;
}

/**
 * The workshop, if live, with everything a seat in it needs. Its VMs, secrets and taken seats are
 * read alongside it, before its status is known: a learner waits for one round trip after the
 * code's, not two. The workshop and its secrets are one getAll: three calls, not four.
 */
async function readLive(s: Services, id: string): Promise<Found | null> {
  const readAt = performance.now();
  const [[workshopSnap, secretsSnap], vms, seats] = await Promise.all([
    s.store.db.getAll(s.store.workshop(id), s.store.secrets(id)) as Promise<
      [DocumentSnapshot<WorkshopRecord>, DocumentSnapshot<WorkshopSecrets>]
    >,
    s.store.getVms(id),
    s.store.seats(id).select().get(),
  ]);
  const workshop = workshopSnap.data();
  if (!workshop || !LIVE.has(workshop.status)) return null;
  return {
    workshop,
    vms,
    secrets: secretsSnap.data() ?? null,
    taken: new Set(seats.docs.map((d) => Number(d.id))),
    readAt,
  };
}

/** A map by workshop id for each store (tests run several side by side), made on first use. */
export function perStore<V>(): (s: Services) => Map<string, V> {
  const maps = new WeakMap<Services['store'], Map<string, V>>();
  return (s) => {
    let map = maps.get(s.store);
    if (!map) maps.set(s.store, (map = new Map()));
    return map;
  };
}

/** A read of a workshop by this instance: under way, or back at `backAt` (performance.now()). */
interface Read {
  found: Promise<Found | null>;
  backAt?: number;
}

/**
 * How long a ready workshop's read answers this instance's joins once it is back. A class joins at
 * once, and one instance serves many joins together (deploy.sh: 80): each would read the same
 * workshop, VMs, secrets and taken seats. What a join takes from a read at most this old is still
 * safe: the code is read by each join (the end deletes it in the transaction that ends the class,
 * so no join of an ended class gets past it); a seat is claimed with create(), and one this
 * instance saw taken since is skipped (seat-claims.ts); a seat shown free got its new credential
 * while it was still taken (free-seat.ts). A seat freed since shows as taken: a join that finds no
 * free seat reads anew before it answers WORKSHOP_FULL. What the read can miss is a VM lost since:
 * one of its seats may be handed out, and that learner's next join moves them.
 */
const FRESH_MS = 1000;

const recentReads = perStore<Read>();

/** The code's workshop, if live (`codeDoc` was read by the caller with the address's misses). */
export function lookup(s: Services, codeDoc: JoinCodeRecord | undefined): Read | null {
  if (!codeDoc) return null;
  const id = codeDoc.workshopId;
  const reads = recentReads(s);
  const now = performance.now();
  for (const [other, read] of reads) {
    if (read.backAt !== undefined && now - read.backAt >= FRESH_MS) reads.delete(other);
  }
  const recent = reads.get(id);
  if (recent) return recent;
  return readAnew(s, id);
}

/** Reads the workshop, for this join and those that come in the next moment. */
export function readAnew(s: Services, id: string): Read {
  const reads = recentReads(s);
  const read: Read = { found: readLive(s, id) };
  reads.set(id, read);
  const forget = () => {
    if (reads.get(id) === read) reads.delete(id);
  };
  // Only a ready workshop's read is kept: one not ready yet is read anew by the next join.
  read.found.then(
    (found) => (found?.workshop.status === 'ready' ? (read.backAt = performance.now()) : forget()),
    forget,
  );
  return read;
}
