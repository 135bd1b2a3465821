/**
 * The core's side of the fs domain: the Rv6Fs proxy, with the fs domain's crash turned into an
 * errno and a restart, so that a system call never throws because of the fs.
 *
 * Recovery. A call that finds the fs domain dead (an RpcError) answers -EIO, and the first such
 * failure of the current instance starts a recovery: the kernel restarts the fs domain once the
 * dead instance's block I/O has landed (ProgramLoader.restartFs), and the new instance mounts the
 * disk, replaying its log, as after a power cut: what the dead instance had committed is on disk,
 * what it had not is lost. Calls made meanwhile wait for the recovery, then go to the new
 * instance; a path lookup the crash failed (open without O_EXCL, stat: doing it twice ends the same
 * as doing it once) is made again on the new instance, so that, for example, the exec that met
 * the crash still runs its program. Files open on the dead instance are reopened on the new one
 * when next used, by the absolute path and access mode they were opened with, if that path still
 * names the same file: the same inode number (fstat's, recorded when the core checked the file
 * after its open), and no unlink or rmdir of that path since the recovery (an inode number freed
 * then is given to the next file made). Offsets are the core's, so reads and writes go on where
 * they were. A file whose path is gone or names another file now answers -EIO instead (close
 * answers 0: the file is gone anyway). Current directories need no reopening:
 * the core keeps every current directory's absolute path (getcwd is lexical, file.ts), so a path
 * relative to one goes to the new instance as that absolute path.
 * Recovery gives up, and
 * every call answers -EIO, when the restart or the mount fails, or after MAX_RECOVERIES within
 * RECOVERY_WINDOW_MS (an fs that crashes on its own image would crash again).
 *
 * Invariants: the core's file ids are the current instance's plus `base`, and a recovery raises
 * `base` to the highest id handed out, so an id of a dead instance never names a file of a live
 * one except through `reopened`, which a recovery empties, and only after the inode check; a
 * failure is blamed on the instance the call went to (`epoch`), so a late failure
 * of a dead instance never restarts a live one; a method returning an RRef always returns one —
 * when the fs died holding the buffer that was moved to it, a fresh one with no data and the
 * error set takes its place (the caller's data buffer went down with the fs domain).
 */
import { ERRNO, O_EXCL, type IoBuf, type Rv6Fs, type StatBuf } from '../../interfaces/rv6.js';
import type { ProgramLoader } from '../../runtime/rv6host.js';
import type { Sys } from '../../runtime/sys.js';
import type { Borrow, RRef, RRefArray } from '../../runtime/types.js';

/** Recoveries allowed within RECOVERY_WINDOW_MS before the client gives up. */
const MAX_RECOVERIES = 3;
const RECOVERY_WINDOW_MS = 10_000;
/** A current directory as the core holds it (file.ts DirRef): its fs file id (0: the root) and absolute path. */
export interface Cwd {
  readonly file: number;
  readonly path: string;
}

/** The absolute path `path` names from directory `cwd` (lexically: rv6 has no symbolic links, and a directory has one parent). */
export function resolvePath(cwd: string, path: string): string {
  const parts = path.startsWith('/') ? [] : cwd.split('/').filter((p) => p !== '');
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return '/' + parts.join('/');
}

/** What reopening a file on a new instance needs: where and how it was opened, and its inode. */
interface OpenRecord {
  readonly path: string;
  /** O_RDONLY, O_WRONLY or O_RDWR. */
  readonly mode: number;
  /** Its inode number, from the first fstat after the open (0: not known, so not reopened). */
  ino: number;
}

/** The access-mode bits of open flags. */
const O_ACCMODE = 3;

/** The rejection handlers of the hot calls for one fs instance (made once per instance, not per call). */
interface Handlers {
  readonly readFailed: (e: unknown) => RRef<IoBuf>;
  readonly writeFailed: (e: unknown) => number;
}

