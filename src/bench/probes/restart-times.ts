/**
 * Probe: how long the kernel takes to restart the NIC driver under l2fwd traffic (a new instance:
 * its artifact instantiated and its init run, which resets the NIC and programs new rings), and
 * where that time goes. Boots l2fwd over nic_shadow on pktgen, injects `n` faults into the driver
 * one after another (each met by the shadow, which restarts it) and prints, per restart, a
 * timeline in ms from the death (the start of `Kernel.terminate`): the termination, with the
 * device's detach (its request), the wait for the device's acknowledgement and the heap's reclaim
 * inside it; `Kernel.restart`, with the device's attach inside it; the return of the dead
 * driver's buffers to the shadow (`HandleKit.appendRoots`); and the answer of the call that met
 * the death (the shadow's lastRestartMs: from the death to the
 * reissued call's answer — the caller's whole wait). The first restarts of a process are the slow
 * ones (code run for the first time, V8 re-optimizing on the same two cores): `bench net`'s
 * recovery case measures after five. The first crash comes after `warmMs` of traffic, by default
 * bench net's 2 s; with a few hundred ms it lands while V8 still compiles the boot's hot code on
 * its background thread, which then competes for the two cores too.
 *
 *   node dist/src/bench/probes/restart-times.js [n=6] [warmMs=2000]
 */
import { bootNet } from '../../host/net.js';
import { PKTGEN_64, forwardFor } from '../net.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const n = Number(process.argv[2] ?? 6);
const warmMs = Number(process.argv[3] ?? 2000);
if (!(Number.isInteger(n) && n >= 1 && warmMs >= 0)) {
  console.error('restart-times: n must be a positive integer and warmMs a number of ms >= 0 (usage: restart-times.js [n=6] [warmMs=2000])');
  process.exit(2);
}
const boot = await bootNet({ backend: PKTGEN_64, shadow: true, app: 'l2fwd' });
try {
  const k = boot.kernel;
  /** Events of the current restart: [label, ms since performance's origin]. */
  let events: [string, number][] = [];
  /** Calls `f`, stamping `label<` and `label>` around it. */
  const stampedCall = <R>(label: string, f: () => R): R => {
    events.push([`${label}<`, performance.now()]);
    try {
      return f();
    } finally {
      events.push([`${label}>`, performance.now()]);
    }
  };
  /** Stamps `label<` and `label>` around each call of `obj[method]`. */
  const stamped = <O extends object>(obj: O, method: keyof O & string, label: string): void => {
    const f = (obj[method] as (...a: unknown[]) => unknown).bind(obj);
    (obj as Record<string, unknown>)[method] = (...a: unknown[]) => stampedCall(label, () => f(...a));
  };
  stamped(k, 'terminate', 'terminate');
  stamped(k.heap, 'reclaim', 'reclaim');
  // Detach is stamped as the request; what it hands back, the wait for the device's
  // acknowledgement (the reclaim runs it), as `ack wait`.
  const dev = boot.dev!;
  const detach = dev.detach.bind(dev);
  dev.detach = () => {
    const wait = stampedCall('detach', detach);
    return () => stampedCall('ack wait', wait);
  };
  stamped(dev, 'attach', 'attach');
  stamped(k, 'restart', 'restart');
  stamped(k.kit, 'appendRoots', 'buffers back');
  /** "label a–b" for the first call of `label` (ms from t0), or '' if none. */
  const span = (label: string, t0: number): string => {
    const a = events.find(([l]) => l === `${label}<`)?.[1];
    const b = events.find(([l]) => l === `${label}>`)?.[1];
    return a === undefined || b === undefined ? '' : `${label} ${(a - t0).toFixed(2)}–${(b - t0).toFixed(2)}`;
  };
  forwardFor(boot.app!, 32, warmMs);
  for (let i = 1; i <= n; i++) {
    events = [];
    k.injectFault(boot.driverName!, { afterCalls: 3 });
    boot.app!.run('fwd', 32, 200);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = events.find(([l]) => l === 'terminate<')?.[1] ?? NaN;
    const parts = ['terminate', 'detach', 'ack wait', 'reclaim', 'restart', 'attach', 'buffers back'].map((l) => span(l, t0)).filter((x) => x !== '');
    console.log(`restart ${i}: ${parts.join(', ')}; answered at ${boot.netStats().lastRestartMs.toFixed(2)}`);
  }
} finally {
  await boot.stop();
}
