/**
 * The block shadow: the driver is crashed at many points — before a call, inside a call (moved
 * requests die with it), mid-batch with requests on the controller, repeatedly, and again while
 * the shadow is recovering (bring-up of the fresh instance) — and callers see no error, every
 * write lands exactly as a reader observes it, and reads return the right data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bootStorage, type Storage } from '../../src/host/storage.js';
import { KERNEL_OWNER } from '../../src/kernel/heap.js';
import type { RRefArray } from '../../src/runtime/types.js';
import { disjoint, req, runBatch, type Op } from './helpers.js';

async function withShadow(mode: 'poll' | 'interrupt', fn: (s: Storage) => Promise<void>): Promise<void> {
  const s = await bootStorage({ ramBytes: 2 << 20, shadow: true, mode });
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

for (const mode of ['poll', 'interrupt'] as const) {
  test(`shadow (${mode}): crashes injected at random calls and times under random batches`, async () => {
    await withShadow(mode, async (s) => {
      const bs = 512;
      const model = new Map<number, [number, number]>();
      const opArb = fc.record({ write: fc.boolean(), lba: fc.integer({ min: 0, max: 200 }), nblocks: fc.integer({ min: 1, max: 4 }), seed: fc.integer({ min: 1, max: 1 << 30 }) });
      await fc.assert(fc.asyncProperty(
        fc.array(fc.tuple(fc.array(opArb, { minLength: 1, maxLength: 48 }), fc.oneof(fc.constant('none'), fc.constant('call'), fc.constant('mid'))), { minLength: 1, maxLength: 5 }),
        async (steps) => {
          for (const [ops, crash] of steps) {
            if (crash === 'call') s.kernel.injectFault(s.driverName, { afterCalls: 1 });
            if (crash === 'mid') queueMicrotask(() => s.kernel.injectFault(s.driverName, 'now'));
            await runBatch(s.kernel, s.bdev, bs, disjoint(ops as Op[]), model);
          }
        }), { numRuns: 12 });
      assert.ok(s.kernel.get(s.driverName)!.restarts > 0, 'the driver was restarted');
      assert.equal(s.kernel.get(s.shadowName!)!.faults, 0, 'the shadow never faulted');
    });
  });
}

test('shadow: concurrent batches in flight when the driver dies, and a second crash during recovery', async () => {
  await withShadow('poll', async (s) => {
    const model = new Map<number, [number, number]>();
    const k = s.kernel;
    // Crash again right after every restart (before the reissue reaches the fresh instance), once.
    let again = true;
    const off = k.onFault((d) => {
      if (d.name === s.driverName && again) {
        again = false;
        setImmediate(() => { if (k.get(s.driverName)?.live) k.injectFault(s.driverName, 'now'); });
      }
    });
    try {
      const batches: Op[][] = Array.from({ length: 4 }, (_, j) => Array.from({ length: 32 }, (_, i) => ({ write: true, lba: j * 40 + i, nblocks: 1, seed: j * 100 + i + 1 })));
      const p = batches.map((b) => runBatch(k, s.bdev, 512, b, model));
      k.injectFault(s.driverName, 'now');
      await Promise.all(p);
      for (const b of batches) await runBatch(k, s.bdev, 512, b.map((o) => ({ ...o, write: false })), model);
      assert.ok(k.get(s.driverName)!.restarts >= 1);
    } finally {
      off();
    }
  });
});

test('shadow: borrowed writes, flush and info calls survive crashes; restart latency is small', async () => {
  await withShadow('poll', async (s) => {
    const k = s.kernel;
    const w = k.kit.allocBytes(KERNEL_OWNER, 512, 4096) as unknown as RRefArray<number>;
    for (let i = 0; i < 20; i++) {
      w.fill(i + 1);
      k.injectFault(s.driverName, { afterCalls: 1 });
      assert.equal(await s.bdev.write(i, w), 0);
      k.injectFault(s.driverName, 'now');
      assert.equal(await s.bdev.flush(), 0);
      k.injectFault(s.driverName, 'now');
      assert.equal(s.bdev.blockSize(), 512);
    }
    const model = new Map<number, [number, number]>();
    let r = req(k, 0, 0, 20, 20 * 512);
    r = await s.bdev.submit(r);
    assert.equal(r.status, 0);
    for (let i = 0; i < 20; i++) assert.equal(r.data!.getU8(i * 512 + 7), i + 1);
    r.drop();
    void model;
    const t0 = performance.now();
    k.restart(s.driverName);
    assert.ok(performance.now() - t0 < 200, 'a restart (reset + queue re-creation) is quick');
    assert.equal(k.get(s.shadowName!)!.faults, 0);
  });
});
