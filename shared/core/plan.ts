/** One VM of a workshop: which seats it hosts and how big it is. Seats are numbered 1..N globally. */
export interface VmPlan {
  index: number;
  firstSeat: number;
  seatCount: number;
  machineType: string;
  /** false once the VM fell back from Spot to a standard VM; the workshop's `spot` otherwise. */
  spot?: boolean;
}

export const MAX_SEATS_PER_VM = 20;

/** The seed's sizing table: 1-10 seats fit an e2-standard-4, 11-20 an e2-standard-8. */
export function machineTypeFor(seatCount: number): string {
  return seatCount <= 10 ? 'e2-standard-4' : 'e2-standard-8';
}

/**
 * Splits a class into as few VMs as possible, spreading seats evenly so that no VM is much
 * busier than another (45 seats: 15+15+15, not 20+20+5).
 */
export function planVms(seats: number): VmPlan[] {
  if (!Number.isInteger(seats) || seats < 1)
    throw new RangeError(`seats must be a positive integer`);
  const vmCount = Math.ceil(seats / MAX_SEATS_PER_VM);
  const base = Math.floor(seats / vmCount);
  const extra = seats % vmCount;
  const plan: VmPlan[] = [];
  let firstSeat = 1;
  for (let index = 0; index < vmCount; index++) {
    const seatCount = base + (index < extra ? 1 : 0);
    plan.push({ index, firstSeat, seatCount, machineType: machineTypeFor(seatCount) });
    firstSeat += seatCount;
  }
  return plan;
}

export function vmForSeat(plan: readonly VmPlan[], seat: number): VmPlan | undefined {
  return plan.find((vm) => seat >= vm.firstSeat && seat < vm.firstSeat + vm.seatCount);
}
