/**
 * Host block devices for tests and tools: a sparse RAM disk and a host image file, both
 * implementing the fs's BlockDevice, plus synchronous byte access (ImageIO) used by mkfs and fsck.
 *
 * Invariants: reads of never-written ranges return zeros; every access is bounds-checked against
 * the device size; writes are applied in call order; read and write hand back the caller's own
 * buffer (nothing moves on the host).
 */
import * as nfs from 'node:fs';
import type { DmaBytes } from '../runtime/types.js';
import type { BlockDevice } from '../domains/fs/device.js';
import { HostBytes } from './bytes.js';

/** Synchronous positional byte access to an image (mkfs, fsck). */
export interface ImageIO {
  readonly sizeBytes: number;
  readAt(pos: number, len: number): Uint8Array;
  writeAt(pos: number, data: Uint8Array): void;
}

function copyIn(buf: DmaBytes, src: Uint8Array): void {
  if (buf instanceof HostBytes) buf.u8.set(src, 0);
  else buf.write(0, src, 0, src.length);
}

function viewOut(buf: DmaBytes, len: number): Uint8Array {
  if (buf instanceof HostBytes) return buf.u8.subarray(0, len);
  const t = new Uint8Array(len);
  buf.read(0, t, 0, len);
  return t;
}

const CHUNK = 1 << 16;

/** A sparse RAM disk: 64 KiB chunks allocated on first write. */
export class RamBlockDevice implements BlockDevice, ImageIO {
  readonly blockCount: number;
  private chunks = new Map<number, Uint8Array>();
  reads = 0;
  writes = 0;

  constructor(readonly sizeBytes: number, readonly blockSize = 512) {
    if (sizeBytes % blockSize !== 0) throw new Error('RamBlockDevice: size not a multiple of the sector size');
    this.blockCount = sizeBytes / blockSize;
  }

  private check(pos: number, len: number): void {
    if (!Number.isInteger(pos) || pos < 0 || len < 0 || pos + len > this.sizeBytes) throw new RangeError(`RamBlockDevice: access [${pos}, +${len}) beyond ${this.sizeBytes}`);
  }

  readAt(pos: number, len: number): Uint8Array {
    this.check(pos, len);
    const out = new Uint8Array(len);
    this.readInto(pos, out);
    return out;
  }

  private readInto(pos: number, out: Uint8Array): void {
    let done = 0;
    while (done < out.length) {
      const ci = Math.floor((pos + done) / CHUNK), co = (pos + done) % CHUNK;
      const m = Math.min(out.length - done, CHUNK - co);
      const c = this.chunks.get(ci);
      if (c) out.set(c.subarray(co, co + m), done);
      else out.fill(0, done, done + m);
      done += m;
    }
  }

  writeAt(pos: number, data: Uint8Array): void {
    this.check(pos, data.length);
    let done = 0;
    while (done < data.length) {
      const ci = Math.floor((pos + done) / CHUNK), co = (pos + done) % CHUNK;
      const m = Math.min(data.length - done, CHUNK - co);
      let c = this.chunks.get(ci);
      if (!c) { c = new Uint8Array(CHUNK); this.chunks.set(ci, c); }
      c.set(data.subarray(done, done + m), co);
      done += m;
    }
  }

  async read(lba: number, buf: DmaBytes, count = 1): Promise<DmaBytes> {
    const len = count * this.blockSize;
    this.check(lba * this.blockSize, len);
    if (len > buf.byteLength) throw new RangeError('RamBlockDevice.read: buffer too small');
    this.reads++;
    if (buf instanceof HostBytes) this.readInto(lba * this.blockSize, buf.u8.subarray(0, len));
    else copyIn(buf, this.readAt(lba * this.blockSize, len));
    return buf;
  }

  async write(lba: number, buf: DmaBytes, count = 1): Promise<DmaBytes> {
    const len = count * this.blockSize;
    if (len > buf.byteLength) throw new RangeError('RamBlockDevice.write: buffer too small');
    this.writes++;
    this.writeAt(lba * this.blockSize, viewOut(buf, len));
    return buf;
  }

  async flush(): Promise<void> {}

  free(buf: DmaBytes): void {
    buf.drop();
  }

  /** Bytes of RAM actually allocated. */
  get allocatedBytes(): number {
    return this.chunks.size * CHUNK;
  }

  /** A deep copy (for crash tests). */
  clone(): RamBlockDevice {
    const d = new RamBlockDevice(this.sizeBytes, this.blockSize);
    for (const [k, v] of this.chunks) d.chunks.set(k, v.slice());
    return d;
  }
}

/** A block device over a host image file (synchronous I/O behind the async interface). */
export class FileBlockDevice implements BlockDevice, ImageIO {
  readonly blockCount: number;
  readonly sizeBytes: number;
  private fd: number;

  constructor(readonly path: string, readonly blockSize = 512, readOnly = false) {
    this.fd = nfs.openSync(path, readOnly ? 'r' : 'r+');
    const size = nfs.fstatSync(this.fd).size;
    this.blockCount = Math.floor(size / blockSize);
    this.sizeBytes = this.blockCount * blockSize;
  }

  readAt(pos: number, len: number): Uint8Array {
    if (pos < 0 || pos + len > this.sizeBytes) throw new RangeError(`FileBlockDevice: read [${pos}, +${len}) beyond ${this.sizeBytes}`);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const n = nfs.readSync(this.fd, out, done, len - done, pos + done);
      if (n <= 0) break;
      done += n;
    }
    return out;
  }

  writeAt(pos: number, data: Uint8Array): void {
    if (pos < 0 || pos + data.length > this.sizeBytes) throw new RangeError(`FileBlockDevice: write [${pos}, +${data.length}) beyond ${this.sizeBytes}`);
    let done = 0;
    while (done < data.length) done += nfs.writeSync(this.fd, data, done, data.length - done, pos + done);
  }

  async read(lba: number, buf: DmaBytes, count = 1): Promise<DmaBytes> {
    const len = count * this.blockSize;
    if (len > buf.byteLength) throw new RangeError('FileBlockDevice.read: buffer too small');
    copyIn(buf, this.readAt(lba * this.blockSize, len));
    return buf;
  }

  async write(lba: number, buf: DmaBytes, count = 1): Promise<DmaBytes> {
    const len = count * this.blockSize;
    if (len > buf.byteLength) throw new RangeError('FileBlockDevice.write: buffer too small');
    this.writeAt(lba * this.blockSize, viewOut(buf, len));
    return buf;
  }

  async flush(): Promise<void> {
    nfs.fsyncSync(this.fd);
  }

  free(buf: DmaBytes): void {
    buf.drop();
  }

  close(): void {
    if (this.fd >= 0) nfs.closeSync(this.fd);
    this.fd = -1;
  }
}
