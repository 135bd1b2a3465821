/**
 * Probe: a same-process A/B of the network path between this build (A) and another (B).
 * On this VM one build's rate swings by 10–30% between processes, which hides a change of a few
 * percent when the two builds run one after the other; here both are booted at once, each with
 * its own kernel and NIC model (an idle model parks its thread), and their runs alternate, the
 * order flipping every round, so drift hits both alike. The app runs fwd on pktgen (60-byte
 * frames; 2^20 flows for maglev, 65,536 for l2fwd, as bench net), a 3 s pass first, then `runs`
 * rounds of 500 ms each; prints every round, both medians and the median of the rounds' B/A.
 *
 * OTHER is either the other build's artifacts directory (OTHER/dist/artifacts: B is this kernel
 * with those domains) or its dist directory (B is that build's kernel, devices and domains: for a
 * change of the kernel; the process's SES lockdown is this build's, done once). Either way B's
 * artifacts must be signed with this build's key and built from the same interfaces and
 * capabilities (src/interfaces, src/runtime/sys.ts): build the other tree with REDLEAF_KEY_DIR
 * pointing at this one's key (`.redleaf/keys`), or copy this tree's dist before the change.
 *
 *   node dist/src/bench/probes/ab-net.js OTHER/dist[/artifacts] [runs=10] [maglev|l2fwd] [batch=32]
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bootNet, type NetBoot, type NetBootOptions } from '../../host/net.js';
import { median } from '../harness.js';
import { MAGLEV_64, PKTGEN_64, forwardFor } from '../net.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const [other, runsArg, appArg, batchArg] = process.argv.slice(2);
if (other === undefined) {
  console.error('usage: ab-net.js OTHER/dist[/artifacts] [runs=10] [maglev|l2fwd] [batch=32]');
  process.exit(2);
}
const runs = Number(runsArg ?? 10);
const app = appArg === 'l2fwd' ? 'l2fwd' : 'maglev';
const batch = Number(batchArg ?? 32);
/** B's bootNet: the other build's own (a dist directory), or this one's with the other artifacts. */
const otherNet = join(resolve(other), 'src', 'host', 'net.js');
const wholeBuild = existsSync(otherNet);
let bootOther: typeof bootNet = (o) => bootNet({ ...o, artifacts: other });
if (wholeBuild) {
  // Its kernel module locks the process down when it loads, with lockdown() or (since session 26)
  // repairIntrinsics() and hardenIntrinsics(); this build's kernel did already (and SES refuses a
  // second lockdown), so those calls are made no-ops for it.
  for (const step of ['lockdown', 'repairIntrinsics', 'hardenIntrinsics']) (globalThis as Record<string, unknown>)[step] = () => undefined;
  bootOther = ((await import(pathToFileURL(otherNet).href)) as typeof import('../../host/net.js')).bootNet;
}
const config: NetBootOptions = app === 'maglev' ? MAGLEV_64 : { backend: PKTGEN_64, app };
const boots: NetBoot[] = [];
try {
  boots.push(await bootNet(config));
  boots.push(await bootOther(config));
  for (const b of boots) forwardFor(b.app!, batch, 3000);
  const mpps: number[][] = [[], []];
  for (let round = 0; round < runs; round++) {
    for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const t0 = performance.now();
      const n = boots[i]!.app!.run('fwd', batch, 500);
      mpps[i]!.push(n / (performance.now() - t0) / 1e3);
    }
    console.log(`round ${round + 1}: A ${mpps[0]![round]!.toFixed(3)}  B ${mpps[1]![round]!.toFixed(3)} Mpps`);
  }
  const ratios = mpps[0]!.map((a, i) => mpps[1]![i]! / a);
  console.log(`${app} b${batch}, B ${wholeBuild ? 'a whole other build' : 'other domains'}: A ${median(mpps[0]!).toFixed(3)}  B ${median(mpps[1]!).toFixed(3)} Mpps (medians of ${runs}); B/A ${median(ratios).toFixed(3)} (median of the rounds' ratios)`);
} finally {
  for (const b of boots) await b.stop();
}
