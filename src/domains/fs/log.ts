/**
 * The redo log (xv6 log.c, with lazy installation as in a journaling fs's checkpoints), for both
 * variants. A system call's metadata block writes go to cached buffers and are recorded with
 * logWrite inside beginOp/endOp; they reach their home locations only through the log.
 *
 * Commit (when the last outstanding op of a group ends): copy the group's logged blocks to the
 * next free slots of the log region (one device write), flush, write the header naming every
 * committed entry so far (the commit point), flush. The entries are *not* installed at once: a
 * block logged by many transactions in a row (the inode and the bitmap block of a file being
 * appended to) would cost a home write per transaction. Installation (a checkpoint) happens when
 * the log could not admit one more op, and at sync/unmount: write every block the log names from
 * its cached buffer (runs of consecutive blocks coalesced), flush, write the header with n = 0,
 * flush. Recovery at mount installs the header's entries in log order, so when a block appears
 * in several entries the last one (the newest committed contents) wins; then clears the header.
 *
 * Ordered-mode file data (see InodeLayer.writei): a file data block allocated by the current,
 * uncommitted group may be written in place instead of being logged — until the group commits
 * nothing durable references it, and its in-place write has resolved before the commit's first
 * flush, so it is durable before the commit point. The log tracks which blocks qualify
 * (`mayWriteInPlace`): allocated in this group, not freed in this group (the free of its previous
 * owner is not durable yet, so overwriting it in place could change a file a crash then brings
 * back), and not named by the uninstalled log (recovery would install the log's older contents
 * over it). Anything else is logged.
 *
 * Invariants:
 *  - beginOp admits an op only if the log can still hold MAXOPBLOCKS more for every outstanding
 *    op (entries + group + (outstanding+1)·MAXOPBLOCKS <= cap) and no commit is running: group
 *    commit; after every commit entries + MAXOPBLOCKS <= cap (else it installs), so one op can
 *    always be admitted;
 *  - every block named by the log (committed or in the open group) is pinned in the cache once,
 *    and its cached buffer holds its newest contents; buffers are not modified during a commit or
 *    an installation (no op is outstanding then), so both write straight from the cached data;
 *  - a log slot is written only beyond the committed entries (never one the durable header
 *    names), and the header is cleared durably before slots are reused;
 *  - the header never names more than cap blocks (cap <= xv6's LOGSIZE 30 for the xv6 variant),
 *    and never a block below inodestart or beyond the image;
 *  - a failed commit or installation leaves the fs failed: every later beginOp throws EIO;
 *  - an inode freed by the open group is not allocated again until that group commits
 *    (`mayReuseInode`), so after a crash an inode number names the file it named before, or a
 *    free inode, never another file (what Rv6Fs.reopen relies on);
 *  - the log's device buffers are replaced by the handles device transfers return (see device.ts);
 *  - on a read-only mount the log writes nothing, ever (see below).
 *
 * Read-only mounts (a host image the user may only read: `redleaf cp IMG:/f out`, `inspect`).
 * Installing a pending log would write the image, and ignoring it would show an older state —
 * one fsck may find inconsistent (a directory naming an inode whose block is only in the log).
 * ext4 offers only those two (`noload` on a read-only device). Here recovery applies the committed
 * entries to an in-memory overlay instead: each logged block is put in the buffer cache with its
 * newest logged contents and pinned, as a committed, uninstalled block is on a read-write mount,
 * so every read (the cache's, and read-ahead's, which prefers valid cached buffers) sees the
 * recovered file system while the device keeps the log, header included, for the next read-write
 * mount to install. Any change is refused with EROFS (logWrite, checkpoint does nothing), and the
 * file system refuses writing calls before they touch a buffer (FileSystem.refuseIfReadOnly).
 */
import type { DmaBytes } from '../../runtime/types.js';
import type { Buf, BufCache } from './bio.js';
import { afterFailure, type Alloc } from './device.js';
import { asFsError, corrupt, fsErr, FsError } from './errors.js';
import { decodeLogHeader, type Geometry, type Layout, type Superblock } from './format.js';
import { WaitQueue } from './sync.js';

