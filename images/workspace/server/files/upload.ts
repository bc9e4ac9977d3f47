import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError } from '../http-util.ts';

export function tooLarge(max: number): HttpError {
  return new HttpError(413, 'TOO_LARGE', `uploads are limited to ${max} bytes`);
}

/**
 * Streams a request body into `dest` (a checked entry): to a fresh temp name in the same folder,
 * then into place. Without `overwrite`, link() puts it there only if nothing is, atomically.
 * The request is only unpiped on failure, never destroyed, so the caller can still answer.
 */
export async function receiveUpload(
  req: IncomingMessage,
  dest: string,
  opts: { overwrite: boolean; maxBytes: number },
): Promise<number> {
  const tmp = path.join(path.dirname(dest), `.seat-upload-${randomUUID()}`);
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      done(size > opts.maxBytes ? tooLarge(opts.maxBytes) : null, chunk);
    },
  });
  // A browser that goes away mid-upload ends nothing: fail the write instead of waiting.
  const aborted = (): void => {
    if (!req.complete) counter.destroy(new HttpError(400, 'UPLOAD_ABORTED', 'upload cut short'));
  };
  req.once('close', aborted);
  req.once('error', aborted);
  req.pipe(counter);
  try {
    await pipeline(counter, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
    if (!req.complete) throw new HttpError(400, 'UPLOAD_ABORTED', 'the upload did not finish');
    if (opts.overwrite) await rename(tmp, dest);
    else await link(tmp, dest);
  } catch (err) {
    req.unpipe(counter);
    throw err;
  } finally {
    req.off('close', aborted);
    req.off('error', aborted);
    await unlink(tmp).catch(() => {});
  }
  return size;
}
