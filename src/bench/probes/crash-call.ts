/**
 * Probe: what the caller of the NIC shadow waits for when the driver dies in its call. The host
 * forwards through the shadow on pktgen at batch 32 (bench net's hostForwarder), a driver fault
 * is armed at the third call from then, and for each of `n` crashes it prints the longest call of
 * the next three rounds (the one that met the death: restart and reissue included) beside the
 * shadow's `lastRestartMs`, which should account for it (it counts from the death, the kernel's
 * termination of the driver included), then forwards for 300 ms before the next crash.
 *
 *   node dist/src/bench/probes/crash-call.js [n=10]
 */
import { bootNet } from '../../host/net.js';
import { PKTGEN_64, hostForwarder } from '../net.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const n = Number(process.argv[2] ?? 10);
const boot = await bootNet({ backend: PKTGEN_64, shadow: true, app: null });
const fwd = hostForwarder(boot);
try {
  const forwardMs = (ms: number): void => {
    for (const end = performance.now() + ms; performance.now() < end; ) fwd.round();
  };
  forwardMs(1000);
  for (let c = 1; c <= n; c++) {
    boot.kernel.injectFault(boot.driverName!, { afterCalls: 3 });
    let longest = 0;
    for (let i = 0; i < 3; i++) {
      const r = fwd.round();
      longest = Math.max(longest, r.rxMs, r.txMs);
    }
    const s = boot.netStats();
    console.log(`crash ${c}: the call that met it took ${longest.toFixed(2)} ms; lastRestartMs ${s.lastRestartMs!.toFixed(2)} (restarts ${s.restarts})`);
    forwardMs(300);
  }
} finally {
  fwd.close();
  await boot.stop();
}
