/**
 * strerror for user programs: the Linux message of every errno the Rv6 interface defines.
 *
 * Invariant: the table is keyed by ERRNO's names, so adding an errno to the interface without a
 * message here fails to compile.
 */
import { ERRNO, type ErrnoName } from '../../interfaces/rv6.js';

const MESSAGES: Record<ErrnoName, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  E2BIG: 'Argument list too long',
  ENOEXEC: 'Exec format error',
  EBADF: 'Bad file descriptor',
  ECHILD: 'No child processes',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  EXDEV: 'Invalid cross-device link',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  ENOTTY: 'Inappropriate ioctl for device',
  EFBIG: 'File too large',
  ENOSPC: 'No space left on device',
  ESPIPE: 'Illegal seek',
  EROFS: 'Read-only file system',
  EMLINK: 'Too many links',
  EPIPE: 'Broken pipe',
  ERANGE: 'Numerical result out of range',
  ENAMETOOLONG: 'File name too long',
  ENOSYS: 'Function not implemented',
  ENOTEMPTY: 'Directory not empty',
  EUCLEAN: 'Structure needs cleaning',
};

const BY_NUMBER = new Map<number, string>(
  (Object.keys(ERRNO) as ErrnoName[]).map((name) => [ERRNO[name], MESSAGES[name]]),
);

/** The message of errno `err`, given as the negative value a system call returned or positive. */
export function strerror(err: number): string {
  return BY_NUMBER.get(Math.abs(err)) ?? `Unknown error ${Math.abs(err)}`;
}
