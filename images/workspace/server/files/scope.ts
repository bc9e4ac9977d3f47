import { lstat, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { HttpError } from '../http-util.ts';

/**
 * Confinement to the home folder, after filebrowser's `files/scoped.go`: the root's real path
 * is resolved once; every request path is checked for shape, then resolved through every
 * symlink (a dangling one is followed to where it points, a missing tail is resolved through its
 * nearest existing parent) and must land on the root or under `root + '/'`.
 *
 * Between the check and the use a learner could swap a folder for a symlink; the server runs as
 * the learner, so that gains nothing their shell does not already give.
 */

const MAX_PATH = 4096;
const MAX_NAME = 255;
const MAX_LINKS = 40;

/** Pure: a request path (relative to home, `/`-separated) as its segments, or a 400. */
export function parseRelPath(input: unknown): string[] {
  if (typeof input !== 'string') throw new HttpError(400, 'INVALID_PATH', 'path must be a string');
  if (input.length > MAX_PATH) throw new HttpError(400, 'INVALID_PATH', 'path is too long');
  if (input.includes('\0')) throw new HttpError(400, 'INVALID_PATH', 'path holds a NUL byte');
  if (input.startsWith('/')) {
    throw new HttpError(400, 'ABSOLUTE_PATH', 'path must be relative to the home folder');
  }
  const segments = input.split('/').filter((s) => s !== '' && s !== '.');
  // A backslash is a plain character on Linux, but `..\\x` is traversal to a Windows reader.
  if (segments.some((s) => s.split('\\').includes('..'))) {
    throw new HttpError(400, 'PATH_TRAVERSAL', 'path must not contain ..');
  }
  // Still percent-encoded after the query was decoded: double encoding. Harmless here, but a
  // layer that decodes once more would see `..` or `/`, so such names are refused outright.
  if (segments.some((s) => /%(2e|2f|5c|00)/i.test(s))) {
    throw new HttpError(400, 'ENCODED_PATH', 'path must not hold percent-encoded . / \\ or NUL');
  }
  if (segments.some((s) => Buffer.byteLength(s) > MAX_NAME)) {
    throw new HttpError(400, 'INVALID_PATH', 'a name in path is too long');
  }
  return segments;
}

/** Pure: is `p` the root or below it? `/home/learnerX` is not below `/home/learner`. */
export function isInside(root: string, p: string): boolean {
  if (p === root) return true;
  return p.startsWith(root.endsWith('/') ? root : `${root}/`);
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** realpath that also resolves what does not exist yet, following dangling symlinks. */
async function resolveLenient(p: string, hops = 0): Promise<string> {
  if (hops > MAX_LINKS) throw Object.assign(new Error('too many links'), { code: 'ELOOP' });
  try {
    return await realpath(p);
  } catch (err) {
    if (errno(err) !== 'ENOENT') throw err;
  }
  const st = await lstat(p).catch((err: unknown) => {
    if (errno(err) === 'ENOENT') return null;
    throw err;
  });
  if (st?.isSymbolicLink()) {
    const target = await readlink(p);
    return resolveLenient(path.resolve(path.dirname(p), target), hops + 1);
  }
  if (st) throw Object.assign(new Error('unresolvable path'), { code: 'ENOENT' });
  const parent = path.dirname(p);
  if (parent === p) return p;
  return path.join(await resolveLenient(parent, hops), path.basename(p));
}

export class Scope {
  private constructor(readonly root: string) {}

  static async open(home: string): Promise<Scope> {
    return new Scope(await realpath(home));
  }

  /** Where a request path really leads, checked to be inside the root. */
  async target(rel: unknown): Promise<string> {
    return this.resolveSegments(parseRelPath(rel));
  }

  /**
   * The directory entry a request path names, for operations on the entry itself (upload,
   * mkdir, rename, delete): its parent resolved and checked, its own name kept, and the path
   * followed through a final symlink checked too, so a link leading out is refused as well.
   */
  async entry(rel: unknown): Promise<string> {
    const segments = parseRelPath(rel);
    const name = segments.at(-1);
    if (name === undefined) {
      throw new HttpError(400, 'HOME_FOLDER', 'the home folder itself cannot be changed');
    }
    const parent = await this.resolveSegments(segments.slice(0, -1));
    await this.resolveSegments(segments);
    return path.join(parent, name);
  }

  private async resolveSegments(segments: string[]): Promise<string> {
    const real = await resolveLenient(path.join(this.root, ...segments));
    if (!isInside(this.root, real)) {
      throw new HttpError(403, 'OUTSIDE_HOME', 'path leads outside the home folder');
    }
    return real;
  }

  /** The request path of a real path inside the root, for answers. */
  relative(real: string): string {
    return path.relative(this.root, real).split(path.sep).join('/');
  }
}
