/**
 * membdev: an in-memory block device exporting BDev (tests, and the file system without a
 * controller). The disk is this domain's private memory; data moves between it and the caller's
 * RRef buffers with one copy each way (DmaBytes.read / write), which is what a RAM disk does.
 *
 * Config: bytes (default 16 MiB), blockSize 512 | 4096 (default 512).
 * Invariant: every request moved in comes back with `status` set; nothing throws on bad input.
 */
import type { BDev, BlkReq } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRef, RRefArray, RRefDeque } from '../../runtime/types.js';

const EINVAL = -22;

export function init(sys: Sys): BDev {
  const bs = sys.config.blockSize === 4096 ? 4096 : 512;
  const bytes = typeof sys.config.bytes === 'number' ? sys.config.bytes : 16 << 20;
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % bs !== 0) sys.panic(`membdev: size ${bytes} is not a positive multiple of ${bs}`);
  const disk = new Uint8Array(bytes);
  const blocks = bytes / bs;

  const run = (op: number, lba: number, nblocks: number, data: RRefArray<number> | null): number => {
    if (op === 2) return 0;
    if ((op !== 0 && op !== 1) || data === null || !Number.isSafeInteger(lba) || lba < 0 || !(nblocks >= 1) ||
        lba + nblocks > blocks || nblocks * bs > data.byteLength) return EINVAL;
    if (op === 0) data.write(0, disk, lba * bs, nblocks * bs);
    else data.read(0, disk, lba * bs, nblocks * bs);
    return 0;
  };

  return {
    blockSize: () => bs,
    blockCount: () => blocks,
    model: () => 'RedLeaf.ts RAM disk',
    serial: () => 'membdev',
    async submit(h: RRef<BlkReq>) {
      h.status = run(h.op, h.lba, h.nblocks, h.op === 2 ? null : h.data);
      return h;
    },
    async submitAndPoll(dq: RRefDeque<RRef<BlkReq>>) {
      const n = dq.length;
      for (let i = 0; i < n; i++) {
        const h = dq.pop()!;
        h.status = run(h.op, h.lba, h.nblocks, h.op === 2 ? null : h.data);
        dq.push(h);
      }
      return dq;
    },
    async write(lba: number, data: RRefArray<number>) {
      return run(1, lba, Math.floor(data.byteLength / bs), data);
    },
    async flush() {
      return 0;
    },
  };
}
