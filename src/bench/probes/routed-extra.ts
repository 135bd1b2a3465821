/**
 * Probe: what a routed call costs over a plain crossing, with no device thread taking part. The
 * host calls rxSubmitAndPoll at batch B on nullnet directly (`domain`) and through nic_shadow,
 * which routes it (`shadow`), in alternating rounds of 20,000 calls; prints the medians in ns per
 * call and their difference (the routed extra). Used for the batch-1 figures in bench/RESULTS.md.
 *
 *   node dist/src/bench/probes/routed-extra.js [B=1] [rounds=30]
 */
import { Kernel } from '../../kernel/kernel.js';
import { artifactPath } from '../../kernel/paths.js';
import { hostIo } from '../../host/net.js';
import type { Net, NetIo } from '../../interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../runtime/types.js';
import { median } from '../harness.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const batch = Number(process.argv[2] ?? 1);
const rounds = Number(process.argv[3] ?? 30);
const CALLS = 20_000;
const k = new Kernel({ physBytes: 64 << 20, log: () => {} });
try {
  k.load(artifactPath('nullnet'), { name: 'nn', config: { frameSize: 64 } });
  k.load(artifactPath('nic_shadow'), { name: 'sh', imports: [{ supervise: 'nn' }] });
  const paths = { domain: k.bind<Net>('nn'), shadow: k.bind<Net>('sh') };
  const ios: Record<string, RRef<NetIo>> = {};
  for (const p of Object.keys(paths)) {
    ios[p] = hostIo(k, batch);
    for (let i = 0; i < batch; i++) (ios[p]!.pkts as RRefDeque<RRefArray>).push(k.kit.allocBytes(0, 2048) as never);
  }
  const run = (p: keyof typeof paths, n: number): void => {
    const net = paths[p];
    let io = ios[p]!;
    for (let i = 0; i < n; i++) {
      io = net.rxSubmitAndPoll(0, io);
      (io.pkts as RRefDeque<RRefArray>).moveFrom(io.collect as RRefDeque<RRefArray>, batch);
    }
    ios[p] = io;
  };
  const ns: Record<keyof typeof paths, number[]> = { domain: [], shadow: [] };
  for (const p of ['domain', 'shadow'] as const) run(p, CALLS);
  for (let r = 0; r < rounds; r++) {
    for (const p of ['domain', 'shadow'] as const) {
      const t0 = performance.now();
      run(p, CALLS);
      ns[p].push(((performance.now() - t0) / CALLS) * 1e6);
    }
  }
  const d = median(ns.domain);
  const s = median(ns.shadow);
  console.log(`batch ${batch}: domain ${d.toFixed(0)} ns/call, routed shadow ${s.toFixed(0)}, extra ${(s - d).toFixed(0)}, ratio ${(d / s).toFixed(3)}`);
} finally {
  k.shutdown();
}
