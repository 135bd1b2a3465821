/**
 * A device thread for nic-counters.test.ts: publishes one 64-bit octet counter (GORCL) through
 * publishCounter64, over and over across carries, until word 0 of `ctl` reads 1, and keeps the
 * count of carries made in word 1 (the reader waits for it to leave 0: under load the thread can
 * take longer to start than the reads last). Carry k goes from k * 2^32 - m to k * 2^32 + m,
 * m = k % 1000 + 1, so a value's low word names its high word (consistent in nic-counters.test.ts).
 * k cycles through 1 .. 2^20: the counter stays below 2^53, where a Number still holds every
 * integer.
 */
import { workerData } from 'node:worker_threads';
import { publishCounter64 } from '../../src/devices/nic/model.js';
import * as R from '../../src/devices/nic/regs.js';

const { bar0: b, ctl: c } = workerData as { bar0: SharedArrayBuffer; ctl: SharedArrayBuffer };
const bar0 = new Int32Array(b);
const bar0q = new BigInt64Array(b);
const ctl = new Int32Array(c);
let carries = 0;
while (Atomics.load(ctl, 0) !== 1) {
  const k = (carries++ % (1 << 20)) + 1;
  const carry = k * 0x100000000;
  const m = (k % 1000) + 1;
  publishCounter64(bar0, bar0q, R.GORCL, carry - m);
  publishCounter64(bar0, bar0q, R.GORCL, carry + m);
  Atomics.store(ctl, 1, carries);
}
