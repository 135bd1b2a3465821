/**
 * Probe: one path of a `bench net` path case alone in its process — the app domain on the NIC
 * driver (`domain`) or behind nic_shadow (`shadow`), on pktgen unpaced, 64-byte frames — where
 * `bench net` boots both paths at once and interleaves their runs (so the two share V8's feedback
 * on the code they run in common). Prints the median Mpps of `runs` runs of 1 s after a 300 ms
 * warm-up. Alternate invocations of the two paths to compare them without that sharing:
 *
 * `ring`: descriptors per RX and TX ring (default: the driver's own).
 *
 *   node dist/src/bench/probes/path-alone.js domain|shadow [rx|tx|fwd=rx] [batch=1] [runs=5] [ring]
 */
import { bootNet } from '../../host/net.js';
import { PKTGEN_64, rate, ringConfig } from '../net.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const [path = 'domain', mode = 'rx', batchArg = '1', runsArg = '5', ring] = process.argv.slice(2);
if ((path !== 'domain' && path !== 'shadow') || (mode !== 'rx' && mode !== 'tx' && mode !== 'fwd')) {
  console.error('usage: path-alone.js domain|shadow [rx|tx|fwd] [batch] [runs] [ring]');
  process.exit(2);
}
const batch = Number(batchArg);
const runs = Number(runsArg);
const boot = await bootNet({
  backend: PKTGEN_64, shadow: path === 'shadow', app: 'l2fwd',
  ...ringConfig(ring),
});
try {
  const app = boot.app!;
  const mpps = await rate(runs, 1000, (ms) => app.run(mode, batch, ms));
  console.log(`${path} ${mode} b${batch}: ${mpps.toFixed(3)} Mpps (median of ${runs} runs of 1 s)`);
} finally {
  await boot.stop();
}
