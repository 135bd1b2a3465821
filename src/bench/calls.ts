/**
 * `redleaf bench calls`: the cost of one call, by kind of crossing (issue 2's benchmark).
 *
 * plain            a plain method call inside one domain (same loop, no crossing)
 * plain-uninstrumented  the same loop in host code without deadline checks (their cost = the gap)
 * proxy-noarg/-arg a cross-domain call dom_d -> dom_c with no argument / one number
 * proxy-rref       an RRef moved in and moved back
 * proxy-async      an async method awaited
 * shadow-noarg     dom_d -> shadow_c -> dom_c (pass-through shadow)
 * shadow-async     proxy-async through shadow_c (routed by the kernel straight to dom_c: src/kernel/routes.ts)
 * worker-roundtrip a worker_threads postMessage round trip (the stand-in for hardware isolation)
 * worker-domain    host -> dom_c.noarg with dom_c placed in a worker (descriptor rings over
 *                  shared memory; every answer is awaited before the next call)
 * worker-callout   the other way: dom_d placed in a worker calls dom_c.noarg in the kernel thread
 *                  (a synchronous call out: the worker blocks until the kernel has answered)
 * deque-push-pop   one push and one pop of a byte buffer on an RRefDeque, in host code with
 *                  kernel-held handles: the per-element handle cost of the packet path (a checked
 *                  move into the ring, then a fresh handle minted on the way out)
 * deque-move-from  per element of RRefDeque.moveFrom moving batches of 32 buffers back and forth
 *                  between two deques (the bulk form of a pop plus a push: no handle per element)
 * Each figure is the median over `runs` runs of (elapsed / calls), measured inside dom_d (the
 * worker-roundtrip and worker-domain cases in the host).
 */
import { Worker } from 'node:worker_threads';
import { Kernel } from '../kernel/kernel.js';
import { artifactPath } from '../kernel/paths.js';
import { medianOf, progressBar, type BenchOptions, type SuiteResult } from './harness.js';
import type { Callee, Caller } from '../interfaces/index.js';
import type { RRefArray, RRefDeque } from '../runtime/types.js';

/** A worker domain's proxy answers every method with a Promise (see src/kernel/worker-tier.ts). */
type Promised<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never };

/**
 * The same loop as dom_d's 'plain' case, compiled without the trusted build's deadline checks:
 * the difference to 'plain' is the cost of two checks (loop back-edge + function entry).
 */
function hostPlainNs(n: number): number {
  let local = 0;
  const plain = {
    noarg() {
      local++;
    },
  };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) plain.noarg();
  const ns = ((performance.now() - t0) * 1e6) / n;
  return local === n ? ns : NaN;
}

function dequePushPopNs(kernel: Kernel, n: number): number {
  const dq = kernel.kit.allocDeque(0, 64) as unknown as RRefDeque<RRefArray<number>>;
  let buf = kernel.kit.allocBytes(0, 64) as unknown as RRefArray<number>;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    dq.push(buf);
    buf = dq.pop()!;
  }
  const ns = ((performance.now() - t0) * 1e6) / n;
  buf.drop();
  dq.drop();
  return ns;
}

const MOVE_BATCH = 32;

function dequeMoveFromNs(kernel: Kernel, n: number): number {
  const a = kernel.kit.allocDeque(0, MOVE_BATCH) as unknown as RRefDeque<RRefArray<number>>;
  const b = kernel.kit.allocDeque(0, MOVE_BATCH) as unknown as RRefDeque<RRefArray<number>>;
  for (let i = 0; i < MOVE_BATCH; i++) a.push(kernel.kit.allocBytes(0, 64) as unknown as RRefArray<number>);
  const rounds = Math.max(1, Math.round(n / (2 * MOVE_BATCH)));
  let moved = 0;
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    moved += b.moveFrom(a, MOVE_BATCH);
    moved += a.moveFrom(b, MOVE_BATCH);
  }
  const ns = ((performance.now() - t0) * 1e6) / moved;
  a.drop();
  b.drop();
  return moved === 2 * MOVE_BATCH * rounds ? ns : NaN;
}

async function workerDomainNs(c: Promised<Callee>, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await c.noarg();
  return ((performance.now() - t0) * 1e6) / n;
}

