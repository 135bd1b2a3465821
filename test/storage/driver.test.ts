/**
 * The nvme driver domain on both backends (RAM and image file) in poll and interrupt mode, and
 * the in-memory membdev: data integrity under random batches (fast-check) checked against a model,
 * single requests, borrowed writes, flush, malformed requests answered as values; a write-protected
 * namespace: readOnly() says so, writes end with EROFS and change nothing, reads and flush work.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { bootStorage, bootMembdev } from '../../src/host/storage.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { KERNEL_OWNER } from '../../src/kernel/heap.js';
import { BLK_EROFS, type BDev } from '../../src/interfaces/index.js';
import type { BlkReq } from '../../src/interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../src/runtime/types.js';
import { disjoint, req, runBatch, type Op } from './helpers.js';

const opArb = (blocks: number) => fc.record({ write: fc.boolean(), lba: fc.integer({ min: 0, max: blocks - 4 }), nblocks: fc.integer({ min: 1, max: 4 }), seed: fc.integer({ min: 1, max: 1 << 30 }) });

async function integrity(k: Kernel, bdev: BDev, runs = 15): Promise<void> {
  const bs = bdev.blockSize();
  const blocks = Math.min(bdev.blockCount(), 256);
  const model = new Map<number, [number, number]>();
  await fc.assert(fc.asyncProperty(fc.array(fc.array(opArb(blocks), { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 4 }), async (batches) => {
    for (const b of batches) await runBatch(k, bdev, bs, disjoint(b as Op[]), model);
  }), { numRuns: runs });
}

async function singles(k: Kernel, bdev: BDev): Promise<void> {
  const bs = bdev.blockSize();
  // Borrowed write, then a single read through submit.
  const w = k.kit.allocBytes(KERNEL_OWNER, 2 * bs, 4096) as unknown as RRefArray<number>;
  w.fill(0xab);
  assert.equal(await bdev.write(300, w), 0);
  assert.ok(w.valid, 'a borrowed buffer stays with the caller');
  let r = req(k, 0, 300, 2, 2 * bs);
  r = await bdev.submit(r);
  assert.equal(r.status, 0);
  assert.equal(r.data!.getU8(2 * bs - 1), 0xab);
  r.drop();
  assert.equal(await bdev.flush(), 0);
  // A borrowed write of a length that is not whole blocks is refused, not cut to whole blocks.
  for (const bytes of [bs + 100, 100]) {
    const odd = k.kit.allocBytes(KERNEL_OWNER, bytes, 4096) as unknown as RRefArray<number>;
    odd.fill(0xcd);
    assert.equal(await bdev.write(300, odd), -22, `a write of ${bytes} bytes`);
    odd.drop();
  }
  let back = req(k, 0, 300, 1, bs);
  back = await bdev.submit(back);
  assert.equal(back.data!.getU8(0), 0xab, 'nothing of the refused writes reached the disk');
  back.drop();
  // Malformed requests come back with -EINVAL, the buffer with them.
  for (const [lba, n, bytes] of [[bdev.blockCount(), 1, bs], [0, 2, bs], [-1, 1, bs]] as const) {
    let bad = req(k, 0, lba, n, bytes);
    bad = await bdev.submit(bad);
    assert.equal(bad.status, -22);
    assert.ok(bad.data!.valid);
    bad.drop();
  }
  let f = req(k, 2, 0, 0, 0);
  f = await bdev.submit(f);
  assert.equal(f.status, 0);
  f.drop();
}

for (const mode of ['poll', 'interrupt'] as const) {
  test(`nvme domain on RAM, ${mode} mode: integrity under random batches`, async () => {
    const s = await bootStorage({ ramBytes: 4 << 20, mode });
    try {
      assert.equal(s.driver.blockSize(), 512);
      assert.equal(s.driver.blockCount(), 8192);
      await integrity(s.kernel, s.driver);
      await singles(s.kernel, s.driver);
      assert.equal(s.kernel.get('nvme')!.faults, 0);
    } finally {
      await s.stop();
    }
  });
}

test('nvme domain on an image file (4 KiB blocks): integrity, data on disk, 300-request batch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rl-storage-'));
  try {
    const img = join(dir, 'd.img');
    writeFileSync(img, Buffer.alloc(4 << 20));
    const s = await bootStorage({ image: img, blockSize: 4096, mode: 'interrupt', queueDepth: 64 });
    try {
      assert.equal(s.driver.blockCount(), 1024);
      await integrity(s.kernel, s.driver, 8);
      await singles(s.kernel, s.driver);
      // More requests than the queue holds: the driver feeds them as slots free up.
      const ops: Op[] = Array.from({ length: 300 }, (_, i) => ({ write: true, lba: 400 + i, nblocks: 1, seed: i + 7 }));
      const model = new Map<number, [number, number]>();
      await runBatch(s.kernel, s.driver, 4096, ops, model);
      await runBatch(s.kernel, s.driver, 4096, ops.map((o) => ({ ...o, write: false })), model);
    } finally {
      await s.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nvme domain on a write-protected namespace, behind the shadow: readOnly(), writes end with EROFS and change nothing, reads and flush work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rl-storage-'));
  try {
    const img = join(dir, 'd.img');
    const image = randomFillSync(Buffer.alloc(1 << 20));
    writeFileSync(img, image);
    const s = await bootStorage({ image: img, readOnly: true, shadow: true });
    try {
      const k = s.kernel;
      assert.equal(s.driver.readOnly(), true);
      assert.equal(s.bdev.readOnly(), true, 'the shadow reports the driver\'s');
      // One batch: writes (adjacent and scattered) between reads.
      let dq = k.kit.allocDeque(KERNEL_OWNER, 5) as unknown as RRefDeque<RRef<BlkReq>>;
      for (const [op, lba] of [[1, 10], [1, 11], [0, 10], [1, 500], [0, 500]] as const) dq.push(req(k, op, lba, 2, 1024, 7));
      dq = await s.bdev.submitAndPoll(dq);
      const got = Array.from({ length: 5 }, () => dq.pop()!);
      assert.deepEqual(got.map((r) => r.status), [BLK_EROFS, BLK_EROFS, 0, BLK_EROFS, 0]);
      const read = Buffer.alloc(1024);
      got[2]!.data!.read(0, read);
      assert.ok(read.equals(image.subarray(10 * 512, 12 * 512)), 'a read returns the image');
      got.forEach((r) => r.drop());
      const w = k.kit.allocBytes(KERNEL_OWNER, 512, 4096) as unknown as RRefArray<number>;
      assert.equal(await s.bdev.write(3, w), BLK_EROFS, 'a borrowed write');
      w.drop();
      assert.equal(await s.bdev.flush(), 0);
      assert.ok(readFileSync(img).equals(image), 'the image is unchanged');
      assert.equal(k.get('nvme')!.faults, 0);
    } finally {
      await s.stop();
    }
    const rw = await bootStorage({ image: img });
    try {
      assert.equal(rw.driver.readOnly(), false, 'a writable image');
    } finally {
      await rw.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('membdev: integrity, singles, bad requests', async () => {
  const k = new Kernel({ physBytes: 32 << 20 });
  try {
    const m = bootMembdev(k, { bytes: 1 << 20 });
    assert.equal(m.blockCount(), 2048);
    await integrity(k, m);
    await singles(k, m);
  } finally {
    k.shutdown();
  }
});
