/** On-demand hourly prices from the seed (us-central1). */
export const HOURLY_PRICE_USD: Readonly<Record<string, number>> = {
  'e2-standard-4': 0.134,
  'e2-standard-8': 0.268,
};
/** Spot runs at about 30% of the on-demand price (seed: ~$0.04/h for an e2-standard-4). */
export const SPOT_PRICE_FACTOR = 0.3;
/** 50 GB boot disk at ~$8.50 a month, per hour. */
export const DISK_HOURLY_USD = 8.5 / 730;

export interface CostEstimate {
  currency: 'USD';
  hourly: number;
  total: number;
  /**
   * What it would cost if every Spot VM fell back to a standard one (no Spot capacity in any
   * zone); present while some VM is Spot and the workshop allows the fallback.
   */
  standardFallback?: { hourly: number; total: number };
}

/** One VM as priced: its machine type and whether it runs as Spot. */
export interface PricedVm {
  machineType: string;
  spot: boolean;
}

const cents = (usd: number) => Math.round(usd * 100) / 100;

function hourlyOf(vms: readonly PricedVm[]): number {
  let hourly = 0;
  for (const vm of vms) {
    const price = HOURLY_PRICE_USD[vm.machineType];
    if (price === undefined) throw new RangeError(`no price for machine type ${vm.machineType}`);
    hourly += price * (vm.spot ? SPOT_PRICE_FACTOR : 1) + DISK_HOURLY_USD;
  }
  return hourly;
}

function priced(hourly: number, durationMinutes: number) {
  return { hourly: cents(hourly), total: cents((hourly * durationMinutes) / 60) };
}

export function estimateCost(
  vms: readonly PricedVm[],
  durationMinutes: number,
  spotFallback = false,
): CostEstimate {
  const estimate: CostEstimate = {
    currency: 'USD',
    ...priced(hourlyOf(vms), durationMinutes),
  };
  if (spotFallback && vms.some((vm) => vm.spot)) {
    const standard = vms.map((vm) => ({ ...vm, spot: false }));
    estimate.standardFallback = priced(hourlyOf(standard), durationMinutes);
  }
  return estimate;
}

/** A workshop's VMs as priced: each VM of its plan is Spot unless it fell back. */
export function workshopCost(
  workshop: {
    vmPlan: readonly { machineType: string; spot?: boolean }[];
    spot: boolean;
    spotFallback?: boolean;
  },
  durationMinutes: number,
): CostEstimate {
  return estimateCost(
    workshop.vmPlan.map((vm) => ({ machineType: vm.machineType, spot: vm.spot ?? workshop.spot })),
    durationMinutes,
    workshop.spotFallback ?? true,
  );
}
