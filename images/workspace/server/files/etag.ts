import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { HttpError } from '../http-util.ts';

/**
 * A file's version as an ETag: size and modification time in nanoseconds. The editor sends it
 * back in If-Match when it saves, so a file changed on disk since it was opened (by the shell, by
 * another tab) is not overwritten without the learner saying so.
 */
export function etagOf(s: Pick<Stats, 'size'> & { mtimeNs: bigint }): string {
  return `"${s.size.toString(36)}-${s.mtimeNs.toString(36)}"`;
}

/** The ETag of what is at `real` now, or null when nothing is there. */
export async function currentEtag(real: string): Promise<string | null> {
  try {
    return etagOf(
      await stat(real, { bigint: true }).then((s) => ({
        size: Number(s.size),
        mtimeNs: s.mtimeNs,
      })),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Pure: does If-Match hold for a file whose ETag is `current` (null: absent)? `*` asks that the
 * file exist; a list matches when any of its tags does. No header: no precondition.
 */
export function ifMatchHolds(header: string | undefined, current: string | null): boolean {
  if (header === undefined) return true;
  const tags = header.split(',').map((t) => t.trim());
  if (tags.includes('*')) return current !== null;
  return current !== null && tags.includes(current);
}

export function preconditionFailed(current: string | null): HttpError {
  return new HttpError(
    412,
    'CHANGED_ON_DISK',
    current === null
      ? 'the file was removed since it was opened'
      : 'the file changed on disk since it was opened',
  );
}
