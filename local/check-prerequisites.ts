import { spawnSync } from 'node:child_process';
import { missingEmulatorPrerequisite } from './emulators.ts';

/** What `npm start` and the tests need beyond npm packages; each names how to install it. */
export function missingPrerequisites(): string[] {
  const missing: string[] = [];
  const emulators = missingEmulatorPrerequisite();
  if (emulators) missing.push(emulators);
  if (spawnSync('caddy', ['version'], { stdio: 'ignore' }).status !== 0) {
    missing.push('caddy is missing (install it: apt-get install -y caddy)');
  }
  return missing;
}

// `tsx local/check-prerequisites.ts emulators` prints what the emulators lack, or nothing.
if (import.meta.url === `file://${process.argv[1]}`) {
  const only = process.argv[2];
  const found =
    only === 'emulators' ? [missingEmulatorPrerequisite()].filter(Boolean) : missingPrerequisites();
  if (found.length > 0) {
    console.log(found.join('; '));
    process.exitCode = 1;
  }
}
