import { FieldPath } from '@google-cloud/firestore';
import { instanceName, vmOfHostname } from '../core/ids.ts';
import { hashToken, newToken } from '../core/secrets.ts';
import { APP_LABEL } from '../core/vm-spec.ts';
import { mayHaveVms } from '../core/state.ts';
import { controlApplied, controlMetadata } from '../core/vm-control.ts';
import { addMinutes, type WorkshopRecord } from '../core/workshop.ts';
import type { InstanceInfo } from '../compute.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';
import { TOPICS } from '../topics.ts';
import { requestEnd, unnameVms } from './end.ts';
import { startScheduled } from './start.ts';
import { pushVmControl } from './vm-control.ts';
import { HttpError } from '../http.ts';

/** How many due workshops of each kind one sweep handles; the next sweep takes the rest. */
export const SWEEP_BATCH = 200;
/** An `ending` workshop older than this has lost its teardown event or crashed in it. */
export const ENDING_REDRIVE_MINUTES = 3;
/** A VM still `pending` this long after start has lost its `workshop.started` event. */
export const START_REDRIVE_MINUTES = 2;
/** Instance states in which a VM is not serving its seats (Spot preemption stops or deletes). */
const DOWN_STATES = new Set(['STOPPING', 'STOPPED', 'SUSPENDING', 'SUSPENDED', 'TERMINATED']);

export interface SweepReport {
  expired: string[];
  /** Scheduled classes whose provisioning this sweep started. */
  scheduledStarts: string[];
  timedOut: string[];
  redrivenEnds: string[];
  redrivenStarts: string[];
  leakedDeleted: string[];
  /** Names under SEAT_DOMAIN whose VM is gone, removed. */
  leakedNames: string[];
  lostVms: string[];
  /** VMs whose control metadata disagreed with Firestore, told again. */
  controlRepushed: string[];
  /** Work that failed, each logged: the rest of the sweep went on, the next sweep tries again. */
  failed: (WorkIds & { step: string; error: string })[];
  /** Documents read from Firestore by this sweep: it must grow with due work, not history. */
  documentsRead: number;
}

interface WorkIds {
  workshopId?: string;
  vmName?: string;
}
/** Runs one piece of the sweep; a failure is logged and reported, and the sweep goes on. */
type Isolated = <T>(step: string, ids: WorkIds, work: () => Promise<T>) => Promise<T | undefined>;

/**
 * The reconciler (DESIGN.md §4): compares what should exist with what does and acts on the
 * difference. Every query reads only due documents (indexes in firestore.indexes.json). Each
 * workshop and each VM is its own piece of work: one that fails (a record that breaks a rule, a VM
 * that refuses deletion, a contended transaction) is logged and left to the next sweep, and never
 * keeps the others, least of all the deletion of leaked VMs, from being done.
 */
