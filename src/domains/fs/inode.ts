/**
 * Inodes (xv6 fs.c's inode half): allocation, the in-memory inode cache, locking, block mapping
 * (direct, singly, doubly and — large variant — triply indirect), truncation, and readi/writei
 * copying between cache buffers and a caller's Uint8Array or DmaBytes.
 *
 * Invariants:
 *  - at most one in-memory Inode per inode number; `ref` counts holders (iget/idup .. iput);
 *    an entry with ref 0 may be evicted; the cache never holds more than `ninode` entries;
 *  - `valid` means the fields mirror the on-disk dinode; every change is written back with iupdate
 *    inside a transaction; fields are read or changed only with the inode's SleepLock held;
 *  - ilock refuses (EUCLEAN) an inode whose type is garbage or 0 (free), whose size exceeds the
 *    variant's maximum (a directory's: the data area), or whose nlink is negative; bmap refuses
 *    block numbers outside the data area; so corrupted metadata yields errors, never wild reads
 *    or hangs;
 *  - iput frees an inode (truncate, type 0) when the last reference goes and nlink is 0; it must
 *    run inside a transaction;
 *  - ialloc never gives out an inode the open transaction group freed (Log.mayReuseInode): a crash
 *    would undo the free and the allocation together, and a number a client holds would then name
 *    another file;
 *  - truncation frees blocks from the end, clears every pointer to a freed block in the same
 *    transaction, and stops at a budget of distinct metadata blocks, leaving a consistent, shorter
 *    file; callers loop over transactions until it reports done. When it is done, the bytes of
 *    the last kept block past the new size are zero (they read as zeros if the file grows);
 */
import type { DmaBytes } from '../../runtime/types.js';
import type { BlockAllocator } from './balloc.js';
import type { BufCache } from './bio.js';
import { corrupt, fsErr, FsError } from './errors.js';
import {
  decodeDinode, encodeDinode, iblock, ioffset, naddrs, T_DEVICE, T_DIR, T_FILE, T_FREE,
  type Geometry, type Layout, type Superblock,
} from './format.js';
import type { Log } from './log.js';
import { ReadAhead, type Window } from './readahead.js';
import { SleepLock } from './sync.js';

export class Inode {
  ref = 0;
  valid = false;
  readonly lock = new SleepLock();
  /** Held across a whole multi-transaction write, so writes (appends above all) do not interleave. */
  readonly wlock = new SleepLock();
  type = 0;
  major = 0;
  minor = 0;
  nlink = 0;
  /**
   * Its last link was removed by a call of this mount (dropLink), as opposed to a dinode read with
   * no link: see unlinkedEntry.
   */
  unlinked = false;
  size = 0;
  addrs: number[] = [];
  /** File block where the last read ended: a read from there is sequential (read-ahead). */
  nextRead = 0;
  constructor(readonly inum: number) {}
}

/** Read-ahead: bytes per window (a run of consecutive disk blocks read with one device transfer), and windows. */
const RA_BYTES = 256 << 10;
const RA_WINDOWS = 2;

export interface Stat {
  ino: number;
  type: number;
  nlink: number;
  size: number;
  major: number;
  minor: number;
}

export type Bytes = Uint8Array | DmaBytes;

export function bytesLength(b: Bytes): number {
  return b instanceof Uint8Array ? b.length : b.byteLength;
}

interface TruncCtx {
  keep: number;
  bitmapBudget: number;
  touched: Set<number>;
  stopped: boolean;
  lowFreed: number;
}

export class InodeLayer {
  private readonly cache = new Map<number, Inode>();
  private ihint = 1;
  /** Blocks spanned by one entry at each indirect level: span[L] = nind^L. */
  private readonly span: number[];
  /** First file block number covered by the level-L tree (L >= 1). */
  private readonly levelBase: number[];
  /** Read-ahead windows of sequentially read files. */
  private readonly ra: ReadAhead;

  constructor(
    readonly bc: BufCache,
    readonly log: Log,
    readonly alloc: BlockAllocator,
    readonly g: Geometry,
    readonly sb: Superblock,
    readonly layout: Layout,
    readonly ninode: number,
  ) {
    this.span = [1];
    for (let l = 1; l <= g.levels; l++) this.span.push(this.span[l - 1]! * g.nindirect);
    this.levelBase = [0, g.ndirect];
    for (let l = 2; l <= g.levels; l++) this.levelBase.push(this.levelBase[l - 1]! + this.span[l - 1]!);
    this.ra = new ReadAhead(bc, RA_BYTES / g.bsize, RA_WINDOWS);
  }

