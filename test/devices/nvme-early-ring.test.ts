/**
 * Early doorbells: a batch may ring its doorbell before it is complete without waking a parked
 * controller (submitBatch with `more`), leaving the wake to its last ring. The wake must come even
 * when that last ring finds the queue full and adds nothing; otherwise the controller sleeps on
 * with commands queued until its park timeout (half a second).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startNvme } from '../../src/devices/nvme/index.js';
import { PARKED_WORD } from '../../src/devices/bus.js';
import { createNvmeCore, type BlockRequest } from '../../src/domains/nvme/core.js';
import { FakeHeap } from './dma-fake.js';
import { until } from './nvme-harness.js';

test('a batch whose last ring adds nothing (queue full) still wakes a parked controller', async () => {
  const phys = new SharedArrayBuffer(16 << 20);
  const dev = await startNvme({ phys, backend: { kind: 'ram', bytes: 1 << 20 } });
  const heap = new FakeHeap(phys);
  const core = createNvmeCore({ bar0: dev.bar0, wakeWord: dev.wakeWord, alloc: heap.alloc, now: () => performance.now(), queueDepth: 8 });
  try {
    await core.init();
    const reqs: BlockRequest[] = Array.from({ length: 12 }, (_, i) => ({ op: 'read', lba: i, nblocks: 1, buf: heap.alloc(512), bufOff: 0, error: null }));
    for (let round = 0; round < 3; round++) {
      await until(() => Atomics.load(dev.bar0, PARKED_WORD) === 1, 'the controller to park');
      await sleep(5);
      const t0 = performance.now();
      // The first part of the batch fills the queue (7 slots of 8) and rings without a wake.
      assert.equal(core.submitBatch(reqs, 0, 0, true), 7);
      // The rest of the batch: nothing fits, nothing new to ring, yet the wake is due now.
      assert.equal(core.submitBatch(reqs, 0, 7), 0);
      let next = 7;
      const out: BlockRequest[] = [];
      while (out.length < reqs.length) {
        core.pollCompletions(out);
        if (next < reqs.length) next += core.submitBatch(reqs, 0, next);
        if (performance.now() - t0 > 5000) assert.fail(`only ${out.length} of ${reqs.length} completed in 5 s`);
        await new Promise((r) => setImmediate(r));
      }
      const ms = performance.now() - t0;
      assert.ok(out.every((r) => r.error === null), 'every read succeeds');
      assert.ok(ms < 250, `round ${round}: the batch took ${ms.toFixed(1)} ms (a missed wake waits out the 500 ms park)`);
    }
  } finally {
    await core.shutdown();
    await dev.stop();
  }
});
