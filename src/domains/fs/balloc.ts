/**
 * The free-block bitmap (xv6 balloc/bfree in fs.c): one bit per block, set = in use.
 *
 * Invariants:
 *  - only blocks in [datastart, size) are ever handed out or freed, whatever the bitmap says,
 *    so a corrupted bitmap can never hand out a metadata block;
 *  - a block is handed out zeroed and logged (inside the caller's transaction), except a file data
 *    block asked for `uninitialized`: its caller writes every byte of it before its transaction
 *    ends (in place when the log allows, see log.ts), so zeroing it through the log would be waste;
 *  - the log hears of every allocation and free (noteAllocated / noteFreed: ordered mode);
 *  - freeing a block whose bit is already clear is reported as EUCLEAN, not ignored;
 *  - allocation scans from a moving hint (next-fit), skipping full bytes, so filling a large
 *    image is linear, not quadratic.
 */
import type { BufCache } from './bio.js';
import { corrupt, fsErr } from './errors.js';
import type { Geometry, Layout, Superblock } from './format.js';
import type { Log } from './log.js';

export class BlockAllocator {
  private hint: number;

  constructor(
    private readonly bc: BufCache,
    private readonly log: Log,
    private readonly g: Geometry,
    private readonly sb: Superblock,
    private readonly layout: Layout,
  ) {
    this.hint = layout.datastart;
  }

  /** Allocate a zeroed block (or with `uninitialized`, see the header); ENOSPC when none is free. */
  async balloc(uninitialized = false): Promise<number> {
    const { g, sb, layout } = this;
    const start = layout.datastart;
    const total = sb.size - start;
    if (this.hint < start || this.hint >= sb.size) this.hint = start;
    let b = this.hint;
    let scanned = 0;
    while (scanned < total) {
      const bi = Math.floor(b / g.bpb);
      const end = Math.min(sb.size, (bi + 1) * g.bpb);
      const bp = await this.bc.bread(sb.bmapstart + bi);
      let found = -1;
      const d = bp.data;
      let x = b;
      while (x < end) {
        const bit = x - bi * g.bpb;
        const byte = bit >> 3;
        if ((bit & 7) === 0 && x + 8 <= end) {
          const v = d.getU8(byte);
          if (v === 0xff) { x += 8; continue; }
        }
        if ((d.getU8(byte) & (1 << (bit & 7))) === 0) {
          d.setU8(byte, d.getU8(byte) | (1 << (bit & 7)));
          this.log.logWrite(bp);
          found = x;
          break;
        }
        x++;
      }
      this.bc.brelse(bp);
      if (found >= 0) {
        this.hint = found + 1;
        this.log.noteAllocated(found);
        if (uninitialized) return found;
        const zb = await this.bc.bread(found, true);
        zb.data.fill(0);
        this.log.logWrite(zb);
        this.bc.brelse(zb);
        return found;
      }
      scanned += end - b;
      b = end >= sb.size ? start : end;
    }
    throw fsErr('ENOSPC', 'no free data blocks');
  }

  /** Bitmap block holding block `b`'s bit. */
  bitmapBlockOf(b: number): number {
    return this.sb.bmapstart + Math.floor(b / this.g.bpb);
  }

  /** Whether `b` is a block number of the data area (callers check before naming what refers to it: no string per call). */
  isData(b: number): boolean {
    return Number.isInteger(b) && b >= this.layout.datastart && b < this.sb.size;
  }

  /** The corruption error of `what` referring to `b` outside the data area. */
  outsideData(b: number, what: string): Error {
    return corrupt(`${what}: block number ${b} outside the data area [${this.layout.datastart}, ${this.sb.size})`);
  }

  async bfree(b: number): Promise<void> {
    if (!this.isData(b)) throw this.outsideData(b, 'bfree');
    const bi = Math.floor(b / this.g.bpb);
    const bp = await this.bc.bread(this.sb.bmapstart + bi);
    try {
      const bit = b - bi * this.g.bpb;
      const m = 1 << (bit & 7);
      const v = bp.data.getU8(bit >> 3);
      if ((v & m) === 0) throw corrupt(`bfree: block ${b} is already free (block referenced twice?)`);
      bp.data.setU8(bit >> 3, v & ~m);
      this.log.logWrite(bp);
      this.log.noteFreed(b);
    } finally {
      this.bc.brelse(bp);
    }
  }

  /** Count free data blocks (statfs). */
  async countFree(): Promise<number> {
    const { g, sb, layout } = this;
    let free = 0;
    for (let bi = 0; bi < layout.nbitmap; bi++) {
      const bp = await this.bc.bread(sb.bmapstart + bi);
      const lo = Math.max(layout.datastart, bi * g.bpb), hi = Math.min(sb.size, (bi + 1) * g.bpb);
      for (let x = lo; x < hi; x++) {
        const bit = x - bi * g.bpb;
        if ((bp.data.getU8(bit >> 3) & (1 << (bit & 7))) === 0) free++;
      }
      this.bc.brelse(bp);
    }
    return free;
  }
}
