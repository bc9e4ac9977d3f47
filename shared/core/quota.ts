import type { Status } from './state.ts';

/** Workshops that hold (or are about to hold, or still hold) VMs: what an instructor's quota counts. */
export const ACTIVE_STATUSES: readonly Status[] = ['provisioning', 'ready', 'ending'];

export interface InstructorLimits {
  activeWorkshops: number;
  activeSeats: number;
}

/**
 * Why starting a workshop of `seats` seats would put its instructor over a limit, given the
 * seat counts of their other active workshops; null when it fits.
 */
export function instructorQuotaProblem(
  activeSeats: readonly number[],
  seats: number,
  limits: InstructorLimits,
): string | null {
  if (activeSeats.length + 1 > limits.activeWorkshops) {
    return `instructor limit of ${limits.activeWorkshops} active workshops: ${activeSeats.length} running, none free`;
  }
  const used = activeSeats.reduce((sum, n) => sum + n, 0);
  if (used + seats > limits.activeSeats) {
    return `instructor limit of ${limits.activeSeats} active seats: ${seats} needed, ${Math.max(0, limits.activeSeats - used)} free`;
  }
  return null;
}
