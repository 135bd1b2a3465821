/**
 * A crashing block driver under the fs domain (nvme driver domain over the controller model on an
 * image file), during random write-heavy workloads (test/fs/workload.ts):
 *
 *  - behind the block shadow, faults injected into the driver at many points — at its n-th next
 *    call, over and over (re-armed after every restart), and at random moments while requests are
 *    in flight — are invisible: every call answers what the model expects, and after a reboot the
 *    tree is exactly the model's and the image fsck-clean;
 *  - without the shadow, one fault at the driver's n-th call (n over the whole run): the fs domain
 *    survives and answers -EIO (or what the model expects, for calls the cache alone serves); after
 *    restarting the driver and the fs domain, mount replays what committed: every call that returned
 *    before the crash is there, the call in flight before or after any of its transactions, nothing
 *    later; fsck is clean.
 *
 * A failure prints fast-check's seed and path: FS_SEED=<seed> FS_PATH=<path> reruns it (the
 * timed crashes of the shadow test are the only part not replayed exactly).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { bootStorage, type Storage } from '../../src/host/storage.js';
import { bootFs } from '../../src/host/bdev-image.js';
import type { Variant } from '../../src/domains/fs/format.js';
import { ERRNO, O_RDONLY, type Rv6Fs } from '../../src/interfaces/rv6.js';
import { Client } from './client.js';
import { assertClean, cutPoints, cutsOf, fcParams, mkfsImage, pattern, ramFs } from './helpers.js';
import { assertTreeIn, describeStop, expectedTrees, matches, opArb, planWorkload, rebootAndCheck, runCalls } from './workload.js';

const MiB = 1 << 20;
const variants: Array<{ variant: Variant; bytes: number }> = [
  { variant: 'xv6', bytes: 2 * MiB },
  { variant: 'large', bytes: 16 * MiB },
];

/** Boot the storage stack on `img` and the fs domain on it (behind the shadow or not); mounted. */
async function boot(img: string, shadow: boolean): Promise<{ s: Storage; c: Client }> {
  const s = await bootStorage({ image: img, physBytes: 64 * MiB, shadow, log: () => {} });
  const c = new Client(s.kernel, bootFs(s.kernel, s.shadowName ?? s.driverName));
  assert.equal(await c.fs.mount(), 0);
  return { s, c };
}

