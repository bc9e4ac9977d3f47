import { constants, type Dirent } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import { HttpError, attachmentDisposition } from '../http-util.ts';
import { etagOf } from './etag.ts';
import { parseRelPath, type Scope } from './scope.ts';

export const MAX_LIST = 10_000;
export const MAX_VIEW_BYTES = 1024 * 1024;
// Non-blocking, so opening a named pipe cannot park a thread of the pool waiting for a writer;
// it is refused as not a regular file right after.
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

export interface ListEntry {
  name: string;
  type: 'file' | 'folder' | 'symlink' | 'other';
  /** For a symlink: what it leads to, or null when dangling or leading outside the home. */
  target?: 'file' | 'folder' | 'other' | null;
  size: number;
  modified: string;
}

/** Pure: a stat's kind, in the words of the API. */
function kindOf(s: { isFile(): boolean; isDirectory(): boolean }): 'file' | 'folder' | 'other' {
  return s.isFile() ? 'file' : s.isDirectory() ? 'folder' : 'other';
}

/** The request path as the client should see it: normalized, relative to home. */
export function normalized(rel: unknown): string {
  return parseRelPath(rel).join('/');
}

async function entryOf(scope: Scope, rel: string, dirent: Dirent): Promise<ListEntry | null> {
  const full = path.join(rel, dirent.name);
  try {
    const s = await lstat(path.join(scope.root, full));
    const entry: ListEntry = {
      name: dirent.name,
      type: s.isSymbolicLink() ? 'symlink' : kindOf(s),
      size: s.size,
      modified: s.mtime.toISOString(),
    };
    if (s.isSymbolicLink()) {
      entry.target = await scope.target(full).then(
        async (real) => kindOf(await stat(real)),
        () => null,
      );
    }
    return entry;
  } catch {
    return null; // Removed while we listed.
  }
}

export async function listFolder(scope: Scope, rel: unknown) {
  const real = await scope.target(rel);
  if (!(await stat(real)).isDirectory()) {
    throw new HttpError(400, 'NOT_A_FOLDER', 'that is not a folder');
  }
  const dirents = (await readdir(real, { withFileTypes: true })).slice(0, MAX_LIST + 1);
  const truncated = dirents.length > MAX_LIST;
  // The listing is by request path, so entries of a linked folder are checked like any other.
  const base = path.relative(scope.root, real);
  const entries = await Promise.all(dirents.slice(0, MAX_LIST).map((d) => entryOf(scope, base, d)));
  const present = entries.filter((e): e is ListEntry => e !== null);
  present.sort((a, b) => {
    const folder = (e: ListEntry) => e.type === 'folder' || e.target === 'folder';
    return Number(folder(b)) - Number(folder(a)) || a.name.localeCompare(b.name);
  });
  return { path: normalized(rel), entries: present, truncated };
}

const FILE_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': 'sandbox',
  'Cache-Control': 'no-store',
};

/** A file as an attachment, read from the handle that was checked (no second path lookup). */
export async function sendFile(real: string, res: ServerResponse): Promise<void> {
  const handle = await open(real, READ_FLAGS);
  try {
    const s = await handle.stat();
    if (!s.isFile()) throw new HttpError(400, 'NOT_A_FILE', 'that is not a regular file');
    res.writeHead(200, {
      ...FILE_HEADERS,
      'Content-Type': 'application/octet-stream',
      'Content-Length': s.size,
      'Content-Disposition': attachmentDisposition(path.basename(real)),
    });
  } catch (err) {
    await handle.close();
    throw err;
  }
  const stream = handle.createReadStream();
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

/**
 * A small text file for the page to show or edit (as text, sandboxed, never as HTML), with its
 * ETag for a later save's If-Match.
 */
export async function sendText(real: string, res: ServerResponse): Promise<void> {
  const handle = await open(real, READ_FLAGS);
  try {
    const s = await handle.stat({ bigint: true });
    if (!s.isFile()) throw new HttpError(400, 'NOT_A_FILE', 'that is not a regular file');
    if (s.size > BigInt(MAX_VIEW_BYTES)) {
      throw new HttpError(413, 'TOO_LARGE_TO_VIEW', 'the file is too large to view; download it');
    }
    const body = await handle.readFile();
    if (body.subarray(0, 8000).includes(0)) {
      throw new HttpError(415, 'NOT_TEXT', 'the file is not text; download it');
    }
    res.writeHead(200, {
      ...FILE_HEADERS,
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': body.length,
      ETag: etagOf({ size: Number(s.size), mtimeNs: s.mtimeNs }),
    });
    res.end(body);
  } finally {
    await handle.close();
  }
}

export async function makeFolder(scope: Scope, rel: unknown) {
  await mkdir(await scope.entry(rel));
  return { path: normalized(rel) };
}

export async function renameEntry(scope: Scope, from: unknown, to: unknown, overwrite: boolean) {
  const src = await scope.entry(from);
  const dest = await scope.entry(to);
  await lstat(src);
  if (
    !overwrite &&
    (await lstat(dest).then(
      () => true,
      () => false,
    ))
  ) {
    throw new HttpError(409, 'EXISTS', 'something by that name exists already');
  }
  await rename(src, dest);
  return { path: normalized(to) };
}

export async function deleteEntry(scope: Scope, rel: unknown) {
  const real = await scope.entry(rel);
  await lstat(real);
  await rm(real, { recursive: true });
  return { path: normalized(rel) };
}
