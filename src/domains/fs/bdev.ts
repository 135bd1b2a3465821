/**
 * The file system's BlockDevice over a `BDev` import (the nvme driver, the block shadow, membdev).
 *
 * Zero copy both ways: a write of a whole buffer is `BDev.write` on the borrowed buffer; a read
 * (and a write of part of a buffer, the log's) is a request moved through `BDev.submit`, which
 * carries the buffer to the driver and back. A moved buffer comes back as a child of its request
 * (`req.data`) and cannot be taken out of it, so every buffer that went through `submit` stays
 * inside its request for good: `reqs` maps the handle handed to the fs to the request holding it,
 * and the next transfer of that buffer reuses that request.
 *
 * Invariants: every handle this device returned is a key of `reqs` exactly while the request
 * holding it is the current one (it is deleted before the request moves, and put back when a call
 * to a driver already dead refused the request without taking it); a negative status or a failed
 * call becomes a DeviceError naming the handle to use afterwards (null when a dead driver kept the
 * buffer); nothing else throws, and no request the fs still holds is ever forgotten (no leak).
 */
import type { BDev, BlkReq } from '../../interfaces/block.js';
import { BLK_READ, BLK_WRITE } from '../../interfaces/block.js';
import type { Sys } from '../../runtime/sys.js';
import type { DmaBytes, RRef, RRefArray } from '../../runtime/types.js';
import { DeviceError, type BlockDevice } from './device.js';

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class BDevBlockDevice implements BlockDevice {
  readonly blockSize: number;
  readonly blockCount: number;
  private readonly reqs = new Map<DmaBytes, RRef<BlkReq>>();

  constructor(private readonly sys: Sys, private readonly bdev: BDev) {
    this.blockSize = bdev.blockSize();
    this.blockCount = bdev.blockCount();
  }

  /** Exchange-heap buffers for the fs: 4-byte alignment is all the driver needs; 4 KiB when a page or more. */
  readonly alloc = (bytes: number): DmaBytes => this.sys.alloc.bytes(bytes, bytes >= 4096 ? 4096 : 512);

  read(lba: number, buf: DmaBytes, count = 1): Promise<DmaBytes> {
    return this.submit(BLK_READ, lba, buf, count);
  }

  async write(lba: number, buf: DmaBytes, count = 1): Promise<DmaBytes> {
    if (count * this.blockSize !== buf.byteLength) return this.submit(BLK_WRITE, lba, buf, count);
    let status: number;
    try {
      status = await this.bdev.write(lba, buf as RRefArray<number>);
    } catch (e) {
      throw new DeviceError(`block device: write of lba ${lba}: ${describe(e)}`, buf);
    }
    if (status !== 0) throw new DeviceError(`block device: write of lba ${lba} failed with status ${status}`, buf);
    return buf;
  }

  async flush(): Promise<void> {
    let status: number;
    try {
      status = await this.bdev.flush();
    } catch (e) {
      throw new DeviceError(`block device: flush: ${describe(e)}`, null);
    }
    if (status !== 0) throw new DeviceError(`block device: flush failed with status ${status}`, null);
  }

  free(buf: DmaBytes): void {
    const req = this.reqs.get(buf);
    this.reqs.delete(buf);
    if (req !== undefined) req.drop();
    else if (buf.valid) buf.drop();
  }

  /**
   * After a submit that threw: when the call never took `req` (the driver was dead already, so
   * nothing was moved), the request still holds the buffer — keep it as that buffer's request and
   * name the handle to use. Null when the request went down with the driver.
   */
  private keep(req: RRef<BlkReq>, buf: DmaBytes): DmaBytes | null {
    if (!req.valid) return null;
    // `buf` is still the request's buffer if it came in as one; storing it in `req.data` revoked it.
    const data = buf.valid ? buf : req.data;
    if (data === null) {
      req.drop();
      return null;
    }
    this.reqs.set(data, req);
    return data;
  }

  private async submit(op: number, lba: number, buf: DmaBytes, count: number): Promise<DmaBytes> {
    let req = this.reqs.get(buf);
    if (req !== undefined) {
      this.reqs.delete(buf);
    } else {
      req = this.sys.alloc.struct<BlkReq>('BlkReq');
      req.data = buf as RRefArray<number>;
    }
    req.op = op;
    req.lba = lba;
    req.nblocks = count;
    req.status = 0;
    // What failed, for the error messages only (no string per request).
    const what = (): string => `${op === BLK_READ ? 'read' : 'write'} of lba ${lba} (${count} blocks)`;
    let back: RRef<BlkReq>;
    try {
      back = await this.bdev.submit(req);
    } catch (e) {
      throw new DeviceError(`block device: ${what()}: ${describe(e)}`, this.keep(req, buf));
    }
    const data = back.data;
    if (data === null) {
      back.drop();
      throw new DeviceError(`block device: ${what()}: the request came back without its buffer`, null);
    }
    this.reqs.set(data, back);
    if (back.status !== 0) throw new DeviceError(`block device: ${what()} failed with status ${back.status}`, data);
    return data;
  }
}
