import { workshopCost } from '../core/cost.ts';
import { vmHostname } from '../core/ids.ts';
import { APP_LABEL } from '../core/vm-spec.ts';
import type { InstanceRef } from '../compute.ts';
import { decide, type EndReason, isTerminal } from '../core/state.ts';
import type { VmRecord, WorkshopRecord } from '../core/workshop.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';
import { TOPICS } from '../topics.ts';

export interface EndRequest {
  reason: EndReason;
  error?: { code: string; message: string };
  /** Only end from these statuses (a sweep acting on what it saw); any live status when absent. */
  onlyFrom?: readonly WorkshopRecord['status'][];
}

/**
 * Moves a workshop towards its end: an unstarted one ends at once, a running one becomes
 * `ending` and `workshop.ended` is published so its VMs are deleted. The first reason wins;
 * asking again is harmless and re-publishes while the workshop is still `ending`.
 */
export async function requestEnd(
  s: Services,
  id: string,
  request: EndRequest,
): Promise<WorkshopRecord | null> {
  const now = s.now().toISOString();
  const workshop = await s.store.inTransaction(id, (tx, current) => {
    if (!current) return null;
    if (request.onlyFrom && !request.onlyFrom.includes(current.status)) return current;
    const decision = decide(current.status, { type: 'end', reason: request.reason });
    if (decision.kind !== 'move') return current;
    const next: WorkshopRecord = {
      ...current,
      status: decision.to,
      updatedAt: now,
      endReason: request.reason,
      error: request.error ?? current.error,
    };
    if (isTerminal(decision.to)) {
      // Never started: nothing to tear down, so the code is freed right here, and nothing ran.
      next.endedAt = now;
      next.estimatedCost = workshopCost(current, 0);
      tx.delete(s.store.joinCode(current.joinCode));
    } else {
      next.endingAt = now;
    }
    tx.set(s.store.workshop(id), next);
    return next;
  });
  if (workshop?.status === 'ending') {
    await s.bus.publish(TOPICS.workshopEnded, {
      workshopId: id,
      reason: workshop.endReason ?? request.reason,
    });
    log.info('workshop ending', { workshopId: id, reason: workshop.endReason });
  }
  return workshop;
}

/**
 * Deletes every VM the workshop may own: the recorded ones, in the zone each was last put in,
 * and any carrying its label, in whatever zone it is, then their names under SEAT_DOMAIN (a name
 * left on a released address would name whoever gets that address next; one that cannot be
 * removed now is the sweep's to remove). Returns the
 * `zone/name`s it deleted and the VM records it read.
 */
export async function deleteWorkshopVms(
  s: Services,
  id: string,
): Promise<{ deleted: string[]; recorded: VmRecord[] }> {
  const [recorded, labelled] = await Promise.all([
    s.store.getVms(id),
    s.compute.list({ app: APP_LABEL, workshop: id }),
  ]);
  const targets = new Map<string, InstanceRef>();
  for (const { name, zone } of [...recorded, ...labelled]) {
    targets.set(`${zone}/${name}`, { name, zone });
  }
  await Promise.all([...targets.values()].map((ref) => s.compute.delete(ref)));
  try {
    await unnameVms(
      s,
      [...targets.values()].map((ref) => ref.name),
    );
  } catch (error) {
    // The VMs are gone, so the class can end; the sweep removes names whose VM is gone.
    log.error('could not remove the VMs’ names; the sweep will', { workshopId: id, error });
  }
  return { deleted: [...targets.keys()], recorded };
}

/** Removes the VMs' names under SEAT_DOMAIN, when the operator has one. */
export async function unnameVms(s: Services, names: readonly string[]): Promise<void> {
  const { dns, config } = s;
  if (!dns || !config.seatDomain) return;
  const domain = config.seatDomain.domain;
  await Promise.all([...new Set(names)].map((n) => dns.removeAddress(vmHostname(n, domain))));
}

/**
 * The `workshop.ended` work: deletes the VMs, drops the live data (seats, secrets, join code) and
 * records the end. Every step is idempotent, so a redelivery or a crash half-way is repaired by
 * running it again. A transient Compute error propagates, and the event is retried.
 */
export async function tearDown(s: Services, id: string, reason: EndReason): Promise<void> {
  let workshop = await s.store.getWorkshop(id);
  if (!workshop) {
    log.warn('workshop.ended for an unknown workshop', { workshopId: id });
    return;
  }
  if (workshop.status === 'provisioning' || workshop.status === 'ready') {
    // The event can come before our own transition was seen (sweep, another writer): end it first.
    workshop = (await requestEnd(s, id, { reason })) ?? workshop;
  }
  if (workshop.status === 'created') {
    await requestEnd(s, id, { reason });
    return;
  }
  const { deleted, recorded } = await deleteWorkshopVms(s, id);
  if (isTerminal(workshop.status)) return;
  const batch = s.store.db.batch();
  for (const vm of recorded) {
    if (vm.status !== 'deleted') batch.update(s.store.vms(id).doc(vm.name), { status: 'deleted' });
  }
  await batch.commit();
  // Seats are dropped with the live data; the count stays on the record for the instructor.
  const seatsTaken = await s.store.countSeats(id);
  await s.store.dropLiveData(workshop);
  const now = s.now().toISOString();
  await s.store.inTransaction(id, (tx, current) => {
    if (!current) return;
    const decision = decide(current.status, {
      type: 'torn-down',
      reason: current.endReason ?? reason,
    });
    if (decision.kind !== 'move') return;
    tx.update(s.store.workshop(id), {
      status: decision.to,
      endedAt: now,
      updatedAt: now,
      seatsReady: 0,
      seatsTakenAtEnd: seatsTaken,
    });
  });
  log.info('workshop torn down', { workshopId: id, deletedVms: deleted });
}