  /** Release the read-ahead buffers (unmount). */
  destroy(): void {
    this.ra.destroy();
  }

  checkInum(inum: number, what: string): void {
    if (!Number.isInteger(inum) || inum < 1 || inum >= this.sb.ninodes) {
      throw corrupt(`${what}: inode number ${inum} out of range [1, ${this.sb.ninodes})`);
    }
  }

  /** Allocate an inode of `type` on disk (in a transaction); returns it referenced, unlocked. */
  async ialloc(type: number): Promise<Inode> {
    const { g, sb } = this;
    const n = sb.ninodes;
    let inum = this.ihint >= 1 && this.ihint < n ? this.ihint : 1;
    /** The first free inode passed over because the open group freed it (the hint stays there). */
    let waiting = -1;
    for (let scanned = 0; scanned < n - 1;) {
      const blk = iblock(g, sb, inum);
      const bp = await this.bc.bread(blk);
      let found = -1;
      const last = Math.min(n - 1, (blk - sb.inodestart + 1) * g.ipb - 1);
      for (let i = inum; i <= last; i++) {
        const off = ioffset(g, i);
        if (bp.data.getU16(off) !== T_FREE) continue;
        if (!this.log.mayReuseInode(i)) {
          if (waiting < 0) waiting = i;
          continue;
        }
        encodeDinode(g, { type, major: 0, minor: 0, nlink: 0, size: 0, addrs: [] }, bp.data, off);
        this.log.logWrite(bp);
        found = i;
        break;
      }
      this.bc.brelse(bp);
      if (found >= 0) {
        this.ihint = waiting >= 0 ? waiting : found + 1;
        const ip = this.iget(found);
        ip.valid = false;
        return ip;
      }
      scanned += last - inum + 1;
      inum = last + 1 >= n ? 1 : last + 1;
    }
    throw fsErr('ENOSPC', waiting >= 0 ? 'no free inodes (but those the transaction in progress freed, free once it commits)' : 'no free inodes');
  }

  /** Write the in-memory copy of a locked inode to disk (in a transaction). */
  async iupdate(ip: Inode): Promise<void> {
    const bp = await this.bc.bread(iblock(this.g, this.sb, ip.inum));
    encodeDinode(this.g, ip, bp.data, ioffset(this.g, ip.inum));
    this.log.logWrite(bp);
    this.bc.brelse(bp);
  }

  /** Reference inode `inum` (no disk access). */
  iget(inum: number): Inode {
    this.checkInum(inum, 'iget');
    let ip = this.cache.get(inum);
    if (ip) {
      ip.ref++;
      return ip;
    }
    if (this.cache.size >= this.ninode) {
      for (const [k, v] of this.cache) {
        if (v.ref === 0) { this.cache.delete(k); break; }
      }
      if (this.cache.size >= this.ninode) throw fsErr('ENFILE', `inode cache full (${this.ninode} in use)`);
    }
    ip = new Inode(inum);
    ip.ref = 1;
    this.cache.set(inum, ip);
    return ip;
  }

  idup(ip: Inode): Inode {
    ip.ref++;
    return ip;
  }

  /**
   * Inode numbers allocated on disk with no link (T_DIR, T_FILE or T_DEVICE, nlink 0): files
   * unlinked and directories removed while in use, whose last close a crash prevented. One pass
   * over the inode blocks (32 MB on a 16 GiB large image, a few blocks on the default one); what
   * the cache holds of them is not looked at (call it before use).
   */
  async orphans(): Promise<number[]> {
    const { g, sb } = this;
    const out: number[] = [];
    for (let inum = 1; inum < sb.ninodes;) {
      const blk = iblock(g, sb, inum);
      const bp = await this.bc.bread(blk);
      const last = Math.min(sb.ninodes - 1, (blk - sb.inodestart + 1) * g.ipb - 1);
      for (; inum <= last; inum++) {
        const off = ioffset(g, inum); // type at +0 and nlink at +6 in both variants (decodeDinode)
        const type = bp.data.getU16(off);
        if (type >= T_DIR && type <= T_DEVICE && bp.data.getU16(off + 6) === 0) out.push(inum);
      }
      this.bc.brelse(bp);
    }
    return out;
  }