export class FsClient {
  private fs: Rv6Fs;
  /** Instances so far: a failure counts only against the instance it came from. */
  private epoch = 0;
  private on: Handlers;
  /** Core file id = the current instance's id + base; ids <= base are stale. */
  private base = 0;
  /** The highest core file id handed out. */
  private highest = 0;
  private recovery: Promise<void> | null = null;
  /** Every file the core has open, by its core id. */
  private readonly opened = new Map<number, OpenRecord>();
  /** Core ids of dead instances' files reopened on the current one: its ids. */
  private readonly reopened = new Map<number, number>();
  /** Reopens under way (one per file, whoever asks). */
  private readonly reopening = new Map<number, Promise<number>>();
  /** When the recent recoveries started (sys.now()). */
  private readonly recoveries: number[] = [];
  private givenUp = false;

  constructor(
    fs: Rv6Fs,
    private readonly loader: ProgramLoader,
    private readonly sys: Sys,
  ) {
    this.fs = fs;
    this.on = this.handlers(0);
  }

  /** A zeroed StatBuf owned by the core. */
  newStat(err = 0): RRef<StatBuf> {
    const st = this.sys.alloc.struct<StatBuf>('StatBuf');
    st.err = err;
    return st;
  }

  // ---- failures and recovery --------------------------------------------------------------------

  private handlers(epoch: number): Handlers {
    return {
      readFailed: (e) => this.failedIo(epoch, e, 'read'),
      writeFailed: (e) => this.failed(epoch, e, 'write'),
    };
  }

  /** A call to instance `epoch` failed with `e`: -EIO, and a recovery if that instance is the current one. */
  private failed(epoch: number, e: unknown, what: string): number {
    const kind = this.sys.rpcErrorKind(e);
    if (kind === null) throw e; // not the fs failing: a bug of the core, let it panic
    if (epoch === this.epoch && this.recovery === null && !this.givenUp) this.recover(kind, what);
    return -ERRNO.EIO;
  }

  private recover(kind: string, what: string): void {
    const now = this.sys.now();
    while (this.recoveries.length > 0 && now - this.recoveries[0]! > RECOVERY_WINDOW_MS) this.recoveries.shift();
    if (this.recoveries.length >= MAX_RECOVERIES) {
      this.giveUp(`fs domain failed (${kind}) in ${what}, its ${MAX_RECOVERIES + 1}th failure within ${RECOVERY_WINDOW_MS / 1000} s`);
      return;
    }
    this.recoveries.push(now);
    this.sys.log(`fs domain failed (${kind}) in ${what}: restarting it`);
    this.recovery = this.restart().finally(() => {
      this.recovery = null;
    });
  }

  private async restart(): Promise<void> {
    let fs: Rv6Fs | string;
    try {
      fs = await this.loader.restartFs();
    } catch (e) {
      fs = this.sys.rpcErrorKind(e) ?? String(e);
    }
    if (typeof fs === 'string') return this.giveUp(`the fs domain could not be restarted: ${fs}`);
    let mounted: number;
    try {
      mounted = await fs.mount();
    } catch {
      mounted = -ERRNO.EIO; // the new instance died mounting
    }
    if (mounted < 0) return this.giveUp(`the restarted fs domain could not mount the disk (${mounted})`);
    this.fs = fs;
    this.epoch++;
    this.on = this.handlers(this.epoch);
    this.base = this.highest;
    this.reopened.clear();
    this.reopening.clear();
    this.sys.log('fs domain restarted and its log replayed: open files are reopened by path when next used');
  }

  private giveUp(why: string): void {
    this.givenUp = true;
    this.sys.log(`${why}: file-system calls return EIO`);
  }

  // ---- ids ----------------------------------------------------------------------------------------

  /** The current instance's id for core file id `file`, or 0 if it has none (yet). */
  private idOf(file: number): number {
    return file > this.base ? file - this.base : (this.reopened.get(file) ?? 0);
  }

  /**
   * `call` with instance `fs`'s id for core file id `file` (reopening it if need be), or `stale`
   * if it has none there (or a recovery replaced `fs` while the file was reopened).
   */
  private async onFile<T>(fs: Rv6Fs, file: number, stale: () => T | Promise<T>, call: (id: number) => Promise<T>): Promise<T> {
    let id = this.idOf(file);
    if (id === 0) id = await this.reopen(file);
    return id === 0 || this.fs !== fs ? stale() : call(id);
  }

