import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from './commands.ts';

/** The images the local stack's VMs run, built here from `images/` (Neko's is a stand-in). */
export interface LocalImages {
  workspace: string;
  caddy: string;
  browser: string;
}

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Every file an image is built from: `images/` (less bundles) and the seat server's lock file. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => !(e.isDirectory() && (e.name === 'dist' || e.name === 'node_modules')))
    .flatMap((e) =>
      e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : [path.join(dir, e.name)],
    )
    .sort();
}

/** A tag that changes whenever what the images are built from changes, so a stale image is never run. */
function imageTag(): string {
  const hash = createHash('sha256');
  for (const file of [
    ...sourceFiles(path.join(root, 'images')),
    path.join(root, 'package-lock.json'),
  ]) {
    hash.update(path.relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 12);
}

function localImages(tag: string): LocalImages {
  return {
    workspace: `clarateach-local/workspace:${tag}`,
    caddy: `clarateach-local/caddy:${tag}`,
    browser: `clarateach-local/browser:${tag}`,
  };
}

async function present(image: string): Promise<boolean> {
  return (await runCommand('docker', ['image', 'inspect', image])).code === 0;
}

/**
 * The local images for the current sources, built with images/build.sh when any is missing
 * (its progress lines go to `say`). Builds of parallel processes are serialised by a lock.
 */
export async function ensureLocalImages(
  say: (line: string) => void = (line) => console.error(line),
): Promise<LocalImages> {
  const tag = imageTag();
  const images = localImages(tag);
  const all = async () => (await Promise.all(Object.values(images).map(present))).every(Boolean);
  if (await all()) return images;
  say(`building the VM images (tag ${tag}); the first build takes a minute or two`);
  const stderr: string[] = [];
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(
      'flock',
      ['/tmp/clarateach-images.lock', path.join(root, 'images', 'build.sh'), '--tag', tag],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr.setEncoding('utf8');
    let partial = '';
    child.stderr.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        stderr.push(line);
        if (line.startsWith('images: ')) say(line);
      }
    });
    child.on('error', () => resolve(null));
    child.on('close', resolve);
  });
  if (code !== 0 || !(await all())) {
    throw new Error(`images/build.sh failed (exit ${code}):\n${stderr.slice(-20).join('\n')}`);
  }
  return images;
}
