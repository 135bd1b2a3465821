/**
 * The core's side of the fs domain: the Rv6Fs proxy with its one failure mode turned into an
 * errno. A call into a crashed fs domain rejects with an RpcError; every method here answers
 * -EIO instead (and logs the first such failure), so a system call never throws because of the fs.
 *
 * Invariant: a method returning an RRef always returns one — when the fs died holding the buffer
 * that was moved to it, a fresh one with no data and the error set takes its place (the caller's
 * data buffer went down with the fs domain).
 */
import { ERRNO, type IoBuf, type Rv6Fs, type StatBuf } from '../../interfaces/rv6.js';
import type { Sys } from '../../runtime/sys.js';
import type { Borrow, RRef, RRefArray } from '../../runtime/types.js';

export class FsClient {
  private reported = false;

  constructor(
    private readonly fs: Rv6Fs,
    private readonly sys: Sys,
  ) {}

  /** A zeroed StatBuf owned by the core. */
  newStat(err = 0): RRef<StatBuf> {
    const st = this.sys.alloc.struct<StatBuf>('StatBuf');
    st.err = err;
    return st;
  }

  private failed(e: unknown, what: string): number {
    const kind = this.sys.rpcErrorKind(e);
    if (kind === null) throw e; // not the fs failing: a bug of the core, let it panic
    if (!this.reported) {
      this.reported = true;
      this.sys.log(`fs domain failed (${kind}) in ${what}: file-system calls return EIO`);
    }
    return -ERRNO.EIO;
  }

  private async numCall(what: string, call: () => Promise<number>): Promise<number> {
    try {
      return await call();
    } catch (e) {
      return this.failed(e, what);
    }
  }

  private async ioCall(what: string, call: () => Promise<RRef<IoBuf>>): Promise<RRef<IoBuf>> {
    try {
      return await call();
    } catch (e) {
      return this.failedIo(e, what);
    }
  }

  /** The IoBuf to answer when the call moving one to the fs failed (the fs kept it). */
  private failedIo(e: unknown, what: string): RRef<IoBuf> {
    const err = this.failed(e, what);
    const io = this.sys.alloc.struct<IoBuf>('IoBuf');
    io.n = err;
    return io;
  }

  private async statCall(what: string, call: () => Promise<RRef<StatBuf>>): Promise<RRef<StatBuf>> {
    try {
      return await call();
    } catch (e) {
      return this.newStat(this.failed(e, what));
    }
  }

  mount(): Promise<number> {
    return this.numCall('mount', () => this.fs.mount());
  }
  open(path: string, flags: number, cwd: number): Promise<number> {
    return this.numCall('open', () => this.fs.open(path, flags, cwd));
  }
  close(file: number): Promise<number> {
    return this.numCall('close', () => this.fs.close(file));
  }
  // read and write, the hot calls, without the helpers' closures or an async frame.
  read(file: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    return this.fs.read(file, io).then(undefined, this.readFailed);
  }
  private readonly readFailed = (e: unknown): RRef<IoBuf> => this.failedIo(e, 'read');
  write(file: number, off: number, data: Borrow<RRefArray<number>>, n: number): Promise<number> {
    return this.fs.write(file, off, data, n).then(undefined, this.writeFailed);
  }
  private readonly writeFailed = (e: unknown): number => this.failed(e, 'write');
  fstat(file: number): Promise<RRef<StatBuf>> {
    return this.statCall('fstat', () => this.fs.fstat(file));
  }
  stat(path: string, cwd: number): Promise<RRef<StatBuf>> {
    return this.statCall('stat', () => this.fs.stat(path, cwd));
  }
  getdents(file: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    return this.ioCall('getdents', () => this.fs.getdents(file, io));
  }
  link(oldPath: string, newPath: string, cwd: number): Promise<number> {
    return this.numCall('link', () => this.fs.link(oldPath, newPath, cwd));
  }
  unlink(path: string, cwd: number): Promise<number> {
    return this.numCall('unlink', () => this.fs.unlink(path, cwd));
  }
  mkdir(path: string, cwd: number): Promise<number> {
    return this.numCall('mkdir', () => this.fs.mkdir(path, cwd));
  }
  rmdir(path: string, cwd: number): Promise<number> {
    return this.numCall('rmdir', () => this.fs.rmdir(path, cwd));
  }
  mknod(path: string, major: number, minor: number, cwd: number): Promise<number> {
    return this.numCall('mknod', () => this.fs.mknod(path, major, minor, cwd));
  }
  sync(): Promise<number> {
    return this.numCall('sync', () => this.fs.sync());
  }
  unmount(): Promise<number> {
    return this.numCall('unmount', () => this.fs.unmount());
  }

  /** The type and size of an open file (fstat, read and dropped); err < 0 on failure. */
  async typeOf(file: number): Promise<{ err: number; type: number; size: number; major: number }> {
    const st = await this.fstat(file);
    const r = { err: st.err, type: st.type, size: st.size, major: st.major };
    st.drop();
    return r;
  }
}