async function workerRoundtripNs(n: number): Promise<number> {
  const w = new Worker(`const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m));`, { eval: true });
  try {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve) => {
        w.once('message', () => resolve());
        w.postMessage(i);
      });
    }
    return ((performance.now() - t0) * 1e6) / n;
  } finally {
    await w.terminate();
  }
}

export async function run(opts: BenchOptions): Promise<SuiteResult> {
  const kernel = new Kernel({ physBytes: 16 << 20, log: () => {} });
  try {
    kernel.load(artifactPath('dom_c'));
    kernel.load(artifactPath('dom_d'), { imports: ['dom_c'] });
    kernel.load(artifactPath('shadow_c'), { imports: [{ supervise: 'dom_c' }] });
    kernel.load(artifactPath('dom_d'), { name: 'dom_d_shadowed', imports: ['shadow_c'] });
    kernel.load(artifactPath('dom_c'), { name: 'dom_c_worker', placement: 'worker' });
    const inWorker = kernel.bind<Promised<Callee>>('dom_c_worker');
    kernel.load(artifactPath('dom_d'), { name: 'dom_d_worker', placement: 'worker', imports: ['dom_c'] });
    const callingOut = kernel.bind<Promised<Caller>>('dom_d_worker');
    const direct = kernel.bind<Caller>('dom_d');
    const shadowed = kernel.bind<Caller>('dom_d_shadowed');
    const n = Math.max(1000, Math.round(2_000_000 * opts.scale));
    const nAsync = Math.max(1000, Math.round(200_000 * opts.scale));
    const nWorker = Math.max(200, Math.round(20_000 * opts.scale));
    const cases: [string, () => Promise<number>][] = [
      ['plain', async () => (direct.run('plain', n) * 1e6) / n],
      ['plain-uninstrumented', async () => hostPlainNs(n)],
      ['proxy-noarg', async () => (direct.run('noarg', n) * 1e6) / n],
      ['proxy-arg', async () => (direct.run('arg', n) * 1e6) / n],
      ['proxy-rref', async () => (direct.run('rref', n) * 1e6) / n],
      ['proxy-async', async () => ((await direct.runAsync(nAsync)) * 1e6) / nAsync],
      ['shadow-noarg', async () => (shadowed.run('noarg', n) * 1e6) / n],
      ['shadow-async', async () => ((await shadowed.runAsync(nAsync)) * 1e6) / nAsync],
      ['worker-roundtrip', () => workerRoundtripNs(nWorker)],
      ['worker-domain', () => workerDomainNs(inWorker, nWorker)],
      ['worker-callout', async () => ((await callingOut.run('noarg', nWorker)) * 1e6) / nWorker],
      ['deque-push-pop', async () => dequePushPopNs(kernel, n)],
      ['deque-move-from', async () => dequeMoveFromNs(kernel, n)],
    ];
    const bar = progressBar(opts, 'calls', cases.length);
    const results: { case: string; ns: number }[] = [];
    for (const [name, fn] of cases) {
      // Let the event loop turn between runs: a run is one long synchronous stretch of domain code.
      const ns = await medianOf(opts.runs, async () => {
        await new Promise((r) => setImmediate(r));
        return fn();
      });
      results.push({ case: name, ns: Number(ns.toFixed(2)) });
      bar.tick(name);
    }
    bar.stop();
    const get = (c: string): number => results.find((r) => r.case === c)!.ns;
    return {
      suite: 'calls',
      node: process.version,
      results,
      notes: [
        `proxy-noarg / plain = ${(get('proxy-noarg') / get('plain')).toFixed(2)}x; worker-roundtrip / proxy-noarg = ${Math.round(get('worker-roundtrip') / get('proxy-noarg'))}x`,
        `worker-domain / worker-roundtrip = ${(get('worker-domain') / get('worker-roundtrip')).toFixed(2)}x; worker-domain / proxy-noarg = ${Math.round(get('worker-domain') / get('proxy-noarg'))}x; worker-callout / worker-domain = ${(get('worker-callout') / get('worker-domain')).toFixed(2)}x`,
        `median of ${opts.runs} runs; ${n} calls per run (${nAsync} async, ${nWorker} worker round trips, worker-domain calls and calls out)`,
      ],
    };
  } finally {
    kernel.shutdown();
  }
}

