import { addressKey } from '../core/client-address.ts';
import { hashToken, newToken } from '../core/secrets.ts';
import { instanceName, normalizeJoinCode } from '../core/ids.ts';
import { vmForSeat } from '../core/plan.ts';
import {
  seatEndpoints,
  type JoinCodeRecord,
  type SeatEndpoints,
  type SeatRecord,
  type WorkshopRecord,
} from '../core/workshop.ts';
import { HttpError } from '../http.ts';
import { log } from '../log.ts';
import type { JoinBody } from '../schemas.ts';
import { missWindow, type MissWindow } from '../rate-limit.ts';
import { isAlreadyExists } from '../store.ts';
import { SeatClaims } from './seat-claims.ts';
import { lookup, perStore, readAnew, type Found } from './workshop-reads.ts';
import { batchedReads } from '../batched-reads.ts';
import type { Services } from '../services.ts';

export interface JoinResult {
  workshopId: string;
  seat: number;
  seatToken: string;
  endpoints: SeatEndpoints;
  expiresAt: string;
}

const codeNotFound = () =>
  new HttpError(404, 'CODE_NOT_FOUND', 'no running workshop has this code');

/**
 * The address's misses in this window, and the document of the code when it is one, read with
 * those of the other joins under way on this instance (batched-reads.ts).
 */
async function missesAndCode(
  s: Services,
  misses: MissWindow,
  rawCode: string,
): Promise<[number, JoinCodeRecord | undefined]> {
  const reads = batchedReads(s.store.db);
  const code = normalizeJoinCode(rawCode);
  const [missSnap, codeSnap] = await Promise.all([
    reads.get(misses.ref),
    code ? reads.get(s.store.joinCode(code)) : undefined,
  ]);
  return [misses.countIn(missSnap), codeSnap?.data()];
}

/** Longer than a join can take (the function's timeout is 60 s): no read in use is older. */
const CLAIMS_MEMORY_MS = 120_000;
const claimsByStore = perStore<SeatClaims>();

/** What this instance knows of the workshop's seat claims (seat-claims.ts). */
function seatClaims(s: Services, id: string): SeatClaims {
  const all = claimsByStore(s);
  let claims = all.get(id);
  if (!claims) all.set(id, (claims = new SeatClaims()));
  return claims;
}

/** Drops what no join in flight can need, and the workshops left with nothing. */
function forgetClaims(s: Services): void {
  const all = claimsByStore(s);
  const before = performance.now() - CLAIMS_MEMORY_MS;
  for (const [id, claims] of all) {
    if (claims.prune(before) && claims.users === 0) all.delete(id);
  }
}

const vmNameOf = (workshop: WorkshopRecord, seat: number): string | undefined => {
  const plan = vmForSeat(workshop.vmPlan, seat);
  return plan && instanceName(workshop.id, plan.index);
};

/** The answer for a seat the learner holds: its endpoints on its VM, with the seat's credential. */
async function seatAnswer(
  s: Services,
  workshop: WorkshopRecord,
  seat: number,
  seatToken: string,
  loaded?: Pick<Found, 'vms' | 'secrets'>,
): Promise<JoinResult> {
  const [secrets, all] = loaded
    ? [loaded.secrets, loaded.vms]
    : await Promise.all([s.store.getSecrets(workshop.id), s.store.getVms(workshop.id)]);
  if (!secrets) throw codeNotFound();
  const vm = all.find((v) => v.name === vmNameOf(workshop, seat));
  if (vm?.status === 'failed') {
    // Only a returning learner gets here: their seat's VM broke (the instructor sees it).
    throw new HttpError(409, 'NOT_READY', `the VM of seat ${seat} failed; ask the instructor`, {
      status: workshop.status,
    });
  }
  if (vm?.status !== 'ready' || !vm.externalIp) {
    // Only a returning learner gets here: their seat's VM was lost and is being replaced.
    throw new HttpError(
      409,
      'NOT_READY',
      `seat ${seat} is moving to a new VM after its VM was lost; join again in a minute`,
      { status: workshop.status, retryAfter: 30 },
    );
  }
  return {
    workshopId: workshop.id,
    seat,
    seatToken,
    endpoints: seatEndpoints(vm, seat, secrets.seatTokens[seat]!),
    expiresAt: workshop.expiresAt,
  };
}

/**
 * A learner coming back with their seatToken, found by the token alone: the code is looked up
 * only once the token is known, so a returning learner is never limited and a guess with a made-up
 * token learns nothing more than one without. Null when the token gets no seat of this code.
 */
async function rejoin(s: Services, body: JoinBody, seatToken: string) {
  const held = (await s.store.seatToken(hashToken(seatToken)).get()).data();
  if (!held) return null;
  const workshop = await s.store.getWorkshop(held.workshopId);
  if (workshop?.status !== 'ready' || workshop.joinCode !== normalizeJoinCode(body.code)) {
    return null;
  }
  if (held.freed) {
    throw new HttpError(404, 'SEAT_FREED', 'the instructor freed this seat; join again');
  }
  return seatAnswer(s, workshop, held.seat, seatToken);
}

/**
 * The `seatsPerAddress` slots of one client address (an IPv6 one by its /64) in one workshop:
 * a seat is created together with one of them, so however many joins from one address race, at
 * most that many seats go to it.
 */
