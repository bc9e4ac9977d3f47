import type { Transaction } from '@google-cloud/firestore';
import { workshopCost } from '../core/cost.ts';
import { classStart, isDue } from '../core/schedule.ts';
import { newSshKeyPair, newToken, hashToken } from '../core/secrets.ts';
import { instanceName } from '../core/ids.ts';
import { ACTIVE_STATUSES, instructorQuotaProblem } from '../core/quota.ts';
import { decide } from '../core/state.ts';
import {
  addMinutes,
  type VmRecord,
  type WorkshopRecord,
  type WorkshopSecrets,
} from '../core/workshop.ts';
import { SSH_USER } from '../core/vm-spec.ts';
import { HttpError } from '../http.ts';
import type { Caller } from '../identity.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';
import { TOPICS } from '../topics.ts';
import { checkRegionQuota } from './region-quota.ts';
import { visibleOrNotFound } from './workshop-access.ts';

/** Fresh credentials for a workshop's VMs and seats; made once, when it starts. */
function newSecrets(workshop: WorkshopRecord): WorkshopSecrets {
  const ssh = newSshKeyPair(SSH_USER);
  const readyTokens: Record<string, string> = {};
  for (const vm of workshop.vmPlan) readyTokens[instanceName(workshop.id, vm.index)] = newToken();
  const seatTokens: Record<string, string> = {};
  for (let seat = 1; seat <= workshop.seats; seat++) seatTokens[seat] = newToken();
  const keys = { sshPrivateKey: ssh.privateKey, sshPublicKey: ssh.publicKey };
  return { ...keys, readyTokens, seatTokens, viewerToken: newToken() };
}

/** 409 QUOTA_EXCEEDED when the owner's other active workshops leave no room for this one. */
async function assertInstructorQuota(s: Services, tx: Transaction, workshop: WorkshopRecord) {
  const active = await tx.get(
    s.store
      .workshops()
      .where('ownerId', '==', workshop.ownerId)
      .where('status', 'in', ACTIVE_STATUSES),
  );
  const problem = instructorQuotaProblem(
    active.docs.filter((d) => d.id !== workshop.id).map((d) => d.data().seats),
    workshop.seats,
    s.config.instructorLimits,
  );
  if (problem) throw new HttpError(409, 'QUOTA_EXCEEDED', problem, { limit: 'instructor' });
}

/**
 * created → provisioning, recording the VMs to make and their secrets in the same transaction.
 * `admit` picks the workshop the caller may start (null: nothing to do). A start by hand makes a
 * scheduled class an ordinary one, started now; the sweep's start keeps its schedule, so the
 * class's time counts from its startAt. Returns the workshop and whether this call started it.
 */
async function begin(
  s: Services,
  id: string,
  admit: (current: WorkshopRecord | null) => WorkshopRecord | null,
  bySchedule: boolean,
): Promise<{ workshop: WorkshopRecord; started: boolean } | null> {
  const now = s.now().toISOString();
  return s.store.inTransaction(id, async (tx, current) => {
    const found = admit(current);
    if (!found) return null;
    const decision = decide(found.status, { type: 'start' });
    if (decision.kind === 'refuse') {
      throw new HttpError(
        409,
        'INVALID_STATE',
        `a workshop that is ${found.status} cannot be started`,
        {
          status: found.status,
        },
      );
    }
    if (decision.kind === 'stay') return { workshop: found, started: false };
    await assertInstructorQuota(s, tx, found);
    const schedule = bySchedule ? (found.schedule ?? null) : null;
    const expiresAt = addMinutes(classStart(schedule, now), found.durationMinutes);
    const next: WorkshopRecord = {
      ...found,
      status: 'provisioning',
      startedAt: now,
      updatedAt: now,
      expiresAt,
      provisioningDeadline: addMinutes(now, s.config.provisioningTimeoutMinutes),
      schedule,
      // A quota problem an earlier try of the sweep noted is over.
      error: null,
      // From now on: for a scheduled class, the minutes before its startAt too.
      estimatedCost: workshopCost(found, (Date.parse(expiresAt) - Date.parse(now)) / 60_000),
    };
    const secrets = newSecrets(found);
    tx.set(s.store.workshop(id), next);
    tx.create(s.store.secrets(id), secrets);
    for (const vm of found.vmPlan) {
      const name = instanceName(id, vm.index);
      const record: VmRecord = {
        name,
        zone: s.config.zones[0]!,
        spot: found.spot,
        capacityMisses: [],
        index: vm.index,
        firstSeat: vm.firstSeat,
        seatCount: vm.seatCount,
        machineType: vm.machineType,
        status: 'pending',
        instanceId: null,
        externalIp: null,
        internalIp: null,
        httpPort: null,
        readyAt: null,
        readyTokenHash: hashToken(secrets.readyTokens[name]!),
        error: null,
      };
      tx.create(s.store.vms(id).doc(name), record);
    }
    return { workshop: next, started: true };
  });
}

async function announce(s: Services, workshop: WorkshopRecord): Promise<void> {
  await s.bus.publish(TOPICS.workshopStarted, { workshopId: workshop.id });
  log.info('workshop started', {
    workshopId: workshop.id,
    seats: workshop.seats,
    vms: workshop.vmPlan.length,
    scheduledFor: workshop.schedule?.startAt,
  });
}

/**
 * The instructor's start. Starting a workshop that is already provisioning or ready returns it as
 * it is (and asks again, which the provisioner treats as a no-op).
 */
export async function startWorkshop(
  s: Services,
  id: string,
  caller: Caller,
): Promise<WorkshopRecord> {
  const unstarted = visibleOrNotFound(await s.store.getWorkshop(id), caller);
  if (unstarted.status === 'created') await checkRegionQuota(s, unstarted);
  const { workshop } = (await begin(s, id, (w) => visibleOrNotFound(w, caller), false))!;
  if (workshop.status === 'provisioning') await announce(s, workshop);
  return workshop;
}

/**
 * The sweep's start of a scheduled class whose provisioning time has come. True only for the call
 * that started it: overlapping sweeps start a class once. Quotas are checked as for a start by
 * hand, and a shortfall throws the same 409.
 */
export async function startScheduled(s: Services, due: WorkshopRecord): Promise<boolean> {
  await checkRegionQuota(s, due);
  const now = s.now().toISOString();
  const begun = await begin(s, due.id, (w) => (w && isDue(w, now) ? w : null), true);
  if (begun?.started) await announce(s, begun.workshop);
  return begun?.started ?? false;
}
