import { randomInt } from 'node:crypto';
import { hashToken, newToken } from '../core/secrets.ts';
import { instanceName, normalizeJoinCode } from '../core/ids.ts';
import { vmForSeat } from '../core/plan.ts';
import { seatEndpoints, type SeatEndpoints, type SeatRecord } from '../core/workshop.ts';
import { HttpError } from '../http.ts';
import { log } from '../log.ts';
import type { JoinBody } from '../schemas.ts';
import { assertNotLimited, recordMiss } from '../rate-limit.ts';
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

function shuffled(values: number[]): number[] {
  for (let i = values.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return values;
}

/**
 * Gives a learner a seat. Seats are claimed with create(), so under any number of concurrent
 * joins a seat goes to exactly one learner; a learner who comes back with their seatToken gets
 * the same seat.
 */
export async function joinWorkshop(
  s: Services,
  body: JoinBody,
  clientAddress: string,
): Promise<JoinResult> {
  await assertNotLimited(s.store, clientAddress, s.now(), s.config.joinMissLimit);
  const miss = async () => {
    await recordMiss(s.store, clientAddress, s.now());
    return codeNotFound();
  };
  const code = normalizeJoinCode(body.code);
  if (!code) throw await miss();
  const codeDoc = (await s.store.joinCode(code).get()).data();
  if (!codeDoc) throw await miss();
  const workshop = await s.store.getWorkshop(codeDoc.workshopId);
  if (
    !workshop ||
    workshop.status === 'ending' ||
    workshop.status === 'ended' ||
    workshop.status === 'failed'
  ) {
    throw await miss();
  }
  if (workshop.status !== 'ready') {
    throw new HttpError(409, 'NOT_READY', `the workshop is ${workshop.status}, not ready yet`, {
      status: workshop.status,
    });
  }
  const id = workshop.id;
  const [secrets, vms] = await Promise.all([s.store.getSecrets(id), s.store.getVms(id)]);
  if (!secrets) throw codeNotFound();
  const vmNameOf = (seat: number): string | undefined => {
    const plan = vmForSeat(workshop.vmPlan, seat);
    return plan && instanceName(id, plan.index);
  };
  const respond = (seat: number, seatToken: string): JoinResult => {
    const vm = vms.find((v) => v.name === vmNameOf(seat));
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
      workshopId: id,
      seat,
      seatToken,
      endpoints: seatEndpoints(vm, seat, secrets.seatTokens[seat]!),
      expiresAt: workshop.expiresAt,
    };
  };

  if (body.seatToken) {
    const mine = await s.store
      .seats(id)
      .where('tokenHash', '==', hashToken(body.seatToken))
      .limit(1)
      .get();
    const seat = mine.docs[0]?.data();
    if (seat) return respond(seat.seat, body.seatToken);
  }

  const taken = new Set((await s.store.seats(id).select().get()).docs.map((d) => Number(d.id)));
  // Seats on a VM that is gone (Spot preemption) or broken are not handed out.
  const serving = new Set(vms.filter((vm) => vm.status === 'ready').map((vm) => vm.name));
  const free = shuffled(
    Array.from({ length: workshop.seats }, (_, i) => i + 1).filter(
      (n) => !taken.has(n) && serving.has(vmNameOf(n) ?? ''),
    ),
  );
  const seatToken = newToken();
  const tokenHash = hashToken(seatToken);
  for (const seat of free) {
    const record: SeatRecord = {
      seat,
      learnerName: body.name.trim(),
      tokenHash,
      vmName: vmNameOf(seat)!,
      joinedAt: s.now().toISOString(),
    };
    try {
      await s.store.seats(id).doc(String(seat)).create(record);
    } catch (error) {
      if (isAlreadyExists(error)) continue; // someone else took it a moment ago
      throw error;
    }
    log.info('learner joined', { workshopId: id, seat });
    return respond(seat, seatToken);
  }
  throw new HttpError(409, 'WORKSHOP_FULL', 'every seat of this workshop is taken');
}
