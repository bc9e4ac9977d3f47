import { build } from 'esbuild';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Builds the console and the join page into dist/web (part of `npm run build`; the local stack
 * builds them at start):
 *   console.html, assets/console.{js,css}, assets/watch-*.js  the console; the watch grid (xterm)
 *                                                             is a chunk loaded on demand
 *   join.html                                                 the join page, JS and CSS inline
 */
const here = path.dirname(fileURLToPath(import.meta.url));
export const WEB_OUT_DIR = path.resolve(here, '..', 'dist', 'web');
const BROWSERS = ['chrome100', 'firefox100', 'safari15'];

/**
 * Builds into a folder of its own, then swaps it in: a local stack of another test file may be
 * serving the previous build meanwhile.
 */
export async function buildPages(finalDir: string = WEB_OUT_DIR): Promise<void> {
  const outDir = `${finalDir}.${process.pid}.new`;
  await rm(outDir, { recursive: true, force: true });
  const assets = path.join(outDir, 'assets');
  await build({
    entryPoints: { console: path.join(here, 'console', 'console.ts') },
    outdir: assets,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: BROWSERS,
    minify: true,
    logLevel: 'warning',
  });
  await copyFile(path.join(here, 'console', 'index.html'), path.join(outDir, 'console.html'));
  const join = await build({
    entryPoints: [path.join(here, 'join', 'join.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: BROWSERS,
    minify: true,
    write: false,
    logLevel: 'warning',
  });
  const css = await readFile(path.join(here, 'join', 'join.css'), 'utf8');
  const html = (await readFile(path.join(here, 'join', 'index.html'), 'utf8'))
    .replace('<!--STYLE-->', () => `<style>${css}</style>`)
    .replace('<!--SCRIPT-->', () => `<script type="module">${join.outputFiles[0]!.text}</script>`);
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, 'join.html'), html);
  const old = `${finalDir}.${process.pid}.old`;
  await rename(finalDir, old).catch(() => undefined);
  await rename(outDir, finalDir);
  await rm(old, { recursive: true, force: true });
}

/** Bytes of JavaScript each page loads: the console at first and its watch grid, the join page. */
export async function pageSizes(outDir: string = WEB_OUT_DIR) {
  const size = async (file: string) => (await stat(path.join(outDir, file))).size;
  const chunks = (await readdir(path.join(outDir, 'assets'))).filter((f) => f.endsWith('.js'));
  let grid = 0;
  for (const f of chunks) if (f !== 'console.js') grid += await size(path.join('assets', f));
  return {
    console: await size('assets/console.js'),
    grid,
    join: await size('join.html'),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await buildPages();
}