/** Indices of the log's device buffers (see Log.io). */
const HDR = 0;
const STAGING = 1;
const EXACT_MAX = 4;

export class Log {
  /** Home block numbers of the committed, uninstalled entries, in log order (slot i+1 holds entry i). */
  private entries: number[] = [];
  /** Blocks logged by the open group, in logging order (each has `loggedIn` = `group`). */
  private groupBufs: Buf[] = [];
  /**
   * The open group's number: counts up at every commit, so that "in the open group" is a number
   * comparison (Buf.loggedIn, the values of `fresh` and `freed`) instead of sets cleared per commit.
   */
  private group = 1;
  /** Every block the log names (committed or in the open group), pinned once in the cache. */
  private readonly pinned = new Map<number, Buf>();
  /** Block → the group that allocated it (ordered mode: fresh while that group is open). */
  private readonly fresh = new Map<number, number>();
  /** Block → the group that freed it (the previous owner's free is durable once it commits). */
  private readonly freed = new Map<number, number>();
  /** Inode number → the group that freed it (see noteInodeFreed). */
  private readonly freedInodes = new Map<number, number>();
  private outstanding = 0;
  private committing = false;
  /** Install at the end of the next commit even if the log has room (sync, unmount). */
  private installWanted = false;
  private readonly waitq = new WaitQueue();
  /**
   * The log's device buffers: HDR (one block), STAGING (the whole log), and for n in
   * 1..EXACT_MAX an n-block buffer at index STAGING + n, so that a commit of a few blocks writes a
   * whole buffer (a borrow) instead of moving a request through the device.
   */
  private readonly io: DmaBytes[] = [];
  private readonly ioBytes: number[] = [];
  private failed: FsError | null = null;
  commits = 0;
  installs = 0;

  constructor(
    private readonly bc: BufCache,
    private readonly alloc: Alloc,
    private readonly g: Geometry,
    private readonly sb: Superblock,
    private readonly layout: Layout,
    /** Usable entries (<= layout.logCap; bounded by the cache size). */
    readonly cap: number,
    /** A read-only mount: recovery overlays the log in the cache, and nothing is ever written (see the header). */
    readonly readOnly = false,
  ) {
    this.ioBytes[HDR] = g.bsize;
    this.ioBytes[STAGING] = Math.max(layout.logCap, cap) * g.bsize;
    for (let n = 1; n <= EXACT_MAX; n++) this.ioBytes[STAGING + n] = n * g.bsize;
    for (const bytes of this.ioBytes) this.io.push(alloc(bytes));
  }

  /** Release the log's buffers (unmount). */
  destroy(): void {
    for (const b of this.io) this.bc.dev.free(b);
    this.io.length = 0;
  }

  get inOp(): boolean {
    return this.outstanding > 0;
  }

  get fsFailed(): FsError | null {
    return this.failed;
  }

  /** Committed entries not installed yet. */
  get uninstalled(): number {
    return this.entries.length;
  }

  /** One device transfer of `nblocks` blocks at `block` from/into the log's buffer `which` (HDR, STAGING, ...). */
  private async transfer(write: boolean, block: number, which: number, nblocks: number): Promise<void> {
    const dev = this.bc.dev;
    const lba = this.bc.lba(block);
    const count = nblocks * this.bc.spb;
    const buf = this.io[which]!;
    try {
      this.io[which] = write ? await dev.write(lba, buf, count) : await dev.read(lba, buf, count);
    } catch (e) {
      this.io[which] = afterFailure(e, buf, this.ioBytes[which]!, this.alloc);
      throw asFsError(e, `log: ${write ? 'writing' : 'reading'} block ${block}`);
    }
  }

  private get hdr(): DmaBytes {
    return this.io[HDR]!;
  }

