import { HttpError } from '../http-util.ts';

const BY_ERRNO: Record<string, [number, string, string]> = {
  ENOENT: [404, 'NOT_FOUND', 'no such file or folder'],
  EEXIST: [409, 'EXISTS', 'something by that name exists already'],
  ENOTEMPTY: [409, 'NOT_EMPTY', 'the folder is not empty'],
  ENOTDIR: [400, 'NOT_A_FOLDER', 'a part of the path is not a folder'],
  EISDIR: [409, 'IS_A_FOLDER', 'that is a folder'],
  EACCES: [403, 'PERMISSION_DENIED', 'permission denied'],
  EPERM: [403, 'PERMISSION_DENIED', 'operation not permitted'],
  EROFS: [403, 'READ_ONLY', 'the file system is read-only'],
  ELOOP: [400, 'SYMLINK_LOOP', 'too many symbolic links'],
  ENAMETOOLONG: [400, 'NAME_TOO_LONG', 'a name is too long'],
  EINVAL: [400, 'INVALID_OPERATION', 'that operation is not possible here'],
  EXDEV: [400, 'CROSS_DEVICE', 'cannot move across file systems'],
  EBUSY: [409, 'BUSY', 'the file is busy'],
  ENOSPC: [507, 'NO_SPACE', 'the disk is full'],
  EDQUOT: [507, 'NO_SPACE', 'the disk quota is used up'],
};

/** Pure: a file-system failure as the answer it deserves, or null for one we did not expect. */
export function httpErrorOf(err: unknown): HttpError | null {
  if (err instanceof HttpError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const known = code ? BY_ERRNO[code] : undefined;
  return known ? new HttpError(...known) : null;
}