export async function sweep(s: Services): Promise<SweepReport> {
  const now = s.now().toISOString();
  const report: SweepReport = {
    expired: [],
    scheduledStarts: [],
    timedOut: [],
    redrivenEnds: [],
    redrivenStarts: [],
    leakedDeleted: [],
    leakedNames: [],
    lostVms: [],
    controlRepushed: [],
    failed: [],
    documentsRead: 0,
  };
  const isolated: Isolated = async (step, ids, work) => {
    try {
      return await work();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      report.failed.push({ step, ...ids, error: message });
      log.error(`sweep: ${step} failed; the next sweep tries again`, { ...ids, step, error });
      return undefined;
    }
  };
  const query = (step: string, q: FirebaseFirestore.Query<WorkshopRecord>) =>
    isolated(step, {}, async () => {
      const snap = await q.limit(SWEEP_BATCH).get();
      report.documentsRead += snap.size;
      return snap.docs.map((d) => d.data());
    }).then((found) => found ?? []);
  const workshops = s.store.workshops();

  // 1. Past their time: running classes end with reason ttl, unstarted ones are cleaned up.
  const expired = await query(
    'expiry',
    workshops
      .where('status', 'in', ['created', 'provisioning', 'ready'])
      .where('expiresAt', '<=', now),
  );
  for (const w of expired) {
    await isolated('expiry', { workshopId: w.id }, async () => {
      await requestEnd(s, w.id, { reason: 'ttl', onlyFrom: ['created', 'provisioning', 'ready'] });
      report.expired.push(w.id);
    });
  }

  // 2. Provisioning past its deadline: fail it, which deletes whatever VMs it got.
  for (const w of await query('provisioning', workshops.where('status', '==', 'provisioning'))) {
    await isolated('provisioning', { workshopId: w.id }, async () => {
      if (w.provisioningDeadline && w.provisioningDeadline <= now) {
        await requestEnd(s, w.id, {
          reason: 'provisioning-timeout',
          error: {
            code: 'PROVISIONING_TIMEOUT',
            message: `the VMs were not ready within ${s.config.provisioningTimeoutMinutes} minutes`,
          },
          onlyFrom: ['provisioning'],
        });
        report.timedOut.push(w.id);
      } else if (w.startedAt && addMinutes(w.startedAt, START_REDRIVE_MINUTES) <= now) {
        // Its start event may be lost; provisioning is idempotent, so asking again is safe.
        const pending = await s.store.vms(w.id).where('status', '==', 'pending').get();
        report.documentsRead += pending.size;
        if (!pending.empty) {
          await s.bus.publish(TOPICS.workshopStarted, { workshopId: w.id });
          report.redrivenStarts.push(w.id);
        }
      }
    });
  }

  // 3. Stuck in ending: the teardown event was lost or its handler died; run it again.
  const stuck = await query(
    'ending',
    workshops
      .where('status', '==', 'ending')
      .where('endingAt', '<=', addMinutes(now, -ENDING_REDRIVE_MINUTES)),
  );
  for (const w of stuck) {
    await isolated('ending', { workshopId: w.id }, async () => {
      await s.bus.publish(TOPICS.workshopEnded, {
        workshopId: w.id,
        reason: w.endReason ?? 'ttl',
      });
      report.redrivenEnds.push(w.id);
    });
  }

  // 4. Scheduled classes whose provisioning time (startAt − lead) has come. One that the quotas
  // cannot hold yet says so and stays due: the next sweep tries again, until its planned end.
  // After the provisioning checks, which have nothing to do for a class started just now.
  const due = await query(
    'scheduled start',
    workshops.where('status', '==', 'created').where('schedule.provisionAt', '<=', now),
  );
  for (const w of due) {
    await isolated('scheduled start', { workshopId: w.id }, async () => {
      try {
        report.documentsRead += 1;
        if (await startScheduled(s, w)) report.scheduledStarts.push(w.id);
      } catch (error) {
        if (!(error instanceof HttpError) || error.code !== 'QUOTA_EXCEEDED') throw error;
        await noteUnstarted(s, w.id, { code: error.code, message: error.message });
      }
    });
  }

  // 5. Instances that no active workshop accounts for are leaks: delete them. One aggregated
  // list covers every zone, so a VM that moved zones is seen wherever it is. Without the list,
  // the steps that need it wait for the next sweep. The VMs' names are listed first: a name is
  // written once its VM exists, so every name listed has its VM in the instance list, if it has one.
  const named = await isolated('name list', {}, async () => {
    const { dns, config } = s;
    return dns && config.seatDomain ? dns.listAddresses(config.seatDomain.domain) : [];
  });
  const instances = await isolated('instance list', {}, () => s.compute.list({ app: APP_LABEL }));
  if (instances) {
    await deleteLeaks(s, report, instances, isolated);
    if (named) await unnameLeaks(s, report, named, instances, isolated);
    const existing = new Map(instances.map((i) => [i.name, i]));
    const ready = await query('ready', workshops.where('status', '==', 'ready'));
    // 6. A ready class whose VM vanished or stopped (Spot preemption): tell the instructor and
    // replace it under the same name, with the same seats and credentials, in its own zone or,
    // when that one has no capacity, the next.
    for (const w of ready) {
      for (const vm of w.vmPlan) {
        const name = instanceName(w.id, vm.index);
        const instance = existing.get(name);
        if (instance && !DOWN_STATES.has(instance.status)) continue;
        await isolated('lost VM', { workshopId: w.id, vmName: name }, async () => {
          // A stopped VM keeps its name, which its replacement needs.
          if (instance) await s.compute.delete(instance);
          // Its address is released: its name must not send learners to whoever gets it next.
          await unnameVms(s, [name]);
          const outcome = await replaceLostVm(s, w.id, name, instance?.status ?? 'DELETED', now);
          report.documentsRead += 1;
          if (outcome === 'none') return;
          if (outcome === 'replaced') report.lostVms.push(name);
          else report.redrivenStarts.push(w.id);
          await s.bus.publish(TOPICS.workshopStarted, { workshopId: w.id });
        });
      }
    }
    // 7. A running VM whose control metadata (seat credentials, resets, class end) is not what
    // Firestore wants, e.g. after a setMetadata that failed once the change was committed: tell
    // it again. The list above carries each VM's metadata; the push re-reads and writes only a
    // change.
    for (const w of ready) {
      await isolated('control', { workshopId: w.id }, () => repushControl(s, report, w, existing));
    }
  }
  const fields = { ...report, failed: report.failed.length };
  if (report.failed.length > 0) log.warn('sweep done, with failures', fields);
  else log.info('sweep done', fields);
  return report;
}