  private async flush(): Promise<void> {
    try {
      await this.bc.dev.flush();
    } catch (e) {
      throw asFsError(e, 'log: flush');
    }
  }

  /**
   * Mount-time recovery: install a committed log left by a crash (in log order). Returns n
   * installed — on a read-only mount, applied to the cache's overlay instead (overlay()).
   */
  async recover(): Promise<number> {
    const { sb, g } = this;
    await this.transfer(false, sb.logstart, HDR, 1);
    const { entries, problems } = decodeLogHeader(sb, this.layout, this.hdr);
    if (problems.length > 0) throw corrupt(problems[0]!);
    const n = entries.length;
    if (n === 0) return 0;
    await this.transfer(false, sb.logstart + 1, STAGING, n);
    if (this.readOnly) {
      await this.overlay(entries.map((e) => e.home));
      return n;
    }
    for (let i = 0; i < n; i++) {
      // The header buffer, parsed already, is the one-block bounce buffer; entry i is in slot i.
      const home = entries[i]!.home;
      this.hdr.copyFrom(this.io[STAGING]!, i * g.bsize, 0, g.bsize);
      await this.transfer(true, home, HDR, 1);
      this.bc.invalidate(home);
    }
    await this.flush();
    this.hdr.setU32(0, 0);
    await this.transfer(true, sb.logstart, HDR, 1);
    await this.flush();
    return n;
  }

  /**
   * Read-only recovery: entry i (in the staging buffer's slot i) becomes the cached, pinned
   * contents of block homes[i], in log order so that the newest copy of a block wins. The pins
   * are never dropped (nothing installs them), so the cache never rereads those blocks from home.
   * FileSystem.mount sizes the cache so that a full log leaves it room to work.
   */
  private async overlay(homes: number[]): Promise<void> {
    const bs = this.g.bsize;
    const overlaid = new Set<number>();
    for (let i = 0; i < homes.length; i++) {
      const home = homes[i]!;
      const b = await this.bc.bread(home, true);
      b.data.copyFrom(this.io[STAGING]!, i * bs, 0, bs);
      if (!overlaid.has(home)) {
        overlaid.add(home);
        this.bc.bpin(b);
      }
      this.bc.brelse(b);
    }
  }

  async beginOp(): Promise<void> {
    for (;;) {
      if (this.failed) throw fsErr('EIO', `file system failed: ${this.failed.message}`);
      if (this.tryBeginOp()) return;
      await this.waitq.sleep();
    }
  }

  /** beginOp without waiting: true when admitted now; false (nothing changed) when beginOp must wait or fail. */
  tryBeginOp(): boolean {
    if (this.failed !== null || this.committing || this.entries.length + this.groupBufs.length + (this.outstanding + 1) * this.g.maxOpBlocks > this.cap) return false;
    this.outstanding++;
    return true;
  }

  async endOp(): Promise<void> {
    this.outstanding--;
    if (this.outstanding < 0) throw new Error('log: endOp without beginOp');
    if (this.outstanding > 0) {
      this.waitq.wakeup();
      return;
    }
    this.committing = true;
    try {
      await this.commit();
      if (this.installWanted || this.entries.length + this.g.maxOpBlocks > this.cap) await this.install();
    } catch (e) {
      this.failed = asFsError(e, 'log: commit');
      throw this.failed;
    } finally {
      this.committing = false;
      this.waitq.wakeup();
    }
  }

  /**
   * Commit the open group (if any) and install the whole log, so that every home location is
   * current and the header is clear (sync, unmount). Durable once it resolves if no other op was
   * outstanding; otherwise the group's last op does it.
   */
  async checkpoint(): Promise<void> {
    if (this.readOnly) return; // nothing to commit, and the overlay must not be installed
    await this.beginOp();
    this.installWanted = true;
    await this.endOp();
  }

