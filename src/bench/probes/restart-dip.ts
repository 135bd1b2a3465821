/**
 * Probe: l2fwd's rate around restarts of the NIC driver (behind nic_shadow, pktgen, batch 32), in
 * windows of 50 ms: before the first crash, and after each of `n` crashes (a fault injected at the
 * driver's third call from then): how long until a window is back to 90% of the rate before the
 * first crash, and the median rate of the windows 0.5–1 s after the crash. A driver whose
 * restarted instance ran other optimized code than its predecessor's would come back slower.
 *
 * With a second argument, the domains come from that build's artifacts (signed with this build's
 * key: see ab-net.js), for a comparison between builds in separate processes.
 *
 *   node dist/src/bench/probes/restart-dip.js [n=6] [OTHER/dist/artifacts]
 */
import { bootNet } from '../../host/net.js';
import { median } from '../harness.js';
import { PKTGEN_64 } from '../net.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const n = Number(process.argv[2] ?? 6);
const artifacts = process.argv[3];
const WINDOW_MS = 50;
const boot = await bootNet({ backend: PKTGEN_64, shadow: true, app: 'l2fwd', ...(artifacts !== undefined ? { artifacts } : {}) });
try {
  const app = boot.app!;
  /** Rates (Mpps) of `count` consecutive windows. */
  const windows = (count: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const frames = app.run('fwd', 32, WINDOW_MS);
      out.push(frames / (performance.now() - t0) / 1e3);
    }
    return out;
  };
  app.run('fwd', 32, 3000); // warm-up
  const base = median(windows(20));
  console.log(`before: ${base.toFixed(2)} Mpps (median of 20 windows of ${WINDOW_MS} ms)`);
  for (let c = 1; c <= n; c++) {
    boot.kernel.injectFault(boot.driverName!, { afterCalls: 3 });
    const after = windows(20);
    const back = after.findIndex((r) => r >= 0.9 * base);
    const steady = median(after.slice(10));
    const when = back < 0 ? `not within ${after.length * WINDOW_MS} ms` : `after ${(back + 1) * WINDOW_MS} ms`;
    console.log(`crash ${c}: back to 90% ${when}; 0.5-1 s after: ${steady.toFixed(2)} Mpps (${(steady / base).toFixed(2)} of before)`);
  }
} finally {
  await boot.stop();
}
