/**
 * membdev's disk is host memory handed to the domain, not the domain's own: it is used in place
 * (preloaded contents are read, writes land in it), and it survives the domain — behind the block
 * shadow, a membdev crashed between or during batches comes back with every block written before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bootMembdev, loadBlockShadow } from '../../src/host/storage.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { disjoint, req, runBatch, type Op } from './helpers.js';

const BLOCKS = 256;
const BS = 512;

test('membdev uses the memory it is given in place', async () => {
  const k = new Kernel({ physBytes: 16 << 20 });
  try {
    const memory = new ArrayBuffer(BLOCKS * BS);
    const bytes = new Uint8Array(memory);
    bytes[7 * BS + 3] = 0x5a;
    const bdev = bootMembdev(k, { memory });
    assert.equal(bdev.blockCount(), BLOCKS);
    let r = await bdev.submit(req(k, 0, 7, 1, BS));
    assert.equal(r.status, 0);
    assert.equal(r.data!.getU8(3), 0x5a, 'preloaded contents are read');
    r.drop();
    r = await bdev.submit(req(k, 1, 9, 1, BS, 42));
    assert.equal(r.status, 0);
    r.drop();
    assert.notEqual(new DataView(memory).getUint32(9 * BS, true), 0, 'a write lands in the given memory');
  } finally {
    k.shutdown();
  }
});

test('membdev behind the block shadow: data survives crashes (random batches, a crash after each)', async () => {
  const k = new Kernel({ physBytes: 32 << 20 });
  try {
    bootMembdev(k, { bytes: BLOCKS * BS });
    const shadow = loadBlockShadow(k, 'membdev');
    const model = new Map<number, [number, number]>();
    let crashes = 0;
    const opArb = fc.record({
      write: fc.boolean(), lba: fc.integer({ min: 0, max: BLOCKS - 4 }), nblocks: fc.integer({ min: 1, max: 4 }), seed: fc.integer({ min: 1, max: 1 << 30 }),
    });
    await fc.assert(fc.asyncProperty(fc.array(fc.array(opArb, { minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 4 }), async (batches) => {
      for (const b of batches) {
        await runBatch(k, shadow, BS, disjoint(b as Op[]), model);
        k.injectFault('membdev', 'now');
        crashes++;
      }
    }), { numRuns: 20 });
    // The last batch left membdev dead: a call brings it back. Then a crash armed inside a call:
    // the shadow reissues the batch on the restarted instance.
    assert.equal(await shadow.flush(), 0);
    k.injectFault('membdev', { afterCalls: 1 });
    const ops: Op[] = Array.from({ length: 8 }, (_, i) => ({ write: true, lba: 100 + i, nblocks: 1, seed: 1000 + i }));
    await runBatch(k, shadow, BS, ops, model);
    await runBatch(k, shadow, BS, ops.map((o) => ({ ...o, write: false })), model);
    const d = k.get('membdev')!;
    assert.equal(d.live, true);
    assert.equal(d.restarts, crashes + 1);
  } finally {
    k.shutdown();
  }
});
