/** The arithmetic and the table of `npm run bench`: pure, no I/O. */

/** The p-th percentile (0–100) by nearest rank; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export type Interval = readonly [start: number, end: number];

/** How long at least one of the intervals was open: calls running side by side count once. */
export function coveredTime(intervals: readonly Interval[]): number {
  const sorted = [...intervals].filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [start, end] = [-Infinity, -Infinity];
  for (const [s, e] of sorted) {
    if (s > end) {
      if (end > start) total += end - start;
      [start, end] = [s, e];
    } else {
      end = Math.max(end, e);
    }
  }
  if (end > start) total += end - start;
  return total;
}

export type Verdict = 'met' | 'missed' | 'n/a';

export interface Row {
  /** What is measured. */
  what: string;
  measured: string;
  /** The figure it is compared with, measured in the same run. */
  baseline: string;
  target: string;
  verdict: Verdict;
}

/** A section that could not measure: its row says why, and the bench exits non-zero. */
export function unmeasured(what: string, reason: string): Row {
  return { what, measured: `NOT MEASURED: ${reason}`, baseline: '', target: '', verdict: 'n/a' };
}

export const ms = (value: number) => `${Math.round(value)} ms`;
export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
export const times = (ratio: number) => `${ratio.toFixed(2)}×`;

/** A Markdown table (it reads as plain text too, and pastes into the README as is). */
export function renderTable(rows: readonly Row[]): string {
  const header = ['what', 'measured', 'baseline (same run)', 'target', 'met'];
  const cells = rows.map((r) => [r.what, r.measured, r.baseline, r.target, r.verdict]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) => `| ${c.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
