/**
 * Block I/O workloads shared by the storage suites (`bench nvme`, `bench fs`): 4 KiB requests in
 * a sequential or random LBA order, driven through a BDev proxy (a driver domain or the block
 * shadow) for a fixed time. Lives in a subfolder so that `redleaf bench` does not take it for a
 * suite.
 *
 * Invariants: every request is 4 KiB whatever the device's block size (nblocks = 4096 / block
 * size, LBAs 4 KiB-aligned), and stays inside the first `span` 4 KiB blocks; requests and their
 * buffers are kernel-owned and reused across runs, so a run allocates nothing.
 */
import { performance } from 'node:perf_hooks';
import { KERNEL_OWNER } from '../../kernel/heap.js';
import type { Kernel } from '../../kernel/kernel.js';
import { BLK_READ, BLK_WRITE, type BDev, type BlkReq } from '../../interfaces/block.js';
import type { RRef, RRefDeque } from '../../runtime/types.js';

/** Bytes per request. */
export const BS = 4096;
export const KINDS = ['randread', 'randwrite', 'seqread', 'seqwrite'] as const;
export type Kind = (typeof KINDS)[number];

/** Resolve after the event loop turned (lets devices and timers run). */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Block numbers (in 4 KiB blocks) in `kind`'s order over `blocks` blocks, wrapping around. */
export function lbaGen(kind: Kind, blocks: number): () => number {
  if (kind.startsWith('seq')) {
    let next = 0;
    return () => {
      const l = next;
      next = next + 1 === blocks ? 0 : next + 1;
      return l;
    };
  }
  let s = 0x9e3779b9;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s % blocks;
  };
}

/** Run `batch` (returns ops done) repeatedly for `ms`, turning the event loop every `yieldEvery` batches; ops per ms (kIOPS). */
export async function timed(ms: number, batch: () => number | Promise<number>, yieldEvery = 0): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  let k = 0;
  while (performance.now() - t0 < ms) {
    n += await batch();
    if (yieldEvery > 0 && ++k % yieldEvery === 0) await tick();
  }
  return n / (performance.now() - t0);
}

/** A deque of `n` kernel-owned requests of operation `op`, each `nblocks` device blocks with a 4 KiB buffer. */
export function requestDeque(kernel: Kernel, n: number, op: number, nblocks = 1): RRefDeque<RRef<BlkReq>> {
  const kit = kernel.kit;
  const d = kit.allocDeque(KERNEL_OWNER, Math.max(n, 32)) as unknown as RRefDeque<RRef<BlkReq>>;
  for (let i = 0; i < n; i++) {
    const r = kit.allocStruct(KERNEL_OWNER, 'BlkReq') as unknown as RRef<BlkReq>;
    r.op = op;
    r.nblocks = nblocks;
    r.data = kit.allocBytes(KERNEL_OWNER, BS, BS) as never;
    d.push(r);
  }
  return d;
}

/**
 * 4 KiB I/O of one kind through `bdev`: `batch` 1 is one `submit` per request, more is
 * `submitAndPoll` on a deque of `batch` requests. Each `run` continues the LBA sequence.
 */
export class BDevWorkload {
  private readonly next: () => number;
  private readonly nblocks: number;
  private dq: RRefDeque<RRef<BlkReq>>;
  private one: RRef<BlkReq> | null;

  constructor(kernel: Kernel, private readonly bdev: BDev, kind: Kind, private readonly batch: number, span: number) {
    const bs = bdev.blockSize();
    if (BS % bs !== 0) throw new Error(`block size ${bs} does not divide ${BS}`);
    this.nblocks = BS / bs;
    this.next = lbaGen(kind, span);
    this.dq = requestDeque(kernel, batch, kind.endsWith('read') ? BLK_READ : BLK_WRITE, this.nblocks);
    this.one = batch === 1 ? this.dq.pop()! : null;
  }

  /** Requests per ms (kIOPS) over `ms`. */
  run(ms: number): Promise<number> {
    const { bdev, batch, nblocks, next } = this;
    return timed(ms, batch === 1
      ? async () => {
        this.one!.lba = next() * nblocks;
        this.one = await bdev.submit(this.one!);
        return 1;
      }
      : async () => {
        for (let j = 0; j < batch; j++) {
          const r = this.dq.pop()!;
          r.lba = next() * nblocks;
          this.dq.push(r);
        }
        this.dq = await bdev.submitAndPoll(this.dq);
        return batch;
      }, 64);
  }
}
