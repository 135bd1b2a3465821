/**
 * The file system: mount (superblock validation, log recovery) and the high-level operations the
 * rv6 core calls (xv6 sysfile.c's file-system half): open/create, read/write at an offset, stat,
 * link, unlink, rename, mkdir, rmdir, mknod, truncate, readdir.
 *
 * Invariants:
 *  - every operation that may write runs inside beginOp/endOp (xv6), and every path walk too, so
 *    an iput that frees an inode is always inside a transaction;
 *  - large writes are split into transactions of at most ((MAXOPBLOCKS-1-1-2)/2)·BSIZE bytes
 *    (xv6 filewrite), fewer where the worst case of that many would log more than MAXOPBLOCKS
 *    blocks (maxOpBytes), large truncations into budgeted steps; each step leaves a consistent fs;
 *  - lock order: parent directory before child; never two unrelated inodes, except a rename, which
 *    holds renameLock and locks its two parents ancestor first (see rename);
 *  - every failure is an FsError with a POSIX errno `code`; corrupted metadata is EUCLEAN;
 *  - the xv6 variant never creates holes (xv6's kernel cannot read them): writing or extending
 *    beyond EOF zero-fills; the large variant leaves holes;
 *  - a read-only mount (MountOptions.readOnly) writes nothing to the device, not even recovery:
 *    it sees the file system as recovery would leave it (log.ts: the log overlaid in the cache),
 *    and every call that would change it fails with EROFS before touching anything, after the
 *    lookup errors Linux reports first (see refuseIfReadOnly for the order).
 */
import type { DmaBytes } from '../../runtime/types.js';
import { BlockAllocator } from './balloc.js';
import { BufCache } from './bio.js';
import { afterFailure, type Alloc, type BlockDevice } from './device.js';
import { checkName, dirlink, dirlist, dirlookup, dirset, dirunlink, dirwalk, isdirempty, refuseLongName, type DirEntry } from './dir.js';
import { asFsError, corrupt, fsErr, FsError } from './errors.js';
import {
  decodeSuperblock, LARGE, LARGE_MAGIC, NLINK_MAX, ROOTINO, T_DEVICE, T_DIR, T_FILE, validateSuperblock, XV6, XV6_MAGIC, hex,
  type Geometry, type Layout, type Superblock, type Variant,
} from './format.js';
import { bytesLength, Inode, InodeLayer, type Bytes, type Stat } from './inode.js';
import { Log } from './log.js';
import { dirOnly, namex } from './path.js';
import { SleepLock } from './sync.js';

export { FsError } from './errors.js';
export type { Stat, Bytes } from './inode.js';

