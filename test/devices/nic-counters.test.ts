/**
 * The NIC's counters as the driver core reports them. The 64-bit octet counters are never read
 * torn: a device thread (nic-counter-writer.ts) publishes GORCL across carries as the model does,
 * while readStats reads it over and over; every value read must be one the device published. The
 * 32-bit packet counters are folded into totals that go on past 2^32, by readStats and by the
 * submit calls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { BAR0_BYTES } from '../../src/devices/bus.js';
import { createNicCore, emptyStats } from '../../src/domains/nic/core.js';
import { FrameDeque } from '../../src/domains/nic/deque.js';
import * as R from '../../src/devices/nic/regs.js';
import { hostNicCore } from '../../src/host/net.js';
import { FakeHeap } from './nic-dma-fake.js';

const TWO32 = 0x100000000;

/** Was `v` published by the writer: k * 2^32 - m or k * 2^32 + m, m = k % 1000 + 1 (or 0, before the first)? */
function published(v: number): boolean {
  if (v === 0) return true;
  const hi = Math.floor(v / TWO32);
  const lo = v % TWO32;
  return lo < TWO32 / 2 ? lo === (hi % 1000) + 1 : TWO32 - lo === ((hi + 1) % 1000) + 1;
}

test('rxBytes read while the device carries into the high word is always a value it published', async () => {
  const bar0 = new Int32Array(new SharedArrayBuffer(BAR0_BYTES));
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const drv = hostNicCore(bar0, new FakeHeap(1 << 20).alloc);
  const writer = new Worker(new URL('./nic-counter-writer.js', import.meta.url), { workerData: { bar0: bar0.buffer, ctl: ctl.buffer } });
  const exited = new Promise((resolve, reject) => { writer.once('exit', resolve); writer.once('error', reject); });
  const stats = emptyStats();
  let reads = 0;
  let last = 0;
  const torn: number[] = [];
  try {
    // The reads start once the writer has (a worker on a loaded machine took over a second to),
    // and go on for 400 ms and until it has made 2,000 carries, but not for ever.
    const start = Date.now();
    while (Atomics.load(ctl, 1) === 0 && Date.now() - start < 30_000);
    const first = Date.now();
    while (Date.now() - first < 400 || (Atomics.load(ctl, 1) < 2000 && Date.now() - start < 30_000)) {
      const v = drv.readStats(stats).rxBytes;
      reads++;
      if (!published(v)) torn.push(v);
      last = v;
    }
  } finally {
    Atomics.store(ctl, 0, 1);
    await exited;
  }
  const carries = Atomics.load(ctl, 1);
  assert.ok(carries > 1000 && last > 0, `the device carried (${carries} carries) while the driver read (${reads} reads, last ${last})`);
  assert.deepEqual(torn.slice(0, 5).map((v) => [Math.floor(v / TWO32), v % TWO32]), [], `${torn.length} of ${reads} reads were torn`);
});

test('rxPackets and txPackets go on past 2^32: the 32-bit registers are folded at each read and every 2^16 submit calls', () => {
  // A device of one queue pair that only acknowledges its reset, so that only the test writes the counters.
  const bar0 = new Int32Array(new SharedArrayBuffer(BAR0_BYTES));
  bar0[R.NIC_NQUEUES] = 1;
  const ackReset = (): void => void Atomics.and(bar0, R.CTRL, ~R.CTRL_RST);
  const drv = createNicCore({ bar0, wake: ackReset, alloc: new FakeHeap(1 << 20).alloc, now: () => performance.now() });
  drv.init();
  bar0[R.GPRC] = -16; // 2^32 - 16
  assert.equal(drv.readStats(emptyStats()).rxPackets, TWO32 - 16);
  bar0[R.GPRC] = 5;
  assert.equal(drv.readStats(emptyStats()).rxPackets, TWO32 + 5, 'wrapped once between two reads');
  // No read for a while: the submit calls fold, so a second wrap is not lost.
  const none = new FrameDeque(1);
  const done = new FrameDeque(32);
  // The device sends 2^32 - 1 frames, 2^32 - 1 more, then 9: its register wraps twice.
  bar0[R.GPTC] = -1;
  for (let i = 0; i < 1 << 16; i++) drv.txSubmitAndPoll(0, none, done);
  bar0[R.GPTC] = -2;
  for (let i = 0; i < 1 << 16; i++) drv.txSubmitAndPoll(0, none, done);
  bar0[R.GPTC] = 7;
  assert.equal(drv.readStats(emptyStats()).txPackets, 2 * TWO32 + 7, 'two wraps between two reads, folds between them');
});
