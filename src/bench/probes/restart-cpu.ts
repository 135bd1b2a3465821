/**
 * Probe: where the CPU goes after each restart of the NIC driver (behind nic_shadow, l2fwd on
 * pktgen, batch 32). For each of `n` crashes (a fault armed at the driver's third call from then)
 * it forwards for 400 ms and prints the CPU time (Linux /proc/self/task, in ms) of the NIC model's
 * thread and of the process's other threads but the main one — V8's platform threads, which
 * re-optimize in the background the code a restart deoptimized — beside the rate of those 400 ms;
 * then the rate of 400 ms without a crash. On a 2-vCPU machine that background work takes the
 * NIC model's CPU: the first restarts of a process cost far more than later ones. Before the
 * crashes it prints the same for the first windows of traffic after boot: V8 compiling the hot
 * code for the first time, which a crash within them would compete with (bench net's recovery
 * case crashes after 2 s).
 *
 *   node dist/src/bench/probes/restart-cpu.js [n=12]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { bootNet } from '../../host/net.js';
import { PKTGEN_64 } from '../net.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const n = Number(process.argv[2] ?? 12);
const WINDOW_MS = 400;
/** Windows of traffic before the first crash (as bench net's recovery case: 2 s or more). */
const BOOT_WINDOWS = 5;
/** ms per clock tick of /proc's CPU times (USER_HZ is 100 on Linux). */
const TICK_MS = 10;
/** ms of CPU (user + system) per thread id of this process. */
function cpuByThread(): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of readdirSync('/proc/self/task')) {
    const st = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    out.set(Number(t), (Number(f[11]) + Number(f[12])) * TICK_MS);
  }
  return out;
}

const boot = await bootNet({ backend: PKTGEN_64, shadow: true, app: 'l2fwd' });
try {
  const app = boot.app!;
  const rate = (): number => {
    const t0 = performance.now();
    return app.run('fwd', 32, WINDOW_MS) / (performance.now() - t0) / 1e3;
  };
  // The NIC model's thread is the last one started (bootNet starts the device after the kernel).
  const nicThread = Math.max(...cpuByThread().keys());
  /** One window of traffic (`crash`: a driver fault armed first): its rate and who had the CPU. */
  const trafficWindow = (crash: boolean): string => {
    const before = cpuByThread();
    if (crash) boot.kernel.injectFault(boot.driverName!, { afterCalls: 3 });
    const mpps = rate();
    const after = cpuByThread();
    let background = 0;
    for (const [t, ms] of after) if (t !== process.pid && t !== nicThread) background += ms - (before.get(t) ?? 0);
    const nic = after.get(nicThread)! - before.get(nicThread)!;
    return `${mpps.toFixed(2)} Mpps; CPU ms: background threads ${background}, NIC model ${nic}`;
  };
  for (let w = 0; w < BOOT_WINDOWS; w++) console.log(`traffic ${w * WINDOW_MS}–${(w + 1) * WINDOW_MS} ms after boot: ${trafficWindow(false)}`);
  for (let c = 1; c <= n; c++) console.log(`crash ${c}, the ${WINDOW_MS} ms after it: ${trafficWindow(true)}`);
  console.log(`no crash: ${rate().toFixed(2)} Mpps`);
} finally {
  await boot.stop();
}
