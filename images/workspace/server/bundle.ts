import { build } from 'esbuild';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * `npm run build:seat`: everything /opt/seat needs, built on the host (npm does not work inside
 * the containers). The Dockerfile copies the output folder as it is.
 *
 *   seat-server.mjs                     the server, one ESM file for Node 18+
 *   public/terminal/{index.html,app.js,app.css}   xterm.js page
 *   public/files/{index.html,files.js,files.css}  file manager page
 *   public/workspace/{index.html,workspace.js,workspace.css,editor.js}  the workspace page; the
 *                                       editor (CodeMirror) is its own file, loaded on first use
 *   node_modules/@lydell/node-pty[-linux-x64]/    the pty addon (N-API, prebuilt), kept external
 */
const here = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_OUT_DIR = path.resolve(here, '..', 'dist');
const PTY_PACKAGES = ['@lydell/node-pty', '@lydell/node-pty-linux-x64'];

export async function buildSeat(outDir: string = DEFAULT_OUT_DIR): Promise<void> {
  await rm(outDir, { recursive: true, force: true });
  await build({
    entryPoints: [path.join(here, 'main.ts')],
    outfile: path.join(outDir, 'seat-server.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'esm',
    external: ['@lydell/node-pty', 'bufferutil', 'utf-8-validate'],
    // ws and the other CommonJS code require() Node's modules; ESM has no require of its own.
    banner: {
      js: "import { createRequire as __seatRequire } from 'node:module'; const require = __seatRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  // A page whose script fails to load says so, and how to get it back (stalled-notice.html).
  const stalledNotice = await readFile(path.join(here, 'client', 'stalled-notice.html'), 'utf8');
  const pages = {
    terminal: { entries: { app: 'terminal.ts' }, html: 'terminal.html' },
    files: { entries: { files: 'files.ts' }, html: 'files.html' },
    workspace: {
      entries: { workspace: 'workspace.ts', editor: 'editor.ts' },
      html: 'workspace.html',
    },
  };
  for (const [name, page] of Object.entries(pages)) {
    const dir = path.join(outDir, 'public', name);
    await build({
      entryPoints: Object.fromEntries(
        Object.entries(page.entries).map(([out, entry]) => [out, path.join(here, 'client', entry)]),
      ),
      outdir: dir,
      bundle: true,
      platform: 'browser',
      target: ['chrome100', 'firefox100', 'safari15'],
      format: 'esm',
      minify: true,
      logLevel: 'warning',
    });
    const html = await readFile(path.join(here, 'client', page.html), 'utf8');
    await writeFile(
      path.join(dir, 'index.html'),
      html.replace(/^ *<!-- stalled-notice:.*-->\n/m, stalledNotice),
    );
  }
  const require = createRequire(import.meta.url);
  for (const pkg of PTY_PACKAGES) {
    const from = path.dirname(require.resolve(`${pkg}/package.json`));
    await mkdir(path.join(outDir, 'node_modules', pkg), { recursive: true });
    await cp(from, path.join(outDir, 'node_modules', pkg), { recursive: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await buildSeat(process.argv[2] ? path.resolve(process.argv[2]) : DEFAULT_OUT_DIR);
}
