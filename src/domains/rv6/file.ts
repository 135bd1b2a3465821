/**
 * The file layer (xv6's file.c): open-file objects, per-process file descriptor tables, and the
 * shared reference to a current directory.
 *
 * An open file is what open() or pipe() created: a kind (an inode of the fs domain, one end of a
 * pipe, or the console), its access mode and — for inodes — the offset. Descriptors name open
 * files; dup() and spawn's inheritance make several descriptors (in one or several processes)
 * share one open file and its offset, as on Unix.
 *
 * Invariants:
 *  - `refs` counts the descriptors (in every table) naming the open file; it is closed (the fs
 *    file id closed, the pipe end closed) exactly once, when the last one goes;
 *  - reads, writes and seeks of one inode file run one at a time, so a shared offset is never
 *    read and advanced by two calls at once;
 *  - a table that was closed (its process ended) refuses new entries: a system call that finishes
 *    after its process ended cannot leak an open file into it.
 */
import { ERRNO, SEEK_CUR, SEEK_END, SEEK_SET, T_DIR, type IoBuf, type StatBuf } from '../../interfaces/rv6.js';
import type { Borrow, RRef, RRefArray } from '../../runtime/types.js';
import type { CancelScope } from './block.js';
import type { Console } from './console.js';
import type { FsClient } from './fsclient.js';
import type { CopyIn, CopyOut, Pipe } from './pipe.js';

/** Descriptors per process. */
export const NOFILE = 64;

/** Runs async operations one after the other, in call order (a sleep-lock); an idle one starts `op` at once. */
class Serial {
  private busy = false;
  private readonly waiting: Array<() => void> = [];
  async run<T>(op: () => Promise<T>): Promise<T> {
    if (!this.tryEnter()) await this.enter();
    try {
      return await op();
    } finally {
      this.leave();
    }
  }
  /** Take the lock if it is free (then the caller must leave()). */
  tryEnter(): boolean {
    if (this.busy) return false;
    this.busy = true;
    return true;
  }
  /** Wait for the lock (after tryEnter failed); the caller must leave(). */
  enter(): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  leave(): void {
    // Hand over to the next caller (busy stays true), or go idle.
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.busy = false;
  }
}

/** Copy functions between a pipe/console buffer and an exchange-heap byte array. */
export function copyInFrom(data: RRefArray<number>): CopyIn {
  return (ring, ringOff, srcOff, len) => data.read(srcOff, ring, ringOff, len);
}
export function copyOutTo(data: RRefArray<number>): CopyOut {
  return (buf, bufOff, dstOff, len) => data.write(dstOff, buf, bufOff, len);
}

abstract class FileBase {
  refs = 1;
  constructor(
    readonly readable: boolean,
    readonly writable: boolean,
  ) {}
  /**
   * Fill `io.data` (n = bytes wanted, already validated); the io with n set. `group` is the
   * reading process's group (the console serves only its foreground group).
   */
  abstract read(io: RRef<IoBuf>, scope: CancelScope, group: number): Promise<RRef<IoBuf>>;
  abstract write(data: Borrow<RRefArray<number>>, n: number, scope: CancelScope): Promise<number>;
  abstract lseek(offset: number, whence: number): Promise<number>;
  abstract fstat(): Promise<RRef<StatBuf>>;
  /** Release what the open file holds (its last descriptor went). */
  abstract close(): Promise<void>;
}

/** A file or directory of the fs domain. */
export class InodeFile extends FileBase {
  readonly kind = 'inode';
  off = 0;
  private readonly serial = new Serial();

  constructor(
    private readonly fs: FsClient,
    readonly file: number,
    readonly type: number,
    readable: boolean,
    writable: boolean,
    private readonly append: boolean,
  ) {
    super(readable, writable);
  }

  get isDir(): boolean {
    return this.type === T_DIR;
  }

  // The hot calls, read and write, without Serial.run's closure.
  async read(io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    if (!this.serial.tryEnter()) await this.serial.enter();
    try {
      io.off = this.off;
      const back = await this.fs.read(this.file, io);
      const n = back.n;
      if (n > 0) this.off += n;
      return back;
    } finally {
      this.serial.leave();
    }
  }

  async write(data: Borrow<RRefArray<number>>, n: number): Promise<number> {
    if (!this.serial.tryEnter()) await this.serial.enter();
    try {
      // O_APPEND: the fs appends atomically at the end (offset -1); the offset then follows the end.
      const r = await this.fs.write(this.file, this.append ? -1 : this.off, data, n);
      if (r > 0) {
        if (!this.append) this.off += r;
        else {
          const t = await this.fs.typeOf(this.file);
          if (t.err === 0) this.off = t.size;
        }
      }
      return r;
    } finally {
      this.serial.leave();
    }
  }

  lseek(offset: number, whence: number): Promise<number> {
    return this.serial.run(async () => {
      let base: number;
      if (whence === SEEK_SET) base = 0;
      else if (whence === SEEK_CUR) base = this.off;
      else if (whence === SEEK_END) {
        const t = await this.fs.typeOf(this.file);
        if (t.err < 0) return t.err;
        base = t.size;
      } else return -ERRNO.EINVAL;
      const to = base + offset;
      if (!Number.isSafeInteger(to) || to < 0) return -ERRNO.EINVAL;
      this.off = to;
      return to;
    });
  }

