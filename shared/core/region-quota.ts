/**
 * Whether a class fits the region's Compute Engine quotas, from what `regions.get` reports.
 * Pure: no I/O. Only metrics the region reports are checked; one it does not report is no limit.
 */

/** One entry of a region's `quotas[]`. */
export interface QuotaLine {
  metric: string;
  limit: number;
  usage: number;
}

export interface QuotaNeed {
  metric: string;
  needed: number;
}

export interface QuotaShortfall extends QuotaNeed {
  free: number;
  limit: number;
  usage: number;
}

/** Families whose vCPUs count against the region's general `CPUS` quota. */
const CPUS_FAMILIES = new Set(['e2', 'n1', 'f1', 'g1']);

/** vCPUs of a predefined machine type (`e2-standard-8` → 8); shared-core types count as 1. */
export function vcpusOf(machineType: string): number {
  const match = /-(\d+)$/.exec(machineType);
  return match ? Number(match[1]) : 1;
}

function familyOf(machineType: string): string {
  return machineType.split('-')[0] ?? machineType;
}

/**
 * What a class of VMs takes from the region's quotas: vCPUs (of the family, and of `CPUS` for
 * the families counted there; Spot VMs count as `PREEMPTIBLE_CPUS` instead when the region has
 * such a quota), one in-use external address, one instance and its balanced persistent disk each.
 */
export function classNeeds(
  vms: readonly { machineType: string; spot: boolean }[],
  diskSizeGb: number,
  quotas: readonly QuotaLine[],
): QuotaNeed[] {
  const preemptible = quotas.some((q) => q.metric === 'PREEMPTIBLE_CPUS' && q.limit > 0);
  const needs = new Map<string, number>();
  const add = (metric: string, n: number) => needs.set(metric, (needs.get(metric) ?? 0) + n);
  for (const vm of vms) {
    const cpus = vcpusOf(vm.machineType);
    if (vm.spot && preemptible) {
      add('PREEMPTIBLE_CPUS', cpus);
    } else {
      const family = familyOf(vm.machineType);
      if (CPUS_FAMILIES.has(family)) add('CPUS', cpus);
      add(`${family.toUpperCase()}_CPUS`, cpus);
    }
    add('IN_USE_ADDRESSES', 1);
    add('INSTANCES', 1);
    add('SSD_TOTAL_GB', diskSizeGb);
  }
  return [...needs].map(([metric, needed]) => ({ metric, needed }));
}

/** The needs the region cannot meet now, with what is free of each. */
export function quotaShortfalls(
  needs: readonly QuotaNeed[],
  quotas: readonly QuotaLine[],
): QuotaShortfall[] {
  const out: QuotaShortfall[] = [];
  for (const need of needs) {
    const quota = quotas.find((q) => q.metric === need.metric);
    if (!quota) continue;
    const free = Math.max(0, quota.limit - quota.usage);
    if (need.needed > free) out.push({ ...need, free, limit: quota.limit, usage: quota.usage });
  }
  return out;
}

/** e.g. `the region us-central1's quota is too small for this class: it needs 80 CPUS, 24 are free`. */
export function quotaMessage(region: string, shortfalls: readonly QuotaShortfall[]): string {
  const parts = shortfalls.map((s) => `${s.needed} ${s.metric} (${s.free} free of ${s.limit})`);
  return `the region ${region}'s Compute Engine quota is too small for this class: it needs ${parts.join(', ')}`;
}
