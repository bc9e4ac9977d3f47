import { classNeeds, quotaMessage, quotaShortfalls } from '../core/region-quota.ts';
import type { WorkshopRecord } from '../core/workshop.ts';
import { HttpError } from '../http.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';

/**
 * Refuses to start a class that the region's quotas cannot hold right now (409 QUOTA_EXCEEDED,
 * with what it needs and what is free), before anything is inserted. Advisory: another class may
 * take the quota between this check and the inserts, which provisioning handles; and when the
 * quotas cannot be read the class starts anyway rather than being blocked by the check.
 */
export async function checkRegionQuota(s: Services, workshop: WorkshopRecord): Promise<void> {
  const region = s.config.region;
  let quotas;
  try {
    quotas = await s.compute.regionQuotas(region);
  } catch (error) {
    log.warn('region quotas unreadable; starting without the check', {
      workshopId: workshop.id,
      region,
      error,
    });
    return;
  }
  const needs = classNeeds(
    workshop.vmPlan.map((vm) => ({ machineType: vm.machineType, spot: workshop.spot })),
    s.config.vm.diskSizeGb,
    quotas,
  );
  const shortfalls = quotaShortfalls(needs, quotas);
  if (shortfalls.length === 0) return;
  log.info('start refused: region quota', { workshopId: workshop.id, region, shortfalls });
  throw new HttpError(409, 'QUOTA_EXCEEDED', quotaMessage(region, shortfalls), {
    limit: 'region',
    region,
    needs,
    shortfalls,
  });
}
