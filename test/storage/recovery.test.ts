/**
 * The block shadow: the driver is crashed at many points — before a call, inside a call (moved
 * requests die with it), mid-batch with requests on the controller, repeatedly, and again while
 * the shadow is recovering (bring-up of the fresh instance) — and callers see no error, every
 * write lands exactly as a reader observes it, and reads return the right data. A fresh instance
 * that faults in its init (the controller breaks during bring-up) is retried within a bound; a
 * driver that can never come up again gives callers -EIO, never a hang or an exception.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bootStorage, type Storage } from '../../src/host/storage.js';
import { KERNEL_OWNER } from '../../src/kernel/heap.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import type { BDev, BlkReq } from '../../src/interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../src/runtime/types.js';
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

/** Statuses of one batch of `ops` (data not checked), run through `bdev`. */
async function statuses(k: Kernel, bdev: BDev, ops: Op[]): Promise<number[]> {
  let dq = k.kit.allocDeque(KERNEL_OWNER, ops.length) as unknown as RRefDeque<RRef<BlkReq>>;
  for (const o of ops) dq.push(req(k, o.write ? 1 : 0, o.lba, o.nblocks, o.nblocks * 512, o.seed));
  dq = await bdev.submitAndPoll(dq);
  const out: number[] = [];
  for (let r = dq.pop(); r !== undefined; r = dq.pop()) {
    out.push(r.status);
    r.drop();
  }
  dq.drop();
  return out;
}

const writes = (n: number, seed: number): Op[] => Array.from({ length: n }, (_, i) => ({ write: true, lba: i * 2, nblocks: 2, seed: seed + i }));

/** A shadowed driver whose batches stay in flight for a while (slow controller, no spinning). */
function withSlowShadow(fn: (s: Storage) => Promise<void>): Promise<void> {
  return bootStorage({ ramBytes: 2 << 20, shadow: true, commandDelayMs: 1, driverConfig: { spinMs: 0 } }).then(
    (s) => fn(s).finally(() => s.stop()));
}

test('shadow: the restarted driver faults during bring-up, twice; the shadow retries and callers see no error', async () => {
  await withSlowShadow(async (s) => {
    const k = s.kernel;
    const initFaults: string[] = [];
    const off = k.onFault((d, _cause, message) => { if (d.name === s.driverName) initFaults.push(message); });
    try {
      const model = new Map<number, [number, number]>();
      s.dev.failEnables(2);
      const batch = runBatch(k, s.bdev, 512, writes(16, 1), model);
      k.injectFault(s.driverName, 'now'); // the batch is on the controller
      await batch;
      await runBatch(k, s.bdev, 512, writes(16, 1).map((o) => ({ ...o, write: false })), model);
      assert.equal(initFaults.length, 3, `one injected fault and two bring-up failures: ${initFaults.join(' | ')}`);
      assert.match(initFaults[1]!, /bring-up failed.*controller fatal status/);
      assert.match(initFaults[2]!, /bring-up failed.*controller fatal status/);
      assert.ok(k.get(s.driverName)!.live);
      assert.equal(k.get(s.shadowName!)!.faults, 0);
      assert.equal(s.dev.stats().errors, 0, 'no command failed on the controller');
    } finally {
      off();
    }
  });
});

test('shadow: a driver that can never be brought up again: callers get -EIO promptly, nothing hangs, and the device is used again once it recovers', async () => {
  await withSlowShadow(async (s) => {
    const k = s.kernel;
    const EIO = -5;
    s.dev.failEnables(Infinity);
    const t0 = performance.now();
    const batch = statuses(k, s.bdev, writes(8, 100));
    k.injectFault(s.driverName, 'now');
    assert.deepEqual(await batch, new Array(8).fill(EIO), 'the batch in flight ends with -EIO');
    assert.deepEqual(await statuses(k, s.bdev, writes(4, 200)), new Array(4).fill(EIO), 'a later batch too');
    let one = req(k, 0, 0, 1, 512);
    one = await s.bdev.submit(one);
    assert.equal(one.status, EIO);
    one.drop();
    const w = k.kit.allocBytes(KERNEL_OWNER, 512, 4096) as unknown as RRefArray<number>;
    assert.equal(await s.bdev.write(0, w), EIO);
    assert.equal(await s.bdev.flush(), EIO);
    assert.equal(s.bdev.blockSize(), 512, 'geometry is answered from what the driver reported');
    assert.equal(s.bdev.blockCount(), (2 << 20) / 512);
    assert.ok(performance.now() - t0 < 20_000, 'every call gave up within its bound of restarts');
    const driver = k.get(s.driverName)!;
    assert.equal(driver.live, false);
    assert.equal(k.heap.usage(driver.id).slots, 0, 'failed instances hold no memory');
    assert.equal(k.get(s.shadowName!)!.live, true);
    assert.equal(k.get(s.shadowName!)!.faults, 0);

    // The controller works again: the next call brings the driver up and the data path is whole.
    s.dev.failEnables(0);
    const model = new Map<number, [number, number]>();
    await runBatch(k, s.bdev, 512, writes(8, 300), model);
    await runBatch(k, s.bdev, 512, writes(8, 300).map((o) => ({ ...o, write: false })), model);
    assert.equal(await s.bdev.write(100, w), 0);
    w.drop();
    assert.ok(k.get(s.driverName)!.live);
  });
});
