/**
 * Probe: maglev through one crossing, alone in its process (no other path booted beside it), as
 * `bench net` boots it: 1M pktgen flows, batch 32, a 3 s pass over the flows first, then `runs`
 * runs of 500 ms; prints their median in Mpps. For A/Bs of maglev changes between two builds,
 * and of the NIC's ring size and the app's buffer pool (default: the driver's and the app's own).
 *
 *   node dist/src/bench/probes/maglev-alone.js [runs=8] [ring] [pool]
 */
import { bootNet } from '../../host/net.js';
import { median } from '../harness.js';
import { MAGLEV_64, forwardFor, ringConfig } from '../net.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const [runsArg = '8', ring, pool] = process.argv.slice(2);
const runs = Number(runsArg);
const boot = await bootNet({
  ...MAGLEV_64,
  ...ringConfig(ring),
  ...(pool === undefined ? {} : { appConfig: { ...MAGLEV_64.appConfig, pool: Number(pool) } }),
});
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