  /** Lock `ip` without waiting when it is free and valid (true); else false and nothing changed (then ilock). */
  tryLock(ip: Inode): boolean {
    return ip.valid && ip.ref >= 1 && ip.lock.tryAcquire();
  }

  /**
   * Lock `ip`, reading it from disk if needed. Throws EUCLEAN (unlocked) on a bad dinode, and on a
   * free one unless `ifFree` gives the error to throw instead.
   */
  async ilock(ip: Inode, ifFree?: () => FsError): Promise<void> {
    if (ip.ref < 1) throw new Error('ilock: unreferenced inode');
    if (!ip.lock.tryAcquire()) await ip.lock.acquire();
    if (ip.valid) return;
    try {
      const bp = await this.bc.bread(iblock(this.g, this.sb, ip.inum));
      const d = decodeDinode(this.g, bp.data, ioffset(this.g, ip.inum));
      this.bc.brelse(bp);
      if (d.type < 0 || d.type > T_DEVICE) throw corrupt(`inode ${ip.inum}: bad type ${d.type}`);
      if (d.type === T_FREE) throw ifFree ? ifFree() : corrupt(`inode ${ip.inum} is free (type 0) but in use`);
      if (d.nlink < 0) throw corrupt(`inode ${ip.inum}: negative link count ${d.nlink}`);
      if (!Number.isSafeInteger(d.size) || d.size > this.g.maxFileSize) throw corrupt(`inode ${ip.inum}: size ${d.size} exceeds the maximum ${this.g.maxFileSize}`);
      // A directory has no holes, so each of its blocks is a data block of its own: a bigger one
      // can only share blocks, and scanning what its size claims (up to 2^30 blocks in the large
      // variant) would hold the domain past its deadline.
      if (d.type === T_DIR && d.size > this.sb.nblocks * this.g.bsize) {
        throw corrupt(`inode ${ip.inum}: directory of ${d.size} bytes, more than the ${this.sb.nblocks} blocks of the data area`);
      }
      ip.type = d.type;
      ip.major = d.major;
      ip.minor = d.minor;
      ip.nlink = d.nlink;
      ip.unlinked = false;
      ip.size = d.size;
      ip.addrs = d.addrs;
      ip.valid = true;
    } catch (e) {
      ip.lock.release();
      throw e;
    }
  }

  /**
   * ilock, or — when the dinode proves bad (or free: `ifFree`) — forget the cached copy (so no
   * iput frees what the bad dinode claims) and drop the caller's reference, then throw.
   */
  async ilockOrRelease(ip: Inode, ifFree?: () => FsError): Promise<void> {
    try {
      await this.ilock(ip, ifFree);
    } catch (e) {
      this.forget(ip);
      await this.iput(ip);
      throw e;
    }
  }

  /** Remove a link of locked `ip` (a name unlinked or replaced), in a transaction. */
  async dropLink(ip: Inode): Promise<void> {
    ip.nlink--;
    await this.iupdate(ip);
    if (ip.nlink === 0) ip.unlinked = true;
  }

  /**
   * The error for locked `ip`, reached through directory entry `what`, found with no link. A walk
   * lets go of a directory before it locks what the directory's entry names, so a removal waiting
   * for that inode (behind the walk, which held it to read '.' of it, or held its child to read
   * '..') can take its last link first: ENOENT, as if the walk came after the removal, and its
   * last put frees it. Otherwise the entry is corrupt (EUCLEAN), and the cached copy is forgotten
   * so no put frees an inode an entry names.
   */
  unlinkedEntry(ip: Inode, what: string): FsError {
    if (ip.unlinked) return fsErr('ENOENT', `${what}: removed while being looked up`);
    this.forget(ip);
    return corrupt(`${what}: directory entry leads to inode ${ip.inum} with link count ${ip.nlink}`);
  }

  iunlock(ip: Inode): void {
    ip.lock.release();
  }

