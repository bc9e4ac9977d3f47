import { instanceName } from '../core/ids.ts';
import { controlApplied, controlMetadata } from '../core/vm-control.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';

/**
 * Writes the seats' credentials, resets and the class end (core/vm-control.ts) into the instance
 * metadata of the workshop's VMs (all of them, or those named), where each VM's watcher picks
 * them up within seconds. Every write is computed from Firestore as it is when the write is
 * made (again after a lost fingerprint race), so concurrent pushes cannot undo each other, and a
 * repeated push writes nothing. A VM not yet inserted gets the same values in its insert.
 */
export async function pushVmControl(
  s: Services,
  workshopId: string,
  onlyVms?: readonly string[],
): Promise<void> {
  const vms = (await s.store.getVms(workshopId)).filter(
    (vm) =>
      (vm.status === 'booting' || vm.status === 'ready') && (!onlyVms || onlyVms.includes(vm.name)),
  );
  await Promise.all(
    vms.map(async (vm) => {
      await s.compute.updateMetadata({ name: vm.name, zone: vm.zone }, async (current) => {
        const [workshop, secrets] = await Promise.all([
          s.store.getWorkshop(workshopId),
          s.store.getSecrets(workshopId),
        ]);
        const plan = workshop?.vmPlan.find((p) => instanceName(workshopId, p.index) === vm.name);
        if (!workshop || !secrets || !plan) return null;
        const wanted = controlMetadata(workshop, plan, secrets);
        if (controlApplied(wanted, current)) return null;
        return { ...current, ...wanted };
      });
      log.info('vm control pushed', { workshopId, vmName: vm.name });
    }),
  );
}
