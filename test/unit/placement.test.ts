import test from 'ava';
import { placementNote, placements, regionOf, zoneOrder } from '../../shared/core/placement.ts';

const ZONES = ['us-central1-a', 'us-central1-b', 'us-central1-c'];

test('zones are tried from where the VM is, going round once', (t) => {
  t.deepEqual(zoneOrder(ZONES, 'us-central1-a'), ZONES);
  t.deepEqual(zoneOrder(ZONES, 'us-central1-b'), [
    'us-central1-b',
    'us-central1-c',
    'us-central1-a',
  ]);
  t.deepEqual(
    zoneOrder(ZONES, 'us-central1-f'),
    ['us-central1-f', ...ZONES],
    'a zone no longer configured is tried first, then the configured ones',
  );
  t.is(regionOf('europe-west1-b'), 'europe-west1');
  t.throws(() => regionOf('europe-west1'), { instanceOf: RangeError });
});

test('a Spot VM is tried as Spot in every zone, then as standard only when allowed', (t) => {
  const start = { zone: 'us-central1-b', spot: true };
  t.deepEqual(placements(ZONES, start, false), [
    { zone: 'us-central1-b', spot: true },
    { zone: 'us-central1-c', spot: true },
    { zone: 'us-central1-a', spot: true },
  ]);
  t.deepEqual(placements(ZONES, start, true).slice(3), [
    { zone: 'us-central1-b', spot: false },
    { zone: 'us-central1-c', spot: false },
    { zone: 'us-central1-a', spot: false },
  ]);
  t.is(placements(ZONES, { zone: 'us-central1-a', spot: false }, true).length, 3);
});

test('the note says where a VM moved and why, in the words an instructor reads', (t) => {
  const vm = { index: 1, zone: 'us-central1-b', spot: false, machineType: 'e2-standard-8' };
  t.is(placementNote(vm), null);
  t.is(placementNote({ ...vm, capacityMisses: [] }), null);
  t.is(
    placementNote({ ...vm, capacityMisses: [{ zone: 'us-central1-a', spot: false }] }),
    'VM 2 moved to us-central1-b: us-central1-a was out of e2-standard-8',
  );
  t.is(
    placementNote({
      ...vm,
      zone: 'us-central1-c',
      spot: true,
      capacityMisses: [
        { zone: 'us-central1-a', spot: true },
        { zone: 'us-central1-b', spot: true },
      ],
    }),
    'VM 2 moved to us-central1-c: us-central1-a and us-central1-b were out of Spot e2-standard-8',
  );
  t.is(
    placementNote({
      ...vm,
      zone: 'us-central1-b',
      capacityMisses: [
        { zone: 'us-central1-a', spot: true },
        { zone: 'us-central1-b', spot: true },
        { zone: 'us-central1-c', spot: true },
        { zone: 'us-central1-a', spot: false },
        { zone: 'us-central1-a', spot: false },
      ],
    }),
    'VM 2 runs as a standard VM in us-central1-b: us-central1-a, us-central1-b and us-central1-c were out of Spot e2-standard-8; us-central1-a was out of e2-standard-8',
  );
});
