/**
 * Where a VM goes: the zones of the region in order, and what the instructor is told when a VM
 * could not get capacity where it first tried. Pure: no I/O.
 */

const ZONE = /^([a-z]+-[a-z]+[0-9]+)-[a-z]$/;

export function isZone(value: string): boolean {
  return ZONE.test(value);
}

/** `us-central1-a` → `us-central1`. */
export function regionOf(zone: string): string {
  const match = ZONE.exec(zone);
  if (!match) throw new RangeError(`not a zone: ${zone}`);
  return match[1]!;
}

/**
 * The zones to try, starting at `from` and going round the configured order once, so a
 * replacement tries its own zone first and a VM that moved keeps moving forward. A `from` that
 * is no longer configured goes first, then the configured ones.
 */
export function zoneOrder(zones: readonly string[], from: string): string[] {
  const at = zones.indexOf(from);
  if (at < 0) return [from, ...zones];
  return [...zones.slice(at), ...zones.slice(0, at)];
}

/** One insert that failed for want of capacity: the zone, and whether it asked for Spot. */
export interface CapacityMiss {
  zone: string;
  spot: boolean;
}

export interface Placement {
  zone: string;
  spot: boolean;
}

/**
 * Every placement to try, in order, starting where the VM is now: its zone and the following ones
 * with its provisioning model, then (for Spot, when the workshop allows it) the same zones with
 * standard VMs.
 */
export function placements(
  zones: readonly string[],
  current: Placement,
  spotFallback: boolean,
): Placement[] {
  const order = zoneOrder(zones, current.zone);
  const out = order.map((zone) => ({ zone, spot: current.spot }));
  if (current.spot && spotFallback) out.push(...order.map((zone) => ({ zone, spot: false })));
  return out;
}

function listOf(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

function outOf(zones: readonly string[], what: string): string {
  return `${listOf(zones)} ${zones.length === 1 ? 'was' : 'were'} out of ${what}`;
}

/**
 * What the instructor sees about a VM that did not land where it first tried, e.g.
 * `VM 2 moved to us-central1-b: us-central1-a was out of e2-standard-8`; null when it did.
 */
export function placementNote(vm: {
  index: number;
  zone: string;
  spot: boolean;
  machineType: string;
  capacityMisses?: readonly CapacityMiss[];
}): string | null {
  const misses = vm.capacityMisses ?? [];
  if (misses.length === 0) return null;
  const unique = (spot: boolean) => [
    ...new Set(misses.filter((m) => m.spot === spot).map((m) => m.zone)),
  ];
  const spotZones = unique(true);
  const standardZones = unique(false);
  const fellBack = !vm.spot && spotZones.length > 0;
  const headline = fellBack
    ? `VM ${vm.index + 1} runs as a standard VM in ${vm.zone}`
    : `VM ${vm.index + 1} moved to ${vm.zone}`;
  const reasons: string[] = [];
  if (spotZones.length > 0) reasons.push(outOf(spotZones, `Spot ${vm.machineType}`));
  if (standardZones.length > 0) reasons.push(outOf(standardZones, vm.machineType));
  return `${headline}: ${reasons.join('; ')}`;
}
