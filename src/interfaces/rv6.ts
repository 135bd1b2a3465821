/**
 * rv6 (issue 4, ARCHITECTURE §8): the POSIX personality, as domains.
 *
 *   user program domains ──Rv6──▶ rv6 core ──Rv6Fs──▶ fs domain ──BDev──▶ bdev shadow ▶ nvme | membdev
 *   host console (redleaf boot) ──Rv6Boot──▶ rv6 core
 *
 * Every user program is its own domain, loaded by the core from a signed artifact stored as a file
 * in the rv6 file system (/bin/<name>). It exports `Program`; the core calls `main` with the
 * program's per-process `Rv6` object, which is the program's only authority (besides its own
 * `sys`: allocation, timers, logging). There is no fork: processes are created with `spawn`.
 *
 * Conventions (all methods):
 *  - errors are values, never exceptions: a method returning a number returns a negative POSIX
 *    errno (ERRNO below) on failure; a method returning a layout struct sets its `err`/`n` field;
 *  - byte transfers use exchange-heap buffers: `write` borrows the caller's buffer (zero copy,
 *    reissuable); `read`/`getdents` take an `IoBuf` that is moved in and always moved back;
 *  - argv is one string: the arguments (argv[0] first) separated by NUL characters ('\0');
 *  - times are milliseconds.
 */
import type { Borrow, Layout, RRef, RRefArray, f64, i32, u16, u32, u8 } from '../runtime/types.js';

/** POSIX errno values (Linux numbering). Methods return them negated. */
export const ERRNO = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9,
  ECHILD: 10, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, EBUSY: 16, EEXIST: 17, EXDEV: 18,
  ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25, EFBIG: 27,
  ENOSPC: 28, ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32, ERANGE: 34, ENAMETOOLONG: 36,
  ENOSYS: 38, ENOTEMPTY: 39, EUCLEAN: 117,
} as const;
export type ErrnoName = keyof typeof ERRNO;

/** open() flags (xv6's values, plus O_APPEND and O_EXCL). */
export const O_RDONLY = 0x000;
export const O_WRONLY = 0x001;
export const O_RDWR = 0x002;
export const O_CREATE = 0x200;
export const O_TRUNC = 0x400;
export const O_EXCL = 0x800;
export const O_APPEND = 0x1000;

/** lseek() whence. */
export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;

/** Inode types (xv6's): StatBuf.type. */
export const T_DIR = 1;
export const T_FILE = 2;
export const T_DEVICE = 3;

/** Device majors for mknod: the console (xv6's CONSOLE = 1). */
export const DEV_CONSOLE = 1;

/** spawn() pgid argument: put the child in a new process group led by itself. */
export const PGID_NEW = 0;
/** spawn() pgid argument: the child joins its parent's process group. */
export const PGID_INHERIT = -1;
/**
 * spawn() pgid argument: a new group led by the child, made the console's foreground group before
 * the child runs (a job-control shell's foreground job: tcsetpgrp after spawn would leave the
 * child a moment in the background, where a read of the console fails with EIO).
 */
export const PGID_FOREGROUND = -2;

/**
 * Exit statuses of processes that did not return from main (the shell's $?), as on Unix:
 * killed by kill() 128+9, interrupted by Ctrl-C 128+2, crashed (its domain panicked) 128+11.
 */
export const STATUS_KILLED = 137;
export const STATUS_INTERRUPTED = 130;
export const STATUS_CRASHED = 139;

/**
 * A byte transfer, moved in and always moved back.
 *   read:     in  n = bytes wanted (<= data.byteLength);  out n = bytes read (0 = EOF) or -errno.
 *   getdents: in  off = directory offset to start at (0 first); out off = the next offset,
 *             n = bytes of entries written or -errno (0 = no more entries). Each entry is
 *             `<inum> <name>\0` in UTF-8; only whole entries are written.
 *   Rv6Fs.read: in off = file offset.
 */
export interface IoBuf extends Layout {
  n: i32;
  off: f64;
  data: RRefArray<u8> | null;
}

/** stat/fstat result: `err` is 0 or -errno (then the other fields are 0). */
export interface StatBuf extends Layout {
  err: i32;
  /** T_DIR, T_FILE or T_DEVICE (0 for a pipe or the console when it has no inode). */
  type: u16;
  nlink: u16;
  /** Device number of the file system (1) — 0 for pipes. */
  dev: u32;
  ino: u32;
  size: f64;
  major: u16;
  minor: u16;
}

