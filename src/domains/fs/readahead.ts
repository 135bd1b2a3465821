/**
 * Read-ahead for sequential file reads: a few windows, each holding a run of consecutive disk
 * blocks of one file, read with one device transfer. A sequential reader of a large file then
 * costs one device call per window instead of one per block, and its reads are served by one copy
 * from the window, outside the buffer cache (which a file larger than it would only churn).
 *
 * Invariants:
 *  - a window's bytes are the current contents of its file's blocks [start, start + count): it is
 *    filled while the caller holds the file's inode lock, from the device and then from every
 *    valid cached buffer of those blocks (a block logged but not installed yet is newer in the
 *    cache than at home), and the inode layer forgets a file's windows whenever it writes to or
 *    truncates that file;
 *  - a window being filled has no owner, so no reader finds it and no other fill takes it;
 *  - `buf` is replaced by the handle each device transfer returns (see device.ts).
 */
import type { DmaBytes } from '../../runtime/types.js';
import type { BufCache } from './bio.js';
import { afterFailure } from './device.js';

export interface Window {
  /** The file (its in-memory inode) the window holds blocks of; null while unused or filling. */
  owner: object | null;
  /** First file block held, and how many. */
  start: number;
  count: number;
  buf: DmaBytes;
  /** Last use (LRU among the windows). */
  used: number;
  filling: boolean;
}

export class ReadAhead {
  private readonly windows: Window[] = [];
  private readonly windowBytes: number;
  private clock = 0;

  constructor(
    private readonly bc: BufCache,
    /** Blocks per window. */
    readonly blocks: number,
    nwindows: number,
  ) {
    this.windowBytes = blocks * bc.bsize;
    for (let i = 0; i < nwindows; i++) this.windows.push({ owner: null, start: 0, count: 0, buf: bc.alloc(this.windowBytes), used: 0, filling: false });
  }

  /** The window holding file block `fbn` of `owner`, or null. */
  find(owner: object, fbn: number): Window | null {
    for (const w of this.windows) {
      if (w.owner === owner && fbn >= w.start && fbn < w.start + w.count) {
        w.used = ++this.clock;
        return w;
      }
    }
    return null;
  }

  /** Drop every window of `owner` (its contents or block map changed). */
  forget(owner: object): void {
    for (const w of this.windows) if (w.owner === owner) w.owner = null;
  }

  /**
   * Fill a window with disk blocks [first, first + count) (count <= blocks), file blocks from
   * `start` of `owner` (whose inode lock the caller holds). Null when every window is being
   * filled or the device failed (the caller then reads block by block, reporting any error).
   */
  async fill(owner: object, start: number, first: number, count: number): Promise<Window | null> {
    let w: Window | null = null;
    for (const c of this.windows) {
      if (!c.filling && (w === null || c.used < w.used)) w = c;
    }
    if (w === null) return null;
    w.owner = null;
    w.filling = true;
    const bs = this.bc.bsize;
    try {
      w.buf = await this.bc.dev.read(this.bc.lba(first), w.buf, count * this.bc.spb);
    } catch (e) {
      w.buf = afterFailure(e, w.buf, this.windowBytes, this.bc.alloc);
      w.filling = false;
      return null;
    }
    for (let k = 0; k < count; k++) {
      const cached = this.bc.peek(first + k);
      if (cached !== undefined && cached.valid) w.buf.copyFrom(cached.data, 0, k * bs, bs);
    }
    w.owner = owner;
    w.start = start;
    w.count = count;
    w.used = ++this.clock;
    w.filling = false;
    return w;
  }

  /** Release the windows' buffers (unmount). */
  destroy(): void {
    for (const w of this.windows) this.bc.dev.free(w.buf);
    this.windows.length = 0;
  }
}