  fstat(): Promise<RRef<StatBuf>> {
    return this.fs.fstat(this.file);
  }

  async close(): Promise<void> {
    await this.fs.close(this.file);
  }
}

/** One end of a pipe. */
export class PipeFile extends FileBase {
  readonly kind = 'pipe';

  constructor(
    private readonly fs: FsClient,
    readonly pipe: Pipe,
    writeEnd: boolean,
  ) {
    super(!writeEnd, writeEnd);
  }

  async read(io: RRef<IoBuf>, scope: CancelScope): Promise<RRef<IoBuf>> {
    io.n = await this.pipe.read(io.n, copyOutTo(io.data!), scope);
    return io;
  }

  async write(data: Borrow<RRefArray<number>>, n: number, scope: CancelScope): Promise<number> {
    return this.pipe.write(n, copyInFrom(data), scope);
  }

  async lseek(): Promise<number> {
    return -ERRNO.ESPIPE;
  }

  /** A pipe has no inode: type 0, device 0, size = bytes buffered. */
  async fstat(): Promise<RRef<StatBuf>> {
    const st = this.fs.newStat();
    st.size = this.pipe.buffered;
    return st;
  }

  async close(): Promise<void> {
    if (this.writable) this.pipe.closeWrite();
    else this.pipe.closeRead();
  }
}

/** The console, opened through a device inode with major DEV_CONSOLE (its fs file id kept for fstat). */
export class ConsoleFile extends FileBase {
  readonly kind = 'console';

  constructor(
    private readonly fs: FsClient,
    private readonly cons: Console,
    readonly file: number,
    readable: boolean,
    writable: boolean,
  ) {
    super(readable, writable);
  }

  async read(io: RRef<IoBuf>, scope: CancelScope, group: number): Promise<RRef<IoBuf>> {
    io.n = await this.cons.read(io.n, copyOutTo(io.data!), group, scope, -ERRNO.EINTR);
    return io;
  }

  async write(data: Borrow<RRefArray<number>>, n: number): Promise<number> {
    const bytes = new Uint8Array(n);
    data.read(0, bytes, 0, n);
    this.cons.write(bytes);
    return n;
  }

  async lseek(): Promise<number> {
    return -ERRNO.ESPIPE;
  }

  fstat(): Promise<RRef<StatBuf>> {
    return this.fs.fstat(this.file);
  }

  async close(): Promise<void> {
    await this.fs.close(this.file);
  }
}

export type OpenFile = InodeFile | PipeFile | ConsoleFile;

/** Drop one reference; the last one closes the open file. */
export function releaseFile(f: OpenFile): Promise<void> {
  if (--f.refs > 0) return Promise.resolve();
  return f.close();
}

/** A process's descriptors: fd → open file. */
export class FdTable {
  private readonly slots: (OpenFile | null)[] = [];
  private closed = false;

  /** The open file of `fd`, or null when `fd` is not an open descriptor (any value is accepted). */
  get(fd: number): OpenFile | null {
    if (!Number.isInteger(fd) || fd < 0 || fd >= this.slots.length) return null;
    return this.slots[fd] ?? null;
  }

  /** Give `f` (one reference, owned by the caller) the lowest free descriptor; the fd or -EMFILE. */
  install(f: OpenFile): number {
    if (this.closed) return -ERRNO.EBADF;
    for (let fd = 0; fd < NOFILE; fd++) {
      if ((this.slots[fd] ?? null) === null) {
        this.slots[fd] = f;
        return fd;
      }
    }
    return -ERRNO.EMFILE;
  }

  /** Make `fd` name `f` (a new reference is taken); for a new process's first descriptors. */
  share(fd: number, f: OpenFile): void {
    f.refs++;
    this.slots[fd] = f;
  }

  /** Free descriptors left (pipe() needs two). */
  get free(): number {
    let n = 0;
    for (let fd = 0; fd < NOFILE; fd++) if ((this.slots[fd] ?? null) === null) n++;
    return this.closed ? 0 : n;
  }

  /** Unname `fd`; its open file (the caller releases it), or null if it was not open. */
  remove(fd: number): OpenFile | null {
    const f = this.get(fd);
    if (f !== null) this.slots[fd] = null;
    return f;
  }

  /** Close every descriptor (the process ended); pipes are closed before this returns. */
  closeAll(): Promise<void> {
    this.closed = true;
    const closing: Promise<void>[] = [];
    for (let fd = 0; fd < this.slots.length; fd++) {
      const f = this.slots[fd];
      if (f) closing.push(releaseFile(f));
      this.slots[fd] = null;
    }
    return Promise.all(closing).then(() => undefined);
  }
}

/**
 * A current directory: an open directory of the fs domain (file id 0 is the root, never closed)
 * and its absolute path, shared by a process and the children it spawned until one of them chdirs.
 * The path follows renames of the directory or of one above it (FileSyscalls.rename).
 */
export class DirRef {
  refs = 1;
  constructor(
    readonly file: number,
    public path: string,
  ) {}

  hold(): DirRef {
    this.refs++;
    return this;
  }

  async release(fs: FsClient): Promise<void> {
    if (--this.refs === 0 && this.file !== 0) await fs.close(this.file);
  }
}

