/**
 * The redo log (xv6 log.c), for both variants: a system call's block writes go to cached buffers
 * and are recorded with logWrite inside beginOp/endOp; they reach their home locations only
 * through a commit.
 *
 * Commit (when the last outstanding op of a group ends): copy the logged blocks to the log region
 * (one device write), flush, write the header with n (the commit point), flush, install each block
 * at home (runs of consecutive blocks coalesced), flush, write the header with n = 0.
 * Recovery at mount: a header with n > 0 is re-installed, then cleared.
 *
 * Invariants:
 *  - beginOp admits an op only if the log can still hold MAXOPBLOCKS more for every outstanding
 *    op (lh.n + (outstanding+1)·MAXOPBLOCKS <= cap) and no commit is running: group commit;
 *  - a logged buffer is pinned in the cache until installed; it is not modified during a commit
 *    (no op is outstanding then), so the commit writes straight from the cached DmaBytes;
 *  - the header never names more than cap blocks (cap <= xv6's LOGSIZE 30 for the xv6 variant),
 *    and never a block below inodestart or beyond the image;
 *  - a failed commit leaves the fs failed: every later beginOp throws EIO;
 *  - `hdr` and `staging` are replaced by the handles device transfers return (see device.ts).
 */
import type { DmaBytes } from '../../runtime/types.js';
import type { Buf, BufCache } from './bio.js';
import { afterFailure, type Alloc } from './device.js';
import { asFsError, corrupt, fsErr, FsError } from './errors.js';
import type { Geometry, Layout, Superblock } from './format.js';
import { WaitQueue } from './sync.js';

export class Log {
  /** Home block numbers, in log order. */
  private lh: number[] = [];
  private bufs: Buf[] = [];
  private index = new Map<number, number>();
  private outstanding = 0;
  private committing = false;
  private readonly waitq = new WaitQueue();
  private hdr: DmaBytes;
  private staging: DmaBytes;
  private readonly stagingBytes: number;
  private failed: FsError | null = null;
  commits = 0;

  constructor(
    private readonly bc: BufCache,
    private readonly alloc: Alloc,
    private readonly g: Geometry,
    private readonly sb: Superblock,
    private readonly layout: Layout,
    /** Usable entries (<= layout.logCap; bounded by the cache size). */
    readonly cap: number,
  ) {
    this.hdr = alloc(g.bsize);
    this.stagingBytes = Math.max(layout.logCap, cap) * g.bsize;
    this.staging = alloc(this.stagingBytes);
  }

  /** Release the log's buffers (unmount). */
  destroy(): void {
    this.bc.dev.free(this.hdr);
    this.bc.dev.free(this.staging);
  }

  get inOp(): boolean {
    return this.outstanding > 0;
  }

  get fsFailed(): FsError | null {
    return this.failed;
  }

  /** One device transfer of `nblocks` blocks at `block` from/into the header or the staging buffer. */
  private async transfer(write: boolean, block: number, which: 'hdr' | 'staging', nblocks: number): Promise<void> {
    const dev = this.bc.dev;
    const lba = this.bc.lba(block);
    const count = nblocks * this.bc.spb;
    const buf = this[which];
    try {
      this[which] = write ? await dev.write(lba, buf, count) : await dev.read(lba, buf, count);
    } catch (e) {
      this[which] = afterFailure(e, buf, which === 'hdr' ? this.g.bsize : this.stagingBytes, this.alloc);
      throw asFsError(e, `log: ${write ? 'writing' : 'reading'} block ${block}`);
    }
  }

  private async flush(): Promise<void> {
    try {
      await this.bc.dev.flush();
    } catch (e) {
      throw asFsError(e, 'log: flush');
    }
  }

  /** Mount-time recovery: install a committed transaction left by a crash. Returns n installed. */
  async recover(): Promise<number> {
    const { sb, g } = this;
    await this.transfer(false, sb.logstart, 'hdr', 1);
    const n = this.hdr.getU32(0);
    if (n === 0) return 0;
    if (n > this.layout.logCap) throw corrupt(`log header: n=${n} exceeds the log capacity ${this.layout.logCap}`);
    const homes: number[] = [];
    for (let i = 0; i < n; i++) {
      const b = this.hdr.getU32(4 + 4 * i);
      if (b < sb.inodestart || b >= sb.size) throw corrupt(`log header: entry ${i} names block ${b} outside [${sb.inodestart}, ${sb.size})`);
      homes.push(b);
    }
    await this.transfer(false, sb.logstart + 1, 'staging', n);
    for (let i = 0; i < n; i++) {
      // The header buffer, parsed already, is the one-block bounce buffer.
      this.hdr.copyFrom(this.staging, i * g.bsize, 0, g.bsize);
      await this.transfer(true, homes[i]!, 'hdr', 1);
      this.bc.invalidate(homes[i]!);
    }
    await this.flush();
    this.hdr.fill(0);
    await this.transfer(true, sb.logstart, 'hdr', 1);
    await this.flush();
    return n;
  }

  async beginOp(): Promise<void> {
    for (;;) {
      if (this.failed) throw fsErr('EIO', `file system failed: ${this.failed.message}`);
      if (this.committing || this.lh.length + (this.outstanding + 1) * this.g.maxOpBlocks > this.cap) {
        await this.waitq.sleep();
        continue;
      }
      this.outstanding++;
      return;
    }
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
    } catch (e) {
      this.failed = asFsError(e, 'log: commit');
      throw this.failed;
    } finally {
      this.committing = false;
      this.waitq.wakeup();
    }
  }

  /** Record that locked buffer `b` was modified by the current op (xv6 log_write). */
  logWrite(b: Buf): void {
    if (this.outstanding < 1) throw new Error('log: logWrite outside of a transaction');
    if (this.index.has(b.blockno)) return; // absorption
    if (this.lh.length >= this.cap) throw fsErr('EIO', `log: transaction too big (${this.lh.length} blocks)`);
    this.index.set(b.blockno, this.lh.length);
    this.lh.push(b.blockno);
    this.bufs.push(b);
    this.bc.bpin(b);
  }

  private async commit(): Promise<void> {
    const n = this.lh.length;
    if (n === 0) return;
    const { g, sb } = this;
    const bs = g.bsize;
    for (let i = 0; i < n; i++) this.staging.copyFrom(this.bufs[i]!.data, 0, i * bs, bs);
    await this.transfer(true, sb.logstart + 1, 'staging', n);
    await this.flush();
    this.hdr.fill(0);
    this.hdr.setU32(0, n);
    for (let i = 0; i < n; i++) this.hdr.setU32(4 + 4 * i, this.lh[i]!);
    await this.transfer(true, sb.logstart, 'hdr', 1); // commit point
    await this.flush();
    // Install, coalescing runs of consecutive home blocks into one device write.
    const order = [...this.lh.keys()].sort((a, b) => this.lh[a]! - this.lh[b]!);
    let i = 0;
    while (i < n) {
      let j = i + 1;
      while (j < n && this.lh[order[j]!]! === this.lh[order[j - 1]!]! + 1) j++;
      for (let k = i; k < j; k++) this.staging.copyFrom(this.bufs[order[k]!]!.data, 0, (k - i) * bs, bs);
      await this.transfer(true, this.lh[order[i]!]!, 'staging', j - i);
      i = j;
    }
    await this.flush();
    this.hdr.fill(0);
    await this.transfer(true, sb.logstart, 'hdr', 1);
    for (const b of this.bufs) this.bc.bunpin(b);
    this.lh = [];
    this.bufs = [];
    this.index.clear();
    this.commits++;
  }
}
