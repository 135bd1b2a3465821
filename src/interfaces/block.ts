/**
 * Block devices (issue 3): `BDev`, what the NVMe driver, the in-memory disk and the block shadow
 * export, and what the rv6 file system sits on.
 *
 * Errors are values, never exceptions (an exception escaping a domain is a panic): a request's
 * `status` is 0 on success, otherwise negative:
 *   -22 (EINVAL)  malformed request (bad op, lba, nblocks, or a missing / too small buffer);
 *   -5  (EIO)     the controller was reset, or recovery gave up. (A command that times out is
 *                 no status: the controller may still move its data, so the nvme driver dies on
 *                 it — the kernel stops the device first — and the shadow reissues the call.)
 *   -30 (EROFS)   a write to a read-only device (readOnly(): an NVMe write-protected namespace,
 *                 status 20h); nothing was written.
 *   -(0x1000 + (SCT << 8 | SC))  the controller answered with an NVMe status (0x80 = LBA out of range).
 *
 * Ownership and recovery (ARCHITECTURE §5). How the block shadow (src/domains/bdev_shadow) makes
 * each method survive a driver crash, with requests in flight:
 *  - blockSize / blockCount / model / serial / readOnly: no state, reissued on the restarted driver.
 *  - write(lba, data): the buffer is only read by the driver (the device DMAs out of it), so it is
 *    BORROWED: the caller keeps ownership, a crash cannot free it, and the shadow reissues the same
 *    call with the same buffer after the restart. Zero copy on every path.
 *  - flush(): no buffer; reissued.
 *  - submit(req) / submitAndPoll(reqs): requests (and their data buffers) are MOVED in and always
 *    come back in the result, with `status` set, on every non-crash path (errors included). A
 *    value moved into a domain that dies would die with it, so before forwarding, the shadow
 *    ENTRUSTS the request (or the batch's deque) through its supervisor capability and records
 *    each request's op, lba, nblocks, tag and address. When the driver dies holding them, the
 *    kernel gives the entrusted values back to the shadow instead of freeing them (after the
 *    device stopped DMA; the dead driver's handles stay revoked), and the shadow restarts the
 *    driver (which resets the controller and re-creates its queues) and reissues the whole batch
 *    with the same structs and buffers: zero copy on every path, reads and writes alike. The
 *    caller gets back the deque of its own requests (a fresh deque after a crash), in order, with
 *    the right data and statuses. A reissued write whose first issue had already reached the
 *    medium writes the same bytes again: no reader can observe it, because a batch's results are
 *    delivered only once every request in it completed. Only a driver that freed or gave away a
 *    request before dying loses it: in its place the caller gets a request answered -EIO.
 */
import type { Borrow, Layout, RRef, RRefArray, RRefDeque, f64, i32, u8, u32 } from '../runtime/types.js';

/** BlkReq.op values. */
export const BLK_READ = 0;
export const BLK_WRITE = 1;
export const BLK_FLUSH = 2;

/** One block request: RedLeaf's BlkReq. */
export interface BlkReq extends Layout {
  /** BLK_READ, BLK_WRITE or BLK_FLUSH. */
  op: u32;
  /** First block (an integer below 2^53). */
  lba: f64;
  /** Blocks to transfer (ignored for flush). */
  nblocks: u32;
  /** Set by the device driver: 0 or a negative error (see above). */
  status: i32;
  /** The caller's cookie, returned unchanged. */
  tag: u32;
  /** The data: [0, nblocks * blockSize) is transferred (null for flush). */
  data: RRefArray<u8> | null;
}

export interface BDev {
  /** Bytes per block (512 or 4096). */
  blockSize(): number;
  /** Blocks on the device. */
  blockCount(): number;
  model(): string;
  serial(): string;
  /** One request, moved in and back with `status` set. */
  submit(req: RRef<BlkReq>): Promise<RRef<BlkReq>>;
  /**
   * RedLeaf's submit_and_poll: every request of the deque is submitted (doorbells rung once per
   * batch) and the same deque comes back, the same requests in the same order with `status` set,
   * once all of them completed.
   */
  submitAndPoll(reqs: RRefDeque<RRef<BlkReq>>): Promise<RRefDeque<RRef<BlkReq>>>;
  /**
   * Write `data.byteLength / blockSize` blocks at `lba` from a borrowed buffer; 0 or an error (a
   * length that is not a positive multiple of blockSize: BLK_EINVAL, nothing written).
   */
  write(lba: number, data: Borrow<RRefArray<u8>>): Promise<number>;
  /** Make completed writes durable; 0 or an error. */
  flush(): Promise<number>;
  /** Whether the device refuses every write (with BLK_EROFS): an NVMe write-protected namespace.
   *  (Last, so the methods before it keep their indices in route records.) */
  readOnly(): boolean;
}

/** errno-style statuses (BlkReq.status and the methods' results, from every BDev implementation). */
export const BLK_EIO = -5;
export const BLK_EINVAL = -22;
export const BLK_EROFS = -30;
export const BLK_NVME_STATUS = -0x1000;
