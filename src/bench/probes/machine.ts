/**
 * Probe: what kind of moment the machine is having — three figures that do not depend on any
 * RedLeaf code, to put beside a benchmark taken at the same time. The shared VMs these benchmarks
 * run on have "fast" and "slow" phases (the same build 2–3x apart, bench/RESULTS.md); these say
 * which resource a phase slows:
 *  - compute: a dependent chain of integer multiplies, ns per step (the core itself);
 *  - memory: a dependent chain of loads through a random single-cycle permutation of 64 MB, ns
 *    per load (a DRAM access and a TLB miss, as Maglev's flow cache takes);
 *  - handoff: one thread stores a word, another spinning on it sees it and answers, ns one way
 *    (a cache line crossing between the two cores: what every descriptor and doorbell between the
 *    NIC model's thread and the kernel thread costs).
 * Each is the median of five rounds.
 *
 *   node dist/src/bench/probes/machine.js
 */
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { median } from '../harness.js';

const ROUNDS = 5;
/** Int32 words of the handoff buffer; the two flags sit on separate cache lines. */
const PING = 0;
const PONG = 16;
const STOP = -1;

/** Nanoseconds since `t0` (process.hrtime.bigint()) per one of `n` steps. */
const nsSince = (t0: bigint, n: number): number => Number(process.hrtime.bigint() - t0) / n;

function compute(): number {
  const n = 5e7;
  let h = 1;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) h = Math.imul(h ^ i, 0x01000193);
  const ns = nsSince(t0, n);
  sink = (sink + h) | 0;
  return ns;
}

/** A random permutation of 0..n-1 that is one cycle (Sattolo's shuffle), from a fixed seed. */
function cycle(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  let seed = 12345;
  for (let i = n - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % i;
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

function memory(next: Int32Array): number {
  const n = 2e6;
  let p = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) p = next[p]!;
  const ns = nsSince(t0, n);
  sink = (sink + p) | 0;
  return ns;
}

/** What the loops computed, printed so that they cannot be optimised away. */
let sink = 0;

if (isMainThread) {
  const next = cycle(1 << 24);
  compute();
  memory(next);
  const c: number[] = [];
  const m: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    c.push(compute());
    m.push(memory(next));
  }
  const flags = new Int32Array(new SharedArrayBuffer(PONG * 4 + 64));
  const echo = new Worker(new URL(import.meta.url), { workerData: flags.buffer });
  try {
    await new Promise((r) => setTimeout(r, 200)); // the echo thread up and spinning
    const trips = 1e6;
    const h: number[] = [];
    for (let r = 0, v = 0; r < ROUNDS; r++) {
      // Each round trip is two handoffs: ping seen by the echo thread, its pong seen here.
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < trips; i++) {
        Atomics.store(flags, PING, ++v);
        while (Atomics.load(flags, PONG) !== v);
      }
      h.push(nsSince(t0, 2 * trips));
    }
    console.log(`compute ${median(c).toFixed(2)} ns a step, memory ${median(m).toFixed(1)} ns a load, handoff ${median(h).toFixed(1)} ns one way (medians of ${ROUNDS}; check ${sink & 0xff})`);
  } finally {
    Atomics.store(flags, PING, STOP);
    await echo.terminate();
  }
} else {
  const flags = new Int32Array(workerData as SharedArrayBuffer);
  for (;;) {
    const v = Atomics.load(flags, PING);
    if (v === STOP) break;
    if (v !== Atomics.load(flags, PONG)) Atomics.store(flags, PONG, v);
  }
}
