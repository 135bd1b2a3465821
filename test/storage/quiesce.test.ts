/**
 * DMA safety of a dying driver: the driver dies with reads queued on a (deliberately slow)
 * controller; its memory is reclaimed, reallocated to someone else at once and filled with a
 * pattern. The kernel must have stopped the device before reclaiming (detach: bus mastering off
 * and a function reset), so no DMA may land in that memory afterwards. Without the detach the
 * read in progress transfers into the reallocated buffer and the controller goes on fetching
 * commands from (and posting completions into) memory that is no longer the driver's. With the
 * shadow in front, callers still get every read, with the right data, in their own buffers: the
 * shadow entrusted the requests it moved in, so they went back to it (after the detach) instead of
 * being freed. And a device is driven by one live domain at a time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootStorage } from '../../src/host/storage.js';
import { KERNEL_OWNER, type ExchangeHeap } from '../../src/kernel/heap.js';
import { artifactPath } from '../../src/kernel/paths.js';
import type { BDev, BlkReq } from '../../src/interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../src/runtime/types.js';
import { pattern, req } from './helpers.js';

const BS = 512;
const READS = 16;
const READ_BYTES = 256 << 10; // a PRP list per command
/** Per command, before its transfer: the read the controller is executing when the driver dies
 *  transfers well after the memory was reallocated and filled, unless the kernel waited for it. */
const DELAY_MS = 20;
const FILL = 0xa5;

/** Every allocation of `owner` of at least a page (where the controller DMAs: buffers, queues, PRP lists). */
function pagesOwnedBy(heap: ExchangeHeap, owner: number): { slot: number; off: number; len: number }[] {
  const out: { slot: number; off: number; len: number }[] = [];
  for (let s = 0; s < heap.highWater; s++) {
    if (heap.ownerOf(s) === owner && heap.len[s]! >= 4096) out.push({ slot: s, off: heap.off[s]!, len: heap.len[s]! });
  }
  return out;
}

