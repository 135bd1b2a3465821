/**
 * The function-reset handshake of the device bus (src/devices/bus.ts) on both device models, with
 * no kernel and no driver. NVMe: a reset requested while the controller is working through a queue
 * ends that work at the next command boundary; after the acknowledgement the controller fetches no
 * further command of the forgotten queue and writes nothing into its memory (completion queue,
 * data buffers), whether the reset turned bus mastering off (detach) or on (attach of the next
 * driver: the kernel may attach once it saw a detach acknowledged, before the controller has read
 * MASTER again, or after it stopped waiting for a slow detach). Then it can be brought up again.
 * NIC: with frames arriving on their own (a paced generator, no doorbell), nothing lands in the RX
 * ring or its buffers after the acknowledgement, in both cases too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPair, enableAdmin, rw, startRig } from './nvme-harness.js';
import { R, rxDesc, setupRx, until, wake, withNic } from './nic-harness.js';

/** Per Read, before its transfer: the controller is inside a command when the reset comes. */
const DELAY_MS = 40;
const READS = 8;
/** What a new owner of the reclaimed memory writes into it. */
const FILL = 0xa5;

for (const master of [0, 1] as const) {
  test(`a reset with bus mastering ${master ? 'on (attach)' : 'off (detach)'} while a queue is being worked through: no DMA after the acknowledgement`, async () => {
    const rig = await startRig({ kind: 'ram', bytes: 1 << 20 }, { commandDelayMs: DELAY_MS });
    try {
      const admin = await enableAdmin(rig);
      const q = await createPair(admin, 1, 16);
      const bufs = Array.from({ length: READS }, () => rig.heap.alloc(4096));
      for (let i = 0; i < READS; i++) q.put(rw(2, i, 1, bufs[i]!.addr));
      q.ring();
      // The first Read is done: the controller now sits in the second one, the rest queued behind it.
      await q.reap(1);

      if (master === 1) {
        rig.dev.attach(0);
      } else {
        const quiet = rig.dev.detach()();
        if (quiet !== true) await quiet;
      }
      // Acknowledged: the memory the queue used may belong to someone else now.
      for (const m of [q.sq, q.cq, ...bufs]) m.fill(FILL);
      await sleep(READS * DELAY_MS + 100);
      for (const [what, m] of [['completion queue', q.cq], ['submission queue', q.sq], ...bufs.map((b, i) => [`buffer ${i}`, b] as const)] as const) {
        for (let off = 0; off < m.byteLength; off++) {
          if (m.getU8(off) !== FILL) assert.fail(`the controller wrote into the ${what} (byte ${off}: 0x${m.getU8(off).toString(16)}) after acknowledging the reset`);
        }
      }
      assert.ok(rig.dev.stats().reads < READS, `the controller stopped working through the forgotten queue (${rig.dev.stats().reads} of ${READS} Reads ran)`);

      // Power-on state: a new bring-up works (with mastering back on after a detach).
      if (master === 0) rig.dev.attach(0);
      const admin2 = await enableAdmin(rig);
      const q2 = await createPair(admin2, 1, 4);
      const buf = rig.heap.alloc(4096);
      const c = await q2.run(rw(2, 0, 1, buf.addr));
      assert.equal(c.sc, 0);
    } finally {
      await rig.stop();
    }
  });
}

for (const master of [0, 1] as const) {
  test(`NIC: a reset with bus mastering ${master ? 'on (attach)' : 'off (detach)'} while frames arrive: nothing lands in the RX ring or its buffers afterwards`, async () => {
    // 100k frames/s into a 2048-descriptor ring: it takes ~20 ms to fill, so the reset comes while
    // the generator is still writing frames and descriptors.
    await withNic({ kind: 'pktgen', pktgen: { frameSize: 60, rate: 100_000 } }, async (nic) => {
      const { bar0, heap, dv, p8 } = nic;
      const N = 2048;
      const ring = heap.alloc(N * 16, 128).addr;
      const bufs = Array.from({ length: N }, () => heap.alloc(2048, 64).addr);
      setupRx(bar0, 0, ring, N);
      for (let i = 0; i < N; i++) rxDesc(dv, ring, i, bufs[i]!);
      Atomics.store(bar0, R.RDT(0), N - 1);
      wake(bar0);
      await until(() => Atomics.load(bar0, R.GPRC) > 0, 'the first frames');

      if (master === 1) {
        nic.dev.attach(0);
      } else {
        const quiet = nic.dev.detach()();
        if (quiet !== true) await quiet;
      }
      const regions = [{ what: 'RX ring', addr: ring, len: N * 16 }, ...bufs.map((addr, i) => ({ what: `RX buffer ${i}`, addr, len: 2048 }))];
      for (const r of regions) p8.fill(FILL, r.addr, r.addr + r.len);
      await sleep(100);
      for (const r of regions) {
        const at = p8.subarray(r.addr, r.addr + r.len).findIndex((b) => b !== FILL);
        assert.equal(at, -1, `the NIC wrote into the ${r.what} (byte ${at}) after acknowledging the reset`);
      }
    }, 1);
  });
}
