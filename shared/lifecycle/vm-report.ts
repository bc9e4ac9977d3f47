import { workshopCost } from '../core/cost.ts';
import { expiryAtReady } from '../core/schedule.ts';
import { tokenMatches } from '../core/secrets.ts';
import { decide } from '../core/state.ts';
import {
  latestCertificate,
  SEAT_HTTPS_BASE,
  type VmRecord,
  type WorkshopRecord,
} from '../core/workshop.ts';
import { log } from '../log.ts';
import type { VmReadyEvent } from '../schemas.ts';
import type { InstanceInfo } from '../compute.ts';
import type { Services } from '../services.ts';
import { readAppliedResets } from './applied-resets.ts';
import { requestEnd } from './end.ts';
import { recordBoot } from './lead.ts';

const ERROR_TAIL = 1500;

type Outcome = 'ignored' | 'recorded' | 'workshop-ready' | 'vm-failed' | 'not-in-compute';

/**
 * The `vm.ready` work: checks the VM's ready token, records the VM, and makes the workshop ready
 * once every VM is. A ready report also confirms the seat resets the VM applied (freed seats are
 * handed out again only then). A `failed` report during provisioning fails the workshop. Reports for a
 * workshop that is ending or over change nothing, and a duplicate changes nothing new.
 */
export async function recordVmReport(s: Services, report: VmReadyEvent): Promise<Outcome> {
  const { workshopId, vmName } = report;
  const now = s.now().toISOString();
  const failure = {
    code: 'VM_FAILED',
    message: (report.error ?? 'the VM failed to start its seats').slice(-ERROR_TAIL),
  };
  // Where learners are sent comes from Compute Engine, never from the report: a seat that got
  // hold of the ready token must not be able to point joins (and their tokens) elsewhere.
  let instance: InstanceInfo | null | undefined;
  if (report.state === 'ready') {
    // Asked for in the zone it is recorded in: it may have moved there for want of capacity.
    const recorded = (await s.store.vms(workshopId).doc(vmName).get()).data();
    instance = recorded ? await s.compute.get({ name: vmName, zone: recorded.zone }) : null;
  }
  const outcome = await s.store.inTransaction(
    workshopId,
    async (tx, workshop): Promise<Outcome> => {
      const vmRef = s.store.vms(workshopId).doc(vmName);
      const vm = (await tx.get(vmRef)).data();
      if (!workshop || !vm) return 'ignored';
      if (!tokenMatches(report.readyToken, vm.readyTokenHash)) {
        log.warn('vm.ready with a wrong token ignored', { workshopId, vmName });
        return 'ignored';
      }
      if (workshop.status !== 'provisioning' && workshop.status !== 'ready') return 'ignored';
      if (report.state === 'failed') {
        tx.update(vmRef, { status: 'failed', error: failure });
        if (workshop.status === 'ready') {
          // A running class keeps its other VMs; the instructor sees which one broke, and its
          // seats (if it was serving them, say before a reboot) are no longer counted.
          const lostSeats = vm.status === 'ready' ? vm.seatCount : 0;
          tx.update(s.store.workshop(workshopId), {
            error: failure,
            seatsReady: Math.max(0, workshop.seatsReady - lostSeats),
            updatedAt: now,
          });
        }
        return 'vm-failed';
      }
      // A VM reports from inside itself, so Compute Engine has it: not yet is a lag worth a retry.
      if (!instance) return 'not-in-compute';
      const allVms = (await tx.get(s.store.vms(workshopId))).docs.map((d) => d.data());
      const writeResets = await readAppliedResets(s, tx, workshopId, vm, report.seatResets);
      writeResets();
      const updated: VmRecord = {
        ...vm,
        status: 'ready',
        // A second `ready` of a ready VM changes no address.
        ...(vm.status === 'ready'
          ? {}
          : {
              externalIp: instance.externalIp ?? null,
              // The name its Caddy got the seats' certificate for: what it was booted with.
              publicHost: instance.metadata['public-host'] || null,
              internalIp: instance.internalIp ?? null,
              httpPort: s.config.acceptReportedHttpPort ? (report.httpPort ?? 80) : 80,
              seatHttpsBase: s.config.acceptReportedHttpPort
                ? (report.seatHttpsBase ?? SEAT_HTTPS_BASE)
                : SEAT_HTTPS_BASE,
            }),
        readyAt: vm.readyAt ?? now,
        error: null,
      };
      const certificate = latestCertificate(vm.certificate, report.certificate);
      if (certificate) updated.certificate = certificate;
      tx.set(vmRef, updated);
      if (vm.status !== 'ready') recordBoot(s, tx, workshop, vm, now);
      const vms = allVms.map((v) => (v.name === vmName ? updated : v));
      const seatsReady = vms
        .filter((v) => v.status === 'ready')
        .reduce((n, v) => n + v.seatCount, 0);
      const patch: Partial<WorkshopRecord> = { seatsReady, updatedAt: now };
      const everyVmReady =
        vms.length === workshop.vmPlan.length && vms.every((v) => v.status === 'ready');
      if (everyVmReady && decide(workshop.status, { type: 'all-vms-ready' }).kind === 'move') {
        Object.assign(patch, { status: 'ready', readyAt: now });
        // A scheduled class ready after its startAt: its time counts from now, and costs more.
        const expiresAt = expiryAtReady(workshop, now);
        if (expiresAt !== workshop.expiresAt && workshop.startedAt) {
          const minutes = (Date.parse(expiresAt) - Date.parse(workshop.startedAt)) / 60_000;
          Object.assign(patch, { expiresAt, estimatedCost: workshopCost(workshop, minutes) });
        }
        tx.update(s.store.workshop(workshopId), patch);
        return 'workshop-ready';
      }
      if (everyVmReady && workshop.error?.code === 'VM_LOST') patch.error = null;
      tx.update(s.store.workshop(workshopId), patch);
      return 'recorded';
    },
  );
  if (outcome === 'not-in-compute') {
    throw new Error(`vm.ready for ${vmName}, which Compute Engine does not list yet; retrying`);
  }
  if (outcome === 'vm-failed') {
    const workshop = await s.store.getWorkshop(workshopId);
    if (workshop?.status === 'provisioning' || workshop?.status === 'ending') {
      await requestEnd(s, workshopId, {
        reason: 'vm-failed',
        error: failure,
        onlyFrom: ['provisioning', 'ending'],
      });
    }
  }
  log.info('vm report', { workshopId, vmName, state: report.state, outcome });
  const certificate = report.certificate;
  if (outcome !== 'ignored' && certificate?.renewalError) {
    // Not yet a broken class (the certificate lasts days longer than one): the operator's to fix.
    log.warn("the seats' certificate fails to renew", {
      workshopId,
      vmName,
      notAfter: certificate.notAfter ?? null,
      renewalError: certificate.renewalError,
    });
  }
  return outcome;
}
