/**
 * File system calls (xv6's sysfile.c): argument checks, descriptor lookups, and the calls that
 * name paths, which go to the fs domain relative to the caller's current directory.
 *
 * Every call answers for the program image that made it (`img`); an image that is no longer its
 * process's running program (the process is ending, or exec'ed another program) gets EINTR.
 *
 * Decisions (errno on failure, as POSIX/Linux):
 *  - a descriptor that is not open, or not open for the direction asked: EBADF; lseek on a pipe
 *    or the console: ESPIPE; read or write on a directory: EISDIR; getdents on anything but a
 *    directory: ENOTDIR; open of a device whose major is not the console: ENXIO;
 *  - a size that is negative, not an integer or larger than the buffer, unknown open flags, or
 *    O_RDWR|O_WRONLY together: EINVAL; an empty path: ENOENT (the rest — missing names, long
 *    names, non-directories in a path, EEXIST, ENOTEMPTY — is the fs domain's answer);
 *  - a read or getdents buffer is moved in and always moved back, with `n` the result.
 */
import {
  DEV_CONSOLE, ERRNO, O_APPEND, O_CREATE, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, T_DEVICE, T_DIR,
  type FdPair, type IoBuf, type StatBuf,
} from '../../interfaces/rv6.js';
import type { Borrow, RRef, RRefArray } from '../../runtime/types.js';
import type { Ctx } from './ctx.js';
import { ConsoleFile, DirRef, InodeFile, PipeFile, releaseFile, type OpenFile } from './file.js';
import { resolvePath, type Cwd } from './fsclient.js';
import { Pipe } from './pipe.js';
import type { Image } from './proc.js';

const EINTR = -ERRNO.EINTR;
const KNOWN_FLAGS = O_WRONLY | O_RDWR | O_CREATE | O_TRUNC | O_EXCL | O_APPEND;

const isCount = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

export class FileSyscalls {
  /** The paths chdir calls in flight will give their new current directory (renames update them, `moved`). */
  private readonly chdirs = new Set<{ path: string }>();

  constructor(private readonly ctx: Ctx) {}

  /** Run `op` with the caller's current directory held (a concurrent chdir cannot close it). */
  private async inCwd<T>(img: Image, op: (cwd: DirRef) => Promise<T>): Promise<T> {
    const cwd = img.proc.cwd.hold();
    try {
      return await op(cwd);
    } finally {
      await cwd.release(this.ctx.fs);
    }
  }

  /** Give `f` a descriptor of the caller, or release it (the caller ended meanwhile, or EMFILE). */
  private async install(img: Image, f: OpenFile): Promise<number> {
    const fd = img.live ? img.proc.fds.install(f) : EINTR;
    if (fd < 0) await releaseFile(f);
    return fd;
  }

  async open(img: Image, path: string, flags: number): Promise<number> {
    if (!img.live) return EINTR;
    if (!Number.isInteger(flags) || (flags & ~KNOWN_FLAGS) !== 0 || (flags & (O_WRONLY | O_RDWR)) === (O_WRONLY | O_RDWR)) return -ERRNO.EINVAL;
    if (path === '') return -ERRNO.ENOENT;
    const { fs } = this.ctx;
    const file = await this.inCwd(img, (cwd) => fs.open(path, flags & ~O_APPEND, cwd));
    if (file < 0) return file;
    const t = await fs.typeOf(file);
    if (t.err < 0 || (t.type === T_DEVICE && t.major !== DEV_CONSOLE)) {
      await fs.close(file);
      return t.err < 0 ? t.err : -ERRNO.ENXIO;
    }
    const readable = (flags & O_WRONLY) === 0;
    const writable = (flags & (O_WRONLY | O_RDWR)) !== 0;
    const f =
      t.type === T_DEVICE
        ? new ConsoleFile(fs, this.ctx.console, file, readable, writable)
        : new InodeFile(fs, file, t.type, readable, writable, (flags & O_APPEND) !== 0);
    return this.install(img, f);
  }

