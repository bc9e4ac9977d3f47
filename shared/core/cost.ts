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
}

const cents = (usd: number) => Math.round(usd * 100) / 100;

export function estimateCost(
  machineTypes: readonly string[],
  durationMinutes: number,
  spot: boolean,
): CostEstimate {
  let hourly = 0;
  for (const type of machineTypes) {
    const price = HOURLY_PRICE_USD[type];
    if (price === undefined) throw new RangeError(`no price for machine type ${type}`);
    hourly += price * (spot ? SPOT_PRICE_FACTOR : 1) + DISK_HOURLY_USD;
  }
  return { currency: 'USD', hourly: cents(hourly), total: cents((hourly * durationMinutes) / 60) };
}
