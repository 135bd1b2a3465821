/**
 * Crashes of the fs domain itself at random moments of random workloads on the NVMe stack (the
 * recovery the rv6 core makes, src/domains/rv6/fsclient.ts, done here by hand as the core's
 * loader does it, src/host/rv6.ts restartFs): the crash hits whatever call is in flight, with its
 * block I/O under way; once none of the dead instance's I/O is in flight any more
 * (kernel.callsInFlightFrom), a new instance mounts the disk and replays the log. The tree is then
 * what every call that returned before the crash left, with the call in flight before or after
 * any of its transactions (as for a power cut: test/fs/workload.ts), and the image is fsck-clean.
 *
 * A failure prints fast-check's seed and path: FS_SEED=<seed> FS_PATH=<path> reruns it (the
 * crash moment is a timer, so a rerun meets the same workload, not necessarily the same instant).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { bootStorage } from '../../src/host/storage.js';
import { bootFs } from '../../src/host/bdev-image.js';
import type { Variant } from '../../src/domains/fs/format.js';
import type { Rv6Fs } from '../../src/interfaces/rv6.js';
import { Client } from './client.js';
import { assertClean, fcParams, mkfsImage } from './helpers.js';
import { assertTreeIn, describeStop, expectedTrees, opArb, planWorkload, runCalls } from './workload.js';

const MiB = 1 << 20;
const variants: Array<{ variant: Variant; bytes: number }> = [
  { variant: 'xv6', bytes: 2 * MiB },
  { variant: 'large', bytes: 16 * MiB },
];

for (const { variant, bytes } of variants) {
  const base = mkfsImage(variant, bytes);
  test(`the fs domain crashes mid-call (${variant}): restarted once its block I/O has landed, the log replays what committed; fsck clean`, { timeout: 240_000 }, async (tc) => {
    const dir = mkdtempSync(join(tmpdir(), 'rl-fscrash-'));
    const img = join(dir, 'fs.img');
    let crashedMidCall = 0;
    let ioInFlight = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb(variant), { minLength: 6, maxLength: 16 }), fc.integer({ min: 1, max: 40 }), async (ops, crashMs) => {
          const w = planWorkload(ops, variant);
          writeFileSync(img, base);
          const s = await bootStorage({ image: img, physBytes: 64 * MiB, log: () => {} });
          const k = s.kernel;
          try {
            const c = new Client(k, bootFs(k, s.driverName));
            assert.equal(await c.fs.mount(), 0);
            const dead = k.get('fs')!;
            let done = 0;
            let crashedAfter = -1;
            const timer = setTimeout(() => {
              crashedAfter = done;
              k.injectFault('fs', 'now');
            }, crashMs);
            try {
              await runCalls(c, w.calls, { afterCall: () => done++ });
            } catch {
              // the call in flight met the crash (its proxy call rejected)
            } finally {
              clearTimeout(timer);
            }
            if (crashedAfter < 0) return; // the workload ended first: nothing to recover
            crashedMidCall++;
            const what = `fs crash ${crashMs} ms in, ${describeStop(w, crashedAfter)}`;
            assert.equal(dead.state, 'dead', what);
            if (k.callsInFlightFrom(dead) > 0) ioInFlight++;
            assert.ok(await k.callsFromSettled(dead, 5000), `${what}: the dead instance's block I/O lands`);
            const c2 = new Client(k, k.bind<Rv6Fs>(k.restart('fs')));
            assert.equal(await c2.fs.mount(), 0, `${what}: mount on the restarted fs domain`);
            await assertTreeIn(c2, expectedTrees(w, crashedAfter), what);
            assert.equal(await c2.fs.unmount(), 0);
          } finally {
            await s.stop();
          }
          assertClean(img);
        }),
        fcParams(12, { interruptAfterTimeLimit: 150_000 }),
      );
      assert.ok(crashedMidCall > 0, 'some crashes met a call in flight');
      tc.diagnostic(`${crashedMidCall} runs crashed the fs domain mid-workload, ${ioInFlight} of them with its block I/O still in flight`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
