/**
 * The domain runtime's types: what domain code sees of the exchange heap and the kernel.
 *
 * Domain sources may import only the interfaces folder and this runtime folder (the trusted build
 * enforces it). Everything here is either a type (erased) or pure code with no authority; all
 * authority arrives as arguments of a domain's `init(sys, ...imports)`.
 *
 * Scalar aliases name the fixed-size field types the IDL understands. They are all `number`
 * (or `bigint` for 64-bit) at run time; the IDL compiler reads the alias names.
 */
export type u8 = number;
export type u16 = number;
export type u32 = number;
export type i8 = number;
export type i16 = number;
export type i32 = number;
export type f32 = number;
export type f64 = number;
export type u64 = bigint;
export type i64 = bigint;
export type bool = boolean;

/** Marker a layout struct extends: every field is a fixed-size scalar, fixed array or layout. */
export interface Layout {}

/** A fixed-size array field of a layout struct: `FixedArray<u8, 6>`. */
export type FixedArray<T, N extends number> = readonly T[] & { readonly length: N };

/**
 * An IDL parameter type marker: the callee borrows the value immutably for the duration of the
 * call instead of taking ownership. At run time it is the same handle type, read-only.
 */
export type Borrow<T> = T;

/** What every exchange-heap handle offers. */
export interface RRefBase {
  /** False once the handle was moved away, dropped, revoked or its owner died. */
  readonly valid: boolean;
  /** Physical address: the byte offset of the allocation in physical memory (for DMA). */
  readonly addr: number;
  /** Size of the allocation in bytes. */
  readonly byteLength: number;
  /** Free the allocation now. Throws if the handle is not valid or the allocation is borrowed. */
  drop(): void;
}

/**
 * Byte-addressed access to an exchange-heap allocation, little-endian, bounds-checked and
 * ownership-checked on every call. Offsets are in bytes. Every device driver writes queues and
 * descriptors through this, and nothing else, so a revoked handle can never touch memory.
 */
export interface DmaBytes extends RRefBase {
  getU8(off: number): number;
  setU8(off: number, v: number): void;
  getU16(off: number): number;
  setU16(off: number, v: number): void;
  getU32(off: number): number;
  setU32(off: number, v: number): void;
  /**
   * Atomic 32-bit load/store (offset must be 4-aligned), for words a device model reads or writes
   * concurrently: a completion entry's phase/status dword, a descriptor's status dword.
   */
  loadU32(off: number): number;
  storeU32(off: number, v: number): void;
  /** 64-bit little-endian as two 32-bit halves combined into a number (exact below 2^53). */
  getU64(off: number): number;
  setU64(off: number, v: number): void;
  /** Copy `len` bytes out of the allocation (starting at `off`) into `dst` at `dstOff`. */
  read(off: number, dst: Uint8Array, dstOff?: number, len?: number): void;
  /** Copy `len` bytes of `src` (from `srcOff`) into the allocation at `off`. */
  write(off: number, src: Uint8Array, srcOff?: number, len?: number): void;
  fill(v: number, off?: number, len?: number): void;
  /** Copy between two allocations with no intermediate buffer. */
  copyFrom(src: DmaBytes, srcOff: number, dstOff: number, len: number): void;
}

/** An exchange-heap array of scalars; `RRefArray<u8>` is a byte buffer. */
export interface RRefArray<T extends number = number> extends DmaBytes {
  readonly length: number;
  get(i: number): T;
  set(i: number, v: T): void;
}

/** A handle to one layout struct in the exchange heap: its fields are accessor properties. */
export type RRef<T> = T & RRefBase;

/**
 * A fixed-capacity FIFO of handles in the exchange heap (RedLeaf's RRefDeque). `push` moves a
 * handle in (revoking it), `pop` moves the oldest one out to the caller as a fresh handle. When
 * the deque moves across a call, its elements move with it.
 */
export interface RRefDeque<T extends RRefBase = RRefBase> extends RRefBase {
  readonly length: number;
  readonly capacity: number;
  /** Move `v` to the back. Returns false (and keeps `v` valid) when full. */
  push(v: T): boolean;
  /** Move the front element out, or undefined when empty. */
  pop(): T | undefined;
  /**
   * Move up to `n` elements from the front of `src` to the back of this deque, in order, in one
   * kernel call; returns how many moved (at most src.length and this deque's free room). Same
   * effect as that many `push(src.pop())` but no element surfaces as a handle, which makes it
   * much cheaper per element. Both deques must be yours, writable (not borrowed, not lent) and
   * distinct; anything else is a violation, as with push and pop.
   */
  moveFrom(src: RRefDeque<T>, n: number): number;
  /**
   * moveFrom for a deque of scalar arrays (a driver posting buffers): moves up to `n` elements,
   * stopping before the first that is not a scalar array of at least `minBytes` bytes (a stop,
   * not a violation), and writes each moved element's physical address and byte length as
   * `extents` would (two little-endian u32 at dstOff + i*8; `dst` has room for n records).
   * Returns how many moved. One pass where extents-then-moveFrom takes two.
   */
  moveFromSized(src: RRefDeque<T>, n: number, minBytes: number, dst: DataView, dstOff: number): number;
  /*
   * Batch accessors for a deque of scalar arrays (packet buffers): the bytes of many elements in
   * one checked call, with no handle per element. Element i is the i-th from the front; elements
   * [from, from+count) must exist and hold bytes [off, off+n), or the call is a violation.
   */
  /** Copies bytes [off, off+n) of elements [from, from+count) to dst at dstOff + (i-from)*stride (default n). */
  readEach(from: number, count: number, off: number, n: number, dst: DataView, dstOff: number, stride?: number): void;
  /** Copies src at srcOff + (i-from)*stride (default n) into bytes [off, off+n) of elements [from, from+count). */
  writeEach(from: number, count: number, off: number, n: number, src: DataView, srcOff: number, stride?: number): void;
  /**
   * Each element's physical address and byte length: two little-endian u32 per element at
   * dstOff + (i-from)*8; 0 and 0 for an element that is not a scalar array (no bytes for DMA).
   */
  extents(from: number, count: number, dst: DataView, dstOff: number): void;
}
