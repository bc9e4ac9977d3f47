import test from 'ava';
import { planVms, vmForSeat, MAX_SEATS_PER_VM } from '../../shared/core/plan.ts';

const cases: Array<[number, Array<[number, string]>]> = [
  [1, [[1, 'e2-standard-4']]],
  [10, [[10, 'e2-standard-4']]],
  [11, [[11, 'e2-standard-8']]],
  [20, [[20, 'e2-standard-8']]],
  [
    21,
    [
      [11, 'e2-standard-8'],
      [10, 'e2-standard-4'],
    ],
  ],
  [
    25,
    [
      [13, 'e2-standard-8'],
      [12, 'e2-standard-8'],
    ],
  ],
];

for (const [seats, expected] of cases) {
  test(`plan for ${seats} seats`, (t) => {
    const plan = planVms(seats);
    t.deepEqual(
      plan.map((vm) => [vm.seatCount, vm.machineType]),
      expected,
    );
  });
}

test('plan for 200 seats: ten full e2-standard-8 VMs covering seats 1..200 exactly once', (t) => {
  const plan = planVms(200);
  t.is(plan.length, 10);
  t.true(plan.every((vm) => vm.seatCount === 20 && vm.machineType === 'e2-standard-8'));
  const seats = plan.flatMap((vm) =>
    Array.from({ length: vm.seatCount }, (_, i) => vm.firstSeat + i),
  );
  t.deepEqual(
    seats,
    Array.from({ length: 200 }, (_, i) => i + 1),
  );
  t.deepEqual(
    plan.map((vm) => vm.index),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
});

test('no VM ever holds more than 20 seats and seats are contiguous', (t) => {
  for (let seats = 1; seats <= 200; seats++) {
    const plan = planVms(seats);
    t.is(plan.length, Math.ceil(seats / MAX_SEATS_PER_VM));
    let next = 1;
    for (const vm of plan) {
      t.true(vm.seatCount >= 1 && vm.seatCount <= MAX_SEATS_PER_VM);
      t.is(vm.firstSeat, next);
      // Written out, not computed with the code under test: 4 vCPUs up to 10 seats, 8 above.
      t.is(vm.machineType, vm.seatCount <= 10 ? 'e2-standard-4' : 'e2-standard-8');
      next += vm.seatCount;
    }
    t.is(next, seats + 1);
  }
});

test('planning refuses a non-positive or fractional seat count', (t) => {
  t.throws(() => planVms(0), { instanceOf: RangeError });
  t.throws(() => planVms(2.5), { instanceOf: RangeError });
});

test('vmForSeat finds the VM hosting a seat', (t) => {
  const plan = planVms(25);
  t.is(vmForSeat(plan, 1)?.index, 0);
  t.is(vmForSeat(plan, 13)?.index, 0);
  t.is(vmForSeat(plan, 14)?.index, 1);
  t.is(vmForSeat(plan, 25)?.index, 1);
  t.is(vmForSeat(plan, 26), undefined);
});