/** wait() result: `pid` is the reaped child's pid, or -errno (ECHILD, EINTR). */
export interface WaitStatus extends Layout {
  pid: i32;
  status: i32;
}

/** pipe() result: `err` 0 or -errno; the read and the write end. */
export interface FdPair extends Layout {
  err: i32;
  rfd: i32;
  wfd: i32;
}

/** The system-call interface: one object per process, bound to its pid. */
export interface Rv6 {
  // ---- files ----
  /** A new fd (the lowest free) or -errno. Opening a directory is allowed read-only. */
  open(path: string, flags: number): Promise<number>;
  read(fd: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>>;
  /** Write the first `n` bytes of `data`; bytes written or -errno (EPIPE on a pipe without readers). */
  write(fd: number, data: Borrow<RRefArray<u8>>, n: number): Promise<number>;
  close(fd: number): Promise<number>;
  /** The new offset or -errno (ESPIPE on pipes and the console). */
  lseek(fd: number, offset: number, whence: number): Promise<number>;
  fstat(fd: number): Promise<RRef<StatBuf>>;
  stat(path: string): Promise<RRef<StatBuf>>;
  /** Directory entries of an fd opened on a directory (see IoBuf). */
  getdents(fd: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>>;
  /** A new fd sharing the open file (and its offset) or -errno. */
  dup(fd: number): Promise<number>;
  pipe(): Promise<RRef<FdPair>>;

  // ---- names ----
  link(oldPath: string, newPath: string): Promise<number>;
  unlink(path: string): Promise<number>;
  /**
   * rename(2): `newPath` names what `oldPath` named, atomically (a crash leaves one of the two
   * names); an existing `newPath` is replaced (a file by a file, an empty directory by a
   * directory). 0 or -errno: EINVAL (a directory into itself), ENOTEMPTY, ENOTDIR, EISDIR, EBUSY
   * ('.', '..', the root), ENOENT. Every current directory below a moved one keeps its getcwd right.
   */
  rename(oldPath: string, newPath: string): Promise<number>;
  mkdir(path: string): Promise<number>;
  rmdir(path: string): Promise<number>;
  mknod(path: string, major: number, minor: number): Promise<number>;
  chdir(path: string): Promise<number>;
  /** The absolute path of the current directory. */
  getcwd(): Promise<string>;

  // ---- processes ----
  /**
   * Start the program file `path` (a name without '/' is looked up in /bin) with `argv` as a
   * child process. Its fds 0, 1, 2 are the caller's fds `stdin`, `stdout`, `stderr` (each must
   * be open); no other fd is inherited (as if every fd above 2 were close-on-exec). `pgid`:
   * PGID_NEW, PGID_FOREGROUND, PGID_INHERIT or an existing group to join. The child's pid or -errno.
   */
  spawn(path: string, argv: string, stdin: number, stdout: number, stderr: number, pgid: number): Promise<number>;
  /** Replace the calling program (same pid, fds, cwd); returns only on failure (-errno). */
  exec(path: string, argv: string): Promise<number>;
  /** Wait for the child `pid` (-1: any child) to exit and reap it. */
  wait(pid: number): Promise<RRef<WaitStatus>>;
  /** End the calling process with `status` (0–255); never resolves. */
  exit(status: number): Promise<void>;
  /** Terminate process `pid` (its status becomes STATUS_KILLED); 0 or -errno (ESRCH). */
  kill(pid: number): Promise<number>;
  getpid(): number;
  /**
   * Sleep `ms` milliseconds; 0, or -EINTR if the process is killed meanwhile or Ctrl-C is typed
   * while no group is in the console's foreground and the caller's group has its input (the shell
   * at its prompt or in `wait`: a caught SIGINT).
   */
  sleep(ms: number): Promise<number>;
  /** Milliseconds since boot. */
  uptime(): number;
  /**
   * Make `pgid` the console's foreground process group: Ctrl-C interrupts it, and only it reads the
   * console (other groups' reads fail with EIO). `pgid` 0: none; the caller's group keeps the
   * input (a shell at its prompt), and Ctrl-C ends nobody but interrupts that group's sleeps
   * (EINTR, see sleep). 0 or -errno.
   */
  tcsetpgrp(pgid: number): number;

  // ---- rv6 extensions for ps, domains and crash ----
  /** One line per process: `pid ppid pgid state name`, after a header line. */
  procs(): Promise<string>;
  /** One line per kernel domain: name, state, calls, faults, restarts, heap bytes and slots. */
  kdomains(): Promise<string>;
  /**
   * Inject a fault into the kernel domain `name` (at its next call when afterCalls is 0); 0 or
   * -errno: ENOENT (no live domain), EPERM (a program's domain, which gets no call to fault).
   */
  kcrash(name: string, afterCalls: number): Promise<number>;
}

/** What every user program domain exports. */
export interface Program {
  /** Run the program; resolves with its exit status (0–255). */
  main(rv6: Rv6, argv: string): Promise<number>;
}

/**
 * The file-system domain's interface (the xv6 file system, over a BDev). The rv6 core calls it;
 * it keeps the "file layer" itself (fds, offsets, sharing). `file` ids name open inodes in the fs
 * domain; `cwd` is the file id of an open directory, or 0 for the root.
 */
export interface Rv6Fs {
  /** Mount (replays the log); 0 or -errno (-EUCLEAN: a damaged image, see the log line). Once, first. */
  mount(): Promise<number>;
  /** A file id (> 0) or -errno. flags: O_* (O_APPEND is the core's business, ignored here). */
  open(path: string, flags: number, cwd: number): Promise<number>;
  /**
   * A file id (> 0) for inode `ino` itself, or -errno (-ENOENT: the inode is free). flags: O_RDONLY,
   * O_WRONLY or O_RDWR. For a client reopening, on a restarted fs domain, the files it had open on
   * the one that crashed (their inode numbers from fstat): a number names the same file, with or
   * without links left, or a free inode, never another file (an inode freed by an uncommitted
   * transaction is not given out again). rv6 has no permissions, so this grants nothing a path
   * would not.
   */
  reopen(ino: number, flags: number): Promise<number>;
  /** 0 or -errno. Calls of the file in flight complete first (the inode is released after them); new ones get -EBADF. */
  close(file: number): Promise<number>;
  read(file: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>>;
  /** Write `n` bytes at `off` (off < 0: at the end, atomically); bytes written or -errno. */
  write(file: number, off: number, data: Borrow<RRefArray<u8>>, n: number): Promise<number>;
  fstat(file: number): Promise<RRef<StatBuf>>;
  stat(path: string, cwd: number): Promise<RRef<StatBuf>>;
  getdents(file: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>>;
  link(oldPath: string, newPath: string, cwd: number): Promise<number>;
  unlink(path: string, cwd: number): Promise<number>;
  /** rename(2) in one transaction (see Rv6.rename); 0 or -errno. */
  rename(oldPath: string, newPath: string, cwd: number): Promise<number>;
  mkdir(path: string, cwd: number): Promise<number>;
  rmdir(path: string, cwd: number): Promise<number>;
  mknod(path: string, major: number, minor: number, cwd: number): Promise<number>;
  /** Make everything written so far durable; 0 or -errno. */
  sync(): Promise<number>;
  /** Sync and unmount; 0 or -errno. No call but mount is valid afterwards. */
  unmount(): Promise<number>;
}

/** The rv6 core's interface to the host (the `redleaf boot` console and tests). */
export interface Rv6Boot {
  /** Mount the fs and start init (pid 1) from `path` with `argv`; 0 or -errno. */
  boot(path: string, argv: string): Promise<number>;
  /** Resolves with init's exit status when init exits (after boot). */
  waitInit(): Promise<number>;
  /** Bytes typed at the console (canonical mode: whole lines ending in '\n', or any text). */
  consoleInput(text: string): void;
  /** Ctrl-D: the console's pending or next read returns 0 (end of file). */
  consoleEof(): void;
  /**
   * The console's input ended for good (the host's stdin was a pipe or file that ended, or the
   * terminal hung up): what was typed stays readable, then every read returns 0 (end of file).
   */
  consoleHangup(): void;
  /** Ctrl-C: terminate the console's foreground process group (status STATUS_INTERRUPTED). */
  consoleInterrupt(): void;
  /** Terminate every process, sync and unmount the fs; 0 or -errno. */
  shutdown(): Promise<number>;
}
