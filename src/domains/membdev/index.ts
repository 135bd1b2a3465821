/**
 * membdev: an in-memory block device exporting BDev (tests, and the file system without a
 * controller). The disk is a memory region the host hands over at load (its only import, like
 * the RAM a boot loader gives a RAM-disk driver): it outlives the domain, so an instance the
 * block shadow restarts after a crash finds the disk as the crashed one left it. Data moves
 * between it and the caller's RRef buffers with one copy each way (DmaBytes.read / write), which
 * is what a RAM disk does.
 *
 * Config: blockSize 512 | 4096 (default 512); the size is the region's.
 * Invariant: every request moved in comes back with `status` set; nothing throws on bad input.
 */
import { BLK_EINVAL, BLK_FLUSH, BLK_READ, BLK_WRITE, type BDev, type BlkReq } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRef, RRefArray, RRefDeque } from '../../runtime/types.js';

/**
 * The disk's memory (a trusted `{ object }` import made by the host, see src/host/storage.ts): an
 * ArrayBuffer, because hardening a large typed array would enumerate every index.
 */
export interface RamDiskMemory {
  readonly buffer: ArrayBuffer;
}

export function init(sys: Sys, memory: RamDiskMemory): BDev {
  const bs = sys.config.blockSize === 4096 ? 4096 : 512;
  const disk = new Uint8Array(memory.buffer);
  const bytes = disk.length;
  if (bytes === 0 || bytes % bs !== 0) sys.panic(`membdev: size ${bytes} is not a positive multiple of ${bs}`);
  const blocks = bytes / bs;

  const run = (op: number, lba: number, nblocks: number, data: RRefArray<number> | null): number => {
    if (op === BLK_FLUSH) return 0;
    if ((op !== BLK_READ && op !== BLK_WRITE) || data === null || !Number.isSafeInteger(lba) || lba < 0 || !(nblocks >= 1) ||
        lba + nblocks > blocks || nblocks * bs > data.byteLength) return BLK_EINVAL;
    if (op === BLK_READ) data.write(0, disk, lba * bs, nblocks * bs);
    else data.read(0, disk, lba * bs, nblocks * bs);
    return 0;
  };

  return {
    blockSize: () => bs,
    blockCount: () => blocks,
    model: () => 'RedLeaf.ts RAM disk',
    serial: () => 'membdev',
    readOnly: () => false,
    async submit(h: RRef<BlkReq>) {
      h.status = run(h.op, h.lba, h.nblocks, h.op === BLK_FLUSH ? null : h.data);
      return h;
    },
    async submitAndPoll(dq: RRefDeque<RRef<BlkReq>>) {
      const n = dq.length;
      for (let i = 0; i < n; i++) {
        const h = dq.pop()!;
        h.status = run(h.op, h.lba, h.nblocks, h.op === BLK_FLUSH ? null : h.data);
        dq.push(h);
      }
      return dq;
    },
    async write(lba: number, data: RRefArray<number>) {
      return data.byteLength % bs === 0 ? run(1, lba, data.byteLength / bs, data) : BLK_EINVAL;
    },
    async flush() {
      return 0;
    },
  };
}
