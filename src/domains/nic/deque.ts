/**
 * FrameDeque: a fixed-capacity FIFO of (buffer, frame length) pairs, the shape in which the NIC
 * driver core takes and returns packet buffers (RedLeaf's submit_and_poll over VecDeques).
 *
 * Invariants: capacity never changes and push/pop never allocate (a preallocated ring of slots);
 * a popped slot is cleared, so the deque holds no stale buffer references. Its push/pop/length/
 * capacity mirror RRefDeque's, so the domain glue can back a FrameQueue with an RRefDeque of
 * buffers plus a parallel array of lengths.
 */
import type { DmaBytes } from '../../runtime/types.js';

/** What the driver core needs of a queue of frames. */
export interface FrameQueue {
  readonly length: number;
  readonly capacity: number;
  /** Append `buf` carrying a frame of `len` bytes; false (nothing changes) when full. */
  push(buf: DmaBytes, len: number): boolean;
  /** Remove and return the front buffer, or undefined when empty. */
  pop(): DmaBytes | undefined;
  /** Frame length of the front element (what pop() would return); -1 when empty. */
  frontLen(): number;
}

export class FrameDeque implements FrameQueue {
  readonly capacity: number;
  private readonly bufs: (DmaBytes | undefined)[];
  private readonly lens: Int32Array;
  /** Stores go through a DataView: typed-array stores are slow under SES lockdown. */
  private readonly lensW: DataView;
  private head = 0;
  private count = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`FrameDeque capacity ${capacity}`);
    this.capacity = capacity;
    this.bufs = new Array<DmaBytes | undefined>(capacity).fill(undefined);
    this.lens = new Int32Array(capacity);
    this.lensW = new DataView(this.lens.buffer);
  }

  get length(): number {
    return this.count;
  }

  push(buf: DmaBytes, len: number): boolean {
    if (this.count === this.capacity) return false;
    let i = this.head + this.count;
    if (i >= this.capacity) i -= this.capacity;
    this.bufs[i] = buf;
    this.lensW.setInt32(i * 4, len, true);
    this.count++;
    return true;
  }

  pop(): DmaBytes | undefined {
    if (this.count === 0) return undefined;
    const i = this.head;
    const b = this.bufs[i];
    this.bufs[i] = undefined;
    this.head = i + 1 === this.capacity ? 0 : i + 1;
    this.count--;
    return b;
  }

  frontLen(): number {
    return this.count === 0 ? -1 : this.lens[this.head]!;
  }
}
