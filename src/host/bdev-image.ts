/**
 * Host helpers for tests and benchmarks of the fs domain: copy a file-system image onto any BDev
 * (membdev, the nvme driver, the block shadow) and back, as the kernel, through exchange-heap
 * buffers; and load the fs domain on a BDev domain.
 *
 * Invariants: transfers go in whole blocks through the BDev interface only (never behind a
 * driver's back); every exchange-heap buffer allocated here is dropped before returning; a BDev
 * error is thrown as an Error naming the block.
 */
import { readFileSync } from 'node:fs';
import { KERNEL_OWNER } from '../kernel/heap.js';
import type { Kernel } from '../kernel/kernel.js';
import { artifactPath } from '../kernel/paths.js';
import type { BDev, BlkReq } from '../interfaces/block.js';
import { BLK_READ } from '../interfaces/block.js';
import type { Rv6Fs } from '../interfaces/rv6.js';
import type { RRef, RRefArray } from '../runtime/types.js';

/** Bytes moved per BDev call. */
const CHUNK = 1 << 20;

function blockSizeOf(bdev: BDev, bytes: number): number {
  const bs = bdev.blockSize();
  if (bytes % bs !== 0) throw new Error(`image size ${bytes} is not a multiple of the device's ${bs}-byte block size`);
  if (bytes / bs > bdev.blockCount()) throw new Error(`image of ${bytes} bytes does not fit a device of ${bdev.blockCount()} blocks of ${bs} bytes`);
  return bs;
}

/** Write `image` (bytes, or the path of an image file) onto `bdev` from block 0, then flush. */
export async function writeImageToBDev(kernel: Kernel, bdev: BDev, image: Uint8Array | string): Promise<void> {
  const bytes = typeof image === 'string' ? readFileSync(image) : image;
  const bs = blockSizeOf(bdev, bytes.length);
  for (let pos = 0; pos < bytes.length; pos += CHUNK) {
    const len = Math.min(CHUNK, bytes.length - pos);
    const buf = kernel.kit.allocBytes(KERNEL_OWNER, len, 4096) as unknown as RRefArray<number>;
    try {
      buf.write(0, bytes, pos, len);
      const status = await bdev.write(pos / bs, buf);
      if (status !== 0) throw new Error(`writing the image at block ${pos / bs}: status ${status}`);
    } finally {
      buf.drop();
    }
  }
  const status = await bdev.flush();
  if (status !== 0) throw new Error(`flushing the image: status ${status}`);
}

/** Read the first `bytes` bytes of `bdev` (for fsck of a device's contents). */
export async function readImageFromBDev(kernel: Kernel, bdev: BDev, bytes: number): Promise<Uint8Array> {
  const bs = blockSizeOf(bdev, bytes);
  const out = new Uint8Array(bytes);
  for (let pos = 0; pos < bytes; pos += CHUNK) {
    const len = Math.min(CHUNK, bytes - pos);
    let req = kernel.kit.allocStruct(KERNEL_OWNER, 'BlkReq') as unknown as RRef<BlkReq>;
    req.op = BLK_READ;
    req.lba = pos / bs;
    req.nblocks = len / bs;
    req.data = kernel.kit.allocBytes(KERNEL_OWNER, len, 4096) as unknown as RRefArray<number>;
    req = await bdev.submit(req);
    try {
      if (req.status !== 0) throw new Error(`reading the device at block ${pos / bs}: status ${req.status}`);
      req.data!.read(0, out, pos, len);
    } finally {
      req.drop();
    }
  }
  return out;
}

/** Load the fs domain (instance `name`, default 'fs') on the live BDev domain `bdevDomain`; its Rv6Fs for the kernel. */
export function bootFs(kernel: Kernel, bdevDomain: string, opts: { name?: string; nbuf?: number; ninode?: number } = {}): Rv6Fs {
  const config: Record<string, number> = {};
  if (opts.nbuf !== undefined) config.nbuf = opts.nbuf;
  if (opts.ninode !== undefined) config.ninode = opts.ninode;
  const d = kernel.load(artifactPath('fs'), { name: opts.name ?? 'fs', imports: [bdevDomain], config });
  return kernel.bind<Rv6Fs>(d);
}
