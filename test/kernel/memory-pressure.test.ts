/**
 * Memory pressure (memory-pressure.ts): an in-thread domain that hoards private memory panics once
 * the kernel's heap passes its threshold, before V8 would end the process, and its memory is
 * collected; memory the domain did not allocate while it ran (here, the host's) is not blamed on
 * it. A file of its own: the heap it measures is this process's.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Kernel } from '../../src/kernel/kernel.js';
import { DOM_C, FAULTY, info, recorder, rpcFails, sleep } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const used = (): number => v8.getHeapStatistics().used_heap_size;
const MIB = 2 ** 20;

gc();
const threshold = used() + 256 * MIB;
const kernel = new Kernel({ physBytes: 16 << 20, log: () => {}, heapPanicBytes: threshold });
after(() => kernel.shutdown());
kernel.load(DOM_C);
/** A faulty instance whose deadline is far away: whatever ends its run, it is not the clock. */
const load = (name: string): any => {
  kernel.load(FAULTY, { name, imports: ['dom_c', { object: recorder().object }], deadlineMs: 120_000 });
  return kernel.bind(name);
};

test('a domain hoarding its private heap panics past the threshold, and its memory is collected', async () => {
  const fa = load('hoarder');
  assert.equal(fa.hoard(16), 16, 'well under the threshold: no harm');
  // 1 GiB would fit in V8's heap (this test would then fail on the answer), but not under the threshold.
  const e = await rpcFails(() => fa.hoard(1024), 'panic');
  assert.equal(e.domain, 'hoarder');
  const i = info(kernel, 'hoarder');
  assert.equal(i.state, 'dead');
  assert.match(i.lastFault ?? '', /memory pressure: the kernel's heap holds \d+ MB live, over its \d+ MB threshold/);
  for (let k = 0; k < 3; k++) {
    await sleep(10);
    gc();
  }
  assert.ok(used() < threshold - 128 * MIB, `${(used() / MIB).toFixed(0)} MiB in use after the collection: the hoard is gone`);
  assert.equal(kernel.bind('dom_c').onearg(1), 2, 'the kernel and the other domains carry on');
  kernel.restart('hoarder');
  assert.equal(kernel.bind('hoarder').hoard(1), 1, 'a restarted instance starts with an empty hoard');
});

test("memory the host holds over the threshold is not blamed on a domain that runs meanwhile", async () => {
  const fb = load('bystander');
  let ballast: number[][] | null = Array.from({ length: 300 * 16 }, (_, i) => new Array<number>(8192).fill(i + 0.5));
  assert.ok(used() > threshold, 'the host took the heap over the threshold');
  await sleep(20); // the kernel's heartbeat sees the heap between runs of domain code
  const t0 = performance.now();
  let calls = 0;
  while (performance.now() - t0 < 50) calls += fb.ok(1) - 1; // ~1024 calls a clock read, a look at the heap a ms
  assert.ok(calls > 10_000, `${calls} calls`);
  assert.equal(info(kernel, 'bystander').state, 'live');
  assert.equal(ballast.length, 300 * 16);
  ballast = null;
  gc();
  assert.ok(used() < threshold);
});
