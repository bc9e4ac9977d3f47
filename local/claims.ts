import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processAlive } from './process-groups.ts';

/*
 * Things the local stack hands its VMs (port blocks, seat subnet pools) are claimed across
 * processes too: test files run side by side in processes of their own, and a VM takes what it
 * was given seconds after the check, so two processes could otherwise both find the same one
 * free. A claim is a file naming its process; one whose process is gone is stale and taken over.
 */
const claimFile = (kind: string, key: string) =>
  path.join(os.tmpdir(), `clarateach-${kind}`, key.replace(/\//g, '_'));

/** Claims `key` of `kind` for this process; false when a live process holds it. */
export function claim(kind: string, key: string): boolean {
  const file = claimFile(kind, key);
  mkdirSync(path.dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return true;
    } catch {
      let owner = NaN;
      try {
        owner = Number(readFileSync(file, 'utf8'));
      } catch {
        // released meanwhile: try again
      }
      if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}

export function release(kind: string, key: string): void {
  rmSync(claimFile(kind, key), { force: true });
}
