/**
 * Storage test helpers: build requests and deques as the kernel (host caller), run batches
 * against a BDev and check them against a model of the disk.
 */
import assert from 'node:assert/strict';
import type { Kernel } from '../../src/kernel/kernel.js';
import { KERNEL_OWNER } from '../../src/kernel/heap.js';
import type { BDev, BlkReq } from '../../src/interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../src/runtime/types.js';

export interface Op { write: boolean; lba: number; nblocks: number; seed: number }

export function req(k: Kernel, op: number, lba: number, nblocks: number, bytes: number, seed?: number): RRef<BlkReq> {
  const r = k.kit.allocStruct(KERNEL_OWNER, 'BlkReq') as unknown as RRef<BlkReq>;
  r.op = op; r.lba = lba; r.nblocks = nblocks;
  if (op !== 2) {
    const b = k.kit.allocBytes(KERNEL_OWNER, bytes, 4096) as unknown as RRefArray<number>;
    if (seed !== undefined) for (let i = 0; i < bytes; i += 4) b.setU32(i, pattern(seed, i));
    r.data = b as never;
  }
  return r;
}

export const pattern = (seed: number, i: number): number => (Math.imul(seed, 0x9e3779b1) + i) >>> 0;

/**
 * Run `ops` as one batch on `bdev`, update `model` (block -> seed/offset of its content) with
 * the writes, and check every read against the model as it was before the batch (reads and
 * writes of one batch never overlap: the generator keeps them apart).
 */
export async function runBatch(k: Kernel, bdev: BDev, bs: number, ops: Op[], model: Map<number, [number, number]>): Promise<void> {
  let dq = k.kit.allocDeque(KERNEL_OWNER, Math.max(1, ops.length)) as unknown as RRefDeque<RRef<BlkReq>>;
  for (const o of ops) dq.push(req(k, o.write ? 1 : 0, o.lba, o.nblocks, o.nblocks * bs, o.write ? o.seed : undefined));
  dq = await bdev.submitAndPoll(dq);
  assert.equal(dq.length, ops.length);
  for (const o of ops) {
    const r = dq.pop()!;
    assert.equal(r.status, 0, `status of ${o.write ? 'write' : 'read'} lba ${o.lba}`);
    assert.equal(r.lba, o.lba);
    const d = r.data!;
    if (!o.write) {
      for (let b = 0; b < o.nblocks; b++) {
        const m = model.get(o.lba + b);
        const got = d.getU32(b * bs);
        const want = m === undefined ? null : pattern(m[0], m[1]);
        if (want !== null) assert.equal(got, want, `block ${o.lba + b}`);
      }
    }
    r.drop();
  }
  for (const o of ops) if (o.write) for (let b = 0; b < o.nblocks; b++) model.set(o.lba + b, [o.seed, b * bs]);
  dq.drop();
}

/** Split ops so that no read and write of one batch touch the same block. */
export function disjoint(ops: Op[]): Op[] {
  const w = new Set<number>();
  const r = new Set<number>();
  return ops.filter((o) => {
    const blocks = Array.from({ length: o.nblocks }, (_, i) => o.lba + i);
    if (blocks.some((b) => w.has(b) || (o.write && r.has(b)))) return false;
    for (const b of blocks) (o.write ? w : r).add(b);
    return true;
  });
}
