import { ComputeError } from '../core/compute-errors.ts';
import { deterministicUuid } from '../core/ids.ts';
import { instanceSpec } from '../core/vm-spec.ts';
import { isTerminal } from '../core/state.ts';
import type { VmRecord, WorkshopRecord, WorkshopSecrets } from '../core/workshop.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';
import { TOPICS } from '../topics.ts';
import { deleteWorkshopVms, requestEnd } from './end.ts';

/** Marks a VM booting, unless a report already moved it further (reports may come first). */
async function markBooting(s: Services, workshopId: string, vm: VmRecord): Promise<void> {
  const ref = s.store.vms(workshopId).doc(vm.name);
  await s.store.db.runTransaction(async (tx) => {
    const snap = await tx.get(ref);
    if (snap.data()?.status === 'pending') {
      tx.update(ref, { status: 'booting', insertedAt: s.now().toISOString() });
    }
  });
}

async function insertVm(
  s: Services,
  workshop: WorkshopRecord,
  secrets: WorkshopSecrets,
  vm: VmRecord,
): Promise<void> {
  const plan = workshop.vmPlan.find((p) => p.index === vm.index);
  if (!plan) throw new Error(`workshop ${workshop.id} has no plan for ${vm.name}`);
  const spec = instanceSpec(workshop, plan, secrets, {
    project: s.config.project,
    registry: s.config.registry,
    nekoImage: s.config.images.neko,
    caddyImage: s.config.images.caddy,
    readyTopic: TOPICS.vmReady,
    startupScript: s.config.startupScript,
  });
  try {
    // The same requestId on a redelivery makes Compute return the first operation, not a new VM;
    // a replacement of a lost VM is a new generation and so a new request.
    const generation = vm.generation ? [String(vm.generation)] : [];
    await s.compute.insert(spec, deterministicUuid(workshop.id, vm.name, 'insert', ...generation));
  } catch (error) {
    if (!(error instanceof ComputeError) || error.kind !== 'already-exists') throw error;
  }
  await markBooting(s, workshop.id, vm);
}

/**
 * The `workshop.started` work: inserts every VM not yet inserted (at start, or a replacement of a
 * lost VM in a ready class). A permanent Compute error (quota, stock-out, bad image) fails a
 * provisioning workshop; a transient one propagates so the event is retried. If the workshop was
 * ended while the inserts were in flight, the new VMs are deleted.
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
    // A replacement could not be made: the class goes on with its other VMs.
    log.warn('replacing a lost VM failed', { workshopId: id, code: permanent.code });
    await s.store.workshop(id).update({
      error: { code: permanent.code, message: `replacing a lost VM failed: ${permanent.message}` },
    });
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
