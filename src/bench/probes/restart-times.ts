/**
 * Probe: how long the kernel takes to restart the NIC driver under l2fwd traffic (a new instance:
 * its artifact instantiated and its init run, which resets the NIC and programs new rings). Boots
 * l2fwd over nic_shadow on pktgen, injects `n` faults into the driver one after another (each
 * met by the shadow, which restarts it) and prints how long each `Kernel.terminate` took (the
 * heap's reclaim of the dead instance's memory in it), each `Kernel.restart`, and how long the
 * call that met the death waited in all (the shadow's lastRestartMs: from the death —
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
  /** Times each call of `obj[method]` into `into` (ms, two decimals). */
  const timed = <O extends object, M extends keyof O>(obj: O, method: M, into: string[]): void => {
    const f = (obj[method] as (...a: unknown[]) => unknown).bind(obj);
    (obj as Record<M, unknown>)[method] = (...a: unknown[]) => {
      const t0 = performance.now();
      try {
        return f(...a);
      } finally {
        into.push((performance.now() - t0).toFixed(2));
      }
    };
  };
  const terminate: string[] = [];
  const reclaim: string[] = [];
  const restart: string[] = [];
  timed(k, 'terminate', terminate);
  timed(k.heap, 'reclaim', reclaim);
  timed(k, 'restart', restart);
  const stalls: string[] = [];
  boot.app!.run('fwd', 32, 300);
  for (let i = 0; i < n; i++) {
    k.injectFault(boot.driverName!, { afterCalls: 3 });
    boot.app!.run('fwd', 32, 200);
    await new Promise((r) => setTimeout(r, 50));
    stalls.push(boot.netStats().lastRestartMs.toFixed(2));
  }
  console.log(`Kernel.terminate ms: ${terminate.join(' ')}`);
  console.log(`  of which the heap's reclaim: ${reclaim.join(' ')}`);
  console.log(`Kernel.restart ms: ${restart.join(' ')}`);
  console.log(`the caller's wait, ms: ${stalls.join(' ')}`);
} finally {
  await boot.stop();
}
