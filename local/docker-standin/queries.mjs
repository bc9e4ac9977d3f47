// @ts-check
// Commands that look at containers: ps, inspect, logs, info.
import fs from 'node:fs';
import process from 'node:process';
import { parseFlags } from './args.mjs';
import { die, out } from './cli.mjs';
import { allContainers, existingContainer, findContainer, stateOf } from './containers.mjs';
import { inspectShape, psShape } from './shapes.mjs';
import { STATE, logFile } from './state-dir.mjs';
import { render } from './template.mjs';

/** @param {string[]} args */
export function ps(args) {
  const { flags } = parseFlags(
    args,
    { '-f': 'filter', '--filter': 'filter', '--format': 'format' },
    { '-a': 'all', '--all': 'all', '-q': 'quiet', '--quiet': 'quiet', '--no-trunc': 'notrunc' },
    false,
  );
  /** @type {Record<string, string[]>} */
  const filters = {};
  for (const f of flags.filter ?? []) {
    const eq = f.indexOf('=');
    if (eq < 0) die(1, `Error response from daemon: bad format of filter (expected name=value)`);
    (filters[f.slice(0, eq)] ??= []).push(f.slice(eq + 1));
  }
  for (const key of Object.keys(filters)) {
    if (!['label', 'name', 'status', 'id'].includes(key)) {
      die(
        1,
        `Error response from daemon: invalid filter '${key}' (stand-in: label, name, status, id)`,
      );
    }
  }
  const list = allContainers()
    .filter((c) => flags.all || stateOf(c) === 'running')
    .filter((c) =>
      (filters.label ?? []).every((f) => {
        const eq = f.indexOf('=');
        return eq < 0 ? f in c.labels : c.labels[f.slice(0, eq)] === f.slice(eq + 1);
      }),
    )
    .filter((c) => !filters.name || filters.name.some((n) => new RegExp(n).test(c.name)))
    .filter((c) => !filters.status || filters.status.includes(stateOf(c)))
    .filter((c) => !filters.id || filters.id.some((id) => c.id.startsWith(id)))
    .sort((a, b) => b.created.localeCompare(a.created));
  const full = Boolean(flags.notrunc);
  if (flags.quiet) {
    for (const c of list) out(full ? c.id : c.id.slice(0, 12));
    return;
  }
  const format = flags.format?.at(-1);
  if (format) {
    for (const c of list) out(render(format, psShape(c, full), c.labels));
    return;
  }
  const rows = list.map((c) => psShape(c, full));
  const cols = /** @type {const} */ (['ID', 'Image', 'Status', 'Ports', 'Names']);
  const head = ['CONTAINER ID', 'IMAGE', 'STATUS', 'PORTS', 'NAMES'];
  const widths = cols.map((col, i) =>
    Math.max(head[i]?.length ?? 0, ...rows.map((r) => r[col].length)),
  );
  const line = (/** @type {string[]} */ cells) =>
    cells
      .map((s, i) => s.padEnd(widths[i] ?? 0))
      .join('   ')
      .trimEnd();
  out(line(head));
  for (const r of rows) out(line(cols.map((col) => r[col])));
}

/** @param {string[]} args */
export function inspect(args) {
  const { flags, positional } = parseFlags(
    args,
    { '-f': 'format', '--format': 'format', '--type': 'type' },
    {},
    false,
  );
  const format = flags.format?.at(-1);
  const found = [];
  const missing = [];
  for (const ref of positional) {
    const c = findContainer(ref);
    if (c) found.push(inspectShape(c));
    else missing.push(ref);
  }
  if (format) for (const shape of found) out(render(format, shape, {}));
  else out(JSON.stringify(found, null, 4));
  if (missing.length) die(1, missing.map((ref) => `Error: No such object: ${ref}`).join('\n'));
}

/** @param {string[]} args */
export function logs(args) {
  const { flags, positional } = parseFlags(
    args,
    { '-n': 'tail', '--tail': 'tail' },
    { '-f': 'follow', '--follow': 'follow' },
    false,
  );
  const ref = positional[0] ?? die(1, '"docker logs" requires exactly 1 argument.');
  const c = existingContainer(ref);
  const file = logFile(c.name);
  if (!fs.existsSync(file)) return;
  const tail = flags.tail?.at(-1) ?? 'all';
  if (tail === 'all') {
    process.stdout.write(fs.readFileSync(file));
    return;
  }
  if (!/^\d+$/.test(tail)) die(1, `invalid value for "tail": ${tail}`);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  const kept = Number(tail) === 0 ? [] : lines.slice(-Number(tail));
  if (kept.length) out(kept.join('\n'));
}

export function info() {
  const list = allContainers();
  out(
    [
      'Server:',
      ` Containers: ${list.length}`,
      `  Running: ${list.filter((c) => stateOf(c) === 'running').length}`,
      ' Server Version: clarateach-docker-standin',
      ` Docker Root Dir: ${STATE}`,
    ].join('\n'),
  );
}
