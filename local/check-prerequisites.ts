import { missingEmulatorPrerequisite } from './emulators.ts';

/**
 * What `npm start` and the tests need beyond npm packages and cannot install themselves (Docker,
 * debootstrap and Chromium they install: local/machine.ts); each names how to install it.
 */
export function missingPrerequisites(): string[] {
  const missing: string[] = [];
  const emulators = missingEmulatorPrerequisite();
  if (emulators) missing.push(emulators);
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
