/**
 * Scheduled classes (issue 21): a class created with `startAt` is provisioned by the sweep at
 * `startAt − lead`, where the lead is learned from how long this deployment's VMs took to get
 * ready. Pure: the handlers read the boots and the clock, these functions decide.
 */

/** How far ahead a class may be scheduled. */
export const MAX_SCHEDULE_DAYS = 14;
/** The lead while a shape has fewer than MIN_BOOT_SAMPLES recorded boots. */
export const DEFAULT_LEAD_MS = 10 * 60_000;
export const MIN_BOOT_SAMPLES = 5;
/** How many of a shape's most recent boots the lead is learned from. */
export const RECENT_BOOTS = 20;
/** Added to the p90, for the boot slower than nine in ten and the sweep's minute. */
export const LEAD_MARGIN_MS = 2 * 60_000;
/** A lead never exceeds this, however slow the boots were: VMs early cost money. */
export const MAX_LEAD_MS = 30 * 60_000;
/** Recorded boots delete themselves (Firestore TTL on `expiresAt`) after this long. */
export const BOOT_SAMPLE_TTL_DAYS = 30;

/** `vmBoots/{vmName}-{generation}`: how long one VM took from its class's start to ready. */
export interface BootSample {
  /** machineType|zone|image: the boots the lead of a class of this shape is learned from. */
  shape: string;
  machineType: string;
  zone: string;
  image: string;
  seats: number;
  bootMs: number;
  readyAt: string;
  /** TTL field: the sample is deleted by Firestore after this (a timestamp: TTL ignores strings). */
  expiresAt: Date;
}

export function bootShape(vm: { machineType: string; zone: string; image: string }): string {
  return `${vm.machineType}|${vm.zone}|${vm.image}`;
}

export interface Lead {
  ms: number;
  basis: 'default' | 'recent-boots';
  /** How many recent boots it was learned from (or were found, for the default). */
  samples: number;
  /** The 90th percentile of those boots; null with the default. */
  p90Ms: number | null;
  /** True when the learned lead was cut down to MAX_LEAD_MS. */
  capped: boolean;
}

/** Nearest-rank percentile (`p` in 0..1) of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

/**
 * The lead for a class whose VMs are of one shape, from that shape's recent boot times:
 * p90 + margin, in whole minutes (a class starts on a sweep's minute), capped; the default
 * until enough boots are known.
 */
export function learnedLead(bootsMs: readonly number[]): Lead {
  if (bootsMs.length < MIN_BOOT_SAMPLES) {
    return {
      ms: DEFAULT_LEAD_MS,
      basis: 'default',
      samples: bootsMs.length,
      p90Ms: null,
      capped: false,
    };
  }
  const p90Ms = percentile(bootsMs, 0.9);
  const wanted = Math.ceil((p90Ms + LEAD_MARGIN_MS) / 60_000) * 60_000;
  return {
    ms: Math.min(wanted, MAX_LEAD_MS),
    basis: 'recent-boots',
    samples: bootsMs.length,
    p90Ms,
    capped: wanted > MAX_LEAD_MS,
  };
}

/** The longest of the leads of a class's shapes: the class is ready when its slowest VM is. */
export function longestLead(leads: readonly Lead[]): Lead {
  return leads.reduce((a, b) => (b.ms > a.ms ? b : a));
}

/** What a scheduled class's record holds: when it is to be ready, and when it is provisioned. */
export interface Schedule {
  startAt: string;
  /** When the sweep starts provisioning it: startAt − lead. */
  provisionAt: string;
  lead: Lead;
  /** What the region's quotas said when it was scheduled (checked again when it starts). */
  warning: string | null;
}

export function planSchedule(startAt: string, lead: Lead, warning: string | null): Schedule {
  return {
    startAt: new Date(startAt).toISOString(),
    provisionAt: new Date(Date.parse(startAt) - lead.ms).toISOString(),
    lead,
    warning,
  };
}

/** Why `startAt` cannot be scheduled at `now`, or null. */
export function startAtProblem(startAt: string, now: Date): string | null {
  const at = Date.parse(startAt);
  if (at <= now.getTime()) return 'startAt must be in the future';
  if (at > now.getTime() + MAX_SCHEDULE_DAYS * 24 * 3_600_000) {
    return `startAt must be at most ${MAX_SCHEDULE_DAYS} days ahead`;
  }
  return null;
}

/** A due scheduled class: still unstarted, and its provisioning time has come. */
export function isDue(workshop: { status: string; schedule?: Schedule | null }, now: string) {
  return (
    workshop.status === 'created' && !!workshop.schedule && workshop.schedule.provisionAt <= now
  );
}

/** `8 m 40 s`, `10 m`, `45 s`. */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  if (m === 0) return `${s} s`;
  return s === 0 ? `${m} m` : `${m} m ${s} s`;
}

const hhmm = (iso: string) => `${iso.slice(11, 16)} UTC`;

/** `ready by 09:00 UTC, provisioning starts 08:49 UTC (p90 of 12 recent boots: 8 m 40 s)`. */
export function scheduleSummary(schedule: Schedule): string {
  const { lead } = schedule;
  const why =
    lead.basis === 'default'
      ? `default lead of ${formatDuration(lead.ms)}: ${lead.samples} recent boots, ${MIN_BOOT_SAMPLES} needed`
      : `p90 of ${lead.samples} recent boots: ${formatDuration(lead.p90Ms ?? 0)}${lead.capped ? `; lead capped at ${formatDuration(MAX_LEAD_MS)}` : ''}`;
  return `ready by ${hhmm(schedule.startAt)}, provisioning starts ${hhmm(schedule.provisionAt)} (${why})`;
}

/**
 * Whether a scheduled class is late, and by how many seconds: not ready at its startAt (growing
 * until it is), or ready after it (fixed from then on). Null for a class without a schedule.
 */
export function lateness(
  workshop: { schedule?: Schedule | null; readyAt: string | null; status: string },
  now: string,
): { late: boolean; lateBySeconds: number | null } {
  const startAt = workshop.schedule?.startAt;
  if (!startAt) return { late: false, lateBySeconds: null };
  const waiting = workshop.status === 'created' || workshop.status === 'provisioning';
  const until = workshop.readyAt ?? (waiting ? now : null);
  if (until === null || until <= startAt) return { late: false, lateBySeconds: null };
  return {
    late: true,
    lateBySeconds: Math.round((Date.parse(until) - Date.parse(startAt)) / 1000),
  };
}

/** When the class's time starts counting at `at`: its startAt, unless that is already past. */
export function classStart(schedule: Schedule | null | undefined, at: string): string {
  return schedule && schedule.startAt > at ? schedule.startAt : at;
}

/**
 * The time limit once the class is ready at `readyAt`: learners lose nothing to a late class, so
 * its time counts from ready when that is after startAt. Unchanged without a schedule.
 */
export function expiryAtReady(
  workshop: { schedule?: Schedule | null; expiresAt: string; durationMinutes: number },
  readyAt: string,
): string {
  if (!workshop.schedule || readyAt <= workshop.schedule.startAt) return workshop.expiresAt;
  const fromReady = new Date(Date.parse(readyAt) + workshop.durationMinutes * 60_000).toISOString();
  return fromReady > workshop.expiresAt ? fromReady : workshop.expiresAt;
}
