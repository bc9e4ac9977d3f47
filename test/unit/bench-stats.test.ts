import test from 'ava';
import { coveredTime, median, percentile, renderTable, unmeasured } from '../../bench/stats.ts';

test('percentile by nearest rank, median of odd and even counts', (t) => {
  const samples = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  t.is(percentile(samples, 50), 50);
  t.is(percentile(samples, 99), 99);
  t.is(percentile(samples, 100), 100);
  t.is(percentile([7], 99), 7);
  t.true(Number.isNaN(percentile([], 50)));
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 3, 2]), 2.5);
});

test('covered time counts calls running side by side once', (t) => {
  t.is(coveredTime([]), 0);
  t.is(
    coveredTime([
      [0, 10],
      [5, 15],
      [20, 30],
    ]),
    25,
  );
  t.is(
    coveredTime([
      [20, 30],
      [0, 100],
      [40, 50],
    ]),
    100,
  );
  t.is(coveredTime([[5, 5]]), 0, 'an empty interval covers nothing');
});

test('the table has one line per row, columns padded, and says what could not be measured', (t) => {
  const table = renderTable([
    { what: 'a', measured: '1 ms', baseline: '2 ms', target: '≤ 3 ms', verdict: 'met' },
    unmeasured('boot', 'docker is missing'),
  ]);
  const lines = table.split('\n');
  t.is(lines.length, 4);
  t.true(lines.every((l) => l.length === lines[0]!.length));
  t.regex(lines[3]!, /\| boot +\| NOT MEASURED: docker is missing \|/);
});
