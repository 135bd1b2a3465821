/**
 * FrameQueue: what the NIC driver core needs of a FIFO of (buffer, frame length) pairs — the
 * caller's queues (RedLeaf's submit_and_poll over VecDeques) and the core's own record of the
 * buffers in each descriptor ring, in ring order. The core works on whole runs of elements: one
 * bulk `moveFromSized` posts a run and reports the buffers' addresses and sizes, one `moveFrom`
 * takes them back, so a queue backed by an RRefDeque (io.ts) mints no handle per buffer.
 *
 * FrameDeque: the host-side FrameQueue (tests, the benchmark's host driver path) over buffer
 * references. Invariants: capacity never changes and nothing allocates after construction (a
 * preallocated ring of slot objects: under SES lockdown an array element store takes a slow path,
 * a property store does not); a popped slot is cleared, so the deque holds no stale references.
 */
import type { DmaBytes } from '../../runtime/types.js';

/** A FIFO of buffers with frame lengths; element i is the i-th from the front. */
export interface FrameQueue {
  readonly length: number;
  readonly capacity: number;
  /** Frame length of element i (0 <= i < length). */
  lenAt(i: number): number;
  setLenAt(i: number, len: number): void;
  /** For elements [0, n): physical address and byte length, two little-endian u32 per element in `out`. */
  extents(n: number, out: DataView): void;
  /**
   * Moves up to n elements from the front of `src` (a queue of the same kind, not this one) to
   * the back of this queue, in order, with their lengths (`withLens`, default) or with lengths
   * left for the caller to set; returns how many (bounded by src's length and this queue's room).
   */
  moveFrom(src: this, n: number, withLens?: boolean): number;
  /**
   * moveFrom that stops before the first element of fewer than `minBytes` bytes and writes the
   * moved elements' extents (as `extents` would, from offset 0 of `out`): one pass over the run.
   */
  moveFromSized(src: this, n: number, minBytes: number, out: DataView, withLens?: boolean): number;
  /** Moves the front element to the back (a refused buffer goes behind the others). */
  rotate(): void;
}

export class FrameDeque implements FrameQueue {
  readonly capacity: number;
  private readonly slots: { buf: DmaBytes | undefined; len: number }[];
  private head = 0;
  private count = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`FrameDeque capacity ${capacity}`);
    this.capacity = capacity;
    this.slots = Array.from({ length: capacity }, () => ({ buf: undefined, len: 0 }));
  }

  get length(): number {
    return this.count;
  }

  private slot(i: number): { buf: DmaBytes | undefined; len: number } {
    const at = this.head + i;
    return this.slots[at < this.capacity ? at : at - this.capacity]!;
  }

  push(buf: DmaBytes, len: number): boolean {
    if (this.count === this.capacity) return false;
    const s = this.slot(this.count);
    s.buf = buf;
    s.len = len;
    this.count++;
    return true;
  }

  pop(): DmaBytes | undefined {
    if (this.count === 0) return undefined;
    const s = this.slot(0);
    const b = s.buf;
    s.buf = undefined;
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    this.count--;
    return b;
  }

  /** Frame length of the front element (what pop() would return); -1 when empty. */
  frontLen(): number {
    return this.count === 0 ? -1 : this.slot(0).len;
  }

  lenAt(i: number): number {
    return this.slot(i).len;
  }

  setLenAt(i: number, len: number): void {
    this.slot(i).len = len;
  }

  extents(n: number, out: DataView): void {
    for (let i = 0; i < n; i++) {
      const b = this.slot(i).buf!;
      out.setUint32(i * 8, b.addr, true);
      out.setUint32(i * 8 + 4, b.byteLength, true);
    }
  }

  moveFrom(src: this, n: number, withLens = true): number {
    return this.moveRun(src, n, 0, null, withLens);
  }

  moveFromSized(src: this, n: number, minBytes: number, out: DataView, withLens = true): number {
    return this.moveRun(src, n, minBytes, out, withLens);
  }

  /** Both moves: up to n elements; with `out`, only of at least minBytes bytes, their extents written there. */
  private moveRun(src: this, n: number, minBytes: number, out: DataView | null, withLens: boolean): number {
    let moved = 0;
    for (; moved < n && src.count > 0 && this.count < this.capacity; moved++) {
      if (out !== null) {
        // Sizes read only here: on a kernel buffer each read is a checked call.
        const b = src.slot(0).buf!;
        const size = b.byteLength;
        if (size < minBytes) break;
        out.setUint32(moved * 8, b.addr, true);
        out.setUint32(moved * 8 + 4, size, true);
      }
      const len = withLens ? src.frontLen() : 0;
      this.push(src.pop()!, len);
    }
    return moved;
  }

  rotate(): void {
    const len = this.frontLen();
    this.push(this.pop()!, len);
  }
}
