/**
 * FrameDeque: a fixed-capacity FIFO of (buffer, frame length) pairs, the shape in which the NIC
 * driver core takes and returns packet buffers (RedLeaf's submit_and_poll over VecDeques).
 *
 * Invariants: capacity never changes and push/pop never allocate (a preallocated ring of slot
 * objects: under SES lockdown an array element store takes a slow path, a property store does
 * not); a popped slot is cleared, so the deque holds no stale buffer references. Its push/pop/length/
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

  push(buf: DmaBytes, len: number): boolean {
    if (this.count === this.capacity) return false;
    let i = this.head + this.count;
    if (i >= this.capacity) i -= this.capacity;
    const s = this.slots[i]!;
    s.buf = buf;
    s.len = len;
    this.count++;
    return true;
  }

  pop(): DmaBytes | undefined {
    if (this.count === 0) return undefined;
    const i = this.head;
    const s = this.slots[i]!;
    const b = s.buf;
    s.buf = undefined;
    this.head = i + 1 === this.capacity ? 0 : i + 1;
    this.count--;
    return b;
  }

  frontLen(): number {
    return this.count === 0 ? -1 : this.slots[this.head]!.len;
  }
}
