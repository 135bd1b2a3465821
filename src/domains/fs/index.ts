/**
 * The fs domain: the xv6 file system (FileSystem, fs.ts) over a BDev import, exporting `Rv6Fs`
 * (src/interfaces/rv6.ts) to the rv6 core.
 *
 * Config: nbuf (buffer-cache blocks), ninode (in-memory inodes), both optional.
 *
 * Invariants:
 *  - no exception escapes a method (that would panic the domain): an FsError becomes
 *    -ERRNO[code]; anything else is logged and becomes -EIO;
 *  - file ids are > 0 and never reused while the domain lives; `files` holds exactly the open
 *    ones; cwd 0 is the root, any other cwd must be an open file id (else -EBADF);
 *  - an IoBuf moved in is always moved back, with `n` set (and `off` for getdents);
 *  - every call but mount answers -EIO while no file system is mounted; mount answers -EBUSY
 *    while one is; unmount leaves nothing mounted even when it fails (then it answers -errno);
 *  - a first instance (Sys.restarts 0: a boot) frees at mount the inodes a crash left with no
 *    link (FileSystem.reclaimOrphans); a restarted one does not, since its client may still hold
 *    them and reopen them by number (`reopen`);
 *  - on a device that refuses every write (BDev.readOnly(): a write-protected NVMe namespace, an
 *    image the host may not write or `boot --read-only`) the file system is mounted read-only: a
 *    pending log is applied in memory only and every change answers -EROFS, where a read-write
 *    mount would fail at its first write (recovery) or leave changes it could not write home.
 */