/** Step 5: deletes every instance labelled as ours that no live workshop accounts for. */
async function deleteLeaks(
  s: Services,
  report: SweepReport,
  instances: InstanceInfo[],
  isolated: Isolated,
): Promise<void> {
  const byWorkshop = new Map<string, InstanceInfo[]>();
  for (const instance of instances) {
    const id = instance.labels.workshop ?? '';
    byWorkshop.set(id, [...(byWorkshop.get(id) ?? []), instance]);
  }
  const owners = await Promise.all(
    [...byWorkshop.keys()].map(async (id) => {
      const workshopId = id || undefined;
      const found = await isolated('leaked VMs', { workshopId }, async () => {
        if (id) report.documentsRead += 1;
        return { owner: id ? await s.store.getWorkshop(id) : null };
      });
      return [id, found] as const;
    }),
  );
  for (const [id, found] of owners) {
    // Its workshop unread (the read failed): its VMs are left alone, never taken for leaks.
    if (!found) continue;
    const { owner } = found;
    const expected = new Set(owner?.vmPlan.map((vm) => instanceName(owner.id, vm.index)) ?? []);
    for (const instance of byWorkshop.get(id)!) {
      if (owner && mayHaveVms(owner.status) && expected.has(instance.name)) continue;
      const ids = { workshopId: id || undefined, vmName: instance.name };
      await isolated('leaked VMs', ids, async () => {
        await s.compute.delete(instance);
        await unnameVms(s, [instance.name]);
        report.leakedDeleted.push(instance.name);
        log.warn('deleted a leaked VM', { ...ids, zone: instance.zone, status: owner?.status });
      });
    }
  }
}

/**
 * Step 5 for the names under SEAT_DOMAIN: one of a VM of ours (`ct-…`) that is not in the instance
 * list names a released address, and is removed. Other names in the operator's zone are theirs.
 */
async function unnameLeaks(
  s: Services,
  report: SweepReport,
  named: readonly { host: string }[],
  instances: readonly InstanceInfo[],
  isolated: Isolated,
): Promise<void> {
  const domain = s.config.seatDomain?.domain ?? '';
  const existing = new Set(instances.map((i) => i.name));
  for (const { host } of named) {
    const vmName = vmOfHostname(host, domain);
    if (!vmName || existing.has(vmName)) continue;
    await isolated('leaked names', { vmName }, async () => {
      await unnameVms(s, [vmName]);
      report.leakedNames.push(host);
      log.warn('removed the name of a VM that is gone', { vmName, host });
    });
  }
}

