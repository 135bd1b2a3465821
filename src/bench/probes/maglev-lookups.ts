/**
 * Probe: Maglev's own per-frame cost, outside any domain — the balancer's batch steps as the
 * maglev domain takes them (flowHash of each frame, the batch's touch loop, then each lookup) over
 * 2^20 flows with 16 backends, batches of 32; one pass to see every flow, then five passes, their
 * median in ns per frame. `module` is the maglev.js to load (default this build's, `-` for it), so
 * that two builds' Maglev can be compared, one invocation after the other; `remove` backends taken
 * away after the first pass (default 0), so that the passes measured include the flows whose
 * table entries that changed:
 *
 *   node dist/src/bench/probes/maglev-lookups.js [module=-] [remove=0]
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { median } from '../harness.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const FLOWS = 1 << 20;
const BATCH = 32;
const DST = 0x0a010001;
const [modArg = '-', removeArg = '0'] = process.argv.slice(2);
const url = modArg === '-' ? new URL('../../domains/maglev/maglev.js', import.meta.url).href : pathToFileURL(resolve(modArg)).href;
const { Maglev, flowHash } = (await import(url)) as typeof import('../../domains/maglev/maglev.js');

const backends = Array.from({ length: 16 }, (_, i) => `10.2.0.${i}:80`);
const mg = new Maglev(backends);
const hashes = new DataView(new ArrayBuffer(BATCH * 4));
const src = new Int32Array(FLOWS);
const ports = new Int32Array(FLOWS);
for (let f = 0; f < FLOWS; f++) {
  src[f] = 0x0a000000 + f;
  ports[f] = ((1024 + (f & 0x7fff)) << 16) | 80;
}
/** What the lookups answered, summed: printed (the same for two builds that send flows alike). */
let sink = 0;
/** What the touch loops read: printed too, so that their loads are not optimised away. */
let touched = 0;
function pass(): number {
  const t0 = performance.now();
  for (let b = 0; b < FLOWS; b += BATCH) {
    for (let i = 0; i < BATCH; i++) hashes.setInt32(i * 4, flowHash(src[b + i]!, DST, ports[b + i]!, 6), true);
    touched = (touched + mg.touch(hashes, BATCH)) | 0;
    for (let i = 0; i < BATCH; i++) sink += mg.lookupHashed(hashes.getInt32(i * 4, true));
  }
  return ((performance.now() - t0) * 1e6) / FLOWS;
}
pass();
const remove = Number(removeArg);
if (remove > 0) mg.setBackends(backends.slice(remove));
const ns = median(Array.from({ length: 5 }, pass));
console.log(`maglev lookups: ${ns.toFixed(1)} ns per frame (median of 5 passes over ${FLOWS} flows, ${remove} of ${backends.length} backends removed after the first; ${mg.cachedFlows} in the flow cache; backends summed ${sink}, touched ${touched & 1})`);