  /** The error of a read/getdents buffer, or 0 if it is well-formed. */
  private static ioError(io: RRef<IoBuf>): number {
    const data = io.data;
    const n = io.n;
    return data !== null && isCount(n) && n <= data.byteLength ? 0 : -ERRNO.EINVAL;
  }

  // Not async: the file's read is the answer (one promise fewer per call).
  read(img: Image, fd: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    const f = img.proc.fds.get(fd);
    // A file's buffer is checked by the fs, which answers EINVAL for a bad one as ioError does.
    if (f !== null && f.kind === 'inode' && f.readable && !f.isDir && img.live) return f.read(io);
    const err = !img.live ? EINTR : FileSyscalls.ioError(io) || (f === null || !f.readable ? -ERRNO.EBADF : f.kind === 'inode' && f.isDir ? -ERRNO.EISDIR : 0);
    if (err < 0) {
      io.n = err;
      return Promise.resolve(io);
    }
    return f!.read(io, img.scope, img.proc.pgid);
  }

  // Not async either: the file's write is the answer.
  write(img: Image, fd: number, data: Borrow<RRefArray<number>>, n: number): Promise<number> {
    const f = img.proc.fds.get(fd);
    const err = !img.live ? EINTR : !isCount(n) || n > data.byteLength ? -ERRNO.EINVAL : f === null || !f.writable ? -ERRNO.EBADF : f.kind === 'inode' && f.isDir ? -ERRNO.EISDIR : 0;
    return err < 0 ? Promise.resolve(err) : f!.write(data, n, img.scope);
  }

  async close(img: Image, fd: number): Promise<number> {
    if (!img.live) return EINTR;
    const f = img.proc.fds.remove(fd);
    if (f === null) return -ERRNO.EBADF;
    await releaseFile(f);
    return 0;
  }

  async lseek(img: Image, fd: number, offset: number, whence: number): Promise<number> {
    if (!img.live) return EINTR;
    const f = img.proc.fds.get(fd);
    if (f === null) return -ERRNO.EBADF;
    if (!Number.isSafeInteger(offset)) return -ERRNO.EINVAL;
    return f.lseek(offset, whence);
  }

  async fstat(img: Image, fd: number): Promise<RRef<StatBuf>> {
    const f = img.proc.fds.get(fd);
    if (!img.live || f === null) return this.ctx.fs.newStat(img.live ? -ERRNO.EBADF : EINTR);
    return f.fstat();
  }

  async stat(img: Image, path: string): Promise<RRef<StatBuf>> {
    if (!img.live || path === '') return this.ctx.fs.newStat(img.live ? -ERRNO.ENOENT : EINTR);
    return this.inCwd(img, (cwd) => this.ctx.fs.stat(path, cwd));
  }

  async getdents(img: Image, fd: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    const f = img.proc.fds.get(fd);
    const err = !img.live ? EINTR : FileSyscalls.ioError(io) || (f === null ? -ERRNO.EBADF : f.kind !== 'inode' || !f.isDir ? -ERRNO.ENOTDIR : 0);
    if (err < 0) {
      io.n = err;
      return io;
    }
    return this.ctx.fs.getdents((f as InodeFile).file, io);
  }

  async dup(img: Image, fd: number): Promise<number> {
    if (!img.live) return EINTR;
    const f = img.proc.fds.get(fd);
    if (f === null) return -ERRNO.EBADF;
    f.refs++;
    const nfd = img.proc.fds.install(f);
    if (nfd < 0) f.refs--;
    return nfd;
  }

  async pipe(img: Image): Promise<RRef<FdPair>> {
    const r = this.ctx.sys.alloc.struct<FdPair>('FdPair');
    if (!img.live) r.err = EINTR;
    else if (img.proc.fds.free < 2) r.err = -ERRNO.EMFILE;
    else {
      const pipe = new Pipe();
      r.rfd = img.proc.fds.install(new PipeFile(this.ctx.fs, pipe, false));
      r.wfd = img.proc.fds.install(new PipeFile(this.ctx.fs, pipe, true));
    }
    return r;
  }