/** Step 7 for one ready workshop: its running VMs that missed a control change, told again. */
async function repushControl(
  s: Services,
  report: SweepReport,
  w: WorkshopRecord,
  existing: Map<string, InstanceInfo>,
): Promise<void> {
  const running = w.vmPlan.flatMap((plan) => {
    const instance = existing.get(instanceName(w.id, plan.index));
    return instance && !DOWN_STATES.has(instance.status) ? [{ plan, instance }] : [];
  });
  if (running.length === 0) return;
  const secrets = await s.store.getSecrets(w.id);
  report.documentsRead += 1;
  if (!secrets) return;
  const behind = running
    .filter(
      ({ plan, instance }) => !controlApplied(controlMetadata(w, plan, secrets), instance.metadata),
    )
    .map(({ instance }) => instance.name);
  if (behind.length === 0) return;
  await pushVmControl(s, w.id, behind);
  report.controlRepushed.push(...behind);
  log.warn('a VM missed a control change; told again', { workshopId: w.id, vmNames: behind });
}

/** Shows the instructor why a due scheduled class has not started, while it is still unstarted. */
async function noteUnstarted(
  s: Services,
  id: string,
  error: { code: string; message: string },
): Promise<void> {
  const now = s.now().toISOString();
  await s.store.inTransaction(id, (tx, workshop) => {
    if (workshop?.status === 'created') tx.update(s.store.workshop(id), { error, updatedAt: now });
  });
  log.warn('a scheduled class cannot start yet', { workshopId: id, code: error.code });
}

/**
 * Records a lost VM and queues its replacement (status pending, next generation). Returns
 * `replaced` when this call did so, `pending` when a replacement is queued but not yet inserted
 * (its start event may be lost), `none` when there is nothing to do. `listedBefore` is a time
 * before the instance list was read: a VM inserted since then (by a concurrent sweep's
 * replacement) is simply not in that list, and is not lost.
 */
async function replaceLostVm(
  s: Services,
  id: string,
  name: string,
  state: string,
  listedBefore: string,
): Promise<'replaced' | 'pending' | 'none'> {
  const now = s.now().toISOString();
  return s.store.inTransaction(id, async (tx, workshop) => {
    const ref = s.store.vms(id).doc(name);
    const vm = (await tx.get(ref)).data();
    if (!workshop || workshop.status !== 'ready' || !vm) return 'none';
    if (vm.status === 'pending') return 'pending';
    if (vm.status !== 'ready' && vm.status !== 'booting') return 'none';
    if (vm.insertedAt && vm.insertedAt >= listedBefore) return 'none';
    const error = {
      code: 'VM_LOST',
      message: `VM ${name} is ${state.toLowerCase()}; seats ${vm.firstSeat}-${vm.firstSeat + vm.seatCount - 1} are unavailable until its replacement is ready`,
    };
    // A new ready token: a late report from the lost VM cannot pass for its replacement's.
    const readyToken = newToken();
    tx.update(s.store.secrets(id), new FieldPath('readyTokens', name), readyToken);
    tx.update(ref, {
      status: 'pending',
      generation: (vm.generation ?? 0) + 1,
      readyTokenHash: hashToken(readyToken),
      externalIp: null,
      readyAt: null,
      error,
    });
    tx.update(s.store.workshop(id), {
      error,
      seatsReady: Math.max(0, workshop.seatsReady - (vm.status === 'ready' ? vm.seatCount : 0)),
      updatedAt: now,
    });
    log.warn('a VM of a ready workshop is gone; replacing it', {
      workshopId: id,
      vmName: name,
      state,
    });
    return 'replaced';
  });
}
