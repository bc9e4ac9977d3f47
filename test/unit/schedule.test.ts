import test from 'ava';
import {
  classStart,
  DEFAULT_LEAD_MS,
  expiryAtReady,
  isDue,
  lateness,
  learnedLead,
  longestLead,
  MAX_LEAD_MS,
  percentile,
  planSchedule,
  scheduleSummary,
  startAtProblem,
} from '../../shared/core/schedule.ts';
import { describeErrors, validators } from '../../shared/schemas.ts';

const s = (seconds: number) => seconds * 1000;
const m = (minutes: number) => minutes * 60_000;

test('percentile is nearest-rank', (t) => {
  t.is(percentile([5, 1, 4, 2, 3, 6, 7, 8, 9, 10], 0.9), 9);
  t.is(percentile([3], 0.9), 3);
  t.is(percentile([1, 2], 0.9), 2);
});

test('the lead: the default until 5 boots are known, then p90 + 2 min in whole minutes, capped', (t) => {
  t.like(learnedLead([]), { ms: DEFAULT_LEAD_MS, basis: 'default', samples: 0, p90Ms: null });
  t.like(learnedLead([m(1), m(1), m(1), m(1)]), { ms: DEFAULT_LEAD_MS, samples: 4 });
  // Twelve boots whose p90 is 8 m 40 s: 10 m 40 s, rounded up to 11 minutes.
  const twelve = [...Array.from({ length: 10 }, () => m(5)), s(520), m(9)];
  t.like(learnedLead(twelve), { ms: m(11), basis: 'recent-boots', samples: 12, p90Ms: s(520) });
  t.like(learnedLead(Array.from({ length: 5 }, () => s(60))), { ms: m(3) });
  const slow = learnedLead(Array.from({ length: 5 }, () => m(40)));
  t.like(slow, { ms: MAX_LEAD_MS, capped: true, p90Ms: m(40) });
  t.is(longestLead([learnedLead([]), slow, learnedLead(twelve)]), slow);
});

test('the plan reads as the instructor sees it', (t) => {
  const twelve = [...Array.from({ length: 10 }, () => m(5)), s(520), m(9)];
  const plan = planSchedule('2026-12-07T09:00:00Z', learnedLead(twelve), null);
  t.is(plan.startAt, '2026-12-07T09:00:00.000Z');
  t.is(plan.provisionAt, '2026-12-07T08:49:00.000Z');
  t.is(
    scheduleSummary(plan),
    'ready by 09:00 UTC, provisioning starts 08:49 UTC (p90 of 12 recent boots: 8 m 40 s)',
  );
  t.is(
    scheduleSummary(planSchedule('2026-12-07T09:00:00Z', learnedLead([m(1)]), null)),
    'ready by 09:00 UTC, provisioning starts 08:50 UTC (default lead of 10 m: 1 recent boots, 5 needed)',
  );
  t.regex(
    scheduleSummary(
      planSchedule('2026-12-07T09:00:00Z', learnedLead([m(40), m(40), m(40), m(40), m(40)]), null),
    ),
    /starts 08:30 UTC \(p90 of 5 recent boots: 40 m; lead capped at 30 m\)/,
  );
});

test('startAt: in the future, at most 14 days ahead', (t) => {
  const now = new Date('2026-12-01T00:00:00Z');
  t.is(startAtProblem('2026-12-01T00:30:00Z', now), null);
  t.is(startAtProblem('2026-12-15T00:00:00Z', now), null);
  t.regex(startAtProblem('2026-12-15T00:00:01Z', now)!, /at most 14 days ahead/);
  t.regex(startAtProblem('2026-12-01T00:00:00Z', now)!, /in the future/);
  t.regex(startAtProblem('2026-11-30T09:00:00+01:00', now)!, /in the future/);
});

test('startAt is an ISO time with its offset: ajv refuses anything else with a clear message', (t) => {
  const body = (startAt: unknown) => ({ name: 'a', seats: 1, startAt });
  for (const ok of ['2026-12-07T09:00:00Z', '2026-12-07T09:00Z', '2026-12-07T09:00:00.5+01:00']) {
    t.true(validators.createWorkshop(body(ok)), ok);
  }
  for (const bad of ['2026-12-07T09:00:00', '2026-02-30T09:00:00Z', 'tomorrow', '2026-12-07', 5]) {
    t.false(validators.createWorkshop(body(bad)), String(bad));
  }
  validators.createWorkshop(body('2026-12-07 09:00'));
  t.is(
    describeErrors(validators.createWorkshop),
    'startAt must be an ISO 8601 time with its offset, e.g. 2026-12-07T09:00:00Z',
  );
});

test('a scheduled class is due once its provisioning time has come, and only while unstarted', (t) => {
  const schedule = planSchedule('2026-12-07T09:00:00Z', learnedLead([]), null);
  t.false(isDue({ status: 'created', schedule }, '2026-12-07T08:49:59.000Z'));
  t.true(isDue({ status: 'created', schedule }, '2026-12-07T08:50:00.000Z'));
  t.false(isDue({ status: 'provisioning', schedule }, '2026-12-07T08:51:00.000Z'));
  t.false(isDue({ status: 'created', schedule: null }, '2026-12-07T08:51:00.000Z'));
});

test('late: not ready at startAt says by how much; once ready, how late it was', (t) => {
  const schedule = planSchedule('2026-12-07T09:00:00Z', learnedLead([]), null);
  const at = (status: string, readyAt: string | null, now: string) =>
    lateness({ status, schedule, readyAt }, now);
  const none = { late: false, lateBySeconds: null };
  t.deepEqual(at('provisioning', null, '2026-12-07T08:59:00Z'), none);
  t.deepEqual(at('provisioning', null, '2026-12-07T09:02:30Z'), { late: true, lateBySeconds: 150 });
  t.deepEqual(at('created', null, '2026-12-07T09:01:00Z'), { late: true, lateBySeconds: 60 });
  t.deepEqual(at('ready', '2026-12-07T09:03:00Z', '2026-12-07T10:00:00Z'), {
    late: true,
    lateBySeconds: 180,
  });
  t.deepEqual(at('ready', '2026-12-07T08:58:00Z', '2026-12-07T10:00:00Z'), none);
  t.deepEqual(at('ended', null, '2026-12-07T10:00:00Z'), none, 'cancelled: not late');
  t.deepEqual(lateness({ status: 'provisioning', readyAt: null }, '2026-12-07T10:00:00Z'), none);
});

test('the time limit counts from startAt, or from ready when that is later', (t) => {
  const schedule = planSchedule('2026-12-07T09:00:00Z', learnedLead([]), null);
  t.is(classStart(schedule, '2026-12-07T08:50:00.000Z'), '2026-12-07T09:00:00.000Z');
  t.is(classStart(schedule, '2026-12-07T09:05:00.000Z'), '2026-12-07T09:05:00.000Z');
  t.is(classStart(null, '2026-12-07T08:50:00.000Z'), '2026-12-07T08:50:00.000Z');
  const w = { schedule, expiresAt: '2026-12-07T10:00:00.000Z', durationMinutes: 60 };
  t.is(expiryAtReady(w, '2026-12-07T08:58:00.000Z'), w.expiresAt);
  t.is(expiryAtReady(w, '2026-12-07T09:07:00.000Z'), '2026-12-07T10:07:00.000Z');
  t.is(expiryAtReady({ ...w, schedule: null }, '2026-12-07T09:07:00.000Z'), w.expiresAt);
});