  /** Record that locked buffer `b` was modified by the current op (xv6 log_write). */
  logWrite(b: Buf): void {
    if (this.outstanding < 1) throw new Error('log: logWrite outside of a transaction');
    // FileSystem refuses writing calls first; this is the backstop that keeps the device untouched.
    if (this.readOnly) throw fsErr('EROFS', `read-only mount: block ${b.blockno} would change`);
    if (b.loggedIn === this.group) return; // absorption
    if (this.entries.length + this.groupBufs.length >= this.cap) throw fsErr('EIO', `log: transaction too big (${this.groupBufs.length} blocks)`);
    const blockno = b.blockno;
    b.loggedIn = this.group;
    this.groupBufs.push(b);
    if (!this.pinned.has(blockno)) {
      this.pinned.set(blockno, b);
      this.bc.bpin(b);
    }
  }

  /** Block `b` was just allocated by the open group (balloc). */
  noteAllocated(b: number): void {
    if (this.freed.get(b) !== this.group) this.fresh.set(b, this.group);
  }

  /** Block `b` was just freed by the open group (bfree). */
  noteFreed(b: number): void {
    this.fresh.delete(b);
    this.freed.set(b, this.group);
  }

  /** Inode `inum` was just freed (type 0) by the open group (iput). */
  noteInodeFreed(inum: number): void {
    this.freedInodes.set(inum, this.group);
  }

  /**
   * May inode `inum` (free in the cache) be allocated now? Not while the group that freed it is
   * open: a crash would undo both the free and the new allocation, and an inode number a client
   * holds for the new file (Rv6Fs.reopen after a restart) would then name the old file.
   */
  mayReuseInode(inum: number): boolean {
    return this.freedInodes.get(inum) !== this.group;
  }

  /** May file data block `b` be written in place instead of logged? (See the header comment.) */
  mayWriteInPlace(b: number): boolean {
    return this.fresh.get(b) === this.group && !this.pinned.has(b);
  }

  private async commit(): Promise<void> {
    const bufs = this.groupBufs;
    const n = bufs.length;
    // Close the group: its fresh and freed entries no longer match (stale ones go at installs).
    this.group++;
    if (n === 0) return;
    const { g, sb } = this;
    const bs = g.bsize;
    const base = this.entries.length;
    const which = n <= EXACT_MAX ? STAGING + n : STAGING;
    const staging = this.io[which]!;
    for (let i = 0; i < n; i++) staging.copyFrom(bufs[i]!.data, 0, i * bs, bs);
    await this.transfer(true, sb.logstart + 1 + base, which, n);
    await this.flush();
    for (let i = 0; i < n; i++) {
      const blockno = bufs[i]!.blockno;
      this.hdr.setU32(4 + 4 * (base + i), blockno);
      this.entries.push(blockno);
    }
    this.hdr.setU32(0, base + n);
    this.groupBufs = [];
    await this.transfer(true, sb.logstart, HDR, 1); // commit point
    await this.flush();
    this.commits++;
  }

  /** Write every block the log names home from the cache, then clear the header (durably). */
  private async install(): Promise<void> {
    this.installWanted = false;
    this.fresh.clear();
    this.freed.clear();
    this.freedInodes.clear();
    if (this.entries.length === 0) return;
    const bs = this.g.bsize;
    const homes = [...this.pinned.keys()].sort((a, b) => a - b);
    // Coalesce runs of consecutive home blocks into one device write each.
    let i = 0;
    while (i < homes.length) {
      let j = i + 1;
      while (j < homes.length && homes[j] === homes[j - 1]! + 1) j++;
      const staging = this.io[STAGING]!;
      for (let k = i; k < j; k++) staging.copyFrom(this.pinned.get(homes[k]!)!.data, 0, (k - i) * bs, bs);
      await this.transfer(true, homes[i]!, STAGING, j - i);
      i = j;
    }
    await this.flush();
    this.hdr.setU32(0, 0);
    await this.transfer(true, this.sb.logstart, HDR, 1);
    await this.flush();
    for (const b of this.pinned.values()) this.bc.bunpin(b);
    this.pinned.clear();
    this.entries = [];
    this.installs++;
  }
}