/** open() flags: the system-call interface's (O_EXCL, with O_CREATE: EEXIST if the file exists, is not in xv6). */
import { O_CREATE, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from '../../interfaces/rv6.js';
export { O_CREATE, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY };
/** FileSystem.write offset meaning "at the end of the file". */
export const APPEND = -1;

export interface MountOptions {
  /** Allocator of exchange-heap buffers (the cache's buffers are allocated once, at mount). */
  alloc: Alloc;
  /** Buffer-cache size in blocks (default 128 for xv6, 512 for large). */
  nbuf?: number;
  /** In-memory inode cache size (default 1024). */
  ninode?: number;
  /**
   * Never write the device (an image the user may only read): a pending log is applied in memory
   * only and left on the device; calls that would change anything fail with EROFS.
   */
  readOnly?: boolean;
}

export interface DirEntryInfo {
  name: string;
  inum: number;
}

export interface StatFs {
  variant: Variant;
  bsize: number;
  blocks: number;
  dataBlocks: number;
  freeBlocks: number;
  inodes: number;
  maxFileSize: number;
  nameMax: number;
}

/**
 * An open file: holds a reference to its inode until close, and until the last call that was
 * using it when it was closed has ended (a read or write in flight when a client closes the file
 * completes, as on Unix, instead of running on an inode released under it). Offsets are the
 * caller's.
 */
export class FsFile {
  closed = false;
  /** Calls using the file (read, write, fstat, getdents, truncate) that have not ended. */
  private inUse = 0;
  private whenUnused: (() => void) | null = null;
  /** @internal */
  constructor(readonly ip: Inode, readonly readable: boolean, readonly writable: boolean) {}
  get inum(): number {
    return this.ip.inum;
  }
  /** @internal A call starts using the file. */
  enter(): void {
    this.inUse++;
  }
  /** @internal A call that entered has ended. */
  leave(): void {
    if (--this.inUse === 0 && this.whenUnused !== null) {
      this.whenUnused();
      this.whenUnused = null;
    }
  }
  /** @internal Resolves once no call uses the file. */
  unused(): Promise<void> {
    return this.inUse === 0 ? Promise.resolve() : new Promise((resolve) => (this.whenUnused = resolve));
  }
}

/**
 * Most distinct blocks a write transaction touching `dataBlocks` consecutive file blocks
 * (<= nindirect of them) may log on an image of `nbitmap` bitmap blocks: every data block (an
 * overwrite, or a new block the log does not let be written in place: one a freed file left in
 * the uninstalled log, see Log.mayWriteInPlace); the indirect blocks on the paths to its first and
 * last block, since such a run lies in at most two adjacent leaves: 2·levels − 1 (one tree's
 * paths share the root, or the last block of one tree and the first of the next, one level
 * deeper); the inode's block; and one bitmap block per block allocated (data and indirect), all
 * distinct on a fragmented disk, but no more than the image has.
 */
export function writeOpBlocks(g: Geometry, nbitmap: number, dataBlocks: number): number {
  const indirect = 2 * g.levels - 1;
  return dataBlocks + indirect + 1 + Math.min(dataBlocks + indirect, nbitmap);
}

/**
 * Bytes one write transaction may carry on an image of `nbitmap` bitmap blocks: xv6 filewrite's
 * formula (MAXOPBLOCKS less the inode, one indirect block and two of slop for a non-aligned
 * write, halved for a bitmap block per data block), lowered until writeOpBlocks of what such a
 * write touches (one block more than it carries when it starts mid-block) fits in MAXOPBLOCKS.
 * The formula alone counts one indirect block and no bitmap block for it: in the worst case the
 * large variant logged 65 blocks of a 64-block budget crossing into the singly indirect tree, 69
 * in the doubly, 73 crossing into the triply one (file offsets from 4 GiB) — the last on images
 * of more than 27 bitmap blocks (3.375 GiB), the first of more than 31; an xv6-variant image of
 * more than 4 bitmap blocks, 11 of 10.
 * Smaller images (every one the tests and benchmarks use) keep the formula's value.
 */
export function maxOpBytes(g: Geometry, nbitmap: number): number {
  let blocks = Math.floor((g.maxOpBlocks - 1 - 1 - 2) / 2);
  while (blocks > 1 && writeOpBlocks(g, nbitmap, blocks + 1) > g.maxOpBlocks) blocks--;
  return blocks * g.bsize;
}

/**
 * The error for a directory removed (a concurrent rmdir, or a rename replacing it) after the path
 * walk found it and before the call could lock it: the walk hands the directory over unlocked, so
 * a removal waiting for it can run first. Nothing is made in a removed directory (as path.ts
 * treats one that is a starting directory): its entry would link a file no path reaches.
 */
function removedWhileWaiting(path: string): FsError {
  return fsErr('ENOENT', `'${path}': its directory was removed`);
}

function accmode(flags: number): number {
  return flags & 3;
}

export class FileSystem {
  readonly il: InodeLayer;
  private unmounted = false;
  /**
   * Held by a rename for its whole work (as Linux's s_vfs_rename_mutex): only a rename moves a
   * directory to another parent, so while it is held the tree of directories above any directory
   * stays as the rename read it, and its two parents can be locked ancestor first.
   */
  private readonly renameLock = new SleepLock();

  private constructor(
    readonly dev: BlockDevice,
    readonly g: Geometry,
    readonly sb: Superblock,
    readonly layout: Layout,
    readonly bc: BufCache,
    readonly log: Log,
    readonly balloc: BlockAllocator,
    ninode: number,
    /** Blocks installed by recovery at mount (on a read-only mount: applied in memory only). */
    readonly recovered: number,
  ) {
    this.il = new InodeLayer(bc, log, balloc, g, sb, layout, ninode);
    this.maxOpBytes = maxOpBytes(g, layout.nbitmap);
  }

  /** Mount: detect the variant, validate the superblock, recover the log, check the root. */
  static async mount(dev: BlockDevice, opts: MountOptions): Promise<FileSystem> {
    const ss = dev.blockSize;
    if (!Number.isInteger(ss) || ss < 1 || (ss & (ss - 1)) !== 0) throw fsErr('EINVAL', `bad device sector size ${ss}`);
    const devBytes = dev.blockCount * ss;
    const head = Math.max(8192, ss);
    if (devBytes < 2 * 1024 + 1024) throw fsErr('EINVAL', `device too small (${devBytes} bytes)`);
    const readBytes = Math.min(head, Math.floor(devBytes / ss) * ss);
    let hb = opts.alloc(head);
    try {
      hb = await dev.read(0, hb, readBytes / ss);
    } catch (e) {
      dev.free(afterFailure(e, hb, head, opts.alloc));
      throw asFsError(e, 'mount: reading the superblock');
    }
    let g: Geometry;
    let sb: Superblock;
    let layout: Layout;
    try {
      if (readBytes >= 2048 && hb.getU32(XV6.sbOffset) === XV6_MAGIC) g = XV6;
      else if (readBytes >= 8192 && hb.getU32(LARGE.sbOffset) === LARGE_MAGIC) g = LARGE;
      else throw corrupt(`superblock: bad magic ${hex(hb.getU32(XV6.sbOffset))} (neither xv6 ${hex(XV6_MAGIC)} nor large ${hex(LARGE_MAGIC)})`);
      if (g.bsize % ss !== 0) throw fsErr('EINVAL', `device sector size ${ss} does not divide block size ${g.bsize}`);
      sb = decodeSuperblock(g, hb, g.sbOffset);
      layout = validateSuperblock(g, sb, Math.floor(devBytes / g.bsize), hb, g.sbOffset);
    } finally {
      dev.free(hb);
    }
    const readOnly = opts.readOnly ?? false;
    // A read-only mount keeps every block of a full log pinned in the cache (its overlay), whatever
    // cache size the mount that wrote the log had: room for them and for an operation besides.
    const nbuf = Math.max(opts.nbuf ?? (g.variant === 'xv6' ? 128 : 512), g.maxOpBlocks + 24, readOnly ? layout.logCap + g.maxOpBlocks + 24 : 0);
    const cap = Math.min(layout.logCap, nbuf - 16);
    const bc = new BufCache(dev, opts.alloc, g.bsize, nbuf);
    const log = new Log(bc, opts.alloc, g, sb, layout, cap, readOnly);
    let fs: FileSystem | null = null;
    try {
      const recovered = await log.recover();
      const balloc = new BlockAllocator(bc, log, g, sb, layout);
      fs = new FileSystem(dev, g, sb, layout, bc, log, balloc, Math.max(16, opts.ninode ?? 1024), recovered);
      const root = fs.il.iget(ROOTINO);
      try {
        await fs.il.ilock(root);
      } catch (e) {
        fs.il.forget(root);
        root.ref--;
        throw corrupt(`root inode: ${(e as Error).message}`);
      }
      const rtype = root.type;
      fs.il.iunlock(root);
      root.ref--;
      if (rtype !== T_DIR) throw corrupt(`root inode ${ROOTINO} is not a directory (type ${rtype})`);
      return fs;
    } catch (e) {
      fs?.il.destroy();
      log.destroy();
      bc.destroy();
      throw e;
    }
  }

  /**
   * Free the inodes a crash left allocated with no link (InodeLayer.orphans: xv6 frees such an
   * inode at its last close, which the crash prevented, and has no orphan list), each in its own
   * transaction; how many. Only when nobody can hold them: at boot, never on a mount that takes
   * over from a crashed instance of the fs domain, whose client may hold them open still
   * (Rv6Fs.reopen). An inode that proves damaged is left for fsck.
   */
  async reclaimOrphans(): Promise<number> {
    if (this.readOnly) return 0; // left for a read-write mount, as the log is
    const il = this.il;
    let freed = 0;
    for (const inum of await il.orphans()) {
      try {
        await this.tx(async () => {
          const ip = il.iget(inum);
          await il.ilockOrRelease(ip);
          il.iunlock(ip);
          await il.iput(ip); // the only reference, no link: frees it
        });
        freed++;
      } catch (e) {
        if (!(e instanceof FsError)) throw e;
      }
    }
    return freed;
  }

  get variant(): Variant {
    return this.g.variant;
  }

  /**
   * Bytes one write transaction may carry (xv6 filewrite, bounded for this image: see maxOpBytes),
   * fixed by the geometry: worked out at mount, not on every write.
   */
  readonly maxOpBytes: number;

  private check(): void {
    if (this.unmounted) throw fsErr('EIO', 'file system is unmounted');
  }

  /** Mounted read-only (MountOptions.readOnly): nothing is ever written to the device. */
  get readOnly(): boolean {
    return this.log.readOnly;
  }

  /**
   * A call that would change the file system fails on a read-only mount, before it modifies a
   * buffer (a change half made in the cache would show in later reads). Where it fails follows
   * Linux (fs/namei.c), so a program sees the same errno on either:
   *  - the parent of the last component is resolved first: ENOENT/ENOTDIR for a missing or
   *    non-directory component, and the errors of a last component that is '.', '..' or the
   *    root (EEXIST, EBUSY, EINVAL, ...), come before EROFS;
   *  - creating a name (mkdir, mknod, open(O_CREAT), link's new name: filename_create) then looks
   *    the name up: a name too long is ENAMETOOLONG, an existing one EEXIST (and a missing one
   *    with a trailing '/' ENOENT) even on a read-only mount; EROFS comes next, before EMLINK and
   *    link's EPERM for a directory;
   *  - removing or renaming (unlink, rmdir, rename: mnt_want_write right after the parents'
   *    lookup) fails with EROFS before the last component is looked up: unlinking a missing name
   *    of an existing directory is EROFS, not ENOENT, and so is unlinking a name too long
   *    (ENAMETOOLONG comes from the file system's lookup; Linux 6.18 on a read-only tmpfs).
   *    A too-long element before the last one fails the walk, ENAMETOOLONG on every call.
   */
  private refuseIfReadOnly(what: string): void {
    if (this.log.readOnly) throw fsErr('EROFS', `${what}: the file system is mounted read-only`);
  }

  /** Run `fn` inside one transaction. */
  private async tx<T>(fn: () => Promise<T>): Promise<T> {
    this.check();
    await this.log.beginOp();
    let r: T;
    try {
      r = await fn();
    } catch (e) {
      await this.log.endOp();
      throw e;
    }
    await this.log.endOp();
    return r;
  }

  /** The inode `path` names, referenced and locked (see ilockEntry); nothing held if it throws. */
  private async nameiLocked(path: string, cwd?: FsFile): Promise<Inode> {
    const { ip, viaEntry } = await namex(this.il, path, false, cwd ? cwd.ip : null);
    try {
      await this.ilockEntry(ip, `'${path}'`, viaEntry);
    } catch (e) {
      await this.il.iput(ip);
      throw e;
    }
    if (ip.type !== T_DIR && dirOnly(path)) {
      await this.il.iunlockput(ip);
      throw fsErr('ENOTDIR', `'${path}' is not a directory`);
    }
    return ip;
  }

  /**
   * Lock an inode reached through a directory entry (`viaEntry`; else the root or a starting
   * directory itself, which may have been removed while in use); refuses free targets, and
   * unlinked ones reached through an entry (InodeLayer.unlinkedEntry).
   */
  private async ilockEntry(ip: Inode, what: string, viaEntry = true): Promise<void> {
    try {
      await this.il.ilock(ip);
    } catch (e) {
      this.il.forget(ip);
      if (e instanceof FsError) throw corrupt(`${what}: ${e.message}`);
      throw e;
    }
    if (viaEntry && ip.nlink < 1) {
      const err = this.il.unlinkedEntry(ip, what);
      this.il.iunlock(ip);
      throw err;
    }
  }

  /**
   * Parent directory (locked) of the last element of `path`, and that element; `ifRoot()` is
   * thrown when path names the root (made only then: errors are costly). `checkLength` false
   * leaves the element's ENAMETOOLONG to the caller (parentRef).
   */
  private async parentOf(path: string, cwd: FsFile | undefined, ifRoot: () => FsError, checkLength = true): Promise<{ dp: Inode; name: string }> {
    const p = await this.parentRef(path, cwd, ifRoot, checkLength);
    await this.il.ilockOrRelease(p.dp);
    if (p.dp.nlink < 1) {
      await this.il.iunlockput(p.dp);
      throw removedWhileWaiting(path);
    }
    return p;
  }

  /**
   * parentOf with the directory referenced but not locked. The element's length is checked
   * (ENAMETOOLONG) unless `checkLength` is false: Linux checks it in the last element's lookup
   * (the file system's ->lookup), which a call creating a name makes before EROFS and unlink,
   * rmdir and rename after it (refuseIfReadOnly); those check it themselves (refuseLongName).
   */
  private async parentRef(path: string, cwd: FsFile | undefined, ifRoot: () => FsError, checkLength = true): Promise<{ dp: Inode; name: string }> {
    const { ip, name } = await namex(this.il, path, true, cwd ? cwd.ip : null);
    try {
      if (name === null) throw ifRoot();
      if (checkLength) refuseLongName(this.il, name);
    } catch (e) {
      await this.il.iput(ip);
      throw e;
    }
    return { dp: ip, name };
  }

  /**
   * `name` in locked directory `dp` may be given to a new link (the checks of Linux's
   * filename_create): EEXIST if it is taken, ENOENT if `path` ends in '/' (no directory to make).
   */
  private async refuseTakenName(dp: Inode, name: string, path: string): Promise<void> {
    if (await dirlookup(this.il, dp, name)) throw fsErr('EEXIST', `'${path}' exists`);
    if (dirOnly(path)) throw fsErr('ENOENT', `'${path}' names a directory, and there is none`);
  }

  /** xv6 create(): returns the inode locked and referenced. */
  private async create(path: string, type: number, major: number, minor: number, excl: boolean, cwd?: FsFile): Promise<Inode> {
    const il = this.il;
    // The root exists and is a directory: creating a file there is EISDIR (as open(2) on Linux).
    const rootErr = (): FsError => (type === T_FILE && !excl ? fsErr('EISDIR', `'${path}' is a directory`) : fsErr('EEXIST', `'${path}' exists`));
    const { dp, name } = await this.parentOf(path, cwd, rootErr);
    let ip: Inode | null = null;
    let dpHeld = true;
    try {
      // "f/" names a directory: open(2) with O_CREAT refuses it whatever is there, as Linux does.
      if (type === T_FILE && dirOnly(path)) throw fsErr('EISDIR', `'${path}' names a directory`);
      const e = await dirlookup(il, dp, name);
      if (e) {
        if (e.inum === dp.inum) {
          if (type === T_FILE && !excl) throw fsErr('EISDIR', `'${path}' is a directory`);
          throw fsErr('EEXIST', `'${path}' exists`);
        }
        const xip = il.iget(e.inum);
        dpHeld = false;
        await il.iunlockput(dp);
        try {
          await this.ilockEntry(xip, `'${path}'`);
        } catch (err) {
          await il.iput(xip);
          throw err;
        }
        if (type === T_FILE && !excl && (xip.type === T_FILE || xip.type === T_DEVICE)) return xip;
        const isDir = xip.type === T_DIR;
        await il.iunlockput(xip);
        if (type === T_FILE && !excl && isDir) throw fsErr('EISDIR', `'${path}' is a directory`);
        throw fsErr('EEXIST', `'${path}' exists`);
      }
      if (type !== T_DIR && dirOnly(path)) throw fsErr('ENOENT', `'${path}' names a directory, and there is none`);
      checkName(il, name);
      this.refuseIfReadOnly(`create '${path}'`); // after the lookup, before EMLINK (refuseIfReadOnly): nothing changed yet
      if (type === T_DIR && dp.nlink >= NLINK_MAX) throw fsErr('EMLINK', `directory ${dp.inum} has too many links`);
      ip = await il.ialloc(type);
      await il.ilock(ip);
      ip.major = major;
      ip.minor = minor;
      ip.nlink = 1;
      await il.iupdate(ip);
      if (type === T_DIR) {
        await dirlink(il, ip, '.', ip.inum);
        await dirlink(il, ip, '..', dp.inum);
      }
      await dirlink(il, dp, name, ip.inum);
      if (type === T_DIR) {
        dp.nlink++;
        await il.iupdate(dp);
      }
      dpHeld = false;
      await il.iunlockput(dp);
      return ip;
    } catch (err) {
      if (ip) {
        ip.nlink = 0;
        await il.iupdate(ip);
        await il.iunlockput(ip);
      }
      if (dpHeld) await il.iunlockput(dp);
      throw err;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Path operations

  /** Open (and with O_CREATE create) a file. Directories open read-only only. */
  async open(path: string, flags = O_RDONLY, cwd?: FsFile): Promise<FsFile> {
    const acc = accmode(flags);
    if (acc === 3) throw fsErr('EINVAL', `bad open flags ${flags}`);
    const il = this.il;
    const { f, truncated } = await this.tx(async () => {
      // On a read-only mount the lookup's errors come first, as on Linux (ENOENT for a missing
      // name opened for writing, EEXIST for O_EXCL): create refuses only a file it would make,
      // and below only what would change an existing one; both before modifying any buffer.
      let ip: Inode;
      let truncated = true;
      if (flags & O_CREATE) {
        ip = await this.create(path, T_FILE, 0, 0, (flags & O_EXCL) !== 0, cwd);
      } else {
        ip = await this.nameiLocked(path, cwd);
      }
      try {
        // O_TRUNC asks for write access too (Linux's may_open: EISDIR even read-only, even empty).
        if (ip.type === T_DIR && (acc !== O_RDONLY || (flags & O_TRUNC))) throw fsErr('EISDIR', `'${path}' is a directory`);
        // Write access to a file, or O_TRUNC of one (Linux refuses it even for an empty one). A
        // device opens for writing, as on Linux (may_open: writing to it is the device's business,
        // not the file system's); O_TRUNC of a device is ignored (Linux too), so nothing changes.
        if ((acc !== O_RDONLY && ip.type !== T_DEVICE) || ((flags & O_TRUNC) && ip.type === T_FILE)) this.refuseIfReadOnly(`open '${path}' for writing`);
        // A file too scattered to free in this op is truncated further in ops of their own, the
        // inode unlocked between them (truncInode): cycling ops with it locked would wait for log
        // room that an op waiting for the inode keeps from being committed.
        if ((flags & O_TRUNC) && ip.type === T_FILE && ip.size > 0) truncated = await il.itrunc(ip, 0);
      } catch (e) {
        await il.iunlockput(ip);
        throw e;
      }
      il.iunlock(ip);
      return { f: new FsFile(ip, acc !== O_WRONLY, acc !== O_RDONLY), truncated };
    });
    if (!truncated) {
      try {
        await this.truncInode(f.ip, 0);
      } catch (e) {
        await this.close(f);
        throw e;
      }
    }
    return f;
  }

  /**
   * Open inode `inum` itself, with no path (flags: an access mode only): for a client that had it
   * open from an instance of this file system that crashed (Rv6Fs.reopen). Whatever the crash
   * undid, the number names that file or a free inode (ENOENT), never another file: an inode freed
   * in a group is not given out again before the group commits (Log.mayReuseInode). An inode
   * with no links (a file unlinked while open) opens too; its close frees it.
   */
  async openInode(inum: number, flags = O_RDONLY): Promise<FsFile> {
    const acc = accmode(flags);
    if (acc === 3 || flags !== acc) throw fsErr('EINVAL', `bad reopen flags ${flags} (an access mode only)`);
    if (!Number.isInteger(inum) || inum < ROOTINO || inum >= this.sb.ninodes) throw fsErr('EINVAL', `inode number ${inum} out of range [${ROOTINO}, ${this.sb.ninodes})`);
    const il = this.il;
    return this.tx(async () => {
      const ip = il.iget(inum);
      await il.ilockOrRelease(ip, () => fsErr('ENOENT', `inode ${inum} is free`));
      try {
        if (ip.type === T_DIR && acc !== O_RDONLY) throw fsErr('EISDIR', `inode ${inum} is a directory`);
        // As open: a device (the console a crashed instance had open for writing) reopens for
        // writing on a read-only mount, a file does not.
        if (ip.type !== T_DEVICE && acc !== O_RDONLY) this.refuseIfReadOnly(`open inode ${inum} for writing`);
      } catch (e) {
        await il.iunlockput(ip);
        throw e;
      }
      il.iunlock(ip);
      return new FsFile(ip, acc !== O_WRONLY, acc !== O_RDONLY);
    });
  }

  /** Release an open file's inode reference (frees an unlinked inode). */
  async close(f: FsFile): Promise<void> {
    if (f.closed) throw fsErr('EBADF', 'file already closed');
    f.closed = true; // no call starts using it from now on
    await f.unused();
    await this.tx(() => this.il.iput(f.ip));
  }

  async mkdir(path: string, cwd?: FsFile): Promise<void> {
    // A read-only mount refuses in create, after the lookup's ENOENT/EEXIST (refuseIfReadOnly).
    await this.tx(async () => {
      const ip = await this.create(path, T_DIR, 0, 0, true, cwd);
      await this.il.iunlockput(ip);
    });
  }

  async mknod(path: string, major: number, minor: number, cwd?: FsFile): Promise<void> {
    if (!Number.isInteger(major) || !Number.isInteger(minor) || major < 0 || minor < 0 || major > 32767 || minor > 32767) {
      throw fsErr('EINVAL', `bad device numbers ${major}, ${minor}`);
    }
    // A read-only mount refuses in create, after the lookup's ENOENT/EEXIST (refuseIfReadOnly).
    await this.tx(async () => {
      const ip = await this.create(path, T_DEVICE, major, minor, true, cwd);
      await this.il.iunlockput(ip);
    });
  }

  async stat(path: string, cwd?: FsFile): Promise<Stat> {
    return this.tx(async () => {
      const ip = await this.nameiLocked(path, cwd);
      const st = this.il.stati(ip);
      await this.il.iunlockput(ip);
      return st;
    });
  }

  /** Inode number `path` names (like namei). */
  async lookup(path: string, cwd?: FsFile): Promise<number> {
    return (await this.stat(path, cwd)).ino;
  }

  /** xv6 sys_link: a new name for a non-directory. */
  async link(oldPath: string, newPath: string, cwd?: FsFile): Promise<void> {
    const il = this.il;
    await this.tx(async () => {
      const ip = await this.nameiLocked(oldPath, cwd);
      if (this.readOnly || ip.type === T_DIR || ip.nlink >= NLINK_MAX) {
        // A link that will fail: Linux's order (fs/namei.c do_linkat, checked on Linux 6.18),
        // read-only mount or not: the old name's lookup (ENOENT, ENOTDIR, ENAMETOOLONG, above);
        // then filename_create(new): its parent's lookup, the name's (ENAMETOOLONG, EEXIST, ENOENT
        // for a trailing '/'), then EROFS (refuseIfReadOnly); then vfs_link: EPERM for a
        // directory, EMLINK. Only a failing link looks the new name up twice. Nothing is locked
        // while it throws.
        il.iunlock(ip);
        try {
          const { dp, name } = await this.parentOf(newPath, cwd, () => fsErr('EEXIST', `'${newPath}' exists`));
          try {
            await this.refuseTakenName(dp, name, newPath);
          } finally {
            await il.iunlockput(dp);
          }
          this.refuseIfReadOnly(`link '${newPath}'`);
          if (ip.type === T_DIR) throw fsErr('EPERM', `'${oldPath}' is a directory`);
          await il.ilock(ip); // EMLINK, below (the count may have changed meanwhile)
        } catch (e) {
          await il.iput(ip);
          throw e;
        }
        if (ip.nlink < 1) {
          // Unlinked while it was not locked (Linux's vfs_link: ENOENT).
          await il.iunlockput(ip);
          throw fsErr('ENOENT', `'${oldPath}' was removed`);
        }
      }
      if (ip.nlink >= NLINK_MAX) {
        await il.iunlockput(ip);
        throw fsErr('EMLINK', `'${oldPath}' has too many links`);
      }
      ip.nlink++;
      await il.iupdate(ip);
      il.iunlock(ip);
      try {
        const { dp, name } = await this.parentOf(newPath, cwd, () => fsErr('EEXIST', `'${newPath}' exists`));
        try {
          await this.refuseTakenName(dp, name, newPath);
          await dirlink(il, dp, name, ip.inum);
        } finally {
          await il.iunlockput(dp);
        }
      } catch (e) {
        await il.ilock(ip);
        ip.nlink--;
        await il.iupdate(ip);
        await il.iunlockput(ip);
        throw e;
      }
      await il.iput(ip);
    });
  }

  private async remove(path: string, dir: boolean, cwd?: FsFile): Promise<void> {
    const il = this.il;
    await this.tx(async () => {
      const { dp, name } = await this.parentOf(path, cwd, () => fsErr(dir ? 'EBUSY' : 'EISDIR', `cannot remove '${path}'`), false);
      let ip: Inode | null = null;
      try {
        // Linux: rmdir of '.' is EINVAL, of '..' ENOTEMPTY; unlink of either EISDIR.
        if (name === '.') throw fsErr(dir ? 'EINVAL' : 'EISDIR', `cannot remove '.'`);
        if (name === '..') throw fsErr(dir ? 'ENOTEMPTY' : 'EISDIR', `cannot remove '..'`);
        // After the parent's lookup, before the name's (refuseIfReadOnly): a missing name is EROFS.
        this.refuseIfReadOnly(`${dir ? 'rmdir' : 'unlink'} '${path}'`);
        const e = await dirlookup(il, dp, refuseLongName(il, name));
        if (!e) throw fsErr('ENOENT', `'${path}' not found`);
        if (e.inum === dp.inum) throw corrupt(`directory ${dp.inum}: entry '${name}' points to the directory itself`);
        ip = il.iget(e.inum);
        try {
          await this.ilockEntry(ip, `'${path}'`);
        } catch (err) {
          await il.iput(ip);
          ip = null;
          throw err;
        }
        if (dir && ip.type !== T_DIR) throw fsErr('ENOTDIR', `'${path}' is not a directory`);
        if (!dir && ip.type === T_DIR) throw fsErr('EISDIR', `'${path}' is a directory`);
        if (ip.type !== T_DIR && dirOnly(path)) throw fsErr('ENOTDIR', `'${path}' is not a directory`);
        if (dir && ip.inum === ROOTINO) throw fsErr('EBUSY', 'cannot remove the root');
        if (dir && !(await isdirempty(il, ip))) throw fsErr('ENOTEMPTY', `'${path}' is not empty`);
        await dirunlink(il, dp, e.off);
        if (ip.type === T_DIR) {
          dp.nlink--;
          await il.iupdate(dp);
        }
      } catch (err) {
        if (ip) await il.iunlockput(ip);
        await il.iunlockput(dp);
        throw err;
      }
      await il.iunlockput(dp);
      await il.dropLink(ip);
      await il.iunlockput(ip);
    });
  }

  async unlink(path: string, cwd?: FsFile): Promise<void> {
    await this.remove(path, false, cwd);
  }

  /**
   * rename(2): `newPath` names what `oldPath` named, and `oldPath` nothing; an existing `newPath`
   * is replaced (a file by a file, an empty directory by a directory). One transaction, so after a
   * crash the file has one of its two names, never none or both, and a replaced `newPath` names
   * either file; a replaced file that is left with no link is freed afterwards (in transactions
   * of its own if it is large; an orphan reclaimed at mount if a crash comes between).
   * Errors, as Linux: a path that ends in '.', '..' or is the root: EBUSY; `oldPath` missing or a
   * parent missing: ENOENT; a directory moved into itself or below: EINVAL; `newPath` a directory
   * above `oldPath`: ENOTEMPTY; a directory onto a non-directory: ENOTDIR; a non-directory onto a
   * directory: EISDIR; onto a non-empty directory: ENOTEMPTY; a non-directory with either path
   * ending in '/': ENOTDIR. Two names of one file: nothing
   * changes (POSIX).
   */
  async rename(oldPath: string, newPath: string, cwd?: FsFile): Promise<void> {
    const il = this.il;
    await this.tx(async () => {
      // Every inode the rename references, put only once renameLock is released: a put may free
      // one (a replaced file, a parent or an ancestor removed meanwhile), in transactions of its
      // own if it is large (iput), and a rename waiting for the lock inside its op would keep
      // them from committing — the log full, the fs hung.
      const refs: Inode[] = [];
      try {
        // The parents are looked up before the lock, as Linux does (filename_parentat, then
        // lock_rename): a walk may put the last reference to a directory removed under it.
        const busy = (path: string) => (): FsError => fsErr('EBUSY', `cannot rename '${path}'`);
        const from = await this.parentRef(oldPath, cwd, busy(oldPath), false);
        refs.push(from.dp);
        const to = await this.parentRef(newPath, cwd, busy(newPath), false);
        refs.push(to.dp);
        if (from.name === '.' || from.name === '..') throw busy(oldPath)();
        if (to.name === '.' || to.name === '..') throw busy(newPath)();
        // After both parents' lookups, before the names' (refuseIfReadOnly): nothing locked yet.
        this.refuseIfReadOnly(`rename '${oldPath}'`);
        await this.renameLock.acquire();
        try {
          await this.renameLocked(from, to, oldPath, newPath, refs);
        } finally {
          this.renameLock.release();
        }
      } finally {
        for (const ip of refs) {
          if (il.freesOnPut(ip)) {
            // What came before commits first: the free starts in the caller's op (iput).
            await this.log.endOp();
            await this.log.beginOp();
          }
          await il.iput(ip);
        }
      }
    });
  }

  /**
   * rename's work, with renameLock held, between parents `from` and `to` (referenced, unlocked).
   * Every inode it references is pushed on `refs`, for the caller to put after the lock.
   */
  private async renameLocked(from: { dp: Inode; name: string }, to: { dp: Inode; name: string }, oldPath: string, newPath: string, refs: Inode[]): Promise<void> {
    const il = this.il;
    const locked: Inode[] = [];
    const lock = async (ip: Inode, viaEntry: boolean): Promise<void> => {
      await this.ilockEntry(ip, `inode ${ip.inum}`, viaEntry);
      locked.push(ip);
    };
    try {
      const odp = from.dp;
      const ndp = to.dp;
      // Where each parent is in the tree (no directory moves while renameLock is held): the
      // parents are locked ancestor first, as every other operation locks parent before child.
      const aboveNew = await this.ancestors(ndp, refs);
      const aboveOld = odp === ndp ? aboveNew : await this.ancestors(odp, refs);
      if (aboveOld.has(ndp.inum)) {
        await lock(ndp, false);
        if (odp !== ndp) await lock(odp, false);
      } else {
        await lock(odp, false);
        await lock(ndp, false);
      }
      if (odp.nlink < 1) throw removedWhileWaiting(oldPath);
      if (ndp.nlink < 1) throw removedWhileWaiting(newPath);
      const oe = await dirlookup(il, odp, refuseLongName(il, from.name));
      if (!oe) throw fsErr('ENOENT', `'${oldPath}' not found`);
      if (oe.inum === odp.inum) throw corrupt(`directory ${odp.inum}: entry '${from.name}' points to the directory itself`);
      if (aboveNew.has(oe.inum)) throw fsErr('EINVAL', `cannot move '${oldPath}' into itself ('${newPath}')`);
      const ne = await dirlookup(il, ndp, refuseLongName(il, to.name));
      if (ne !== null) {
        if (ne.inum === ndp.inum) throw corrupt(`directory ${ndp.inum}: entry '${to.name}' points to the directory itself`);
        if (aboveOld.has(ne.inum)) throw fsErr('ENOTEMPTY', `'${newPath}' is not empty (it holds '${oldPath}')`);
      }
      const ip = il.iget(oe.inum);
      refs.push(ip);
      await lock(ip, true);
      if (ip.type !== T_DIR && (dirOnly(oldPath) || dirOnly(newPath))) throw fsErr('ENOTDIR', `'${oldPath}' is not a directory (a path ends in '/')`);
      if (ne !== null && ne.inum === oe.inum) return; // two names of one file: nothing changes
      let tp: Inode | null = null;
      if (ne !== null) {
        tp = il.iget(ne.inum);
        refs.push(tp);
        await lock(tp, true);
      }
      const isDir = ip.type === T_DIR;
      if (tp !== null) {
        if (isDir && tp.type !== T_DIR) throw fsErr('ENOTDIR', `'${newPath}' is not a directory`);
        if (!isDir && tp.type === T_DIR) throw fsErr('EISDIR', `'${newPath}' is a directory`);
        if (tp.type === T_DIR && !(await isdirempty(il, tp))) throw fsErr('ENOTEMPTY', `'${newPath}' is not empty`);
      }
      // A directory that changes parent: its '..' and both parents' link counts change.
      const moves = isDir && odp !== ndp;
      const dotdot = moves ? await dirlookup(il, ip, '..') : null;
      if (moves && dotdot === null) throw corrupt(`directory ${ip.inum} has no '..' entry`);
      if (moves && tp === null && ndp.nlink >= NLINK_MAX) throw fsErr('EMLINK', `directory ${ndp.inum} has too many links`);
      // Checked: from here on only changes, all in this transaction.
      if (ne !== null) await dirset(il, ndp, ne.off, { name: to.name, inum: ip.inum });
      else await dirlink(il, ndp, to.name, ip.inum);
      await dirunlink(il, odp, oe.off);
      if (dotdot !== null) {
        await dirset(il, ip, dotdot.off, { name: '..', inum: ndp.inum });
        odp.nlink--;
        await il.iupdate(odp);
      }
      // ndp gains the moved directory's '..' and loses a replaced directory's.
      const ndpLinks = (moves ? 1 : 0) - (tp !== null && tp.type === T_DIR ? 1 : 0);
      if (ndpLinks !== 0) {
        ndp.nlink += ndpLinks;
        await il.iupdate(ndp);
      }
      if (tp === null) return;
      await il.dropLink(tp);
    } finally {
      for (const ip of locked) il.iunlock(ip);
    }
  }

  /**
   * The inode numbers of directory `dp` and of every directory above it, up to the root (through
   * '..'). Locks one directory at a time. A '..' that leads into the chain again (a loop, which
   * would make a moved directory its own ancestor) is corruption. A directory whose put would
   * free it (removed since the walk passed below it) is left on `refs`, for rename to put.
   */
  private async ancestors(dp: Inode, refs: Inode[]): Promise<Set<number>> {
    const il = this.il;
    const chain = new Set<number>();
    const put = async (ip: Inode): Promise<void> => {
      if (il.freesOnPut(ip)) refs.push(ip);
      else await il.iput(ip);
    };
    let ip = il.idup(dp);
    try {
      while (ip.inum !== ROOTINO) {
        chain.add(ip.inum);
        await il.ilock(ip);
        let up: DirEntry | null;
        try {
          if (ip.type !== T_DIR) throw corrupt(`inode ${ip.inum}, reached through '..', is not a directory`);
          up = await dirlookup(il, ip, '..');
        } finally {
          il.iunlock(ip);
        }
        if (up === null) throw corrupt(`directory ${ip.inum} has no '..' entry`);
        if (chain.has(up.inum)) throw corrupt(`directory ${ip.inum}: '..' leads back to directory ${up.inum} below it (a loop)`);
        const next = il.iget(up.inum);
        await put(ip);
        ip = next;
      }
      chain.add(ROOTINO);
      return chain;
    } finally {
      await put(ip);
    }
  }

  async rmdir(path: string, cwd?: FsFile): Promise<void> {
    await this.remove(path, true, cwd);
  }

  /** Entries of a directory (including "." and ".."). */
  async readdir(path: string | FsFile, cwd?: FsFile): Promise<DirEntryInfo[]> {
    const il = this.il;
    return this.tx(async () => {
      let ip: Inode;
      if (typeof path === 'string') ip = await this.nameiLocked(path, cwd);
      else {
        ip = il.idup(this.live(path).ip);
        try {
          await il.ilock(ip);
        } catch (e) {
          await il.iput(ip);
          throw e;
        }
      }
      try {
        if (ip.type !== T_DIR) throw fsErr('ENOTDIR', `inode ${ip.inum} is not a directory`);
        if (ip.nlink < 1) return []; // removed while in use: empty, as on Linux
        return (await dirlist(il, ip)).map((d) => ({ name: d.name, inum: d.inum }));
      } finally {
        await il.iunlockput(ip);
      }
    });
  }

  /**
   * getdents: visit the entries of open directory `f` from byte offset `off` until `visit`
   * refuses one; returns the offset to continue from (see dirwalk).
   */
  async readdirAt(f: FsFile, off: number, visit: (e: DirEntryInfo) => boolean): Promise<number> {
    const ip = this.live(f).ip;
    if (!Number.isSafeInteger(off) || off < 0) throw fsErr('EINVAL', `bad directory offset ${off}`);
    f.enter();
    try {
      await this.il.ilock(ip);
      try {
        if (ip.type !== T_DIR) throw fsErr('ENOTDIR', `inode ${ip.inum} is not a directory`);
        if (ip.nlink < 1) return ip.size; // removed while in use: empty, as on Linux
        return await dirwalk(this.il, ip, off, visit);
      } finally {
        this.il.iunlock(ip);
      }
    } finally {
      f.leave();
    }
  }

  // -------------------------------------------------------------------------------------------
  // File operations

  private live(f: FsFile): FsFile {
    if (f.closed) throw fsErr('EBADF', 'file is closed');
    this.check();
    return f;
  }

  async fstat(f: FsFile): Promise<Stat> {
    const ip = this.live(f).ip;
    f.enter();
    try {
      await this.il.ilock(ip);
      const st = this.il.stati(ip);
      this.il.iunlock(ip);
      return st;
    } finally {
      f.leave();
    }
  }

  /** Read up to `len` bytes at `off` into dst[dstOff..]; returns the count (0 at EOF). */
  async read(f: FsFile, off: number, dst: Bytes, dstOff = 0, len = bytesLength(dst) - dstOff): Promise<number> {
    this.checkRead(f, off, dst, dstOff, len);
    const ip = f.ip;
    f.enter();
    try {
      if (!this.il.tryLock(ip)) await this.il.ilock(ip);
      try {
        return await this.il.readi(ip, dst, dstOff, off, len);
      } finally {
        this.il.iunlock(ip);
      }
    } finally {
      f.leave();
    }
  }

  /**
   * read() served without waiting when it can be (the file's inode idle and the bytes in a
   * read-ahead window or past the end: see InodeLayer.readiNow): the count, or null when the
   * caller must run read(). Throws what read() would throw for a bad file or range.
   */
  readNow(f: FsFile, off: number, dst: DmaBytes, len: number): number | null {
    this.checkRead(f, off, dst, 0, len);
    return this.il.readiNow(f.ip, dst, 0, off, len);
  }

  /** The checks of read and readNow: a live file open for reading, a valid range of `dst`. */
  private checkRead(f: FsFile, off: number, dst: Bytes, dstOff: number, len: number): void {
    this.live(f);
    if (!f.readable) throw fsErr('EBADF', 'file not open for reading');
    if (!Number.isSafeInteger(off) || off < 0 || len < 0 || dstOff < 0 || dstOff + len > bytesLength(dst)) throw fsErr('EINVAL', 'bad offset or length');
  }

  /**
   * Write `len` bytes of src[srcOff..] at `off` (APPEND: at the end of the file, atomically with
   * respect to every other write of the file), in transactions of at most maxOpBytes.
   */
  async write(f: FsFile, off: number, src: Bytes, srcOff = 0, len = bytesLength(src) - srcOff): Promise<number> {
    this.live(f);
    if (!f.writable) throw fsErr('EBADF', 'file not open for writing');
    if (!(off === APPEND || (Number.isSafeInteger(off) && off >= 0)) || !Number.isSafeInteger(len) || len < 0 || srcOff < 0 || srcOff + len > bytesLength(src)) {
      throw fsErr('EINVAL', 'bad offset or length');
    }
    const ip = f.ip;
    if (ip.type === T_DIR) throw fsErr('EISDIR', 'cannot write a directory');
    f.enter();
    try {
      if (!ip.wlock.tryAcquire()) await ip.wlock.acquire();
      try {
        if (off === APPEND) {
          await this.il.ilock(ip);
          off = ip.size;
          this.il.iunlock(ip);
        }
        return await this.writeAt(ip, off, src, srcOff, len);
      } finally {
        ip.wlock.release();
      }
    } finally {
      f.leave();
    }
  }

  private async writeAt(ip: Inode, off: number, src: Bytes, srcOff: number, len: number): Promise<number> {
    if (off + len > this.g.maxFileSize) {
      if (off >= this.g.maxFileSize) throw fsErr('EFBIG', `offset ${off} beyond the maximum file size ${this.g.maxFileSize}`);
      len = this.g.maxFileSize - off;
    }
    if (!this.g.holes) await this.zeroFill(ip, off);
    const max = this.maxOpBytes;
    let done = 0;
    while (done < len) {
      const n1 = Math.min(len - done, max);
      let r = 0;
      try {
        // this.tx, written out for the hot path (no closure, no waits when nothing is contended).
        this.check();
        if (!this.log.tryBeginOp()) await this.log.beginOp();
        try {
          if (!this.il.tryLock(ip)) await this.il.ilock(ip);
          try {
            r = await this.il.writei(ip, src, srcOff + done, off + done, n1);
          } finally {
            this.il.iunlock(ip);
          }
        } finally {
          await this.log.endOp();
        }
      } catch (e) {
        if (done > 0 && e instanceof FsError && e.code === 'ENOSPC') break;
        throw e;
      }
      done += r;
      if (r !== n1) break;
    }
    return done;
  }

  /** xv6 variant: make the file at least `upTo` bytes long by writing zeros (no holes). */
  private async zeroFill(ip: Inode, upTo: number): Promise<void> {
    const zeros = new Uint8Array(this.maxOpBytes);
    for (;;) {
      const done = await this.tx(async () => {
        await this.il.ilock(ip);
        try {
          if (ip.size >= upTo) return true;
          const n = Math.min(upTo - ip.size, zeros.length);
          const r = await this.il.writei(ip, zeros, 0, ip.size, n);
          if (r !== n) throw fsErr('ENOSPC', 'no space to extend the file');
          return false;
        } finally {
          this.il.iunlock(ip);
        }
      });
      if (done) return;
    }
  }

  /** Set the size of an open file (shrink frees blocks; grow makes a hole or zeros). */
  async ftruncate(f: FsFile, len: number): Promise<void> {
    this.live(f);
    if (!f.writable) throw fsErr('EBADF', 'file not open for writing');
    f.enter();
    try {
      await this.truncInode(f.ip, len);
    } finally {
      f.leave();
    }
  }

  async truncate(path: string, len: number, cwd?: FsFile): Promise<void> {
    const f = await this.open(path, O_WRONLY, cwd);
    try {
      await this.truncInode(f.ip, len);
    } finally {
      await this.close(f);
    }
  }

  private async truncInode(ip: Inode, len: number): Promise<void> {
    if (!Number.isSafeInteger(len) || len < 0) throw fsErr('EINVAL', `bad length ${len}`);
    if (len > this.g.maxFileSize) throw fsErr('EFBIG', `length ${len} beyond the maximum file size`);
    if (ip.type === T_DIR) throw fsErr('EISDIR', 'cannot truncate a directory');
    for (;;) {
      const r = await this.tx(async () => {
        await this.il.ilock(ip);
        try {
          if (ip.type === T_DIR) throw fsErr('EISDIR', 'cannot truncate a directory');
          if (len > ip.size) return 'grow';
          return (await this.il.itrunc(ip, len)) ? 'done' : 'more';
        } finally {
          this.il.iunlock(ip);
        }
      });
      if (r === 'done') return;
      if (r === 'grow') break;
    }
    if (!this.g.holes) {
      await this.zeroFill(ip, len);
      return;
    }
    await this.tx(async () => {
      await this.il.ilock(ip);
      try {
        if (len > ip.size) {
          ip.size = len;
          await this.il.iupdate(ip);
        }
      } finally {
        this.il.iunlock(ip);
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // Conveniences and whole-fs operations

  /** A file's whole content; a directory is EISDIR, as read(2) of one (not its raw entries). */
  async readFile(path: string, cwd?: FsFile): Promise<Uint8Array> {
    const f = await this.open(path, O_RDONLY, cwd);
    try {
      const st = await this.fstat(f);
      if (st.type === T_DIR) throw fsErr('EISDIR', `'${path}' is a directory`);
      const out = new Uint8Array(st.size);
      const n = await this.read(f, 0, out);
      return n === out.length ? out : out.subarray(0, n);
    } finally {
      await this.close(f);
    }
  }

  async writeFile(path: string, data: Uint8Array, cwd?: FsFile): Promise<void> {
    const f = await this.open(path, O_WRONLY | O_CREATE | O_TRUNC, cwd);
    try {
      const n = await this.write(f, 0, data);
      if (n !== data.length) throw fsErr('ENOSPC', `short write ${n} of ${data.length}`);
    } finally {
      await this.close(f);
    }
  }

  async statfs(): Promise<StatFs> {
    this.check();
    return {
      variant: this.g.variant, bsize: this.g.bsize, blocks: this.sb.size, dataBlocks: this.sb.size - this.layout.datastart,
      freeBlocks: await this.balloc.countFree(), inodes: this.sb.ninodes, maxFileSize: this.g.maxFileSize, nameMax: this.g.dirsiz,
    };
  }

  /**
   * Commit anything pending, install the log (home locations current, header clear) and flush the
   * device. Nothing on a read-only mount: nothing is pending, and its log stays as it was.
   */
  async sync(): Promise<void> {
    this.check();
    if (this.readOnly) return;
    await this.log.checkpoint();
    try {
      await this.dev.flush();
    } catch (e) {
      throw asFsError(e, 'sync');
    }
  }

  /**
   * Sync and release the cache's and the log's buffers; later calls fail with EIO. A failed sync
   * is reported, but the fs is unmounted all the same (what it could not write is lost).
   */
  async unmount(): Promise<void> {
    if (this.unmounted) return;
    try {
      await this.sync();
    } finally {
      this.unmounted = true;
      this.il.destroy();
      this.log.destroy();
      this.bc.destroy();
    }
  }
}

export type { DmaBytes };
