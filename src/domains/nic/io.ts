/**
 * NetIo glue shared by the NIC driver domain: a FrameQueue view of one RRefDeque plus its lengths
 * array, in the convention of src/interfaces/net.ts (lens[i] is the length of the i-th element
 * from the front, at call entry and at call exit).
 *
 * Invariants: the view never allocates after it has seen its largest deque (it is re-pointed at
 * the deque of every call with `bind`). The lengths are worked on in a local copy: every access
 * to the lengths RRefArray is a checked kernel call, so `bind` reads the lengths in use with one
 * `read` and `finish` writes them back, rotated so the front element's length is at index 0
 * again, with one `write` (typed-array stores are slow under lockdown: the copy is written
 * through a DataView).
 */
import type { DmaBytes, RRefArray, RRefDeque } from '../../runtime/types.js';
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
  /** A length was pushed since bind (the copy differs from lens). */
  private dirty = false;

  /**
   * Point at `d` and `lens`; false if the lens array is too short for the deque. `withLens`
   * false: the lengths at entry carry no meaning (RX free buffers) and are not read.
   */
  bind(d: RRefDeque<RRefArray>, lens: RRefArray, withLens = true): boolean {
    this.d = d;
    this.lens = lens;
    this.capacity = d.capacity;
    this.length = d.length;
    this.head = 0;
    this.dirty = false;
    if (lens.byteLength < this.capacity * 4) return false;
    if (this.copy.length < this.capacity * 4) {
      this.copy = new Uint8Array(this.capacity * 4);
      this.copyV = new DataView(this.copy.buffer);
    }
    if (withLens && this.length > 0) lens.read(0, this.copy, 0, this.length * 4);
    return true;
  }

  push(buf: DmaBytes, len: number): boolean {
    if (this.length === this.capacity || !this.d!.push(buf as RRefArray)) return false;
    let i = this.head + this.length;
    if (i >= this.capacity) i -= this.capacity;
    this.copyV.setUint32(i * 4, len, true);
    this.length++;
    this.dirty = true;
    return true;
  }

  pop(): DmaBytes | undefined {
    if (this.length === 0) return undefined;
    const b = this.d!.pop();
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    this.length--;
    return b;
  }

  frontLen(): number {
    return this.length === 0 ? -1 : this.copyV.getUint32(this.head * 4, true);
  }

  /**
   * Write the lengths back with the front element's at index 0 (unless `rotate` is false: RX free
   * buffers carry no length); drop the references.
   */
  finish(rotate = true): void {
    const n = rotate ? this.length : 0;
    const h = this.head;
    if (n > 0 && (h !== 0 || this.dirty)) {
      // The n lengths in use are at [h, h+n) of the copy, wrapping at capacity.
      const first = Math.min(n, this.capacity - h);
      const lens = this.lens!;
      lens.write(0, this.copy, h * 4, first * 4);
      if (first < n) lens.write(first * 4, this.copy, 0, (n - first) * 4);
    }
    this.d = null;
    this.lens = null;
  }
}