  /**
   * Drop a reference; frees the inode if it was the last one and nlink is 0 (in a transaction) —
   * except on a read-only mount, which leaves it an orphan for a read-write mount to reclaim.
   */
  async iput(ip: Inode): Promise<void> {
    if (this.freesOnPut(ip)) {
      await ip.lock.acquire();
      try {
        // Free the blocks, cycling transactions if one cannot hold all the bitmap changes. The
        // first step shares the caller's op, which may have logged 3 blocks already (see itrunc).
        while (!(await this.itrunc(ip, 0, this.g.maxOpBlocks - 4))) {
          await this.log.endOp();
          await this.log.beginOp();
        }
        ip.type = T_FREE;
        await this.iupdate(ip);
        this.log.noteInodeFreed(ip.inum);
        ip.valid = false;
        if (ip.inum < this.ihint) this.ihint = ip.inum;
      } finally {
        ip.lock.release();
      }
    }
    ip.ref--;
  }

  /** Whether iput(ip) would free the inode (and may take transactions of its own to do it). */
  freesOnPut(ip: Inode): boolean {
    return ip.ref === 1 && ip.valid && ip.nlink === 0 && !this.log.readOnly;
  }

  async iunlockput(ip: Inode): Promise<void> {
    this.iunlock(ip);
    await this.iput(ip);
  }

  /** Forget the cached copy (used when an entry proved corrupt, so iput never frees it). */
  forget(ip: Inode): void {
    ip.valid = false;
  }

  stati(ip: Inode): Stat {
    return { ino: ip.inum, type: ip.type, nlink: ip.nlink, size: ip.size, major: ip.major, minor: ip.minor };
  }

  // -------------------------------------------------------------------------------------------
  // Block mapping

  /**
   * The indirect block holding the address of file block `fbn` (>= ndirect) of locked `ip`, at
   * entry leafIndex(fbn). With alloc, missing indirect blocks on the way are allocated (zeroed,
   * logged); without, 0 when one is missing (a hole).
   */
  private async leafBlock(ip: Inode, fbn: number, alloc: boolean): Promise<number> {
    const g = this.g;
    for (let level = 1; level <= g.levels; level++) {
      const base = this.levelBase[level]!;
      if (fbn >= base + this.span[level]!) continue;
      const slot = g.ndirect + level - 1;
      let addr = ip.addrs[slot]!;
      if (addr === 0) {
        if (!alloc) return 0;
        addr = await this.alloc.balloc();
        ip.addrs[slot] = addr;
      } else if (!this.alloc.isData(addr)) throw this.alloc.outsideData(addr, `inode ${ip.inum} indirect root ${level}`);
      let rel = fbn - base;
      for (let l = level; l >= 2; l--) {
        const sp = this.span[l - 1]!;
        const idx = Math.floor(rel / sp);
        rel -= idx * sp;
        const bp = await this.bc.bread(addr);
        let next = bp.data.getU32(idx * 4);
        if (next === 0) {
          if (!alloc) { this.bc.brelse(bp); return 0; }
          try {
            next = await this.alloc.balloc();
          } catch (e) {
            this.bc.brelse(bp);
            throw e;
          }
          bp.data.setU32(idx * 4, next);
          this.log.logWrite(bp);
        }
        this.bc.brelse(bp);
        if (!this.alloc.isData(next)) throw this.alloc.outsideData(next, `inode ${ip.inum} file block ${fbn} (indirect block ${addr}[${idx}])`);
        addr = next;
      }
      return addr;
    }
    throw fsErr('EFBIG', `inode ${ip.inum}: file block ${fbn} beyond the maximum file size`);
  }

  /**
   * Entry of file block `fbn` (>= ndirect) in its leaf indirect block: every level's first file
   * block is ndirect plus a multiple of nindirect, so the remainder is the same at every level.
   */
  private leafIndex(fbn: number): number {
    return (fbn - this.g.ndirect) % this.g.nindirect;
  }

