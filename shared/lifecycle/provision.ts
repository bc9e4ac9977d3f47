import { FieldValue } from '@google-cloud/firestore';
import { ComputeError } from '../core/compute-errors.ts';
import { workshopCost } from '../core/cost.ts';
import { deterministicUuid, vmHostname } from '../core/ids.ts';
import { placements, type Placement } from '../core/placement.ts';
import { instanceSpec } from '../core/vm-spec.ts';
import { isTerminal } from '../core/state.ts';
import type { VmRecord, WorkshopRecord, WorkshopSecrets } from '../core/workshop.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';
import { TOPICS } from '../topics.ts';
import { deleteWorkshopVms, requestEnd } from './end.ts';

/**
 * Marks a VM booting where it landed, unless a report already moved it further (reports may come
 * first). The zone it landed in is no longer one that had no capacity for it.
 */
async function markBooting(
  s: Services,
  workshopId: string,
  vm: VmRecord,
  landed: Placement,
): Promise<void> {
  const ref = s.store.vms(workshopId).doc(vm.name);
  await s.store.db.runTransaction(async (tx) => {
    const snap = await tx.get(ref);
    if (snap.data()?.status === 'pending') {
      tx.update(ref, {
        status: 'booting',
        insertedAt: s.now().toISOString(),
        capacityMisses: FieldValue.arrayRemove(landed),
      });
    }
  });
}

/**
 * Records that `missed` had no capacity and that the VM is tried at `next` from now on, so a
 * retried event carries on from there. A fall back to standard also changes the workshop's plan
 * and cost estimate, which the instructor sees. False when the workshop is no longer live.
 */
async function moveOn(
  s: Services,
  workshopId: string,
  vm: VmRecord,
  missed: Placement,
  next: Placement,
): Promise<boolean> {
  const vmRef = s.store.vms(workshopId).doc(vm.name);
  const live = await s.store.inTransaction(workshopId, (tx, workshop) => {
    if (!workshop || (workshop.status !== 'provisioning' && workshop.status !== 'ready')) {
      return false;
    }
    tx.update(vmRef, {
      zone: next.zone,
      spot: next.spot,
      capacityMisses: FieldValue.arrayUnion(missed),
    });
    if (missed.spot === next.spot) return true;
    const vmPlan = workshop.vmPlan.map((p) =>
      p.index === vm.index ? { ...p, spot: next.spot } : p,
    );
    const minutes =
      workshop.startedAt !== null
        ? (Date.parse(workshop.expiresAt) - Date.parse(workshop.startedAt)) / 60_000
        : workshop.durationMinutes;
    tx.update(s.store.workshop(workshopId), {
      vmPlan,
      estimatedCost: workshopCost({ ...workshop, vmPlan }, minutes),
    });
    return true;
  });
  if (live)
    log.warn('no capacity for a VM; trying elsewhere', {
      workshopId,
      vmName: vm.name,
      missed,
      next,
    });
  return live;
}

/** The stock-out that ends the search, saying everything that was tried. */
function noCapacity(vm: VmRecord, tried: readonly Placement[], last: ComputeError): ComputeError {
  const where = tried.map((p) => `${p.zone}${p.spot ? ' (Spot)' : ''}`).join(', ');
  return new ComputeError(
    'stockout',
    last.code,
    `no zone had capacity for VM ${vm.index + 1} (${vm.machineType}): tried ${where}`,
    last.httpStatus,
  );
}

/**
 * Points the VM's name under SEAT_DOMAIN at the address Compute gave it, as soon as the insert is
 * done: before its startup script runs, so its Caddy finds the name its certificate is for. A
 * replacement under the same name moves the record to its new address.
 */
async function nameVm(s: Services, workshopId: string, name: string, zone: string) {
  if (!s.dns || !s.config.seatDomain) return;
  const instance = await s.compute.get({ name, zone });
  if (!instance) {
    // Gone already (a Spot VM taken back): the sweep replaces it, and names the replacement.
    log.warn('a VM was gone before it could be named', { workshopId, vmName: name });
    return;
  }
  if (!instance.externalIp) {
    throw new ComputeError('transient', 'NO_EXTERNAL_IP', `VM ${name} has no external IP yet`);
  }
  await s.dns.setAddress(vmHostname(name, s.config.seatDomain.domain), instance.externalIp);
}

/**
 * Inserts one VM where it is to go, moving on to the next zone (and, for a Spot class that allows
 * it, to standard VMs) while the zones are out of capacity. Every attempt has its own requestId,
 * derived from the VM, its generation and the placement, so a retried event finds the same
 * operations instead of making a second VM. Throws the last stock-out when nothing is left to try.
 */
