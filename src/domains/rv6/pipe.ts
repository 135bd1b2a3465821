/**
 * Pipes: a bounded ring buffer with blocking reads and writes, shared by the open files of its
 * two ends (pure code: bytes move through copy functions, so tests can drive it directly).
 *
 * Semantics (as on Unix):
 *  - read returns as soon as some bytes are buffered (up to the amount wanted); with nothing
 *    buffered it blocks while a write end is open, and returns 0 (end of file) once none is;
 *  - write copies all its bytes, blocking while the buffer is full; writes are served whole and in
 *    arrival order, so no two writes ever interleave (stronger than POSIX's PIPE_BUF guarantee);
 *  - write with no read end open fails with EPIPE; if the last reader goes away in the middle of a
 *    write, the write returns the bytes it got in, or EPIPE if none;
 *  - a blocked call whose process ends is cancelled (EINTR) and removed from the queues; bytes a
 *    cancelled write already put in stay in the buffer.
 *
 * Invariants: no reader waits while bytes are buffered; no writer waits while there is room and it
 * is first in line; `count` never exceeds `capacity`.
 */
import { ERRNO } from '../../interfaces/rv6.js';
import { block, removeFrom, type CancelScope } from './block.js';

/** Copy `len` bytes of the caller's buffer (from `srcOff`) into `ring` at `ringOff`. */
export type CopyIn = (ring: Uint8Array, ringOff: number, srcOff: number, len: number) => void;
/** Copy `len` bytes of `ring` (from `ringOff`) into the caller's buffer at `dstOff`. */
export type CopyOut = (ring: Uint8Array, ringOff: number, dstOff: number, len: number) => void;

export const PIPE_SIZE = 4096;

interface Reader {
  want: number;
  out: CopyOut;
  wake: (n: number) => void;
}

interface Writer {
  n: number;
  done: number;
  src: CopyIn;
  wake: (n: number) => void;
}

export class Pipe {
  private readonly ring: Uint8Array;
  private head = 0;
  private count = 0;
  private readers: Reader[] = [];
  private writers: Writer[] = [];
  /** Open read and write ends (open-file objects, not fds: dup shares one). */
  private readEnds = 1;
  private writeEnds = 1;

  constructor(readonly capacity = PIPE_SIZE) {
    this.ring = new Uint8Array(capacity);
  }

  get buffered(): number {
    return this.count;
  }

  /** Read up to `want` bytes; the count (0 = end of file) or -EINTR if cancelled. */
  read(want: number, out: CopyOut, scope: CancelScope): number | Promise<number> {
    if (want === 0) return 0;
    if (this.count > 0) {
      const n = this.take(want, out);
      this.pump();
      return n;
    }
    if (this.writeEnds === 0) return 0;
    return block(scope, -ERRNO.EINTR, (wake) => {
      const r: Reader = { want, out, wake };
      this.readers.push(r);
      return () => removeFrom(this.readers, r);
    });
  }

  /** Write `n` bytes; n, or the bytes written before the readers went away, or -EPIPE / -EINTR. */
  write(n: number, src: CopyIn, scope: CancelScope): number | Promise<number> {
    if (this.readEnds === 0) return -ERRNO.EPIPE;
    if (n === 0) return 0;
    if (this.writers.length === 0) {
      const done = this.put(n, 0, src);
      if (done === n) {
        this.pump();
        return n;
      }
      // Part of it went in: wait in line for room for the rest.
      return this.queueWriter(n, done, src, scope);
    }
    return this.queueWriter(n, 0, src, scope);
  }

  private queueWriter(n: number, done: number, src: CopyIn, scope: CancelScope): Promise<number> {
    const p = block(scope, -ERRNO.EINTR, (wake) => {
      const w: Writer = { n, done, src, wake };
      this.writers.push(w);
      return () => removeFrom(this.writers, w);
    });
    this.pump();
    return p;
  }

  closeRead(): void {
    this.readEnds--;
    this.pump();
  }

  closeWrite(): void {
    this.writeEnds--;
    this.pump();
  }

  /** Move bytes from waiting writers to the ring and from the ring to waiting readers. */
  private pump(): void {
    let progress = true;
    while (progress) {
      progress = false;
      while (this.writers.length > 0 && this.count < this.capacity && this.readEnds > 0) {
        const w = this.writers[0]!;
        w.done = this.put(w.n, w.done, w.src);
        progress = true;
        if (w.done < w.n) break;
        this.writers.shift();
        w.wake(w.n);
      }
      while (this.readers.length > 0 && this.count > 0) {
        const r = this.readers.shift()!;
        r.wake(this.take(r.want, r.out));
        progress = true;
      }
    }
    if (this.count === 0 && this.writeEnds === 0) {
      for (const r of this.readers.splice(0)) r.wake(0);
    }
    if (this.readEnds === 0) {
      for (const w of this.writers.splice(0)) w.wake(w.done > 0 ? w.done : -ERRNO.EPIPE);
    }
  }

  /** Copy bytes [done, n) of a write into free ring space (as much as fits); the new `done`. */
  private put(n: number, done: number, src: CopyIn): number {
    while (done < n && this.count < this.capacity) {
      const tail = (this.head + this.count) % this.capacity;
      const len = Math.min(n - done, this.capacity - this.count, this.capacity - tail);
      src(this.ring, tail, done, len);
      this.count += len;
      done += len;
    }
    return done;
  }

  /** Copy up to `want` buffered bytes out; the count. */
  private take(want: number, out: CopyOut): number {
    let got = 0;
    while (got < want && this.count > 0) {
      const len = Math.min(want - got, this.count, this.capacity - this.head);
      out(this.ring, this.head, got, len);
      this.head = (this.head + len) % this.capacity;
      this.count -= len;
      got += len;
    }
    if (this.count === 0) this.head = 0;
    return got;
  }
}
