/**
 * Probe: what the exchange heap's reclaim costs when a domain dies holding a NIC driver's load —
 * `bufs` buffers of its shadow's, entrusted, in eight deques of its own (its rings: ~2000 in
 * `bench net`) — round after round in one process: the first round is what a process's first
 * driver death pays (reclaim not yet compiled by V8), the last ones what later deaths pay. Each
 * round builds the dead domain's state anew and times `reclaim` alone; prints every round's ms.
 * Then one more death: a domain that allocated `bufs` buffers and handed them over in a deque, so
 * that they live on in another domain's deque with the dead one's owner column (the reclaim must
 * find them listed, and keep them).
 * `dist` is the build to load the kernel from (default this one, `-`), so that two builds can be
 * compared one invocation after the other:
 *
 *   node dist/src/bench/probes/reclaim-times.js [rounds=12] [bufs=2000] [dist=-]
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const [roundsArg = '12', bufsArg = '2000', distArg = '-'] = process.argv.slice(2);
const rounds = Number(roundsArg);
const bufs = Number(bufsArg);
const from = (path: string): string =>
  distArg === '-' ? new URL(`../../${path}`, import.meta.url).href : pathToFileURL(resolve(distArg, 'src', path)).href;
await import(from('kernel/lockdown.js')); // the kernel runs under lockdown, which changes what V8's optimized code costs (lockdown-costs.js)
const { ExchangeHeap, NO_PARENT } = (await import(from('kernel/heap.js'))) as typeof import('../../kernel/heap.js');
const { createHandleKit } = (await import(from('kernel/rref.js'))) as typeof import('../../kernel/rref.js');
const { LAYOUTS } = (await import(from('gen/idl.js'))) as typeof import('../../gen/idl.js');

const SHADOW = 1;
const DRIVER = 2;
const RINGS = 8;
const BUF_BYTES = 2048;
const heap = new ExchangeHeap({ physBytes: 64 << 20, maxSlots: 1 << 20 });
const kit = createHandleKit(heap, (_holder, err) => {
  throw err;
});
for (const l of LAYOUTS) kit.registerLayout(l);
heap.setInheritance({ mayInherit: (dead, heir) => dead === DRIVER && heir === SHADOW, inherited: () => {} });
// The shadow's caller keeps a pool of its own buffers beside those in the driver, as l2fwd does.
const pool = new Set<number>();
for (let i = 0; i < 1000; i++) pool.add(kit.slotOf(kit.allocBytes(SHADOW, BUF_BYTES)));

type Deque = { push(v: object): void };
const ms: string[] = [];
for (let r = 0; r < rounds; r++) {
  for (let q = 0; q < RINGS; q++) {
    const ring = kit.allocDeque(DRIVER, 1024) as unknown as Deque;
    for (let i = q; i < bufs; i += RINGS) {
      const b = kit.allocBytes(SHADOW, BUF_BYTES);
      heap.entrust(kit.slotOf(b), SHADOW);
      ring.push(kit.moveTo(b, SHADOW, DRIVER));
    }
  }
  const t0 = performance.now();
  heap.reclaim(DRIVER);
  ms.push((performance.now() - t0).toFixed(2));
  // What came back is the shadow's now: free it for the next round (the pool stays).
  for (let s = 0; s < heap.highWater; s++) {
    if (heap.owner[s] === SHADOW && heap.parent[s] === NO_PARENT && !pool.has(s)) heap.free(s);
  }
}
console.log(`reclaim of ${bufs} entrusted buffers, ms per round: ${ms.join(' ')}`);

const GIVER = 3;
const handedOver = kit.allocDeque(GIVER, bufs) as unknown as Deque;
for (let i = 0; i < bufs; i++) handedOver.push(kit.allocBytes(GIVER, BUF_BYTES));
kit.moveTo(handedOver, GIVER, SHADOW);
const t0 = performance.now();
const freed = heap.reclaim(GIVER);
console.log(`reclaim of a domain whose ${bufs} buffers live on in another's deque: ${(performance.now() - t0).toFixed(2)} ms (${freed} freed)`);