/** Run `body` with a fresh copy of the base image in a temporary directory. */
async function withImage(base: Uint8Array, body: (img: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rl-drvcrash-'));
  try {
    const img = join(dir, 'fs.img');
    writeFileSync(img, base);
    await body(img);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a dead driver under the fs (no shadow): every call answers -EIO or from the cache, nothing leaks, unmount frees every buffer', async () => {
  // Forty files read through a small cache, so that buffers are recycled (each went through a
  // driver request) before the driver dies and the reads that miss after it fail.
  const { dev, fs: hostFs } = await ramFs('xv6', 2 * MiB);
  await hostFs.mkdir('/d');
  const names = Array.from({ length: 40 }, (_, i) => `/d/f${i}`);
  for (const [i, n] of names.entries()) await hostFs.writeFile(n, pattern(700 + i, i));
  await hostFs.unmount();
  await withImage(dev.readAt(0, 2 * MiB), async (img) => {
    const s = await bootStorage({ image: img, physBytes: 64 * MiB, log: () => {} });
    try {
      const k = s.kernel;
      const c = new Client(k, bootFs(k, s.driverName, { nbuf: 16 }));
      assert.equal(await c.fs.mount(), 0);
      for (const [i, n] of names.entries()) assert.deepEqual(await c.readFile(n), pattern(700 + i, i));
      k.injectFault(s.driverName, 'now');
      const eio = -ERRNO.EIO;
      let failed = 0;
      for (const [i, n] of names.entries()) {
        const st = await c.stat(n);
        assert.ok(st.err === 0 || st.err === eio, `stat ${n}: ${st.err}`);
        const f = await c.fs.open(n, O_RDONLY, 0);
        if (f === eio) {
          failed++;
          continue;
        }
        assert.ok(f > 0, `open ${n}: ${f}`);
        const r = await c.read(f, 0, 4096);
        if (r === eio) failed++;
        else assert.deepEqual(r, pattern(700 + i, i), `read ${n}`);
        assert.equal(await c.fs.close(f), 0);
      }
      assert.ok(failed > 0, 'reads that miss the cache fail');
      assert.equal(await c.fs.mkdir('/e', 0), eio);
      assert.ok([0, eio].includes(await c.fs.unmount()));
      const fs = k.get('fs')!;
      assert.ok(fs.live && fs.faults === 0, 'the fs domain survives');
      assert.deepEqual(k.heap.usage(fs.id), { bytes: 0, slots: 0 }, 'unmount frees every buffer and request');
    } finally {
      await s.stop();
    }
  });
});

for (const { variant, bytes } of variants) {
  const base = mkfsImage(variant, bytes);

  test(`driver crashes behind the block shadow (${variant}): every call completes as if nothing happened; data exact, fsck clean`, { timeout: 240_000 }, async () => {
    let crashes = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb(variant), { minLength: 6, maxLength: 16 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 8 }),
        fc.option(fc.integer({ min: 5, max: 40 }), { nil: undefined }),
        async (ops, gaps, everyMs) => withImage(base, async (img) => {
          const w = planWorkload(ops, variant);
          const { s, c } = await boot(img, true);
          const k = s.kernel;
          const driver = (): { restarts: number; live: boolean } => k.get(s.driverName)!;
          // Crash at the gaps[i]-th next driver call, the next gap armed once the fresh instance runs.
          let next = 0;
          let armedAt = -1;
          const arm = (): void => {
            const d = driver();
            if (armedAt === d.restarts || !d.live || next >= gaps.length) return;
            k.injectFault(s.driverName, { afterCalls: gaps[next++]! });
            armedAt = d.restarts;
          };
          arm();
          // And, if chosen, at random moments: whatever requests are in flight then. A few only, each
          // once the fresh instance took a call, so that no request meets more restarts than the
          // shadow's retry limit (after which it answers -EIO by design), however slow the machine.
          let timedLeft = 4;
          const timer = everyMs === undefined ? null : setInterval(() => {
            const d = k.get(s.driverName)!;
            if (timedLeft > 0 && d.live && d.calls > 0) {
              timedLeft--;
              k.injectFault(s.driverName, 'now');
            }
          }, everyMs);
          try {
            assert.equal(await runCalls(c, w.calls, { afterCall: arm }), w.calls.length);
            assert.equal(await c.fs.sync(), 0);
          } finally {
            if (timer) clearInterval(timer);
          }
          try {
            assert.equal(await c.fs.unmount(), 0);
            crashes += driver().restarts;
            assert.equal(k.get('fs')!.faults, 0);
          } finally {
            await s.stop();
          }
          await rebootAndCheck(img, [w.states[w.calls.length]!], 'after the crashes');
        }),
      ),
      fcParams(3, { interruptAfterTimeLimit: 150_000 }),
    );
    assert.ok(crashes > 0, 'the driver crashed and was restarted');
  });

  test(`a driver crash without the shadow (${variant}): the fs answers -EIO and survives; remounted on a restarted driver, the log replays what committed`, { timeout: 240_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(variant), { minLength: 6, maxLength: 16 }), cutPoints(3), async (ops, points) => withImage(base, async (img) => {
        const w = planWorkload(ops, variant);
        // The whole run's driver calls, to crash anywhere in it.
        let total: number;
        {
          const { s, c } = await boot(img, false);
          try {
            const before = s.kernel.get(s.driverName)!.calls;
            assert.equal(await runCalls(c, w.calls), w.calls.length);
            assert.equal(await c.fs.unmount(), 0);
            total = s.kernel.get(s.driverName)!.calls - before;
          } finally {
            await s.stop();
          }
        }
        for (const n of cutsOf(points, Math.max(0, total - 1)).map((p) => p + 1)) {
          writeFileSync(img, base);
          const { s, c } = await boot(img, false);
          const k = s.kernel;
          try {
            k.injectFault(s.driverName, { afterCalls: n });
            const eio = -ERRNO.EIO;
            let first: number | undefined; // the answer of the call the crash hit
            const returned = await runCalls(c, w.calls, {
              undisturbed: () => k.get(s.driverName)!.live,
              disturbedOk: (call, r) => {
                first ??= r;
                return r === eio || matches(call, r);
              },
            });
            const what = `driver crash at its call ${n} of ${total}, ${describeStop(w, returned)}`;
            if (returned < w.calls.length) assert.equal(first, eio, `${what}: the call the crash hit answers -EIO`);
            const fs = k.get('fs')!;
            assert.ok(fs.live && fs.faults === 0, `${what}: the fs domain survives`);
            assert.ok([0, eio].includes(await c.fs.unmount()), `${what}: unmount`);
            // Restart the driver, and the fs domain (its import named the dead instance), and remount.
            k.restart(s.driverName);
            const c2 = new Client(k, k.bind<Rv6Fs>(k.restart('fs')));
            assert.equal(await c2.fs.mount(), 0, `${what}: mount on the restarted driver`);
            await assertTreeIn(c2, expectedTrees(w, returned), what);
            assert.equal(await c2.fs.unmount(), 0);
          } finally {
            await s.stop();
          }
          assertClean(img);
        }
      })),
      fcParams(3, { interruptAfterTimeLimit: 150_000 }),
    );
  });
}
