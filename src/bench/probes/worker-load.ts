/**
 * Probe: how long loading a worker domain holds the kernel thread (`kernel.load` with placement
 * 'worker' returns once the domain's init has), cold and from the pool of warm threads
 * (src/kernel/worker-pool.ts). Loads dom_c `n` times with `gap` ms between loads (time for the
 * pool to start the next threads; the process's first load starts the pool, so it is cold), then
 * `n` times with `resourceLimits` (never pooled: a thread is started for each); prints each
 * load's milliseconds and the medians.
 *
 *   node dist/src/bench/probes/worker-load.js [n=8] [gap=500]
 */
import { Kernel } from '../../kernel/kernel.js';
import { artifactPath } from '../../kernel/paths.js';
import { median } from '../harness.js';

const n = Number(process.argv[2] ?? 8);
const gap = Number(process.argv[3] ?? 500);
const kernel = new Kernel({ physBytes: 16 << 20, log: () => {} });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function loads(what: string, resourceLimits?: { maxOldGenerationSizeMb: number }): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    await sleep(gap);
    const t0 = performance.now();
    const d = kernel.load(artifactPath('dom_c'), { name: `dom_c_${what}_${i}`, placement: 'worker', ...(resourceLimits ? { resourceLimits } : {}) });
    ms.push(performance.now() - t0);
    kernel.terminate(d);
  }
  console.log(`${what}: ${ms.map((m) => m.toFixed(1)).join(' ')} ms (median ${median(ms).toFixed(1)})`);
}

try {
  await loads('pooled');
  await loads('resource-limits', { maxOldGenerationSizeMb: 64 });
} finally {
  kernel.shutdown();
}
