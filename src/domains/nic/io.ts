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
 * (the copy is written through a DataView).
 *
 * An object literal and module-level functions, not a class: see core.ts's header (restarts).
 */
import type { RRefArray, RRefDeque } from '../../runtime/types.js';
import type { FrameQueue } from './deque.js';

/** A FrameQueue over an RRefDeque (dequeQueue); bound to a deque before use, finished after. */
export interface DequeQueue extends FrameQueue {
  /**
   * Point at `d` and `lens` (null: a driver-owned deque whose lengths live only here): a queue the
   * core appends to (a NetIo's collect, a ring's record). False if the lens array is too short for
   * the deque. The lengths of the elements already there are read (one `read`), so finish can
   * write them all back in order.
   */
  bind(d: RRefDeque<RRefArray>, lens: RRefArray | null): boolean;
  /**
   * Point at a NetIo's `pkts`, which the core only takes from (moves out of the front, rotates):
   * the deque's capacity is not read (a kernel call saved), the view's capacity is its length at
   * bind (it never holds more than it did then). `lens` null: the lengths carry no meaning (RX
   * free buffers) and are neither read nor written back. False if lens cannot hold the deque's
   * lengths.
   */
  bindInput(d: RRefDeque<RRefArray>, lens: RRefArray | null): boolean;
  /**
   * Write the lengths back with the front element's at index 0 (not for a view without a lengths
   * array); drop the references.
   */
  finish(): void;
}

/** A DequeQueue's state: what a move reads of its source too. */
interface View extends DequeQueue {
  capacity: number;
  length: number;
  d: RRefDeque<RRefArray> | null;
  lens: RRefArray | null;
  /** Local copy of lens: the element at ring index i (front at `head`) has its length at 4*i. */
  copy: Uint8Array;
  copyV: DataView;
  /** Index in the copy of the front element. */
  head: number;
  /** A length changed since bind (the copy differs from lens). */
  dirty: boolean;
}

function point(v: View, d: RRefDeque<RRefArray>, lens: RRefArray | null, capacity: number, length: number): void {
  v.d = d;
  v.lens = lens;
  v.capacity = capacity;
  v.length = length;
  v.head = 0;
  v.dirty = false;
  if (v.copy.length < capacity * 4) {
    v.copy = new Uint8Array(capacity * 4);
    v.copyV = new DataView(v.copy.buffer);
  }
}

/** Index in v's copy of element i. */
function at(v: View, i: number): number {
  const a = v.head + i;
  return a < v.capacity ? a : a - v.capacity;
}

/** Bookkeeping after `moved` elements came from the front of `src` to the back of `to`: lengths, counts, heads. */
function took(to: View, src: View, moved: number, withLens: boolean): number {
  if (withLens && moved > 0) {
    // Element k of src (its copy from src.head) to to.length + k, both rings walked with local
    // indices: one step per length, no call per length.
    const from = src.copyV;
    const into = to.copyV;
    const fromCap = src.capacity;
    const toCap = to.capacity;
    let f = src.head;
    let t = at(to, to.length);
    for (let k = 0; k < moved; k++) {
      into.setUint32(t * 4, from.getUint32(f * 4, true), true);
      if (++f === fromCap) f = 0;
      if (++t === toCap) t = 0;
    }
  }
  to.length += moved;
  if (moved > 0) to.dirty = true;
  src.length -= moved;
  src.head = at(src, moved);
  return moved;
}

/** A new, unbound DequeQueue. */
export function dequeQueue(): DequeQueue {
  const copy = new Uint8Array(0);
  const v: View = {
    capacity: 0,
    length: 0,
    d: null,
    lens: null,
    copy,
    copyV: new DataView(copy.buffer),
    head: 0,
    dirty: false,
    bind(d, lens) {
      const cap = d.capacity;
      if (lens !== null && lens.byteLength < cap * 4) return false;
      point(v, d, lens, cap, d.length);
      if (lens !== null && v.length > 0) lens.read(0, v.copy, 0, v.length * 4);
      return true;
    },
    bindInput(d, lens) {
      const n = d.length;
      if (lens !== null && lens.byteLength < n * 4) return false;
      point(v, d, lens, n, n);
      if (lens !== null && n > 0) lens.read(0, v.copy, 0, n * 4);
      return true;
    },
    // lenAt and setLenAt run once per frame: at() written out, one call fewer each.
    lenAt(i) {
      let a = v.head + i;
      if (a >= v.capacity) a -= v.capacity;
      return v.copyV.getUint32(a * 4, true);
    },
    setLenAt(i, len) {
      let a = v.head + i;
      if (a >= v.capacity) a -= v.capacity;
      v.copyV.setUint32(a * 4, len, true);
      v.dirty = true;
    },
    extents(n, out) {
      v.d!.extents(0, n, out, 0);
    },
    moveFrom(src, n, withLens = true) {
      // Bounded by the view's room too: an input view's copy has room only for what it held.
      const room = v.capacity - v.length;
      const from = src as View;
      return took(v, from, v.d!.moveFrom(from.d!, n < room ? n : room), withLens);
    },
    moveFromSized(src, n, minBytes, out, withLens = true) {
      const room = v.capacity - v.length;
      const from = src as View;
      return took(v, from, v.d!.moveFromSized(from.d!, n < room ? n : room, minBytes, out, 0), withLens);
    },
    rotate() {
      const len = v.lenAt(0);
      const d = v.d!;
      d.push(d.pop()!);
      v.head = at(v, 1);
      v.copyV.setUint32(at(v, v.length - 1) * 4, len, true);
      v.dirty = true;
    },
    finish() {
      const lens = v.lens;
      const n = v.length;
      const h = v.head;
      if (lens !== null && n > 0 && (h !== 0 || v.dirty)) {
        // The n lengths in use are at [h, h+n) of the copy, wrapping at capacity.
        const first = Math.min(n, v.capacity - h);
        lens.write(0, v.copy, h * 4, first * 4);
        if (first < n) lens.write(first * 4, v.copy, 0, (n - first) * 4);
      }
      v.d = null;
      v.lens = null;
    },
  };
  return v;
}