  /**
   * Disk block of file block `fbn` of locked `ip` (0: a hole, when !alloc). With alloc, missing
   * blocks (and indirect blocks) are allocated (in a transaction) — ENOSPC if the disk is full.
   * With `dataLeaf`, a missing data block is allocated uninitialized (balloc's `uninitialized`:
   * the caller must write all of it) and returned negated (-addr), so the caller knows without a
   * result object per block.
   */
  private async mapBlock(ip: Inode, fbn: number, alloc: boolean, dataLeaf: boolean): Promise<number> {
    if (fbn < this.g.ndirect) {
      const a = ip.addrs[fbn]!;
      if (a !== 0) {
        if (!this.alloc.isData(a)) throw this.alloc.outsideData(a, `inode ${ip.inum} block ${fbn}`);
        return a;
      }
      if (!alloc) return 0;
      const b = await this.alloc.balloc(dataLeaf);
      ip.addrs[fbn] = b;
      return dataLeaf ? -b : b;
    }
    const leaf = await this.leafBlock(ip, fbn, alloc);
    if (leaf === 0) return 0;
    const idx = this.leafIndex(fbn);
    const bp = await this.bc.bread(leaf);
    let next = bp.data.getU32(idx * 4);
    let fresh = false;
    if (next === 0) {
      if (!alloc) { this.bc.brelse(bp); return 0; }
      try {
        next = await this.alloc.balloc(dataLeaf);
      } catch (e) {
        this.bc.brelse(bp);
        throw e;
      }
      fresh = dataLeaf;
      bp.data.setU32(idx * 4, next);
      this.log.logWrite(bp);
    }
    this.bc.brelse(bp);
    if (!this.alloc.isData(next)) throw this.alloc.outsideData(next, `inode ${ip.inum} file block ${fbn} (indirect block ${leaf}[${idx}])`);
    return fresh ? -next : next;
  }

  /**
   * Disk block of file block `fbn` of locked `ip`; 0 for a hole when !alloc. With alloc, missing
   * blocks (and indirect blocks) are allocated (in a transaction) — ENOSPC if the disk is full.
   */
  bmap(ip: Inode, fbn: number, alloc: boolean): Promise<number> {
    return this.mapBlock(ip, fbn, alloc, false); // never negative without dataLeaf
  }

