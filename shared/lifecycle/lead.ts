import {
  BOOT_SAMPLE_TTL_DAYS,
  bootShape,
  learnedLead,
  longestLead,
  RECENT_BOOTS,
  type BootSample,
  type Lead,
} from '../core/schedule.ts';
import type { VmRecord, WorkshopRecord } from '../core/workshop.ts';
import type { Services } from '../services.ts';
import type { Transaction } from '@google-cloud/firestore';

/**
 * The lead for a class: from the recent boots of each machine type it uses, in the zone its VMs
 * are tried first, with its image; the longest one wins.
 */
export async function leadFor(
  s: Services,
  workshop: Pick<WorkshopRecord, 'vmPlan' | 'image'>,
): Promise<Lead> {
  const zone = s.config.zones[0]!;
  const types = [...new Set(workshop.vmPlan.map((vm) => vm.machineType))];
  const leads = await Promise.all(
    types.map(async (machineType) => {
      const recent = await s.store
        .bootSamples()
        .where('shape', '==', bootShape({ machineType, zone, image: workshop.image }))
        .orderBy('readyAt', 'desc')
        .limit(RECENT_BOOTS)
        .get();
      return learnedLead(recent.docs.map((d) => d.data().bootMs));
    }),
  );
  return longestLead(leads);
}

/**
 * Records how long a VM took, from its class's start to its ready report, in the report's
 * transaction. Only while the class is provisioning and for the first generation: a replacement
 * of a lost VM, or a VM ready again after a reboot, started later than its class. The document is
 * named for the VM, so a repeated report records nothing new.
 */
export function recordBoot(
  s: Services,
  tx: Transaction,
  workshop: WorkshopRecord,
  vm: VmRecord,
  readyAt: string,
): void {
  if (workshop.status !== 'provisioning' || !workshop.startedAt || vm.generation) return;
  const sample: BootSample = {
    shape: bootShape({ machineType: vm.machineType, zone: vm.zone, image: workshop.image }),
    machineType: vm.machineType,
    zone: vm.zone,
    image: workshop.image,
    seats: vm.seatCount,
    bootMs: Date.parse(readyAt) - Date.parse(workshop.startedAt),
    readyAt,
    expiresAt: new Date(Date.parse(readyAt) + BOOT_SAMPLE_TTL_DAYS * 86_400_000),
  };
  tx.set(s.store.bootSamples().doc(`${vm.name}-0`), sample);
}
