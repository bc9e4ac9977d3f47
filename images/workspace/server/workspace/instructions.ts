import { readFile } from 'node:fs/promises';

/** The largest instructions the page takes, as the control plane's create does (100 KB). */
export const MAX_INSTRUCTIONS_BYTES = 100 * 1024;

export interface Instructions {
  /** `workshop`: given by the instructor on create; `image`: shipped in the workspace image. */
  source: 'workshop' | 'image' | null;
  markdown: string;
}

/** Where the instructions may be: the class's own file first, then the image's. */
export interface InstructionFiles {
  /** Written by the startup script from the VM's `instructions` metadata, mounted read-only. */
  workshop: string;
  /** A file an image author ships for every class that uses the image. */
  image: string;
}

async function readSmall(file: string): Promise<string | null> {
  try {
    const body = await readFile(file);
    if (body.length === 0) return null;
    return body.subarray(0, MAX_INSTRUCTIONS_BYTES).toString('utf8');
  } catch {
    return null;
  }
}

/**
 * The instructor's instructions win over the image's: the class is more specific than the image
 * it runs, and an instructor who gives none gets what the image author wrote.
 */
export async function loadInstructions(files: InstructionFiles): Promise<Instructions> {
  const workshop = await readSmall(files.workshop);
  if (workshop !== null) return { source: 'workshop', markdown: workshop };
  const image = await readSmall(files.image);
  if (image !== null) return { source: 'image', markdown: image };
  return { source: null, markdown: '' };
}
