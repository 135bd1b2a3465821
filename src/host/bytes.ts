/**
 * A DmaBytes over a plain Uint8Array, for host-side tools and tests (mkfs, fsck, RAM and file
 * block devices). Not exchange-heap memory: `addr` is 0 and ownership is not tracked beyond
 * `drop()` invalidating the handle.
 */
import type { DmaBytes } from '../runtime/types.js';

export class HostBytes implements DmaBytes {
  readonly u8: Uint8Array;
  private readonly dv: DataView;
  private live = true;
  readonly addr = 0;

  constructor(sizeOrBytes: number | Uint8Array) {
    this.u8 = typeof sizeOrBytes === 'number' ? new Uint8Array(sizeOrBytes) : sizeOrBytes;
    this.dv = new DataView(this.u8.buffer, this.u8.byteOffset, this.u8.byteLength);
  }

  get valid(): boolean {
    return this.live;
  }
  get byteLength(): number {
    return this.u8.byteLength;
  }
  drop(): void {
    if (!this.live) throw new Error('HostBytes: dropped twice');
    this.live = false;
  }
  getU8(off: number): number {
    return this.dv.getUint8(off);
  }
  setU8(off: number, v: number): void {
    this.dv.setUint8(off, v);
  }
  getU16(off: number): number {
    return this.dv.getUint16(off, true);
  }
  setU16(off: number, v: number): void {
    this.dv.setUint16(off, v, true);
  }
  getU32(off: number): number {
    return this.dv.getUint32(off, true);
  }
  setU32(off: number, v: number): void {
    this.dv.setUint32(off, v >>> 0, true);
  }
  loadU32(off: number): number {
    if (off & 3) throw new RangeError('HostBytes.loadU32: unaligned');
    return this.dv.getUint32(off, true);
  }
  storeU32(off: number, v: number): void {
    if (off & 3) throw new RangeError('HostBytes.storeU32: unaligned');
    this.dv.setUint32(off, v >>> 0, true);
  }
  getU64(off: number): number {
    return this.dv.getUint32(off, true) + this.dv.getUint32(off + 4, true) * 0x100000000;
  }
  setU64(off: number, v: number): void {
    this.dv.setUint32(off, v % 0x100000000, true);
    this.dv.setUint32(off + 4, Math.floor(v / 0x100000000), true);
  }
  read(off: number, dst: Uint8Array, dstOff = 0, len = Math.min(this.u8.length - off, dst.length - dstOff)): void {
    if (off < 0 || off + len > this.u8.length || dstOff < 0 || dstOff + len > dst.length) throw new RangeError('HostBytes.read out of range');
    dst.set(this.u8.subarray(off, off + len), dstOff);
  }
  write(off: number, src: Uint8Array, srcOff = 0, len = src.length - srcOff): void {
    if (off < 0 || off + len > this.u8.length || srcOff < 0 || srcOff + len > src.length) throw new RangeError('HostBytes.write out of range');
    this.u8.set(src.subarray(srcOff, srcOff + len), off);
  }
  fill(v: number, off = 0, len = this.u8.length - off): void {
    if (off < 0 || off + len > this.u8.length) throw new RangeError('HostBytes.fill out of range');
    this.u8.fill(v, off, off + len);
  }
  copyFrom(src: DmaBytes, srcOff: number, dstOff: number, len: number): void {
    if (dstOff < 0 || dstOff + len > this.u8.length) throw new RangeError('HostBytes.copyFrom out of range');
    if (src instanceof HostBytes) this.u8.set(src.u8.subarray(srcOff, srcOff + len), dstOff);
    else src.read(srcOff, this.u8, dstOff, len);
  }
}

/** An Alloc for host use. */
export function hostAlloc(bytes: number): DmaBytes {
  return new HostBytes(bytes);
}
