/**
 * Regional quotas: limits set per region, usage counted from the instances in that region's
 * zones, `regions.get` answering both, and inserts refused (403 quotaExceeded, as Compute does)
 * when an instance would take a region past a limit.
 */
import { ApiError, quotaExceeded } from './errors.ts';
import { API } from './resource-json.ts';
import type { StandinState } from './state.ts';
import type { InstanceRecord, QuotaLimits } from './types.ts';

/** `us-central1-a` → `us-central1`. */
export const regionOfZone = (zone: string) => zone.replace(/-[a-z]$/, '');

/** What one instance takes: vCPUs by family (Spot ones as preemptible when that quota is set). */
function usageOf(r: InstanceRecord, limits: QuotaLimits): QuotaLimits {
  const type = r.machineType.split('/').pop() ?? '';
  const cpus = Number(/-(\d+)$/.exec(type)?.[1] ?? 1);
  const family = type.split('-')[0]!.toUpperCase();
  const spot = r.scheduling?.provisioningModel === 'SPOT';
  const usage: QuotaLimits = { IN_USE_ADDRESSES: 1, INSTANCES: 1 };
  if (spot && (limits.PREEMPTIBLE_CPUS ?? 0) > 0) {
    usage.PREEMPTIBLE_CPUS = cpus;
  } else {
    usage.CPUS = cpus;
    usage[`${family}_CPUS`] = cpus;
  }
  return usage;
}

function regionUsage(standin: StandinState, project: string, region: string): QuotaLimits {
  const limits = standin.quotas.get(region) ?? {};
  const total: QuotaLimits = {};
  for (const { record } of standin.instances.values()) {
    if (record.project !== project || regionOfZone(record.zone) !== region) continue;
    for (const [metric, n] of Object.entries(usageOf(record, limits))) {
      total[metric] = (total[metric] ?? 0) + n;
    }
  }
  return total;
}

/** Throws Compute's quota error when `candidate` would take its region past a limit. */
export function enforceQuotas(standin: StandinState, candidate: InstanceRecord): void {
  const region = regionOfZone(candidate.zone);
  const limits = standin.quotas.get(region);
  if (!limits) return;
  const used = regionUsage(standin, candidate.project, region);
  for (const [metric, n] of Object.entries(usageOf(candidate, limits))) {
    const limit = limits[metric];
    if (limit !== undefined && (used[metric] ?? 0) + n > limit) {
      throw quotaExceeded(
        `Quota '${metric}' exceeded.  Limit: ${limit.toFixed(1)} in region ${region}.`,
      );
    }
  }
}

/** Sets or (with no limits) removes a region's quotas; limits are non-negative numbers. */
export function setQuotas(standin: StandinState, region: string, limits: QuotaLimits): void {
  for (const [metric, limit] of Object.entries(limits)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(metric) || typeof limit !== 'number' || !(limit >= 0)) {
      throw new Error(`a quota is METRIC: limit >= 0 (got ${metric})`);
    }
  }
  if (Object.keys(limits).length === 0) standin.quotas.delete(region);
  else standin.quotas.set(region, { ...limits });
}

/** regions.get: the region with its quotas (limit and live usage). */
export function regionJson(standin: StandinState, project: string, region: string) {
  if (!/^[a-z]+-[a-z]+[0-9]+$/.test(region)) {
    throw new ApiError(
      404,
      'notFound',
      `The resource 'projects/${project}/regions/${region}' was not found`,
    );
  }
  const limits = standin.quotas.get(region) ?? {};
  const used = regionUsage(standin, project, region);
  return {
    kind: 'compute#region',
    name: region,
    status: 'UP',
    quotas: Object.entries(limits).map(([metric, limit]) => ({
      metric,
      limit,
      usage: used[metric] ?? 0,
    })),
    selfLink: `${API}/projects/${project}/regions/${region}`,
  };
}
