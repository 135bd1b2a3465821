/**
 * Probe: where the kernel thread's time goes on a network path through one crossing — the profile
 * issue 5 asks for beside a rate that misses its target. Boots the path as `bench net` does
 * (pktgen, 60-byte frames; maglev with 2^20 flows), runs it for a 3 s warm-up, then samples the
 * kernel thread with V8's CPU profiler (node:inspector, every 100 µs) while the app forwards for
 * `ms`, and prints the rate and the functions with the most self time, as a share of the samples:
 * domain code (the app, the driver) and the trusted kernel alike, each named by function and by
 * the file or domain it comes from. A domain's line numbers are those of its artifact's code (the
 * bundle in dist/artifacts/<name>.rldom); a function's self time includes what V8 inlined into
 * it. The NIC model's worker thread is not sampled (on these paths it is not the limit: `bench
 * net`'s driver-linked path shows its ceiling); `node --cpu-prof` samples every thread.
 *
 *   node dist/src/bench/probes/profile-net.js [l2fwd|maglev] [ms=3000] [top=25]
 */
import { Session } from 'node:inspector/promises';
import { bootNet } from '../../host/net.js';
import { MAGLEV_64, PKTGEN_64, forwardFor } from '../net.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const [appArg, msArg, topArg] = process.argv.slice(2);
if (appArg !== undefined && appArg !== 'l2fwd' && appArg !== 'maglev') {
  console.error(`profile-net: unknown app ${appArg}: expected l2fwd or maglev`);
  process.exit(2);
}
const app = appArg ?? 'l2fwd';
const ms = Number(msArg ?? 3000);
const top = Number(topArg ?? 25);
if (!(ms >= 500 && Number.isInteger(top) && top > 0)) {
  console.error('profile-net: ms must be at least 500 and top a positive integer');
  process.exit(2);
}

/** The parts of a V8 CPU profile this probe reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number } }[];
  samples: number[];
}

/** Self samples per function (name and where it comes from), most first, as [label, share]. */
function selfTime(p: CpuProfile): [string, number][] {
  const byNode = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  // Domain code is named redleaf-domain:<artifact>.js (kernel/isolation.ts), but V8 reports some of
  // its code objects (those made before the profiler started) without a url: a function is known
  // by its name and position, and takes the url any of its entries has.
  const key = (f: CpuProfile['nodes'][number]['callFrame']): string => `${f.functionName}:${f.lineNumber}:${f.columnNumber}`;
  const urls = new Map<string, string>();
  for (const n of p.nodes) if (n.callFrame.url !== '') urls.set(key(n.callFrame), n.callFrame.url);
  const counts = new Map<string, number>();
  for (const id of p.samples) {
    const f = byNode.get(id)!;
    const url = urls.get(key(f)) ?? '';
    const where = url === '' ? '(no script name)' : url.replace(/^.*\/dist\/src\//, '');
    const label = `${f.functionName || '(anonymous)'}  ${where}${f.lineNumber >= 0 ? `:${f.lineNumber + 1}` : ''}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  const total = p.samples.length;
  return [...counts].sort((a, b) => b[1] - a[1]).map(([k, c]) => [k, c / total]);
}

const boot = await bootNet(app === 'maglev' ? MAGLEV_64 : { backend: PKTGEN_64, app });
const session = new Session();
try {
  const netApp = boot.app!;
  forwardFor(netApp, 32, 3000);
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  const t0 = performance.now();
  const frames = forwardFor(netApp, 32, ms);
  const elapsed = performance.now() - t0;
  const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
  console.log(`${app}-64-b32 through a crossing: ${(frames / elapsed / 1e3).toFixed(2)} Mpps while sampled (${(elapsed / 1e3).toFixed(1)} s, ${profile.samples.length} samples of the kernel thread)`);
  console.log('self time  function  where');
  for (const [label, share] of selfTime(profile).slice(0, top)) console.log(`${(share * 100).toFixed(1).padStart(8)}%  ${label}`);
} finally {
  session.disconnect();
  await boot.stop();
}