import type { BDev } from '../../interfaces/block.js';
import { ERRNO, O_APPEND, type IoBuf, type Rv6Fs, type StatBuf } from '../../interfaces/rv6.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRef, RRefArray } from '../../runtime/types.js';
import { BDevBlockDevice } from './bdev.js';
import { fsErr, FsError } from './errors.js';
import { APPEND, FileSystem, FsFile, O_CREATE, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from './fs.js';
import type { Stat } from './inode.js';

/** The open flags the fs understands (O_APPEND is the core's business). */
const FLAGS = O_RDONLY | O_WRONLY | O_RDWR | O_CREATE | O_TRUNC | O_EXCL;

class NotMounted extends Error {}
class BadFile extends Error {}

export function init(sys: Sys, bdev: BDev): Rv6Fs {
  const configNumber = (key: string): number | undefined => {
    const v = sys.config[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) sys.panic(`fs: config ${key} must be a positive integer, got ${String(v)}`);
    return v;
  };
  const nbuf = configNumber('nbuf');
  const ninode = configNumber('ninode');
  const encoder = new TextEncoder();

  let fs: FileSystem | null = null;
  let mounting = false;
  const files = new Map<number, FsFile>();
  let nextFile = 1;

  const mounted = (): FileSystem => {
    if (fs === null) throw new NotMounted();
    return fs;
  };
  const file = (id: number): FsFile => {
    const f = files.get(id);
    if (f === undefined) throw new BadFile();
    return f;
  };
  /** A new file id for `f`. */
  const track = (f: FsFile): number => {
    const id = nextFile++;
    files.set(id, f);
    return id;
  };
  const dir = (cwd: number): FsFile | undefined => (cwd === 0 ? undefined : file(cwd));

  /** The errno for a failure; logs what is not an ordinary file-system error. */
  const errno = (e: unknown, what: string): number => {
    if (e instanceof FsError) {
      if (e.code === 'EUCLEAN' || e.code === 'EIO') sys.log(`${what}: ${e.message}`);
      return -ERRNO[e.code];
    }
    if (e instanceof BadFile) return -ERRNO.EBADF;
    if (e instanceof NotMounted) return -ERRNO.EIO;
    sys.log(`${what}: unexpected ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    return -ERRNO.EIO;
  };
  /** Run `fn`, answering 0 (or its number) or -errno. */
  const call = async (what: string, fn: () => Promise<number | void>): Promise<number> => {
    try {
      return (await fn()) ?? 0;
    } catch (e) {
      return errno(e, what);
    }
  };

  const statBuf = (st: Stat | number): RRef<StatBuf> => {
    const sb = sys.alloc.struct<StatBuf>('StatBuf');
    if (typeof st === 'number') {
      sb.err = st;
      return sb;
    }
    sb.type = st.type;
    sb.nlink = st.nlink;
    sb.dev = 1;
    sb.ino = st.ino;
    sb.size = st.size;
    sb.major = st.major;
    sb.minor = st.minor;
    return sb;
  };
  const stat = async (what: string, fn: () => Promise<Stat>): Promise<RRef<StatBuf>> => {
    try {
      return statBuf(await fn());
    } catch (e) {
      return statBuf(errno(e, what));
    }
  };

  /** Run an IoBuf transfer: `fn` gets the buffer and returns n (its off set by fn); errors become n = -errno. */
  const transfer = async (what: string, io: RRef<IoBuf>, fn: (data: RRefArray<number>) => Promise<number>): Promise<RRef<IoBuf>> => {
    try {
      const data = io.data;
      io.n = data === null ? -ERRNO.EINVAL : await fn(data);
    } catch (e) {
      io.n = errno(e, what);
    }
    return io;
  };

  /** getdents: whole `<inum> <name>\0` entries from io.off into io.data; sets io.off to the next offset. */
  const getdents = async (f: FsFile, io: RRef<IoBuf>, data: RRefArray<number>): Promise<number> => {
    const cap = data.byteLength;
    let n = 0;
    let refused = false;
    const next = await mounted().readdirAt(f, io.off, (e) => {
      const bytes = encoder.encode(`${e.inum} ${e.name}\0`);
      if (n + bytes.length > cap) {
        refused = true;
        return false;
      }
      data.write(n, bytes);
      n += bytes.length;
      return true;
    });
    if (n === 0 && refused) throw fsErr('EINVAL', `a ${cap}-byte buffer cannot hold the next directory entry`);
    io.off = next;
    return n;
  };

  /** read() of `n` bytes at `off` that has to wait (for the inode, the device, a window fill). */
  const readWaiting = async (m: FileSystem, f: FsFile, io: RRef<IoBuf>, data: RRefArray<number>, off: number, n: number): Promise<RRef<IoBuf>> => {
    try {
      io.n = await m.read(f, off, data, 0, n);
    } catch (e) {
      io.n = errno(e, 'read');
    }
    return io;
  };

  return {
    async mount() {
      if (fs !== null || mounting) return -ERRNO.EBUSY;
      mounting = true;
      try {
        const dev = new BDevBlockDevice(sys, bdev);
        const readOnly = bdev.readOnly();
        fs = await FileSystem.mount(dev, { alloc: dev.alloc, readOnly, ...(nbuf ? { nbuf } : {}), ...(ninode ? { ninode } : {}) });
        if (readOnly) sys.log('mount: the device is write protected: mounted read-only');
        if (fs.recovered > 0) sys.log(`mount: recovered ${fs.recovered} blocks from the log${readOnly ? ' (in memory only: the log stays on the device)' : ''}`);
        // A first instance mounts at boot: no one can hold an orphan. A restarted one takes over
        // from a crashed instance whose client may still hold them open (Rv6Fs.reopen).
        if (sys.restarts === 0) {
          const freed = await fs.reclaimOrphans();
          if (freed > 0) sys.log(`mount: freed ${freed} inode${freed === 1 ? '' : 's'} left with no link by a crash (unlinked while open)`);
        }
        return 0;
      } catch (e) {
        return errno(e, 'mount');
      } finally {
        mounting = false;
      }
    },

    open: (path, flags, cwd) => call(`open ${path}`, async () => {
      const m = mounted();
      const d = dir(cwd);
      if (!Number.isInteger(flags) || (flags & ~(FLAGS | O_APPEND)) !== 0) throw fsErr('EINVAL', `bad open flags ${flags}`);
      return track(await m.open(path, flags & FLAGS, d));
    }),

    reopen: (ino, flags) => call(`reopen inode ${ino}`, async () => {
      return track(await mounted().openInode(ino, flags));
    }),

    close: (id) => call('close', async () => {
      const m = mounted();
      const f = file(id);
      files.delete(id);
      await m.close(f);
    }),

    // read and write, the hot calls, are written out (no per-call closures of transfer / call).
    // A read a read-ahead window serves is answered without an async function (see readNow).
    read(id, io) {
      try {
        const data = io.data;
        if (data === null) {
          io.n = -ERRNO.EINVAL;
          return Promise.resolve(io);
        }
        const m = mounted();
        const f = file(id);
        const n = io.n;
        if (!Number.isSafeInteger(n) || n < 0 || n > data.byteLength) throw fsErr('EINVAL', `read of ${n} bytes into a ${data.byteLength}-byte buffer`);
        const off = io.off;
        const now = m.readNow(f, off, data, n);
        if (now === null) return readWaiting(m, f, io, data, off, n);
        io.n = now;
      } catch (e) {
        io.n = errno(e, 'read');
      }
      return Promise.resolve(io);
    },

    async write(id, off, data, n) {
      try {
        const m = mounted();
        const f = file(id);
        if (!Number.isSafeInteger(n) || n < 0 || n > data.byteLength) throw fsErr('EINVAL', `write of ${n} bytes from a ${data.byteLength}-byte buffer`);
        return await m.write(f, off < 0 ? APPEND : off, data, 0, n);
      } catch (e) {
        return errno(e, 'write');
      }
    },

    fstat: (id) => stat('fstat', () => mounted().fstat(file(id))),
    stat: (path, cwd) => stat(`stat ${path}`, () => mounted().stat(path, dir(cwd))),

    getdents: (id, io) => transfer('getdents', io, (data) => getdents(file(id), io, data)),

    link: (oldPath, newPath, cwd) => call(`link ${oldPath} ${newPath}`, () => mounted().link(oldPath, newPath, dir(cwd))),
    unlink: (path, cwd) => call(`unlink ${path}`, () => mounted().unlink(path, dir(cwd))),
    rename: (oldPath, newPath, cwd) => call(`rename ${oldPath} ${newPath}`, () => mounted().rename(oldPath, newPath, dir(cwd))),
    mkdir: (path, cwd) => call(`mkdir ${path}`, () => mounted().mkdir(path, dir(cwd))),
    rmdir: (path, cwd) => call(`rmdir ${path}`, () => mounted().rmdir(path, dir(cwd))),
    mknod: (path, major, minor, cwd) => call(`mknod ${path}`, () => mounted().mknod(path, major, minor, dir(cwd))),

    sync: () => call('sync', () => mounted().sync()),

    unmount: () => call('unmount', async () => {
      const m = mounted();
      fs = null;
      try {
        // Close what is still open first: an unlinked file still open is freed now, not leaked.
        for (const [id, f] of files) {
          files.delete(id);
          await m.close(f);
        }
      } finally {
        files.clear();
        await m.unmount();
      }
    }),
  };
}