function addressSlots(s: Services, id: string, clientAddress: string, cap: number) {
  const key = hashToken(addressKey(clientAddress)).slice(0, 32);
  const refs = Array.from({ length: cap }, (_, k) => s.store.addressSlots(id).doc(`${key}-${k}`));
  return {
    async held(): Promise<Set<string>> {
      const docs = await s.store.db.getAll(...refs);
      return new Set(docs.filter((d) => d.exists).map((d) => d.id));
    },
    free: (held: Set<string>) => refs.find((ref) => !held.has(ref.id)),
    full: () =>
      new HttpError(
        429,
        'SEAT_LIMIT',
        `this network already holds ${cap} seat(s) of this workshop; ask the instructor`,
      ),
  };
}

/**
 * Claims a free seat with create(), in one batch with its token record (and the address's slot
 * when the class caps seats per address), so no seat is ever given twice. A seat someone took a
 * moment ago fails the batch, and another free one is tried: one this instance is not claiming
 * nor saw taken since the read (seat-claims.ts), so the joins of one instance do not collide.
 */
async function takeSeat(s: Services, found: Found, name: string, clientAddress: string) {
  const { workshop, vms, taken, readAt } = found;
  const id = workshop.id;
  // Seats on a VM that is gone (Spot preemption) or broken are not handed out.
  const serving = new Set(vms.filter((vm) => vm.status === 'ready').map((vm) => vm.name));
  const free = Array.from({ length: workshop.seats }, (_, i) => i + 1).filter(
    (n) => !taken.has(n) && serving.has(vmNameOf(workshop, n) ?? ''),
  );
  const cap = workshop.seatsPerAddress;
  const slots = cap ? addressSlots(s, id, clientAddress, cap) : null;
  const claims = seatClaims(s, id);
  claims.users++;
  try {
    let held = slots ? await slots.held() : new Set<string>();
    const seatToken = newToken();
    const tokenHash = hashToken(seatToken);
    const tried = new Set<number>();
    let seat = claims.next(free, tried, readAt);
    while (seat !== undefined) {
      const slot = slots?.free(held);
      if (slots && !slot) throw slots.full();
      const record: SeatRecord = {
        seat,
        learnerName: name,
        tokenHash,
        vmName: vmNameOf(workshop, seat)!,
        joinedAt: s.now().toISOString(),
        ...(slot && { slot: slot.id }),
      };
      const batch = s.store.db.batch();
      batch.create(s.store.seats(id).doc(String(seat)), record);
      batch.create(s.store.seatToken(tokenHash), { workshopId: id, seat, freed: false });
      if (slot) batch.create(slot, { createdAt: record.joinedAt });
      claims.claim(seat);
      try {
        await batch.commit();
        claims.settle(seat, true);
        return { seat, seatToken };
      } catch (error) {
        if (!isAlreadyExists(error)) {
          claims.settle(seat, false);
          throw error;
        }
      }
      // Taken a moment ago: the seat, or the slot (then the same seat is tried with another).
      if (slots && slot) {
        held = await slots.held();
        if (held.has(slot.id)) {
          claims.settle(seat, false);
          continue;
        }
      }
      claims.settle(seat, true);
      tried.add(seat);
      seat = claims.next(free, tried, readAt);
    }
    throw new HttpError(409, 'WORKSHOP_FULL', 'every seat of this workshop is taken');
  } finally {
    claims.users--;
    forgetClaims(s);
  }
}

/**
 * A seat of `found`; when it shows none free and was read before this join looked (a seat may have
 * been freed since), a seat of a read made now. `from` is the read the seat came from.
 */
async function claimSeat(
  s: Services,
  found: Found,
  lookedAt: number,
  name: string,
  clientAddress: string,
) {
  try {
    return { ...(await takeSeat(s, found, name, clientAddress)), from: found };
  } catch (error) {
    const full = error instanceof HttpError && error.code === 'WORKSHOP_FULL';
    if (!full || found.readAt >= lookedAt) throw error;
    const now = await readAnew(s, found.workshop.id).found;
    if (now?.workshop.status !== 'ready') throw error;
    return { ...(await takeSeat(s, now, name, clientAddress)), from: now };
  }
}

/**
 * Gives a learner a seat; a learner who comes back with their seatToken gets the same seat and is
 * never limited. Only a code that finds no live workshop counts against the client address
 * (shared/rate-limit.ts). In a row: the code with the address's misses (one getAll, shared with
 * the other joins of the moment), then the workshop with what its seat needs (three calls side by
 * side, unless this instance read it a moment ago: FRESH_MS in workshop-reads.ts), then the
 * seat's batch: at most three round trips and five calls (one more of each when the class caps
 * seats per address).
 */
export async function joinWorkshop(
  s: Services,
  body: JoinBody,
  clientAddress: string,
): Promise<JoinResult> {
  if (body.seatToken) {
    const back = await rejoin(s, body, body.seatToken);
    if (back) return back;
  }
  const misses = missWindow(s.store, clientAddress, s.now());
  const limit = s.config.joinMissLimit;
  const [missed, codeDoc] = await missesAndCode(s, misses, body.code);
  // Past its misses, an address learns nothing of any code, live or not, until the window ends.
  if (missed >= limit) throw misses.limited();
  const lookedAt = performance.now();
  const read = lookup(s, codeDoc);
  const found = read && (await read.found);
  if (!found) throw (await misses.miss(limit)) ? codeNotFound() : misses.limited();
  const { workshop } = found;
  if (workshop.status !== 'ready') {
    throw new HttpError(409, 'NOT_READY', `the workshop is ${workshop.status}, not ready yet`, {
      status: workshop.status,
    });
  }
  const { seat, seatToken, from } = await claimSeat(
    s,
    found,
    lookedAt,
    body.name.trim(),
    clientAddress,
  );
  log.info('learner joined', { workshopId: workshop.id, seat });
  return seatAnswer(s, workshop, seat, seatToken, from);
}