  /** A call on one path (unlink, mkdir, rmdir). */
  private async onPath(img: Image, path: string, op: (path: string, cwd: Cwd) => Promise<number>): Promise<number> {
    if (!img.live) return EINTR;
    if (path === '') return -ERRNO.ENOENT;
    return this.inCwd(img, (cwd) => op(path, cwd));
  }

  /** A call on two paths (link, rename): an empty one is ENOENT too. */
  private onPaths(img: Image, oldPath: string, newPath: string, op: (oldPath: string, newPath: string, cwd: Cwd) => Promise<number>): Promise<number> {
    return this.onPath(img, oldPath, (p, cwd) => (newPath === '' ? Promise.resolve(-ERRNO.ENOENT) : op(p, newPath, cwd)));
  }

  link(img: Image, oldPath: string, newPath: string): Promise<number> {
    return this.onPaths(img, oldPath, newPath, (p, np, cwd) => this.ctx.fs.link(p, np, cwd));
  }

  unlink(img: Image, path: string): Promise<number> {
    return this.onPath(img, path, (p, cwd) => this.ctx.fs.unlink(p, cwd));
  }

  rename(img: Image, oldPath: string, newPath: string): Promise<number> {
    return this.onPaths(img, oldPath, newPath, async (p, np, cwd) => {
      const r = await this.ctx.fs.rename(p, np, cwd);
      if (r === 0) this.moved(resolvePath(cwd.path, p), resolvePath(cwd.path, np));
      return r;
    });
  }

  /**
   * After `from` was renamed `to`: every current directory at or below `from` gets its new path
   * (getcwd answers the path the core keeps, and a recovery of the fs domain may resolve by it).
   * Paths resolve lexically, which is exact here: no symbolic links, and one parent per directory.
   */
  private moved(from: string, to: string): void {
    const cwds = new Set<{ path: string }>(this.ctx.procs.all().map((p) => p.cwd));
    for (const d of this.chdirs) cwds.add(d);
    for (const d of cwds) {
      if (d.path === from || d.path.startsWith(`${from}/`)) d.path = to + d.path.slice(from.length);
    }
  }

  mkdir(img: Image, path: string): Promise<number> {
    return this.onPath(img, path, (p, cwd) => this.ctx.fs.mkdir(p, cwd));
  }

  rmdir(img: Image, path: string): Promise<number> {
    return this.onPath(img, path, (p, cwd) => this.ctx.fs.rmdir(p, cwd));
  }

  mknod(img: Image, path: string, major: number, minor: number): Promise<number> {
    const isDevNum = (x: number): boolean => Number.isInteger(x) && x >= 0 && x <= 0xffff;
    if (!isDevNum(major) || !isDevNum(minor)) return Promise.resolve(img.live ? -ERRNO.EINVAL : EINTR);
    return this.onPath(img, path, (p, cwd) => this.ctx.fs.mknod(p, major, minor, cwd));
  }

  async chdir(img: Image, path: string): Promise<number> {
    if (!img.live) return EINTR;
    if (path === '') return -ERRNO.ENOENT;
    const { fs } = this.ctx;
    // Its path is worked out now and follows the renames that end while the directory is being
    // opened and checked (`moved`): taken after them, `cd sub` racing `mv /a /b` kept `/a/sub`.
    const to = { path: resolvePath(img.proc.cwd.path, path) };
    this.chdirs.add(to);
    let file: number;
    try {
      file = await this.inCwd(img, (cwd) => fs.open(path, O_RDONLY, cwd));
      if (file < 0) return file;
      const t = await fs.typeOf(file);
      const err = t.err < 0 ? t.err : t.type !== T_DIR ? -ERRNO.ENOTDIR : !img.live ? EINTR : 0;
      if (err < 0) {
        await fs.close(file);
        return err;
      }
    } finally {
      this.chdirs.delete(to);
    }
    const old = img.proc.cwd;
    img.proc.cwd = new DirRef(file, to.path);
    await old.release(fs);
    return 0;
  }

  async getcwd(img: Image): Promise<string> {
    return img.proc.cwd.path;
  }
}