  /** A path was unlinked or removed on the current instance: a dead instance's file opened by it is not reopened. */
  private forget(path: string): void {
    if (this.base === 0) return; // no recovery yet: nothing to reopen
    for (const [file, rec] of this.opened) if (file <= this.base && !this.reopened.has(file) && rec.path === path) rec.ino = 0;
  }

  /** Reopen a file of a dead instance on the current one (see the header); its id there, or 0. */
  private reopen(file: number): Promise<number> {
    let r = this.reopening.get(file);
    if (r === undefined) {
      r = this.reopenOnce(file);
      this.reopening.set(file, r);
    }
    return r;
  }

  private async reopenOnce(file: number): Promise<number> {
    const rec = this.opened.get(file);
    if (rec === undefined || rec.ino === 0) return 0;
    const { fs, epoch } = this;
    const id = await fs.open(rec.path, rec.mode, 0);
    if (id <= 0) return 0;
    const st = await fs.fstat(id);
    const same = st.err === 0 && st.ino === rec.ino;
    st.drop();
    if (!same || this.epoch !== epoch) {
      if (this.epoch === epoch) await fs.close(id);
      return 0;
    }
    this.reopened.set(file, id);
    return id;
  }

  /** Is `cwd` a directory of a dead instance? */
  private stale(cwd: Cwd): boolean {
    return cwd.file !== 0 && cwd.file <= this.base;
  }

  /** The current instance's cwd id for `cwd`, 0 (the root) for a stale one. */
  private cwdId(cwd: Cwd): number {
    return cwd.file > this.base ? cwd.file - this.base : 0;
  }

  /** `path` as the current instance takes it from `cwd`: a stale cwd's relative paths made absolute. */
  private pathFrom(cwd: Cwd, path: string): string {
    return this.stale(cwd) ? resolvePath(cwd.path, path) : path;
  }

  // ---- calls ----------------------------------------------------------------------------------------

  /**
   * A call to the fs domain: waits for a recovery under way; if the call fails, `answer(-EIO)`, or,
   * if `again` and the failure's recovery brings a new instance, the call made once more there.
   */
  private async guarded<T>(what: string, call: (fs: Rv6Fs) => Promise<T>, answer: (err: number) => T, again = false): Promise<T> {
    if (this.recovery !== null) await this.recovery;
    const epoch = this.epoch;
    try {
      return await call(this.fs);
    } catch (e) {
      const err = this.failed(epoch, e, what);
      if (!again || this.recovery === null) return answer(err);
      await this.recovery;
      return this.epoch === epoch ? answer(err) : this.guarded(what, call, answer);
    }
  }

  private numCall(what: string, call: (fs: Rv6Fs) => Promise<number>, again = false): Promise<number> {
    return this.guarded(what, call, (err) => err, again);
  }

  /** The IoBuf to answer when the call moving one to the fs failed (the fs kept it). */
  private failedIo(epoch: number, e: unknown, what: string): RRef<IoBuf> {
    return this.errIo(this.failed(epoch, e, what));
  }

  private errIo(err: number): RRef<IoBuf> {
    const io = this.sys.alloc.struct<IoBuf>('IoBuf');
    io.n = err;
    return io;
  }

  /** A call on `path` from `cwd` (see pathFrom). `again`: see numCall. */
  private pathCall(what: string, path: string, cwd: Cwd, call: (fs: Rv6Fs, path: string, cwd: number) => Promise<number>, again = false): Promise<number> {
    return this.numCall(what, (fs) => call(fs, this.pathFrom(cwd, path), this.cwdId(cwd)), again);
  }

