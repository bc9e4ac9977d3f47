/**
 * Cold start per function, as a deployed instance pays it: a fresh Node 24 process importing the
 * function's module from the built dist/, against an empty Node process, rounds interleaved and
 * medians taken. A second figure adds the client libraries the function loads on its first calls
 * (the `import()`s behind the services it uses), and a row shows the main module the runtime loads
 * before any call.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FUNCTION_CLIENTS, ImportGraph, ROOT } from '../test/helpers/import-graph.ts';
import { median, mib, ms, type Row } from './stats.ts';

const ROUNDS = 5;
const TARGET_MS = 400;
const TARGET_BYTES = 80 * 2 ** 20;

/** The Node the functions are deployed on (the `node` package), else this one. */
export function deployedNode(): string {
  const local = path.join(ROOT, 'node_modules', '.bin', 'node');
  return existsSync(local) ? local : process.execPath;
}

/** `shared/x.ts` → its file URL in dist/; a package specifier stays as it is. */
function distSpecifier(target: string, external: boolean): string {
  if (external) return target;
  return pathToFileURL(path.join(ROOT, 'dist', target.replace(/\.ts$/, '.js'))).href;
}

interface Sample {
  ms: number;
  rss: number;
}

/** Runs a fresh process that imports `modules` and reports its memory; times it from spawn to exit. */
function measure(node: string, modules: readonly string[]): Promise<Sample> {
  const script = `${modules.map((m) => `await import(${JSON.stringify(m)});`).join('')}
process.stdout.write(String(process.memoryUsage().rss));`;
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(node, ['--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, METADATA_SERVER_DETECTION: 'none' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const elapsed = performance.now() - start;
      if (code !== 0 || !/^\d+$/.test(out)) {
        reject(new Error(`importing ${modules.join(', ')} failed (${code}): ${err.slice(-400)}`));
      } else {
        resolve({ ms: elapsed, rss: Number(out) });
      }
    });
  });
}

export async function coldStart(): Promise<Row[]> {
  const node = deployedNode();
  if (!existsSync(path.join(ROOT, 'dist', 'functions', 'index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm run bench does)');
  }
  // What each case imports: the main module; each function's module; that plus its clients.
  const cases = new Map<string, string[]>([['empty', []]]);
  cases.set('main', [distSpecifier('functions/index.ts', false)]);
  for (const [name, { file, clients }] of Object.entries(FUNCTION_CLIENTS)) {
    const graph = await ImportGraph.of(file);
    const deferred = graph
      .deferredBy()
      .filter((d) => d.packages.length > 0 && d.packages.every((p) => clients.includes(p as never)))
      .map((d) => distSpecifier(d.target, d.external));
    cases.set(name, [distSpecifier(file, false)]);
    cases.set(`${name}+clients`, [distSpecifier(file, false), ...deferred]);
  }
  const samples = new Map<string, Sample[]>([...cases.keys()].map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [key, modules] of cases) samples.get(key)!.push(await measure(node, modules));
  }
  const med = (key: string) => ({
    ms: median(samples.get(key)!.map((s) => s.ms)),
    rss: median(samples.get(key)!.map((s) => s.rss)),
  });
  const empty = med('empty');
  const over = (key: string) => {
    const m = med(key);
    return { ms: m.ms - empty.ms, rss: m.rss - empty.rss };
  };
  const plus = (d: { ms: number; rss: number }) => `+${ms(d.ms)}, +${mib(d.rss)}`;
  const baseline = `empty node: ${ms(empty.ms)}, ${mib(empty.rss)}`;
  const main = over('main');
  const rows: Row[] = [
    {
      what: `cold start: main module (framework + registry), median of ${ROUNDS}`,
      measured: plus(main),
      baseline,
      target: 'loads no function',
      verdict: 'n/a',
    },
  ];
  for (const name of Object.keys(FUNCTION_CLIENTS)) {
    const own = over(name);
    const withClients = over(`${name}+clients`);
    const same = cases.get(name)!.length === cases.get(`${name}+clients`)!.length;
    rows.push({
      what: `cold start: ${name} (import; + clients on first use)`,
      measured: `${plus(own)}; ${same ? 'nothing more' : plus(withClients)}`,
      baseline,
      target: `≤ +${ms(TARGET_MS)}, ≤ +${mib(TARGET_BYTES)}`,
      verdict: own.ms <= TARGET_MS && own.rss <= TARGET_BYTES ? 'met' : 'missed',
    });
  }
  return rows;
}
