/**
 * File-system errors: every failure the fs reports is an FsError carrying a POSIX errno name in
 * `code` (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, ENAMETOOLONG, ENOSPC, EINVAL, EFBIG, EMLINK,
 * EIO, EUCLEAN, ...).
 *
 * Invariant: corrupted on-disk metadata is reported as EUCLEAN ("structure needs cleaning") with a
 * message naming what was wrong; device failures as EIO. Nothing in the fs throws any other kind
 * of exception for bad input or bad disks (programming errors aside).
 */
export type Errno =
  | 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'ENOTEMPTY' | 'ENAMETOOLONG' | 'ENOSPC'
  | 'EINVAL' | 'EFBIG' | 'EMLINK' | 'EIO' | 'EUCLEAN' | 'EBUSY' | 'EPERM' | 'ENFILE'
  | 'EBADF' | 'EROFS' | 'EXDEV';

export class FsError extends Error {
  readonly code: Errno;
  constructor(code: Errno, message: string) {
    super(`${code}: ${message}`);
    this.name = 'FsError';
    this.code = code;
  }
}

export function fsErr(code: Errno, message: string): FsError {
  return new FsError(code, message);
}

/** Corrupted metadata. */
export function corrupt(message: string): FsError {
  return new FsError('EUCLEAN', message);
}

/** Wrap a non-FsError thrown by a device into EIO. */
export function asFsError(e: unknown, what: string): FsError {
  if (e instanceof FsError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new FsError('EIO', `${what}: ${msg}`);
}