async function insertVm(
  s: Services,
  workshop: WorkshopRecord,
  secrets: WorkshopSecrets,
  vm: VmRecord,
): Promise<void> {
  const plan = workshop.vmPlan.find((p) => p.index === vm.index);
  if (!plan) throw new Error(`workshop ${workshop.id} has no plan for ${vm.name}`);
  const settings = {
    project: s.config.project,
    registry: s.config.registry,
    nekoImage: s.config.images.neko,
    caddyImage: s.config.images.caddy,
    readyTopic: TOPICS.vmReady,
    startupScript: s.config.startupScript,
    watcherScript: s.config.watcherScript,
    portalOrigin: s.config.portalOrigin,
    seatDomain: s.config.seatDomain?.domain ?? '',
  };
  const current = { zone: vm.zone, spot: vm.spot ?? workshop.spot };
  const order = placements(s.config.zones, current, workshop.spotFallback ?? true);
  // A replacement of a lost VM is a new generation and so new requests.
  const generation = vm.generation ? [String(vm.generation)] : [];
  for (const [n, placement] of order.entries()) {
    const spec = instanceSpec(workshop, plan, secrets, settings, placement);
    const model = placement.spot ? 'spot' : 'standard';
    const requestId = deterministicUuid(
      workshop.id,
      vm.name,
      'insert',
      ...generation,
      placement.zone,
      model,
    );
    try {
      await s.compute.insert(spec, requestId);
    } catch (error) {
      const exists = error instanceof ComputeError && error.kind === 'already-exists';
      if (!exists) {
        if (!(error instanceof ComputeError) || error.kind !== 'stockout') throw error;
        const next = order[n + 1];
        if (!next) throw noCapacity(vm, order, error);
        if (!(await moveOn(s, workshop.id, vm, placement, next))) return;
        continue;
      }
    }
    await nameVm(s, workshop.id, vm.name, placement.zone);
    await markBooting(s, workshop.id, vm, placement);
    return;
  }
}

/**
 * The `workshop.started` work: inserts every VM not yet inserted (at start, or a replacement of a
 * lost VM in a ready class). A permanent Compute error (quota, no capacity anywhere, bad image)
 * fails a provisioning workshop; a transient one propagates so the event is retried. If the
 * workshop was ended while the inserts were in flight, the new VMs are deleted.
 */
export async function provisionWorkshop(s: Services, id: string): Promise<void> {
  const workshop = await s.store.getWorkshop(id);
  if (!workshop || (workshop.status !== 'provisioning' && workshop.status !== 'ready')) {
    log.info('workshop.started: nothing to provision', {
      workshopId: id,
      status: workshop?.status,
    });
    return;
  }
  const [vms, secrets] = await Promise.all([s.store.getVms(id), s.store.getSecrets(id)]);
  if (!secrets) throw new Error(`workshop ${id} has no secrets`);
  const pending = vms.filter((vm) => vm.status === 'pending');
  const results = await Promise.allSettled(pending.map((vm) => insertVm(s, workshop, secrets, vm)));
  const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  const permanent = errors.find(
    (e): e is ComputeError => e instanceof ComputeError && e.kind !== 'transient',
  );
  if (permanent && workshop.status === 'ready') {
    // A replacement could not be made: the class goes on with its other VMs, and the sweep
    // tries again. Each try is a new generation, hence new requests, not replays of failed ones.
    log.warn('replacing a lost VM failed', { workshopId: id, code: permanent.code });
    const batch = s.store.db.batch();
    pending.forEach((vm, i) => {
      if (results[i]?.status !== 'rejected') return;
      batch.update(s.store.vms(id).doc(vm.name), { generation: (vm.generation ?? 0) + 1 });
    });
    batch.update(s.store.workshop(id), {
      error: { code: permanent.code, message: `replacing a lost VM failed: ${permanent.message}` },
    });
    await batch.commit();
    return;
  }
  if (permanent) {
    log.warn('provisioning failed', { workshopId: id, code: permanent.code, kind: permanent.kind });
    await requestEnd(s, id, {
      reason: 'provisioning-failed',
      error: { code: permanent.code, message: permanent.message },
    });
    return;
  }
  const after = await s.store.getWorkshop(id);
  if (after && (after.status === 'ending' || isTerminal(after.status))) {
    // Ended while we inserted: teardown may already have listed the VMs, so delete ours here.
    await deleteWorkshopVms(s, id);
    return;
  }
  if (errors.length > 0) throw errors[0];
  log.info('workshop VMs inserted', { workshopId: id, vms: pending.map((vm) => vm.name) });
}
