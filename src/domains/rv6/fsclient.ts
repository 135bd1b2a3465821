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
 * the crash still runs its program. Before the recovery lets any call through, it reopens on the
 * new instance every file the core had open, by inode number (Rv6Fs.reopen, the number fstat gave
 * when the core checked the file after its open) and access mode: the file is found whatever
 * happened to its names, renamed (linked elsewhere, unlinked) or unlinked altogether. The fs never
 * gives a number out again in the transaction group that freed it, so the number names that file
 * or, when its creation had not committed, a free inode; a file not found (or whose number the
 * core never learnt) answers -EIO from then on (close answers 0: it is gone anyway). Offsets are
 * the core's, so reads and writes go on where they were. Current directories are open files too;
 * one that could not be reopened still works, by its absolute path, which the core keeps
 * (getcwd is lexical, file.ts): a path relative to it goes to the new instance made absolute.
 * Recovery gives up, and every call answers -EIO, when the restart or the mount fails, or after
 * MAX_RECOVERIES within RECOVERY_WINDOW_MS (an fs that crashes on its own image would crash again).
 *
 * Invariants: the core's file ids are the current instance's plus `base`, and a recovery raises
 * `base` to the highest id handed out, so an id of a dead instance never names a file of a live
 * one except through `reopened`, which a recovery empties and fills again before any other call;
 * a record whose reopen found no file has its inode number cleared, so no later recovery reopens
 * a number the fs may since have given to another file; a failure is blamed on the instance the
 * call went to (`epoch`), so a late failure of a dead instance never restarts a live one; a
 * method returning an RRef always returns one — when the fs died holding the buffer that was
 * moved to it, a fresh one with no data and the error set takes its place (the caller's data
 * buffer went down with the fs domain).
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

/** What reopening a file on a new instance needs: how it was opened, and its inode. */
interface OpenRecord {
  /** O_RDONLY, O_WRONLY or O_RDWR. */
  readonly mode: number;
  /** Its inode number, from the first fstat after the open (0: not known or not found, so not reopened). */
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
    const recovery = this.restart().finally(() => {
      this.recovery = null;
    });
    this.recovery = recovery;
    this.sys.detach(recovery); // awaited only by calls made meanwhile (Sys.detach)
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
    const lost = await this.reopenAll(fs);
    const files = (n: number): string => `${n} open file${n === 1 ? '' : 's'}`;
    const reopened = this.reopened.size;
    this.sys.log(`fs domain restarted and its log replayed; ${files(reopened)} reopened${lost > 0 ? `, ${files(lost)} could not be (they answer EIO)` : ''}`);
  }

  /**
   * Reopen every file the core has open on the new instance `fs` (see the header); the number not
   * found. If `fs` dies meanwhile, the rest stay unopened: a call on one of them answers -EIO
   * without reaching the fs, and the next call that does reach it (a path call, or one on a file
   * that was reopened) meets the death; the recovery it starts reopens them all again.
   */
  private async reopenAll(fs: Rv6Fs): Promise<number> {
    let lost = 0;
    for (const [file, rec] of this.opened) {
      if (rec.ino === 0) {
        lost++;
        continue;
      }
      let id: number;
      try {
        id = await fs.reopen(rec.ino, rec.mode);
      } catch (e) {
        if (this.sys.rpcErrorKind(e) === null) throw e;
        break;
      }
      if (id > 0) this.reopened.set(file, id);
      else {
        rec.ino = 0;
        lost++;
      }
    }
    return lost;
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

  /** `call` with the current instance's id for core file id `file`, or `stale` if it has none there. */
  private async onFile<T>(file: number, stale: () => T | Promise<T>, call: (id: number) => Promise<T>): Promise<T> {
    const id = this.idOf(file);
    return id === 0 ? stale() : call(id);
  }

  /** Is `cwd` a directory the current instance has no id for (one of a dead instance not reopened)? */
  private stale(cwd: Cwd): boolean {
    return cwd.file !== 0 && this.idOf(cwd.file) === 0;
  }

  /** The current instance's cwd id for `cwd`, 0 (the root) for a stale one. */
  private cwdId(cwd: Cwd): number {
    return cwd.file === 0 ? 0 : this.idOf(cwd.file);
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
    this.opened.set(file, { mode: flags & O_ACCMODE, ino: 0 });
    return file;
  }
  close(file: number): Promise<number> {
    return this.numCall('close', async (fs) => {
      const id = this.idOf(file);
      this.opened.delete(file);
      this.reopened.delete(file);
      return id === 0 ? 0 : fs.close(id);
    });
  }
  // read and write, the hot calls, without the helpers' closures or an async frame.
  read(file: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    const id = this.idOf(file);
    if (id === 0 || this.recovery !== null) return this.guarded('read', (fs) => this.onFile(file, () => this.staleIo(io), (i) => fs.read(i, io)), (err) => this.errIo(err));
    return this.fs.read(id, io).then(undefined, this.on.readFailed);
  }
  write(file: number, off: number, data: Borrow<RRefArray<number>>, n: number): Promise<number> {
    const id = this.idOf(file);
    if (id === 0 || this.recovery !== null) return this.numCall('write', (fs) => this.onFile(file, () => -ERRNO.EIO, (i) => fs.write(i, off, data, n)));
    return this.fs.write(id, off, data, n).then(undefined, this.on.writeFailed);
  }
  async fstat(file: number): Promise<RRef<StatBuf>> {
    const st = await this.guarded('fstat', (fs) => this.onFile(file, () => this.newStat(-ERRNO.EIO), (i) => fs.fstat(i)), (err) => this.newStat(err));
    const rec = this.opened.get(file);
    if (rec !== undefined && rec.ino === 0 && st.err === 0) rec.ino = st.ino; // what a reopen will check
    return st;
  }
  stat(path: string, cwd: Cwd): Promise<RRef<StatBuf>> {
    return this.guarded('stat', (fs) => fs.stat(this.pathFrom(cwd, path), this.cwdId(cwd)), (err) => this.newStat(err), true);
  }
  getdents(file: number, io: RRef<IoBuf>): Promise<RRef<IoBuf>> {
    return this.guarded('getdents', (fs) => this.onFile(file, () => this.staleIo(io), (i) => fs.getdents(i, io)), (err) => this.errIo(err));
  }
  link(oldPath: string, newPath: string, cwd: Cwd): Promise<number> {
    return this.pathCall('link', oldPath, cwd, (fs, p, c) => fs.link(p, this.pathFrom(cwd, newPath), c));
  }
  unlink(path: string, cwd: Cwd): Promise<number> {
    return this.pathCall('unlink', path, cwd, (fs, p, c) => fs.unlink(p, c));
  }
  rename(oldPath: string, newPath: string, cwd: Cwd): Promise<number> {
    return this.pathCall('rename', oldPath, cwd, (fs, p, c) => fs.rename(p, this.pathFrom(cwd, newPath), c));
  }
  mkdir(path: string, cwd: Cwd): Promise<number> {
    return this.pathCall('mkdir', path, cwd, (fs, p, c) => fs.mkdir(p, c));
  }
  rmdir(path: string, cwd: Cwd): Promise<number> {
    return this.pathCall('rmdir', path, cwd, (fs, p, c) => fs.rmdir(p, c));
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
