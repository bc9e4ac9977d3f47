import { classNeeds, quotaMessage, quotaShortfalls } from '../core/region-quota.ts';
import type { WorkshopRecord } from '../core/workshop.ts';
import { HttpError } from '../http.ts';
import { log } from '../log.ts';
import type { Services } from '../services.ts';

/**
 * What the region's quotas lack for this class right now, or null when it fits or the quotas
 * cannot be read (the check is advisory: another class may take the quota before the inserts,
 * which provisioning handles, and an unreadable quota must not block a class).
 */
async function regionShortfall(
  s: Services,
  workshop: Pick<WorkshopRecord, 'vmPlan' | 'spot'> & { id?: string },
) {
  const region = s.config.region;
  let quotas;
  try {
    quotas = await s.compute.regionQuotas(region);
  } catch (error) {
    log.warn('region quotas unreadable; going on without the check', {
      workshopId: workshop.id,
      region,
      error,
    });
    return null;
  }
  const needs = classNeeds(
    workshop.vmPlan.map((vm) => ({ machineType: vm.machineType, spot: workshop.spot })),
    s.config.vm.diskSizeGb,
    quotas,
  );
  const shortfalls = quotaShortfalls(needs, quotas);
  if (shortfalls.length === 0) return null;
  return { region, needs, shortfalls, message: quotaMessage(region, shortfalls) };
}

/**
 * Refuses to start a class that the region's quotas cannot hold right now (409 QUOTA_EXCEEDED,
 * with what it needs and what is free), before anything is inserted.
 */
export async function checkRegionQuota(s: Services, workshop: WorkshopRecord): Promise<void> {
  const short = await regionShortfall(s, workshop);
  if (!short) return;
  const { region, needs, shortfalls, message } = short;
  log.info('start refused: region quota', { workshopId: workshop.id, region, shortfalls });
  throw new HttpError(409, 'QUOTA_EXCEEDED', message, {
    limit: 'region',
    region,
    needs,
    shortfalls,
  });
}

/** A class scheduled ahead is told, not refused, when today's quotas could not hold it. */
export async function regionQuotaWarning(
  s: Services,
  workshop: Pick<WorkshopRecord, 'vmPlan' | 'spot'>,
): Promise<string | null> {
  const short = await regionShortfall(s, workshop);
  return short ? `${short.message}; checked again when provisioning starts` : null;
}
