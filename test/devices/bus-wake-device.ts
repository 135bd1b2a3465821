/**
 * A minimal device for bus-wake.test.ts: parks on WAKE (waitWake, a minute at a time) and counts
 * each wake-up in `woken` word 0 (notified, after reading BUS.EPOCH into word 1), until word 0 of BAR0 reads 1 (the test's stop).
 */
import { workerData } from 'node:worker_threads';
import { BUS, waitWake, WAKE_WORD } from '../../src/devices/bus.js';

const { bar0: b, bus: u, woken: w } = workerData as { bar0: SharedArrayBuffer; bus: SharedArrayBuffer; woken: SharedArrayBuffer };
const bar0 = new Int32Array(b);
const bus = new Int32Array(u);
const woken = new Int32Array(w);
let seen = Atomics.load(bar0, WAKE_WORD);
while (Atomics.load(bar0, 0) !== 1) {
  seen = waitWake(bar0, bus, seen, 0, 60_000);
  Atomics.store(woken, 1, Atomics.load(bus, BUS.EPOCH));
  Atomics.add(woken, 0, 1);
  Atomics.notify(woken, 0);
}
