/**
 * Probe: how long loading a worker domain holds the kernel thread, cold and from the pool of warm
 * threads (src/kernel/worker-pool.ts). Loads dom_c `n` times with `gap` ms between loads (time for
 * the pool to start the next threads; the process's first load starts the pool, so it is cold),
 * then `n` times with `resourceLimits` (never pooled: a thread is started for each), first with
 * `kernel.load` (which returns once the domain's init has: the whole load holds the thread), then
 * with `kernel.loadAsync` (which waits without holding it: what holds it is the longest gap
 * between turns of a setImmediate chain run meanwhile). Prints each load's milliseconds and the
 * medians.
 *
 *   node dist/src/bench/probes/worker-load.js [n=8] [gap=500]
 */
import { Kernel, type LoadOptions } from '../../kernel/kernel.js';
import { artifactPath } from '../../kernel/paths.js';
import { median } from '../harness.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const n = Number(process.argv[2] ?? 8);
const gap = Number(process.argv[3] ?? 500);
const kernel = new Kernel({ physBytes: 16 << 20, log: () => {} });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const list = (ms: number[]): string => `${ms.map((m) => m.toFixed(1)).join(' ')} ms (median ${median(ms).toFixed(1)})`;

/** The longest the kernel thread went without a turn of a setImmediate chain while `work` ran, and how long it took. */
async function held(work: () => Promise<unknown>): Promise<{ longest: number; total: number }> {
  let last = performance.now();
  let longest = 0;
  let done = false;
  const tick = (): void => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (!done) setImmediate(tick);
  };
  setImmediate(tick);
  const t0 = performance.now();
  await work();
  done = true;
  const end = performance.now();
  return { longest: Math.max(longest, end - last), total: end - t0 };
}

async function loads(what: string, extra: Partial<LoadOptions> = {}): Promise<void> {
  const sync: number[] = [];
  const holds: number[] = [];
  const totals: number[] = [];
  for (let i = 0; i < n; i++) {
    await sleep(gap);
    const t0 = performance.now();
    kernel.terminate(kernel.load(artifactPath('dom_c'), { name: `dom_c_${what}_${i}`, placement: 'worker', ...extra }));
    sync.push(performance.now() - t0);
  }
  for (let i = 0; i < n; i++) {
    await sleep(gap);
    const name = `dom_c_${what}_async_${i}`;
    const r = await held(() => kernel.loadAsync(artifactPath('dom_c'), { name, placement: 'worker', ...extra }));
    kernel.terminate(name);
    holds.push(r.longest);
    totals.push(r.total);
  }
  console.log(`${what}, load: held ${list(sync)}`);
  console.log(`${what}, loadAsync: held at most ${list(holds)}; loaded in ${list(totals)}`);
}

try {
  await loads('pooled');
  await loads('resource-limits', { resourceLimits: { maxOldGenerationSizeMb: 64 } });
} finally {
  kernel.shutdown();
}
