/**
 * DequeQueue: the NIC driver domain's FrameQueue over an RRefDeque of buffers plus their frame
 * lengths — a NetIo's deque and length array (in the convention of src/interfaces/net.ts: lens[i]
 * is the length of the i-th element from the front, at call entry and at call exit), or, with no
 * length array, a deque of the driver's own that records the buffers of a descriptor ring.
 *
 * Invariants: no handle to a buffer is ever minted: buffers move between deques with one bulk
 * RRefDeque.moveFrom per run, or RRefDeque.moveFromSized, which also reports their addresses. The view
 * never allocates after it has seen its largest deque (a NetIo's view is re-pointed at the deque
 * of every call with `bind` or `bindInput`). The lengths are worked on in a local copy, indexed
 * like a ring (the element at the front at `head`): every access to the lengths RRefArray is a
 * checked kernel call, so binding reads the lengths in use with one `read` and `finish` writes
 * them back, rotated so the front element's length is at index 0 again, with one `write`
 * (typed-array stores are slow under lockdown: the copy is written through a DataView).
 */
import type { RRefArray, RRefDeque } from '../../runtime/types.js';
import type { FrameQueue } from './deque.js';

export class DequeQueue implements FrameQueue {
  capacity = 0;
  length = 0;
  private d: RRefDeque<RRefArray> | null = null;
  private lens: RRefArray | null = null;
  /** Local copy of lens: the element at ring index i (front at `head`) has its length at 4*i. */
  private copy = new Uint8Array(0);
  private copyV = new DataView(this.copy.buffer);
  /** Index in the copy of the front element. */
  private head = 0;
  /** A length changed since bind (the copy differs from lens). */
  private dirty = false;

  /**
   * Point at `d` and `lens` (null: a driver-owned deque whose lengths live only here): a queue the
   * core appends to (a NetIo's collect, a ring's record). False if the lens array is too short for
   * the deque. The lengths of the elements already there are read (one `read`), so finish can
   * write them all back in order.
   */
  bind(d: RRefDeque<RRefArray>, lens: RRefArray | null): boolean {
    const cap = d.capacity;
    if (lens !== null && lens.byteLength < cap * 4) return false;
    this.point(d, lens, cap, d.length);
    if (lens !== null && this.length > 0) lens.read(0, this.copy, 0, this.length * 4);
    return true;
  }

  /**
   * Point at a NetIo's `pkts`, which the core only takes from (moves out of the front, rotates):
   * the deque's capacity is not read (a kernel call saved), the view's capacity is its length at
   * bind (it never holds more than it did then). `lens` null: the lengths carry no meaning (RX
   * free buffers) and are neither read nor written back. False if lens cannot hold the deque's
   * lengths.
   */
  bindInput(d: RRefDeque<RRefArray>, lens: RRefArray | null): boolean {
    const n = d.length;
    if (lens !== null && lens.byteLength < n * 4) return false;
    this.point(d, lens, n, n);
    if (lens !== null && n > 0) lens.read(0, this.copy, 0, n * 4);
    return true;
  }

  private point(d: RRefDeque<RRefArray>, lens: RRefArray | null, capacity: number, length: number): void {
    this.d = d;
    this.lens = lens;
    this.capacity = capacity;
    this.length = length;
    this.head = 0;
    this.dirty = false;
    if (this.copy.length < capacity * 4) {
      this.copy = new Uint8Array(capacity * 4);
      this.copyV = new DataView(this.copy.buffer);
    }
  }

  /** Index in the copy of element i. */
  private at(i: number): number {
    const a = this.head + i;
    return a < this.capacity ? a : a - this.capacity;
  }

  // lenAt and setLenAt run once per frame: at() written out, one call fewer each.
  lenAt(i: number): number {
    let a = this.head + i;
    if (a >= this.capacity) a -= this.capacity;
    return this.copyV.getUint32(a * 4, true);
  }

  setLenAt(i: number, len: number): void {
    let a = this.head + i;
    if (a >= this.capacity) a -= this.capacity;
    this.copyV.setUint32(a * 4, len, true);
    this.dirty = true;
  }

  extents(n: number, out: DataView): void {
    this.d!.extents(0, n, out, 0);
  }

  moveFrom(src: this, n: number, withLens = true): number {
    // Bounded by the view's room too: an input view's copy has room only for what it held.
    const room = this.capacity - this.length;
    return this.took(src, this.d!.moveFrom(src.d!, n < room ? n : room), withLens);
  }

  moveFromSized(src: this, n: number, minBytes: number, out: DataView, withLens = true): number {
    const room = this.capacity - this.length;
    return this.took(src, this.d!.moveFromSized(src.d!, n < room ? n : room, minBytes, out, 0), withLens);
  }

  /** Bookkeeping after `moved` elements came from the front of src: lengths, counts, heads. */
  private took(src: this, moved: number, withLens: boolean): number {
    if (withLens && moved > 0) {
      // Element k of src (its copy from src.head) to this.length + k of ours, both rings walked
      // with local indices: one step per length, no call per length.
      const from = src.copyV;
      const to = this.copyV;
      const fromCap = src.capacity;
      const toCap = this.capacity;
      let f = src.head;
      let t = this.at(this.length);
      for (let k = 0; k < moved; k++) {
        to.setUint32(t * 4, from.getUint32(f * 4, true), true);
        if (++f === fromCap) f = 0;
        if (++t === toCap) t = 0;
      }
    }
    this.length += moved;
    if (moved > 0) this.dirty = true;
    src.length -= moved;
    src.head = src.at(moved);
    return moved;
  }

  rotate(): void {
    const len = this.lenAt(0);
    const d = this.d!;
    d.push(d.pop()!);
    this.head = this.at(1);
    this.copyV.setUint32(this.at(this.length - 1) * 4, len, true);
    this.dirty = true;
  }

  /**
   * Write the lengths back with the front element's at index 0 (not for a view without a lengths
   * array); drop the references.
   */
  finish(): void {
    const lens = this.lens;
    const n = this.length;
    const h = this.head;
    if (lens !== null && n > 0 && (h !== 0 || this.dirty)) {
      // The n lengths in use are at [h, h+n) of the copy, wrapping at capacity.
      const first = Math.min(n, this.capacity - h);
      lens.write(0, this.copy, h * 4, first * 4);
      if (first < n) lens.write(first * 4, this.copy, 0, (n - first) * 4);
    }
    this.d = null;
    this.lens = null;
  }
}
