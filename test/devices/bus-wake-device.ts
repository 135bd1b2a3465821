/**
 * A minimal device for bus-wake.test.ts: parks on WAKE (waitWake, a minute at a time) and counts
 * each wake-up in `woken` word 0 (notified), until word 0 of BAR0 reads 1 (the test's stop).
 */
import { workerData } from 'node:worker_threads';
import { waitWake, WAKE_WORD } from '../../src/devices/bus.js';

const { bar0: b, woken: w } = workerData as { bar0: SharedArrayBuffer; woken: SharedArrayBuffer };
const bar0 = new Int32Array(b);
const woken = new Int32Array(w);
let seen = Atomics.load(bar0, WAKE_WORD);
while (Atomics.load(bar0, 0) !== 1) {
  seen = waitWake(bar0, seen, 0, 60_000);
  Atomics.add(woken, 0, 1);
  Atomics.notify(woken, 0);
}
