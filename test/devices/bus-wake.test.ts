/**
 * The device bus's doorbell (src/devices/bus.ts): a device parked on WAKE (PARKED = 1, here for a
 * minute at a time) is woken by ringWake at once, round after round: the notify that the PARKED
 * word lets a driver skip for a device that is awake is never skipped for one that sleeps. (What
 * the hand-off after it buys is latency, measured by src/bench/probes/lull-latency.ts.) While
 * it sleeps its DMA epoch (BUS.EPOCH) is even, and odd again once it is awake: the kernel's DMA
 * quarantine returns memory freed while a device sleeps without waiting for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { ACTIVE_EPOCH, BAR0_BYTES, BUS, BUS_BYTES, PARKED_WORD, WAKE_WORD, ringWake } from '../../src/devices/bus.js';
import { waitFor } from '../within.js';

test('ringWake wakes a parked device, every time it parks; its DMA epoch is even exactly while it sleeps', async () => {
  const bar0 = new Int32Array(new SharedArrayBuffer(BAR0_BYTES));
  const bus = new Int32Array(new SharedArrayBuffer(BUS_BYTES));
  Atomics.store(bus, BUS.EPOCH, ACTIVE_EPOCH);
  const woken = new Int32Array(new SharedArrayBuffer(8));
  const dev = new Worker(new URL('./bus-wake-device.js', import.meta.url), { workerData: { bar0: bar0.buffer, bus: bus.buffer, woken: woken.buffer } });
  try {
    for (let round = 1; round <= 3; round++) {
      assert.ok(waitFor(() => Atomics.load(bar0, PARKED_WORD) === 1, 10_000), `round ${round}: the device parks`);
      assert.equal(Atomics.load(bus, BUS.EPOCH), ACTIVE_EPOCH + 2 * round - 1, `round ${round}: parked, the epoch is even`);
      ringWake(bar0);
      // Parked for a minute: only the notify can wake it within the test's bound.
      assert.ok(waitFor(() => Atomics.load(woken, 0) === round, 10_000), `round ${round}: the parked device woke`);
      assert.equal(Atomics.load(woken, 1), ACTIVE_EPOCH + 2 * round, `round ${round}: awake, the epoch is odd`);
    }
  } finally {
    Atomics.store(bar0, 0, 1);
    Atomics.add(bar0, WAKE_WORD, 1);
    Atomics.notify(bar0, WAKE_WORD);
    await dev.terminate();
  }
});
