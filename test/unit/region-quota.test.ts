import test from 'ava';
import { planVms } from '../../shared/core/plan.ts';
import {
  classNeeds,
  quotaMessage,
  quotaShortfalls,
  vcpusOf,
  type QuotaLine,
} from '../../shared/core/region-quota.ts';

const q = (metric: string, limit: number, usage = 0): QuotaLine => ({ metric, limit, usage });
const vmsOf = (seats: number, spot: boolean) =>
  planVms(seats).map((p) => ({ machineType: p.machineType, spot }));

test('a 200-seat class needs 80 vCPUs, 10 addresses, 10 instances and 500 GB of disk', (t) => {
  t.is(vcpusOf('e2-standard-8'), 8);
  t.is(vcpusOf('e2-medium'), 1);
  const needs = classNeeds(vmsOf(200, false), 50, []);
  t.deepEqual(needs, [
    { metric: 'CPUS', needed: 80 },
    { metric: 'E2_CPUS', needed: 80 },
    { metric: 'IN_USE_ADDRESSES', needed: 10 },
    { metric: 'INSTANCES', needed: 10 },
    { metric: 'SSD_TOTAL_GB', needed: 500 },
  ]);
});

test('Spot VMs take preemptible CPUs where the region has that quota, else the usual ones', (t) => {
  const spot = vmsOf(60, true);
  const withPreemptible = classNeeds(spot, 50, [q('PREEMPTIBLE_CPUS', 100)]);
  t.deepEqual(withPreemptible.find((n) => n.metric === 'PREEMPTIBLE_CPUS')?.needed, 24);
  t.false(withPreemptible.some((n) => n.metric === 'CPUS'));
  const without = classNeeds(spot, 50, [q('PREEMPTIBLE_CPUS', 0)]);
  t.is(without.find((n) => n.metric === 'CPUS')?.needed, 24);
  t.false(without.some((n) => n.metric === 'PREEMPTIBLE_CPUS'));
});

test('only what the region reports is checked; shortfalls say what is needed and free', (t) => {
  const needs = classNeeds(vmsOf(200, false), 50, []);
  const quotas = [q('CPUS', 24, 8), q('IN_USE_ADDRESSES', 8, 1), q('SSD_TOTAL_GB', 4096, 100)];
  const shortfalls = quotaShortfalls(needs, quotas);
  t.deepEqual(shortfalls, [
    { metric: 'CPUS', needed: 80, free: 16, limit: 24, usage: 8 },
    { metric: 'IN_USE_ADDRESSES', needed: 10, free: 7, limit: 8, usage: 1 },
  ]);
  t.is(
    quotaMessage('us-central1', shortfalls),
    "the region us-central1's Compute Engine quota is too small for this class: it needs 80 CPUS (16 free of 24), 10 IN_USE_ADDRESSES (7 free of 8)",
  );
  t.deepEqual(quotaShortfalls(needs, [q('CPUS', 96, 16)]), [], 'exactly enough fits');
  t.deepEqual(quotaShortfalls(needs, [q('CPUS', 10, 30)])[0]?.free, 0, 'over-used: none free');
});
