/**
 * Power cuts at the device: random workloads run through the fs domain over the nvme driver domain
 * and the NVMe controller model on an image file; the controller drops every write after the k-th
 * (for several k per workload, chosen from the run's total write count); then a reboot — a new
 * kernel and controller on the same file — mounts (log recovery), reads the whole tree back
 * through the fs domain, and fsck checks the image.
 *
 * The durability rule tested (xv6's group commit): a transaction commits when the last operation
 * in flight ends, before that operation's call returns, and is durable once the commit's flushes
 * came back. So a call is durable when it and every call overlapping it have returned: at once for
 * a call made alone, when the whole batch has returned for calls made concurrently. (sync() is how
 * to make a returned call durable while overlapping calls still run.) The workload is a sequence
 * of steps — one call, or a batch of concurrent calls on distinct files — and the test checks:
 *   every step that returned before the cut (no write of it dropped) is on disk, exactly;
 *   the step in flight at the cut is on disk as before it, or after any of its transactions (a
 *   write of more than maxOpBytes commits in several; a batch's parts commit in any interleaving);
 *   no later step is, and after recovery the image is fsck-clean.
 *
 * A failure prints fast-check's seed and path: FS_SEED=<seed> FS_PATH=<path> reruns it.
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
import { Client } from './client.js';
import { cutPoints, cutsOf, fcParams, mkfsImage } from './helpers.js';
import { describeStop, expectedTrees, opArb, planWorkload, rebootAndCheck, runCalls, type Workload } from './workload.js';

const MiB = 1 << 20;

/**
 * Run the workload through the fs domain on the image file, the controller cutting power after
 * `cut` writes (none if undefined). Returns the writes the controller acknowledged and how many
 * calls returned before it dropped any.
 */
async function runWithCut(img: string, w: Workload, cut?: number): Promise<{ writes: number; returned: number }> {
  const s = await bootStorage({ image: img, physBytes: 64 * MiB, ...(cut !== undefined ? { powerCutAfterWrites: cut } : {}), log: () => {} });
  try {
    const c = new Client(s.kernel, bootFs(s.kernel, s.driverName));
    assert.equal(await c.fs.mount(), 0);
    const returned = await runCalls(c, w.calls, { undisturbed: () => s.dev.stats().writesDropped === 0 });
    const un = await c.fs.unmount();
    if (cut === undefined) assert.equal(un, 0);
    const fs = s.kernel.get('fs')!;
    assert.ok(fs.live && fs.faults === 0, 'the fs domain survives whatever the disk does');
    return { writes: s.dev.stats().writes, returned };
  } finally {
    await s.stop();
  }
}

const variants: Array<{ variant: Variant; bytes: number; runs: number }> = [
  { variant: 'xv6', bytes: 2 * MiB, runs: 5 },
  { variant: 'large', bytes: 16 * MiB, runs: 3 },
];

for (const { variant, bytes, runs } of variants) {
  const base = mkfsImage(variant, bytes);
  test(`power cut after the k-th device write (${variant}, nvme model on a file): recovery shows every returned call, nothing half-applied, fsck clean`, { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rl-powercut-'));
    const img = join(dir, 'fs.img');
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb(variant), { minLength: 6, maxLength: 16 }), cutPoints(3), async (ops, points) => {
          const w = planWorkload(ops, variant);
          writeFileSync(img, base);
          const ref = await runWithCut(img, w);
          assert.equal(ref.returned, w.calls.length);
          // The run's own write count is a cut too: the whole workload, nothing dropped.
          for (const k of new Set([...cutsOf(points, ref.writes), ref.writes])) {
            writeFileSync(img, base);
            const { returned } = await runWithCut(img, w, k);
            await rebootAndCheck(img, expectedTrees(w, returned), `cut after write ${k} of ${ref.writes}, ${describeStop(w, returned)}`);
          }
        }),
        // A failure shrinks for at most what is left of 150 s, so the report (seed, path) always comes out.
        fcParams(runs, { interruptAfterTimeLimit: 150_000 }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