  mount(): Promise<number> {
    return this.numCall('mount', (fs) => fs.mount());
  }
  async open(path: string, flags: number, cwd: Cwd): Promise<number> {
    const r = await this.pathCall('open', path, cwd, (fs, p, c) => fs.open(p, flags, c), (flags & O_EXCL) === 0);
    if (r <= 0) return r;
    const file = r + this.base;
    if (file > this.highest) this.highest = file;
    this.opened.set(file, { path: resolvePath(cwd.path, path), mode: flags & O_ACCMODE, ino: 0 });
    return file;
  }
  close(file: number): Promise<number> {
    return this.numCall('close', async (fs) => {
      // A file of a dead instance not reopened yet is not reopened to be closed.
      const id = this.idOf(file);
      this.opened.delete(file);
      this.reopened.delete(file);
      this.reopening.delete(file);
      return id === 0 ? 0 : fs.close(id);
    });
  }
  // read and write, the hot calls, without the helpers' closures or an async frame.
  read(file: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    const id = this.idOf(file);
    if (id === 0 || this.recovery !== null) return this.guarded('read', (fs) => this.onFile(fs, file, () => this.staleIo(io), (i) => fs.read(i, io)), (err) => this.errIo(err));
    return this.fs.read(id, io).then(undefined, this.on.readFailed);
  }
  write(file: number, off: number, data: Borrow<RRefArray<number>>, n: number): Promise<number> {
    const id = this.idOf(file);
    if (id === 0 || this.recovery !== null) return this.numCall('write', (fs) => this.onFile(fs, file, () => -ERRNO.EIO, (i) => fs.write(i, off, data, n)));
    return this.fs.write(id, off, data, n).then(undefined, this.on.writeFailed);
  }
  async fstat(file: number): Promise<RRef<StatBuf>> {
    const st = await this.guarded('fstat', (fs) => this.onFile(fs, file, () => this.newStat(-ERRNO.EIO), (i) => fs.fstat(i)), (err) => this.newStat(err));
    const rec = this.opened.get(file);
    if (rec !== undefined && rec.ino === 0 && st.err === 0) rec.ino = st.ino; // what a reopen will check
    return st;
  }
  stat(path: string, cwd: Cwd): Promise<RRef<StatBuf>> {
    return this.guarded('stat', (fs) => fs.stat(this.pathFrom(cwd, path), this.cwdId(cwd)), (err) => this.newStat(err), true);
  }
  getdents(file: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    return this.guarded('getdents', (fs) => this.onFile(fs, file, () => this.staleIo(io), (i) => fs.getdents(i, io)), (err) => this.errIo(err));
  }
  link(oldPath: string, newPath: string, cwd: Cwd): Promise<number> {
    return this.pathCall('link', oldPath, cwd, (fs, p, c) => fs.link(p, this.pathFrom(cwd, newPath), c));
  }
  async unlink(path: string, cwd: Cwd): Promise<number> {
    const r = await this.pathCall('unlink', path, cwd, (fs, p, c) => fs.unlink(p, c));
    if (r === 0) this.forget(resolvePath(cwd.path, path));
    return r;
  }
  mkdir(path: string, cwd: Cwd): Promise<number> {
    return this.pathCall('mkdir', path, cwd, (fs, p, c) => fs.mkdir(p, c));
  }
  async rmdir(path: string, cwd: Cwd): Promise<number> {
    const r = await this.pathCall('rmdir', path, cwd, (fs, p, c) => fs.rmdir(p, c));
    if (r === 0) this.forget(resolvePath(cwd.path, path));
    return r;
  }
  mknod(path: string, major: number, minor: number, cwd: Cwd): Promise<number> {
    return this.pathCall('mknod', path, cwd, (fs, p, c) => fs.mknod(p, major, minor, c));
  }
  sync(): Promise<number> {
    return this.numCall('sync', (fs) => fs.sync());
  }
  unmount(): Promise<number> {
    return this.numCall('unmount', (fs) => fs.unmount());
  }

  /** The answer to a read or getdents on a stale file: the caller's own IoBuf back, with -EIO. */
  private staleIo(io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    io.n = -ERRNO.EIO;
    return Promise.resolve(io);
  }

  /** The type and size of an open file (fstat, read and dropped); err < 0 on failure. */
  async typeOf(file: number): Promise<{ err: number; type: number; size: number; major: number }> {
    const st = await this.fstat(file);
    const r = { err: st.err, type: st.type, size: st.size, major: st.major };
    st.drop();
    return r;
  }
}
