import { randomInt } from 'node:crypto';
import type { DocumentReference } from '@google-cloud/firestore';
import { hashToken, newToken } from '../core/secrets.ts';
import { instanceName, normalizeJoinCode } from '../core/ids.ts';
import { vmForSeat } from '../core/plan.ts';
import {
  seatEndpoints,
  type SeatEndpoints,
  type SeatRecord,
  type VmRecord,
  type WorkshopRecord,
  type WorkshopSecrets,
} from '../core/workshop.ts';
import { HttpError } from '../http.ts';
import { log } from '../log.ts';
import type { JoinBody } from '../schemas.ts';
import { countAttempt } from '../rate-limit.ts';
import { isAlreadyExists } from '../store.ts';
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

function shuffled<T>(values: T[]): T[] {
  for (let i = values.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return values;
}

const LIVE = new Set<WorkshopRecord['status']>(['created', 'provisioning', 'ready']);

async function liveWorkshop(s: Services, rawCode: string): Promise<WorkshopRecord | null> {
  const code = normalizeJoinCode(rawCode);
  if (!code) return null;
  const codeDoc = (await s.store.joinCode(code).get()).data();
  const workshop = codeDoc ? await s.store.getWorkshop(codeDoc.workshopId) : null;
  return workshop && LIVE.has(workshop.status) ? workshop : null;
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
  loaded?: { vms: VmRecord[]; secrets: WorkshopSecrets | null },
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
 * One of the SEATS_PER_ADDRESS slots of this client address in this workshop, claimed with
 * create(): however many joins from one address race, at most that many slots exist. Tried in
 * random order without reading them first: a learner's own address usually holds none.
 */
async function claimAddressSlot(
  s: Services,
  id: string,
  clientAddress: string,
): Promise<DocumentReference> {
  const key = hashToken(clientAddress).slice(0, 32);
  const cap = s.config.seatsPerAddress;
  const refs = Array.from({ length: cap }, (_, k) => s.store.addressSlots(id).doc(`${key}-${k}`));
  for (const ref of shuffled(refs)) {
    try {
      await ref.create({ createdAt: s.now().toISOString() });
      return ref;
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  }
  throw new HttpError(
    429,
    'SEAT_LIMIT',
    `this network already holds ${cap} seat(s) of this workshop; ask the instructor`,
  );
}

/** Claims a free seat with create(), with its token record, so no seat is ever given twice. */
async function takeSeat(
  s: Services,
  workshop: WorkshopRecord,
  vms: VmRecord[],
  name: string,
  slot: string,
  seatToken: string,
): Promise<number> {
  const id = workshop.id;
  const taken = new Set((await s.store.seats(id).select().get()).docs.map((d) => Number(d.id)));
  // Seats on a VM that is gone (Spot preemption) or broken are not handed out.
  const serving = new Set(vms.filter((vm) => vm.status === 'ready').map((vm) => vm.name));
  const free = shuffled(
    Array.from({ length: workshop.seats }, (_, i) => i + 1).filter(
      (n) => !taken.has(n) && serving.has(vmNameOf(workshop, n) ?? ''),
    ),
  );
  const tokenHash = hashToken(seatToken);
  for (const seat of free) {
    const record: SeatRecord = {
      seat,
      learnerName: name,
      tokenHash,
      vmName: vmNameOf(workshop, seat)!,
      joinedAt: s.now().toISOString(),
      slot,
    };
    const batch = s.store.db.batch();
    batch.create(s.store.seats(id).doc(String(seat)), record);
    batch.create(s.store.seatToken(tokenHash), { workshopId: id, seat, freed: false });
    try {
      await batch.commit();
    } catch (error) {
      if (isAlreadyExists(error)) continue; // someone else took it a moment ago
      throw error;
    }
    return seat;
  }
  throw new HttpError(409, 'WORKSHOP_FULL', 'every seat of this workshop is taken');
}

/**
 * Gives a learner a seat. Every attempt without a valid seatToken counts against the client
 * address's limit before what the code finds is used, and gives its count back once the code
 * proves live; a learner who comes back with their seatToken gets the same seat. Independent reads
 * and writes go side by side: at 9:00 a join is as long as its longest chain of round trips.
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
  const attempt = await countAttempt(s.store, clientAddress, s.now(), s.config.joinMissLimit, () =>
    liveWorkshop(s, body.code),
  );
  const workshop = attempt.found;
  if (!workshop) throw codeNotFound();
  if (workshop.status !== 'ready') {
    await attempt.refund();
    throw new HttpError(409, 'NOT_READY', `the workshop is ${workshop.status}, not ready yet`, {
      status: workshop.status,
    });
  }
  const id = workshop.id;
  // The address's slot is claimed while what the seat needs is read and the attempt refunded.
  const claiming = claimAddressSlot(s, id, clientAddress);
  claiming.catch(() => undefined); // awaited below, once the reads are done
  let vms: VmRecord[];
  let secrets: WorkshopSecrets | null;
  try {
    [, vms, secrets] = await Promise.all([
      attempt.refund(),
      s.store.getVms(id),
      s.store.getSecrets(id),
    ]);
  } catch (error) {
    await claiming.then((ref) => ref.delete()).catch(() => undefined);
    throw error;
  }
  const slot = await claiming;
  const seatToken = newToken();
  let seat: number;
  try {
    seat = await takeSeat(s, workshop, vms, body.name.trim(), slot.id, seatToken);
  } catch (error) {
    await slot.delete();
    throw error;
  }
  log.info('learner joined', { workshopId: id, seat });
  return seatAnswer(s, workshop, seat, seatToken, { vms, secrets });
}
