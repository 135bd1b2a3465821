/**
 * The buffer cache (xv6 bio.c): a fixed number of block buffers, each an exchange-heap DmaBytes
 * of BSIZE bytes allocated once at mount, holding cached copies of disk blocks.
 *
 * Invariants:
 *  - at most one buffer per block number (`map`, O(1) lookup);
 *  - a buffer is reused only when its refcnt is 0 (not held, not pinned by the log); the victim
 *    is the least recently released one (`lru`, insertion-ordered);
 *  - `bread` returns the buffer locked (a SleepLock, since I/O is async); only the holder may
 *    read or change its data; `brelse` unlocks;
 *  - a pinned buffer (logged, until the log installs it) is never evicted, so a logged block is
 *    written to its home location only by the log's install step; file data written in place
 *    (ordered mode) goes to the device at once, from its buffer (bwrite) or from the caller's
 *    behind the cache (writeAround, which first drops a cached copy of the block);
 *  - when every buffer is in use, bget waits for a release instead of failing;
 *  - `Buf.data` is replaced by the handle a device transfer returns (a BDev moves buffers), only
 *    by the buffer's lock holder; after a failed transfer it is still a usable buffer.
 */
import type { DmaBytes } from '../../runtime/types.js';
import type { Alloc, BlockDevice } from './device.js';
import { afterFailure } from './device.js';
import { asFsError, fsErr } from './errors.js';
import { SleepLock, WaitQueue } from './sync.js';

export class Buf {
  blockno = -1;
  valid = false;
  refcnt = 0;
  /** The log group that last logged this buffer (log.ts: absorption within a group). */
  loggedIn = 0;
  readonly lock = new SleepLock();
  constructor(public data: DmaBytes) {}
}

export class BufCache {
  readonly bsize: number;
  /** Device sectors per fs block. */
  readonly spb: number;
  private readonly map = new Map<number, Buf>();
  private readonly lru = new Set<Buf>();
  private readonly unused: Buf[] = [];
  private readonly waitq = new WaitQueue();
  private readonly maxBlock: number;
  hits = 0;
  misses = 0;

  constructor(readonly dev: BlockDevice, readonly alloc: Alloc, bsize: number, readonly nbuf: number) {
    if (bsize % dev.blockSize !== 0) throw fsErr('EINVAL', `device sector size ${dev.blockSize} does not divide block size ${bsize}`);
    this.bsize = bsize;
    this.spb = bsize / dev.blockSize;
    this.maxBlock = Math.floor(dev.blockCount / this.spb);
    for (let i = 0; i < nbuf; i++) this.unused.push(new Buf(alloc(bsize)));
  }

  /** Sector address of fs block `b`. */
  lba(b: number): number {
    return b * this.spb;
  }

  private async bget(blockno: number): Promise<Buf> {
    for (;;) {
      const b = this.map.get(blockno);
      if (b) {
        if (b.refcnt === 0) this.lru.delete(b);
        b.refcnt++;
        this.hits++;
        await b.lock.acquire();
        return b;
      }
      let victim = this.unused.pop();
      if (!victim) {
        const it = this.lru.values().next();
        if (!it.done) {
          victim = it.value;
          this.lru.delete(victim);
          this.map.delete(victim.blockno);
        }
      }
      if (!victim) {
        await this.waitq.sleep();
        continue;
      }
      this.misses++;
      victim.blockno = blockno;
      victim.valid = false;
      victim.refcnt = 1;
      this.map.set(blockno, victim);
      await victim.lock.acquire();
      return victim;
    }
  }

  /**
   * Return a locked buffer with the contents of block `blockno`. With `overwrite` the caller
   * promises to overwrite the whole block before releasing it, so no device read is done.
   * A cached, valid, unlocked buffer is returned at once (no promise: the hot path of every
   * bitmap, inode and indirect block access); callers await the result either way.
   */
  bread(blockno: number, overwrite = false): Buf | Promise<Buf> {
    const b = this.map.get(blockno);
    if (b !== undefined && b.valid && b.lock.tryAcquire()) {
      if (b.refcnt === 0) this.lru.delete(b);
      b.refcnt++;
      this.hits++;
      return b;
    }
    return this.breadSlow(blockno, overwrite);
  }

  private async breadSlow(blockno: number, overwrite: boolean): Promise<Buf> {
    if (!Number.isInteger(blockno) || blockno < 0 || blockno >= this.maxBlock) {
      throw fsErr('EIO', `block ${blockno} beyond device (${this.maxBlock} blocks)`);
    }
    const b = await this.bget(blockno);
    if (!b.valid) {
      if (!overwrite) {
        try {
          b.data = await this.dev.read(blockno * this.spb, b.data, this.spb);
        } catch (e) {
          b.data = afterFailure(e, b.data, this.bsize, this.alloc);
          this.brelse(b);
          throw asFsError(e, `reading block ${blockno}`);
        }
      }
      b.valid = true;
    }
    return b;
  }

  /** Write a locked buffer to its home location. */
  async bwrite(b: Buf): Promise<void> {
    try {
      b.data = await this.dev.write(b.blockno * this.spb, b.data, this.spb);
    } catch (e) {
      b.data = afterFailure(e, b.data, this.bsize, this.alloc);
      throw asFsError(e, `writing block ${b.blockno}`);
    }
  }

  brelse(b: Buf): void {
    b.lock.release();
    this.unref(b);
  }

  /** Keep `b` in the cache (log: dirty until installed). */
  bpin(b: Buf): void {
    b.refcnt++;
  }

  bunpin(b: Buf): void {
    this.unref(b);
  }

  private unref(b: Buf): void {
    b.refcnt--;
    if (b.refcnt === 0) {
      this.lru.add(b);
      if (this.waitq.size) this.waitq.wakeup();
    }
  }

  /** Cached (unlocked) buffer of `blockno`, if any (read-ahead: newer cached contents win). */
  peek(blockno: number): Buf | undefined {
    return this.map.get(blockno);
  }

  /** Release every buffer (unmount); the cache is unusable afterwards. */
  destroy(): void {
    const all = new Set<Buf>([...this.unused, ...this.lru, ...this.map.values()]);
    this.unused.length = 0;
    this.lru.clear();
    this.map.clear();
    for (const b of all) this.dev.free(b.data);
  }

  /**
   * Drop cached contents of a block not in use (to write it behind the cache). True when no
   * buffer holds the block afterwards; false when one is in use (held or pinned) and stays.
   */
  invalidate(blockno: number): boolean {
    const b = this.map.get(blockno);
    if (b === undefined) return true;
    if (b.refcnt !== 0) return false;
    this.map.delete(blockno);
    this.lru.delete(b);
    b.valid = false;
    b.blockno = -1;
    this.unused.push(b);
    return true;
  }

  /**
   * Write a whole block from a buffer the caller does not own (a borrowed one), behind the cache:
   * false (nothing written) when a buffer of the cache holds the block and is in use. Throws
   * FsError on a device failure; `src` is never moved (a whole-buffer write only borrows it).
   */
  async writeAround(blockno: number, src: DmaBytes): Promise<boolean> {
    if (!this.invalidate(blockno)) return false;
    try {
      await this.dev.write(blockno * this.spb, src, this.spb);
    } catch (e) {
      throw asFsError(e, `writing block ${blockno}`);
    }
    return true;
  }
}
