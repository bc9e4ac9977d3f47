/** Compute's list filter, the subset this system uses. */
import { invalid } from './errors.ts';
import type { InstanceRecord } from './types.ts';

type Predicate = (record: InstanceRecord) => boolean;

/**
 * Compute's list filter, the subset this system uses: `labels.K = "V"`, `name = "x"`,
 * `status = "RUNNING"`, with `!=`, each optionally in parentheses, joined by spaces or AND.
 */
export function parseFilter(filter: string): Predicate {
  const predicates: Predicate[] = [];
  const term =
    /\(?\s*(labels\.[a-z][a-z0-9_-]*|name|status)\s*(=|!=|eq|ne)\s*(?:"([^"]*)"|'([^']*)'|([^\s()"']+))\s*\)?/y;
  let rest = filter.trim();
  while (rest.length > 0) {
    term.lastIndex = 0;
    const m = term.exec(rest);
    if (!m)
      throw invalid(
        `Invalid value for field 'filter': '${filter}'. Invalid list filter expression.`,
      );
    const field = m[1] as string;
    const negate = m[2] === '!=' || m[2] === 'ne';
    const value = m[3] ?? m[4] ?? m[5] ?? '';
    const get = (r: InstanceRecord): string | undefined =>
      field === 'name' ? r.name : field === 'status' ? r.status : r.labels[field.slice(7)];
    predicates.push((r) => (get(r) === value) !== negate);
    rest = rest.slice(term.lastIndex).trim();
    const and = /^AND\s+/i.exec(rest);
    if (and) rest = rest.slice(and[0].length);
  }
  return (record) => predicates.every((p) => p(record));
}
