/**
 * Test stand-in for the exchange heap: a bump allocator over a physical-memory SharedArrayBuffer
 * whose allocations implement DmaBytes (bounds-checked, little-endian, invalid after drop), so
 * the NIC driver core runs against the real device model without the kernel.
 *
 * Invariant: every access is checked against the allocation's bounds and validity, as the real
 * exchange heap does; allocations never overlap.
 */
import type { DmaBytes } from '../../src/runtime/types.js';

class FakeDma implements DmaBytes {
  valid = true;
  private readonly dv: DataView;
  private readonly u8: Uint8Array;
  constructor(phys: SharedArrayBuffer, private readonly words: Int32Array, readonly addr: number, readonly byteLength: number) {
    this.dv = new DataView(phys, addr, byteLength);
    this.u8 = new Uint8Array(phys, addr, byteLength);
  }
  private check(off: number, len: number): void {
    if (!this.valid) throw new Error('DmaBytes used after drop');
    if (!(off >= 0 && len >= 0 && off + len <= this.byteLength)) throw new RangeError(`DmaBytes access ${off}+${len} outside ${this.byteLength}`);
  }
  drop(): void { this.check(0, 0); this.valid = false; }
  getU8(off: number): number { this.check(off, 1); return this.dv.getUint8(off); }
  setU8(off: number, v: number): void { this.check(off, 1); this.dv.setUint8(off, v); }
  getU16(off: number): number { this.check(off, 2); return this.dv.getUint16(off, true); }
  setU16(off: number, v: number): void { this.check(off, 2); this.dv.setUint16(off, v, true); }
  getU32(off: number): number { this.check(off, 4); return this.dv.getUint32(off, true); }
  setU32(off: number, v: number): void { this.check(off, 4); this.dv.setUint32(off, v >>> 0, true); }
  loadU32(off: number): number {
    this.check(off, 4);
    if ((this.addr + off) % 4 !== 0) throw new RangeError('loadU32 offset not 4-aligned');
    return Atomics.load(this.words, (this.addr + off) >>> 2) >>> 0;
  }
  storeU32(off: number, v: number): void {
    this.check(off, 4);
    if ((this.addr + off) % 4 !== 0) throw new RangeError('storeU32 offset not 4-aligned');
    Atomics.store(this.words, (this.addr + off) >>> 2, v | 0);
  }
  getU64(off: number): number { this.check(off, 8); return this.dv.getUint32(off, true) + this.dv.getUint32(off + 4, true) * 0x100000000; }
  setU64(off: number, v: number): void {
    this.check(off, 8);
    this.dv.setUint32(off, v % 0x100000000, true);
    this.dv.setUint32(off + 4, Math.floor(v / 0x100000000), true);
  }
  read(off: number, dst: Uint8Array, dstOff = 0, len = dst.length - dstOff): void {
    this.check(off, len);
    dst.set(this.u8.subarray(off, off + len), dstOff);
  }
  write(off: number, src: Uint8Array, srcOff = 0, len = src.length - srcOff): void {
    this.check(off, len);
    this.u8.set(src.subarray(srcOff, srcOff + len), off);
  }
  fill(v: number, off = 0, len = this.byteLength - off): void {
    this.check(off, len);
    this.u8.fill(v, off, off + len);
  }
  copyFrom(src: DmaBytes, srcOff: number, dstOff: number, len: number): void {
    this.check(dstOff, len);
    const tmp = new Uint8Array(len);
    src.read(srcOff, tmp, 0, len);
    this.u8.set(tmp, dstOff);
  }
}

export class FakeHeap {
  readonly phys: SharedArrayBuffer;
  private readonly words: Int32Array;
  private next: number;
  constructor(bytes: number, base = 4096) {
    this.phys = new SharedArrayBuffer(bytes);
    this.words = new Int32Array(this.phys);
    this.next = base;
  }
  alloc = (bytes: number, align = 64): DmaBytes => {
    const addr = Math.ceil(this.next / align) * align;
    if (addr + bytes > this.phys.byteLength) throw new RangeError(`FakeHeap out of memory (${bytes} bytes)`);
    this.next = addr + bytes;
    return new FakeDma(this.phys, this.words, addr, bytes);
  };
}
