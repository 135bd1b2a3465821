/**
 * What kind of moment the machine is having: three figures that do not depend on any RedLeaf
 * code, to put beside a benchmark taken at the same time (`redleaf bench <suite> --machine`,
 * probes/machine.ts). The shared VMs these benchmarks run on have "fast" and "slow" phases (the
 * same build 2–3x apart, bench/RESULTS.md); these say which resource a phase slows:
 *  - compute: a dependent chain of integer multiplies, ns per step (the core itself);
 *  - memory: a dependent chain of loads through a random single-cycle permutation of 64 MB, ns
 *    per load (a DRAM access and a TLB miss, as Maglev's flow cache takes);
 *  - handoff: one thread stores a word, another spinning on it sees it and answers, ns one way
 *    (a cache line crossing between the two cores: what every descriptor and doorbell between the
 *    NIC model's thread and the kernel thread costs).
 * Each is the median of `rounds` rounds. The echo thread runs this module as its entry, told so
 * by its workerData.
 */
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { median } from '../harness.js';

/** The machine's moment, in nanoseconds. */
export interface MachineMoment {
  compute_ns: number;
  load_ns: number;
  handoff_ns: number;
}

/** Int32 words of the handoff buffer; the two flags sit on separate cache lines. */
const PING = 0;
const PONG = 16;
const STOP = -1;
/** The echo thread's workerData: its flags, marked so that no other worker runs the echo loop. */
interface EchoData { machineEcho: SharedArrayBuffer }

/** Nanoseconds since `t0` (process.hrtime.bigint()) per one of `n` steps. */
const nsSince = (t0: bigint, n: number): number => Number(process.hrtime.bigint() - t0) / n;

/** What the loops computed, kept in a module variable so that they cannot be optimised away. */
let sink = 0;

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

/** One-way handoff time to an echo thread, median of `rounds` rounds of 10^6 round trips. */
async function handoff(rounds: number): Promise<number> {
  const flags = new Int32Array(new SharedArrayBuffer(PONG * 4 + 64));
  const data: EchoData = { machineEcho: flags.buffer as SharedArrayBuffer };
  const echo = new Worker(new URL(import.meta.url), { workerData: data });
  try {
    await new Promise((r) => setTimeout(r, 200)); // the echo thread up and spinning
    const trips = 1e6;
    const h: number[] = [];
    for (let r = 0, v = 0; r < rounds; r++) {
      // Each round trip is two handoffs: ping seen by the echo thread, its pong seen here.
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < trips; i++) {
        Atomics.store(flags, PING, ++v);
        while (Atomics.load(flags, PONG) !== v);
      }
      h.push(nsSince(t0, 2 * trips));
    }
    return median(h);
  } finally {
    Atomics.store(flags, PING, STOP);
    await echo.terminate();
  }
}

/** Measures the machine's moment (about a second a round, and a second to set up). */
export async function measureMachine(rounds = 5): Promise<MachineMoment> {
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new RangeError(`measureMachine: rounds ${rounds} must be a positive integer`);
  const next = cycle(1 << 24);
  compute();
  memory(next);
  const c: number[] = [];
  const m: number[] = [];
  for (let r = 0; r < rounds; r++) {
    c.push(compute());
    m.push(memory(next));
  }
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  return { compute_ns: r2(median(c)), load_ns: r2(median(m)), handoff_ns: r2(await handoff(rounds)) };
}

if (!isMainThread && (workerData as Partial<EchoData> | null)?.machineEcho instanceof SharedArrayBuffer) {
  const flags = new Int32Array((workerData as EchoData).machineEcho);
  for (;;) {
    const v = Atomics.load(flags, PING);
    if (v === STOP) break;
    if (v !== Atomics.load(flags, PONG)) Atomics.store(flags, PONG, v);
  }
}
