/**
 * Probe: how long the kernel takes to restart the NIC driver under l2fwd traffic (a new instance:
 * its artifact instantiated and its init run, which resets the NIC and programs new rings). Boots
 * l2fwd over nic_shadow on pktgen, injects `n` faults into the driver one after another (each
 * met by the shadow, which restarts it) and prints how long each `Kernel.restart` took, and how
 * long the call that met the death waited in all (the shadow's lastRestartMs: from the death —
 * the kernel's termination and reclamation included — to the reissued call's answer). The first
 * restarts of a process are the slow ones (cold recovery code, V8 re-optimizing on the same two
 * cores): `bench net`'s recovery case measures after five.
 *
 *   node dist/src/bench/probes/restart-times.js [n=6]
 */
import { bootNet } from '../../host/net.js';
import { PKTGEN_64 } from '../net.js';
import { startWithPool } from '../../host/v8-pool.js';

await startWithPool(); // V8's worker pool as `redleaf` runs it (host/v8-pool.ts)

const n = Number(process.argv[2] ?? 6);
const boot = await bootNet({ backend: PKTGEN_64, shadow: true, app: 'l2fwd' });
try {
  const k = boot.kernel;
  const restart = k.restart.bind(k);
  const ms: string[] = [];
  const stalls: string[] = [];
  k.restart = (name: string) => {
    const t0 = performance.now();
    const d = restart(name);
    ms.push((performance.now() - t0).toFixed(2));
    return d;
  };
  boot.app!.run('fwd', 32, 300);
  for (let i = 0; i < n; i++) {
    k.injectFault(boot.driverName!, { afterCalls: 3 });
    boot.app!.run('fwd', 32, 200);
    await new Promise((r) => setTimeout(r, 50));
    stalls.push(boot.netStats().lastRestartMs.toFixed(2));
  }
  console.log(`Kernel.restart ms: ${ms.join(' ')}`);
  console.log(`the caller's wait, ms: ${stalls.join(' ')}`);
} finally {
  await boot.stop();
}
