/**
 * A device thread that dies (its model threw) holds nothing back in the kernel's DMA quarantine
 * from the moment it is gone, not only once the kernel's event loop delivers its worker's 'exit'
 * event: an allocation that finds the slots exhausted, and spins for the quarantine without
 * turning that loop (heap.ts awaitHeld), gets the slot the dead device held back; and a detach
 * of the dead device is acknowledged at once, without blocking the thread for its bound, even
 * when the host read the acknowledgement word just before the thread marked itself gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUS, BUS_BYTES, markGone } from '../../src/devices/bus.js';
import { startDevice } from '../../src/devices/host.js';
import { any, heapAndKit } from '../kernel/kit-helpers.js';
import { waitFor } from '../within.js';

const DRIVER = 1;
const OTHER = 2;
const SLOTS = 8;

test('a device thread that dies in the middle of its work ends its hold on freed memory at once: an allocation waiting without the event loop gets it, and a detach needs no wait', async () => {
  const { heap, kit } = heapAndKit({ physBytes: 4 << 20, maxSlots: SLOTS });
  const dev = startDevice({ name: 'exit0', workerUrl: new URL('./bus-exit-device.js', import.meta.url), phys: heap.phys, iommu: heap.iommuTables, config: null });
  try {
    await dev.ready;
    heap.guardDma(DRIVER, dev.dmaEpoch);
    const live = Array.from({ length: SLOTS }, () => kit.allocBytes(OTHER, 64));
    any(live.pop()!).drop();
    assert.equal(heap.dmaHeld, 1, 'freed while the device works: held back');

    // From here to the allocation the thread never yields: the worker's 'exit' event cannot come.
    Atomics.store(dev.bar0, 0, 1);
    Atomics.notify(dev.bar0, 0);
    assert.ok(waitFor(() => (dev.dmaEpoch() & 1) === 0, 5000), 'the dead device reads as parked before its exit event is delivered');
    const again = kit.allocBytes(DRIVER, 64); // threw ENOSLOT after spinning 100 ms, the device's hold kept
    assert.equal(heap.dmaHeld, 0, 'nothing held back for a dead device');
    any(again).drop();
    assert.equal(dev.detach()(), true, 'a dead device\'s detach is acknowledged at once (not a promise after blocking 200 ms)');
    for (const h of live) any(h).drop();
  } finally {
    await dev.stop();
  }
});

test("a wait for a reset's acknowledgement that read the word just before the device's thread marked itself gone does not sleep", () => {
  // The host's waitAck reads RESET_ACK, sees the device not gone, then waits on the word it read:
  // the device thread's markGone, on its own thread, may fall between the two.
  const bus = new Int32Array(new SharedArrayBuffer(BUS_BYTES));
  Atomics.store(bus, BUS.RESET_REQ, 3);
  Atomics.store(bus, BUS.RESET_ACK, 2);
  const seen = Atomics.load(bus, BUS.RESET_ACK);
  markGone(bus);
  assert.equal(Atomics.wait(bus, BUS.RESET_ACK, seen, 500), 'not-equal', 'it slept until its bound (the detach then fell back to a promise)');
});
