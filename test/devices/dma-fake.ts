/**
 * Test allocator: DmaBytes over a region of the physical-memory SharedArrayBuffer, standing in for
 * the kernel's exchange heap in device and driver tests.
 *
 * Invariants: allocations never overlap (bump allocation, never reused, so a stale address in a
 * test cannot alias a newer buffer), every access is bounds- and validity-checked like the real
 * DmaBytes, and `addr` is the byte offset in physical memory the device sees.
 */
import type { DmaBytes } from '../../src/runtime/types.js';

export class FakeDma implements DmaBytes {
  valid = true;
  private readonly dv: DataView;
  private readonly u8: Uint8Array;
  private readonly i32: Int32Array;

  constructor(phys: SharedArrayBuffer, readonly addr: number, readonly byteLength: number) {
    this.dv = new DataView(phys, addr, byteLength);
    this.u8 = new Uint8Array(phys, addr, byteLength);
    this.i32 = new Int32Array(phys, 0, phys.byteLength >>> 2);
  }

  private at(off: number, n: number): number {
    if (!this.valid) throw new Error('DmaBytes: handle is no longer valid');
    if (!Number.isInteger(off) || off < 0 || off + n > this.byteLength) {
      throw new RangeError(`DmaBytes: [${off}, ${off + n}) outside ${this.byteLength} bytes`);
    }
    return off;
  }

  drop(): void { this.at(0, 0); this.valid = false; }
  getU8(off: number): number { return this.dv.getUint8(this.at(off, 1)); }
  setU8(off: number, v: number): void { this.dv.setUint8(this.at(off, 1), v); }
  getU16(off: number): number { return this.dv.getUint16(this.at(off, 2), true); }
  setU16(off: number, v: number): void { this.dv.setUint16(this.at(off, 2), v, true); }
  getU32(off: number): number { return this.dv.getUint32(this.at(off, 4), true); }
  setU32(off: number, v: number): void { this.dv.setUint32(this.at(off, 4), v >>> 0, true); }
  loadU32(off: number): number { return Atomics.load(this.i32, this.word(off)) >>> 0; }
  storeU32(off: number, v: number): void { Atomics.store(this.i32, this.word(off), v | 0); }
  private word(off: number): number {
    this.at(off, 4);
    if ((this.addr + off) % 4 !== 0) throw new RangeError(`DmaBytes: atomic access at unaligned offset ${off}`);
    return (this.addr + off) / 4;
  }
  getU64(off: number): number {
    this.at(off, 8);
    return this.dv.getUint32(off, true) + this.dv.getUint32(off + 4, true) * 0x100000000;
  }
  setU64(off: number, v: number): void {
    this.at(off, 8);
    this.dv.setUint32(off, v % 0x100000000, true);
    this.dv.setUint32(off + 4, Math.floor(v / 0x100000000), true);
  }
  read(off: number, dst: Uint8Array, dstOff = 0, len = dst.length - dstOff): void {
    dst.set(this.u8.subarray(this.at(off, len), off + len), dstOff);
  }
  write(off: number, src: Uint8Array, srcOff = 0, len = src.length - srcOff): void {
    this.u8.set(src.subarray(srcOff, srcOff + len), this.at(off, len));
  }
  fill(v: number, off = 0, len = this.byteLength - off): void {
    this.u8.fill(v, this.at(off, len), off + len);
  }
  copyFrom(src: DmaBytes, srcOff: number, dstOff: number, len: number): void {
    if (!(src instanceof FakeDma)) throw new TypeError('FakeDma.copyFrom: source is not a FakeDma');
    this.u8.set(src.u8.subarray(src.at(srcOff, len), srcOff + len), this.at(dstOff, len));
  }
  /** Test convenience: a copy of [off, off+len). */
  bytes(off = 0, len = this.byteLength - off): Uint8Array {
    return this.u8.slice(this.at(off, len), off + len);
  }
}

/** Bump allocator over physical memory [base, base + size). */
export class FakeHeap {
  private next: number;
  private readonly end: number;
  readonly phys: SharedArrayBuffer;

  constructor(phys: SharedArrayBuffer, base = 4096, size = phys.byteLength - base) {
    this.phys = phys;
    this.next = base;
    this.end = base + size;
  }

  alloc = (bytes: number, align = 4096): FakeDma => {
    const addr = Math.ceil(this.next / align) * align;
    if (addr + bytes > this.end) throw new Error(`FakeHeap: out of memory (${bytes} bytes)`);
    this.next = addr + bytes;
    return new FakeDma(this.phys, addr, bytes);
  };
}