  /** Disk blocks of file blocks [fbn, fbn + count) of locked `ip` (0 for holes), reading each indirect block once. */
  async bmapRun(ip: Inode, fbn: number, count: number): Promise<number[]> {
    const out: number[] = [];
    while (out.length < count) {
      const f = fbn + out.length;
      if (f < this.g.ndirect) {
        const a = ip.addrs[f]!;
        if (a !== 0 && !this.alloc.isData(a)) throw this.alloc.outsideData(a, `inode ${ip.inum} block ${f}`);
        out.push(a);
        continue;
      }
      const leaf = await this.leafBlock(ip, f, false);
      if (leaf === 0) {
        out.push(0);
        continue;
      }
      const idx = this.leafIndex(f);
      const bp = await this.bc.bread(leaf);
      try {
        const end = Math.min(this.g.nindirect, idx + count - out.length);
        for (let i = idx; i < end; i++) {
          const a = bp.data.getU32(i * 4);
          if (a !== 0 && !this.alloc.isData(a)) throw this.alloc.outsideData(a, `inode ${ip.inum} file block ${fbn + out.length} (indirect block ${leaf}[${i}])`);
          out.push(a);
        }
      } finally {
        this.bc.brelse(bp);
      }
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Truncation

  private canFree(ctx: TruncCtx, b: number): boolean {
    const bb = this.alloc.bitmapBlockOf(b);
    if (ctx.touched.has(bb)) return true;
    if (ctx.touched.size >= ctx.bitmapBudget) return false;
    ctx.touched.add(bb);
    return true;
  }

  /** Free the part of the level-`level` subtree at `addr` (covering file blocks from `base`) at or beyond ctx.keep. */
  private async truncTree(ip: Inode, addr: number, level: number, base: number, ctx: TruncCtx): Promise<'freed' | 'kept'> {
    if (!this.alloc.isData(addr)) throw this.alloc.outsideData(addr, `inode ${ip.inum} truncate`);
    if (level === 0) {
      if (!this.canFree(ctx, addr)) { ctx.stopped = true; return 'kept'; }
      await this.alloc.bfree(addr);
      ctx.lowFreed = Math.min(ctx.lowFreed, base);
      return 'freed';
    }
    const nind = this.g.nindirect;
    const sp = this.span[level - 1]!;
    const bp = await this.bc.bread(addr);
    const e = new Uint32Array(nind);
    for (let i = 0; i < nind; i++) e[i] = bp.data.getU32(i * 4);
    this.bc.brelse(bp);
    const lo = ctx.keep > base ? Math.floor((ctx.keep - base) / sp) : 0;
    let dirty = false;
    for (let i = nind - 1; i >= lo && !ctx.stopped; i--) {
      const c = e[i]!;
      if (c === 0) continue;
      const r = await this.truncTree(ip, c, level - 1, base + i * sp, ctx);
      if (r === 'freed') { e[i] = 0; dirty = true; }
    }
    if (!ctx.stopped && ctx.keep <= base && e.every((v) => v === 0)) {
      if (this.canFree(ctx, addr)) {
        await this.alloc.bfree(addr);
        return 'freed';
      }
      ctx.stopped = true;
    }
    if (dirty) {
      const wb = await this.bc.bread(addr);
      for (let i = 0; i < nind; i++) wb.data.setU32(i * 4, e[i]!);
      this.log.logWrite(wb);
      this.bc.brelse(wb);
    }
    return 'kept';
  }

  /**
   * Shrink locked `ip` to `newSize` bytes (<= size), freeing blocks from the end, within a budget
   * of `budget` distinct logged blocks. Returns true when done; false when it stopped early (the
   * inode is then consistent, with a size between newSize and the old size).
   */
  async itrunc(ip: Inode, newSize: number, budget = this.g.maxOpBlocks - 1): Promise<boolean> {
    const g = this.g;
    this.ra.forget(ip);
    if (newSize >= ip.size && newSize > 0) {
      ip.size = newSize;
      await this.iupdate(ip);
      return true;
    }
    const keep = Math.ceil(newSize / g.bsize);
    // Why a step never logs more than `budget` blocks, however many bitmap blocks the image has
    // and however scattered the file is over them (checked in test/fs/write-split.test.ts):
    //  - freed blocks (data or indirect) are not logged; each free logs its bitmap block, and
    //    canFree stops the step before a distinct bitmap block beyond bitmapBudget;
    //  - the indirect blocks rewritten are kept ones with an entry cleared: on the path to the
    //    last kept block, and on the recursion stack when the step stops. The walk goes from the
    //    end down, so a node on the kept path is visited last among its siblings: where the stack
    //    leaves that path, the rest of it is not reached yet. Both lie on one root-to-leaf path:
    //    at most `levels` blocks (a tree above the kept one is freed whole, its root included);
    //  - the inode's block, and the last kept block when its tail is zeroed (a finished step).
    // So a step logs at most bitmapBudget + levels + 2 = budget - levels blocks (every caller's
    // budget exceeds 2·levels + 2: the floor of 1 never applies); the reservation below
    // (2·levels + 2, an indirect path per tree end) is looser, and kept. Callers: ftruncate and
    // open's O_TRUNC run each step in an op of its own (budget MAXOPBLOCKS − 1); iput runs its
    // first step in the op that dropped the last link (MAXOPBLOCKS − 4: unlink's directory block
    // and two inode blocks); rename commits before its iput. Either way an op logs at most
    // MAXOPBLOCKS − 1 − levels blocks.
    const ctx: TruncCtx = {
      keep, bitmapBudget: Math.max(1, budget - 2 * g.levels - 2), touched: new Set(), stopped: false,
      lowFreed: Number.MAX_SAFE_INTEGER,
    };
    for (let level = g.levels; level >= 1 && !ctx.stopped; level--) {
      const base = this.levelBase[level]!;
      const slot = g.ndirect + level - 1;
      if (keep >= base + this.span[level]!) continue;
      const a = ip.addrs[slot]!;
      if (a === 0) continue;
      if ((await this.truncTree(ip, a, level, base, ctx)) === 'freed') ip.addrs[slot] = 0;
    }
    for (let i = g.ndirect - 1; i >= keep && !ctx.stopped; i--) {
      const a = ip.addrs[i]!;
      if (a === 0) continue;
      if (!this.alloc.isData(a)) throw this.alloc.outsideData(a, `inode ${ip.inum} truncate`);
      if (!this.canFree(ctx, a)) { ctx.stopped = true; break; }
      await this.alloc.bfree(a);
      ip.addrs[i] = 0;
      ctx.lowFreed = Math.min(ctx.lowFreed, i);
    }
    if (ctx.stopped) {
      ip.size = Math.min(ip.size, Math.max(newSize, ctx.lowFreed * g.bsize));
    } else {
      if (newSize < ip.size) await this.zeroTail(ip, newSize);
      ip.size = newSize;
    }
    await this.iupdate(ip);
    return !ctx.stopped;
  }

  /**
   * Zero the bytes of locked `ip`'s block holding offset `size` from there to the block's end
   * (none when `size` is a block boundary or the block is a hole). A file shrunk into a block
   * keeps the block; when it grows again (a hole past the end, or a write beyond it) those bytes
   * must read as zeros, not as what the file held before. Logged, as any overwrite of file data
   * an earlier transaction may have committed.
   */
  private async zeroTail(ip: Inode, size: number): Promise<void> {
    const bs = this.g.bsize;
    const boff = size % bs;
    if (boff === 0) return;
    const addr = await this.bmap(ip, (size - boff) / bs, false);
    if (addr === 0) return;
    const bp = await this.bc.bread(addr);
    bp.data.fill(0, boff, bs - boff);
    this.log.logWrite(bp);
    this.bc.brelse(bp);
  }

  // -------------------------------------------------------------------------------------------
  // Data

  /**
   * Read up to n bytes at `off` of locked `ip` into dst[dstOff..]. Holes read as zeros. A regular
   * file read where its last read ended (from its start, at first) is sequential: its blocks come
   * from a read-ahead window (readahead.ts) holding the run of consecutive disk blocks from there.
   */
  async readi(ip: Inode, dst: Bytes, dstOff: number, off: number, n: number): Promise<number> {
    if (off > ip.size || n <= 0) return 0;
    if (off + n > ip.size) n = ip.size - off;
    const bs = this.g.bsize;
    const isU8 = dst instanceof Uint8Array;
    const isFile = ip.type === T_FILE;
    let tot = 0;
    while (tot < n) {
      const fbn = Math.floor(off / bs);
      const boff = off - fbn * bs;
      const m = Math.min(n - tot, bs - boff);
      if (isFile) {
        const w = this.ra.find(ip, fbn) ?? (fbn === ip.nextRead ? await this.readAhead(ip, fbn) : null);
        if (w !== null) {
          const from = (fbn - w.start) * bs + boff;
          if (isU8) w.buf.read(from, dst, dstOff, m);
          else dst.copyFrom(w.buf, from, dstOff, m);
          tot += m;
          off += m;
          dstOff += m;
          continue;
        }
      }
      const addr = await this.bmap(ip, fbn, false);
      if (addr === 0) {
        if (isU8) dst.fill(0, dstOff, dstOff + m);
        else dst.fill(0, dstOff, m);
      } else {
        const bp = await this.bc.bread(addr);
        if (isU8) bp.data.read(boff, dst, dstOff, m);
        else dst.copyFrom(bp.data, boff, dstOff, m);
        this.bc.brelse(bp);
      }
      tot += m;
      off += m;
      dstOff += m;
    }
    ip.nextRead = Math.floor(off / bs);
    return tot;
  }

  /**
   * readi without waiting, for a sequential reader's steady state: when `ip` is valid and not
   * locked (so no call is changing it; this runs to completion without yielding, so it needs no
   * lock) and the bytes [off, off + n) are at or past the end of the file or all in one read-ahead
   * window, copy them and return the count, as readi would. Null otherwise (nothing changed:
   * the caller runs readi under the lock).
   */
  readiNow(ip: Inode, dst: DmaBytes, dstOff: number, off: number, n: number): number | null {
    if (ip.lock.locked || !ip.valid) return null;
    if (off > ip.size || n <= 0) return 0;
    if (off + n > ip.size) n = ip.size - off;
    if (n === 0 || ip.type !== T_FILE) return n === 0 ? 0 : null;
    const bs = this.g.bsize;
    const fbn = Math.floor(off / bs);
    const w = this.ra.find(ip, fbn);
    if (w === null || Math.floor((off + n - 1) / bs) >= w.start + w.count) return null;
    dst.copyFrom(w.buf, (fbn - w.start) * bs + (off - fbn * bs), dstOff, n);
    ip.nextRead = Math.floor((off + n) / bs);
    return n;
  }

  /** A window holding file block `fbn` of locked `ip` and the run of consecutive disk blocks after it, or null. */
  private async readAhead(ip: Inode, fbn: number): Promise<Window | null> {
    const count = Math.min(this.ra.blocks, Math.ceil(ip.size / this.g.bsize) - fbn);
    if (count < 2) return null;
    const addrs = await this.bmapRun(ip, fbn, count);
    const first = addrs[0]!;
    if (first === 0) return null;
    let run = 1;
    while (run < count && addrs[run] === first + run) run++;
    return run < 2 ? null : this.ra.fill(ip, fbn, first, run);
  }

  /**
   * Write n bytes from src[srcOff..] at `off` of locked `ip` (in a transaction). Returns the count
   * written, short if the disk filled up (ENOSPC thrown only if nothing was written).
   *
   * Ordered mode for regular files: a data block the log allows (`Log.mayWriteInPlace`: allocated
   * by this uncommitted group, named by neither the log nor a free of this group) is written in
   * place at once, not logged; only the metadata (bitmap, indirect blocks, inode) goes through the
   * log. Every other data block — overwrites of blocks an earlier transaction made part of the
   * file above all — is logged, so an overwrite is atomic with its transaction as in xv6. A crash
   * before the commit leaves an in-place block unreferenced and free; the commit's first flush
   * makes it durable before the commit point. Directory blocks are always logged. A whole new
   * block written from a whole exchange-heap buffer (a system call's 4 KiB write) goes from that
   * buffer to the device, behind the cache (no copy; the cache drops a stale copy of the block).
   */
  async writei(ip: Inode, src: Bytes, srcOff: number, off: number, n: number): Promise<number> {
    const g = this.g;
    if (off < 0 || n < 0) throw fsErr('EINVAL', 'negative offset or length');
    if (off + n > g.maxFileSize) throw fsErr('EFBIG', `write to ${off + n} beyond the maximum file size ${g.maxFileSize}`);
    const bs = g.bsize;
    const ordered = ip.type === T_FILE;
    this.ra.forget(ip);
    let tot = 0;
    let err: unknown = null;
    while (tot < n) {
      const fbn = Math.floor(off / bs);
      const boff = off - fbn * bs;
      const m = Math.min(n - tot, bs - boff);
      let addr: number;
      try {
        addr = await this.mapBlock(ip, fbn, true, ordered);
      } catch (e) {
        if (e instanceof FsError && e.code === 'ENOSPC') { err = e; break; }
        throw e;
      }
      const fresh = addr < 0; // allocated uninitialized just now (mapBlock)
      if (fresh) addr = -addr;
      if (ordered && m === bs && !(src instanceof Uint8Array) && srcOff === 0 && src.byteLength === bs && this.log.mayWriteInPlace(addr)) {
        // A whole new block from a whole exchange-heap buffer: straight from it to the device.
        let written = false;
        try {
          written = await this.bc.writeAround(addr, src);
        } catch {
          // the device failed: log it instead (below)
        }
        if (written) {
          tot += m;
          off += m;
          srcOff += m;
          continue;
        }
      }
      const bp = await this.bc.bread(addr, m === bs || fresh);
      fillBlock(bp.data, fresh && m < bs, src, srcOff, boff, m);
      if (ordered && this.log.mayWriteInPlace(addr)) {
        try {
          await this.bc.bwrite(bp);
        } catch {
          // The device failed the in-place write: log the block instead (the commit then fails
          // too if the device stays down, and the fs with it — never a file with garbage in it).
          fillBlock(bp.data, fresh && m < bs, src, srcOff, boff, m);
          this.log.logWrite(bp);
        }
      } else {
        this.log.logWrite(bp);
      }
      this.bc.brelse(bp);
      tot += m;
      off += m;
      srcOff += m;
    }
    if (off > ip.size) ip.size = off;
    await this.iupdate(ip);
    if (tot === 0 && err) throw err;
    return tot;
  }
}

/** Copy m bytes of src[srcOff..] to block buffer `dst` at boff, zeroing the rest of it first when `zero`. */
function fillBlock(dst: DmaBytes, zero: boolean, src: Bytes, srcOff: number, boff: number, m: number): void {
  if (zero) dst.fill(0);
  if (src instanceof Uint8Array) dst.write(boff, src, srcOff, m);
  else dst.copyFrom(src, srcOff, boff, m);
}

export { naddrs };
