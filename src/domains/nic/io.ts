/**
 * NetIo glue shared by the NIC driver domain: a FrameQueue view of one RRefDeque plus its lengths
 * array, in the convention of src/interfaces/net.ts (lens[i] is the length of the i-th element
 * from the front, at call entry and at call exit).
 *
 * Invariants: the view never allocates after construction (it is re-pointed at the deque of every
 * call with `bind`); lengths are stored with DmaBytes setters (DataView underneath), never with
 * typed-array stores; `finish` restores the lens convention after pops moved the front.
 */
import type { DmaBytes, RRefArray, RRefDeque } from '../../runtime/types.js';
import type { FrameQueue } from './deque.js';

export class DequeQueue implements FrameQueue {
  capacity = 0;
  length = 0;
  private d: RRefDeque<RRefArray> | null = null;
  private lens: RRefArray | null = null;
  /** Index in `lens` of the front element. */
  private head = 0;

  /** Point at `d` and `lens`; false if the lens array is too short for the deque. */
  bind(d: RRefDeque<RRefArray>, lens: RRefArray): boolean {
    this.d = d;
    this.lens = lens;
    this.capacity = d.capacity;
    this.length = d.length;
    this.head = 0;
    return lens.byteLength >= this.capacity * 4;
  }

  push(buf: DmaBytes, len: number): boolean {
    if (this.length === this.capacity || !this.d!.push(buf as RRefArray)) return false;
    let i = this.head + this.length;
    if (i >= this.capacity) i -= this.capacity;
    this.lens!.setU32(i * 4, len);
    this.length++;
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
    return this.length === 0 ? -1 : this.lens!.getU32(this.head * 4);
  }

  /**
   * Rotate lens so the front element's length is at index 0 again (unless `rotate` is false: RX
   * free buffers carry no length); drop the references.
   */
  finish(rotate = true): void {
    const n = rotate ? this.length : 0;
    const h = this.head;
    const lens = this.lens!;
    if (n > 0 && h !== 0) {
      const cap = this.capacity;
      const tmp: number[] = [];
      for (let i = 0; i < n; i++) tmp.push(lens.getU32(((h + i) % cap) * 4));
      for (let i = 0; i < n; i++) lens.setU32(i * 4, tmp[i]!);
    }
    this.d = null;
    this.lens = null;
  }
}
