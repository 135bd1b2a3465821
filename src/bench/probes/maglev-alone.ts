/**
 * Probe: maglev through one crossing, alone in its process (no other path booted beside it), as
 * `bench net` boots it: 1M pktgen flows, batch 32, a 3 s pass over the flows first, then `runs`
 * runs of 500 ms; prints their median in Mpps. For A/Bs of maglev changes between two builds.
 *
 *   node dist/src/bench/probes/maglev-alone.js [runs=8]
 */
import { bootNet } from '../../host/net.js';
import { median } from '../harness.js';
import { MAGLEV_64, forwardFor } from '../net.js';

const runs = Number(process.argv[2] ?? 8);
const boot = await bootNet(MAGLEV_64);
try {
  const app = boot.app!;
  forwardFor(app, 32, 3000);
  const mpps: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const n = app.run('fwd', 32, 500);
    mpps.push(n / (performance.now() - t0) / 1e3);
  }
  console.log(`maglev ${median(mpps).toFixed(3)} Mpps (median of ${runs} runs of 500 ms)`);
} finally {
  await boot.stop();
}