for (const shadow of [false, true]) {
  test(`a driver that dies with reads in flight: no DMA lands in its reclaimed memory${shadow ? '; the shadow recovers' : ''}`, async () => {
    const s = await bootStorage({ ramBytes: 16 << 20, shadow, commandDelayMs: DELAY_MS, driverConfig: { spinMs: 0 } });
    try {
      const k = s.kernel;
      const blocksPerRead = READ_BYTES / BS;
      // Known contents, so the reissued reads can be checked.
      let dq = k.kit.allocDeque(KERNEL_OWNER, READS) as unknown as RRefDeque<RRef<BlkReq>>;
      for (let i = 0; i < READS; i++) dq.push(req(k, 1, i * blocksPerRead, blocksPerRead, READ_BYTES, i + 1));
      dq = await s.bdev.submitAndPoll(dq);
      for (let h = dq.pop(); h !== undefined; h = dq.pop()) { assert.equal(h.status, 0); h.drop(); }
      const readsBefore = s.dev.stats().reads;

      for (let i = 0; i < READS; i++) dq.push(req(k, 0, i * blocksPerRead, blocksPerRead, READ_BYTES));
      // With spinMs 0 the driver queues the batch, rings once and yields: the reads are in flight.
      const result = s.bdev.submitAndPoll(dq);
      result.catch(() => undefined);
      // Let the controller fetch the first read and start on it (it then sits in its delay).
      await sleep(DELAY_MS / 4);
      const driver = k.get(s.driverName)!;
      const held = pagesOwnedBy(k.heap, driver.id);
      assert.ok(held.length >= READS + 2, `the driver holds the read buffers and its queues (${held.length} allocations)`);
      const readBuffers = new Set(held.filter((r) => r.len === READ_BYTES).map((r) => r.off));
      assert.equal(readBuffers.size, READS);

      k.injectFault(s.driverName, 'now');
      assert.equal(k.heap.usage(driver.id).slots, 0, 'the dead driver\'s memory was reclaimed at once');
      // The shadow entrusted the requests it moved in: their buffers went back to it (after the
      // detach), the rest of the driver's memory was freed.
      const owned = held.filter((r) => k.heap.ownerOf(r.slot) === -1);
      const inherited = held.filter((r) => k.heap.ownerOf(r.slot) !== -1);
      if (shadow) {
        assert.deepEqual(new Set(inherited.map((r) => r.off)), readBuffers, 'exactly the read buffers went back to the shadow');
        assert.ok(inherited.every((r) => k.heap.ownerOf(r.slot) === k.get(s.shadowName!)!.id));
      } else assert.equal(inherited.length, 0, 'without a shadow everything is freed');
      // Someone else gets the same memory right away (the allocator reuses freed blocks of a size)
      // and fills it.
      const mine = owned.map((r) => k.kit.allocBytes(KERNEL_OWNER, r.len, 4096) as unknown as RRefArray<number>);
      const reused = new Set(mine.map((m) => m.addr));
      assert.ok(owned.every((r) => reused.has(r.off)), 'every freed page-sized block was handed out again');
      for (const m of mine) m.fill(FILL);

      if (shadow) {
        const out = await result;
        assert.equal(out.length, READS);
        for (let i = 0; i < READS; i++) {
          const h = out.pop()!;
          assert.equal(h.status, 0, `read ${i} after recovery`);
          assert.ok(readBuffers.has(h.data!.addr), `read ${i} came back in the caller's own buffer (zero copy)`);
          for (let off = 0; off < READ_BYTES; off += 4096) assert.equal(h.data!.getU32(off), pattern(i + 1, off), `read ${i} byte ${off}`);
          h.drop();
        }
        out.drop();
        assert.ok(k.get(s.driverName)!.restarts >= 1, 'the shadow restarted the driver');
        assert.equal(k.get(s.shadowName!)!.faults, 0);
      } else {
        await assert.rejects(result, /panic|dead/);
      }
      // Longer than the controller would have needed to drain the dead driver's whole queue.
      await sleep(READS * DELAY_MS + 100);
      const fill = Buffer.alloc(READ_BYTES, FILL);
      for (const m of mine) {
        const bytes = Buffer.from(k.heap.phys, m.addr, m.byteLength);
        for (let off = 0; off < bytes.length; off += fill.length) {
          const n = Math.min(fill.length, bytes.length - off);
          assert.ok(bytes.subarray(off, off + n).equals(fill.subarray(0, n)), `DMA landed in reclaimed memory at ${m.addr + off}`);
        }
      }
      // The reset dropped what the dead driver had queued: the controller did not run it all.
      const oldBatchReads = s.dev.stats().reads - readsBefore - (shadow ? READS : 0);
      assert.ok(oldBatchReads < READS, `the controller stopped working through the dead driver's queue (${oldBatchReads} of ${READS} ran)`);
      for (const m of mine) m.drop();
    } finally {
      await s.stop();
    }
  });
}

test('a device is driven by one live domain at a time; the next one gets it reset', async () => {
  const s = await bootStorage({ ramBytes: 1 << 20 });
  try {
    const k = s.kernel;
    const load = (): unknown => k.load(artifactPath('nvme'), { name: 'nvme_second', device: s.dev });
    assert.throws(load, /device nvme-dev is driven by live domain nvme/);
    assert.equal(k.get('nvme_second')?.live ?? false, false);
    let r = req(k, 1, 3, 1, BS, 42);
    r = await s.driver.submit(r);
    assert.equal(r.status, 0, 'the first driver is undisturbed');
    r.drop();
    k.terminate(s.driverName);
    load();
    const second = k.bind<BDev>('nvme_second');
    r = req(k, 0, 3, 1, BS);
    r = await second.submit(r);
    assert.equal(r.status, 0);
    assert.equal(r.data!.getU32(0), pattern(42, 0), 'the second driver reads what the first wrote');
    r.drop();
    k.terminate('nvme_second');
  } finally {
    await s.stop();
  }
});
