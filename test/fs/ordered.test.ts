/**
 * Ordered-mode file data and the lazily installed log (log.ts, InodeLayer.writei): the rule for
 * which data blocks may be written in place, and power cuts at every device write of a workload
 * that exercises it — appends (in place, from a Uint8Array through the cache and straight from an
 * exchange-heap buffer), overwrites (logged), a full disk, reuse of blocks whose free committed
 * (one of them still named by the uninstalled log) and of blocks freed by the same group, syncs. After each cut, remount (recovery) must give an
 * fsck-clean image holding the state after the last returned op, or after the one in flight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FsError, O_CREATE, O_RDWR, type FileSystem } from '../../src/domains/fs/fs.js';
import { hostAlloc } from '../../src/host/bytes.js';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { mkfs } from '../../src/host/mkfs.js';
import { assertClean, cutStateMatches, mountRam, pattern, PowerCutDevice, ramFs, referenceRecorder, snapshot } from './helpers.js';

test('in-place rule: only blocks allocated by the open group, not freed in it, not named by the log', async () => {
  const { fs } = await ramFs('large', 16 << 20);
  const log = fs.log;
  await log.beginOp();
  log.noteAllocated(5000);
  assert.equal(log.mayWriteInPlace(5000), true, 'allocated by the open group');
  log.noteFreed(5001);
  log.noteAllocated(5001);
  assert.equal(log.mayWriteInPlace(5001), false, 'freed by the open group: its old owner may come back after a crash');
  assert.equal(log.mayWriteInPlace(5002), false, 'never allocated by the open group');
  await log.endOp();
  assert.equal(log.mayWriteInPlace(5000), false, 'the group committed: the block is part of durable state now');

  // A block the uninstalled log names (an indirect block, say) is not written in place even when
  // freed and reallocated later: recovery would install the log's old copy over it.
  const f = await fs.open('/f', O_CREATE | O_RDWR);
  const bs = fs.g.bsize;
  await fs.write(f, fs.g.ndirect * bs, pattern(10, 1)); // allocates the indirect block, logged
  await fs.ftruncate(f, 0); // frees it (committed), still named by the log
  assert.ok(fs.log.uninstalled > 0);
  const ind = fs.layout.datastart; // first data blocks: the root directory's, then the file's
  await log.beginOp();
  for (let b = ind; b < ind + 4; b++) log.noteAllocated(b);
  const named = [0, 1, 2, 3].filter((i) => !log.mayWriteInPlace(ind + i));
  await log.endOp();
  assert.ok(named.length >= 2, 'the root directory block and the freed indirect block are named by the log');
  await fs.close(f);
  await fs.unmount();
});

/**
 * A step of the workload: calls on the fs, `rec()` after each call that may write (the reference
 * run snapshots the state there). Every call is one transaction, except where steps say otherwise.
 */
type Step = (fs: FileSystem, rec: () => Promise<void>) => Promise<void>;

function workload(bs: number): Step[] {
  /** Write `data` at `off` of `path` (created if missing): one call, or one call per whole block from an exchange-heap buffer. */
  const write = async (fs: FileSystem, rec: () => Promise<void>, path: string, off: number, data: Uint8Array, exchange = false): Promise<void> => {
    const f = await fs.open(path, O_CREATE | O_RDWR);
    await rec();
    try {
      if (!exchange) {
        assert.equal(await fs.write(f, off, data), data.length);
        await rec();
        return;
      }
      // Whole blocks from an exchange-heap buffer: the path straight to the device.
      for (let i = 0; i < data.length; i += bs) {
        const b = hostAlloc(bs);
        b.write(0, data, i, bs);
        assert.equal(await fs.write(f, off + i, b), bs);
        await rec();
      }
    } finally {
      await fs.close(f);
    }
  };
  const one = (call: (fs: FileSystem) => Promise<void>): Step => async (fs, rec) => {
    await call(fs);
    await rec();
  };
  return [
    one((fs) => fs.mkdir('/d')),
    (fs, rec) => write(fs, rec, '/d/a', 0, pattern(3 * bs, 1), true), // appends, straight from the buffer
    (fs, rec) => write(fs, rec, '/d/b', 0, pattern(2 * bs + 100, 3)), // appends through the cache, a partial block
    (fs, rec) => write(fs, rec, '/d/b', 2 * bs + 100, pattern(50, 4)), // append into a block of an earlier transaction
    async (fs, rec) => {
      // Fill the disk, so that the next-fit allocator must reuse freed blocks from now on.
      const free = (await fs.statfs()).freeBlocks;
      const bytes = (free > fs.g.ndirect ? free - 1 : free) * bs; // minus its indirect block
      const f = await fs.open('/fill', O_CREATE | O_RDWR);
      await rec();
      for (let off = 0; off < bytes; off += fs.maxOpBytes) {
        const n = Math.min(fs.maxOpBytes, bytes - off);
        assert.equal(await fs.write(f, off, pattern(n, off)), n);
        await rec();
      }
      await fs.close(f);
      assert.equal((await fs.statfs()).freeBlocks, 0);
    },
    one((fs) => fs.sync()), // installs the log: what follows stays in it until the end
    (fs, rec) => write(fs, rec, '/d/a', bs, pattern(bs, 2)), // overwrite: logged
    one((fs) => fs.truncate('/d/a', 0)), // frees /d/a's blocks, one of them named by the log (the overwrite)
    // Reuses /d/a's blocks (their free committed): in place, but the one the log names is logged.
    (fs, rec) => write(fs, rec, '/d/c', 0, pattern(3 * bs, 5), true),
    one((fs) => fs.sync()), // room in the log for the op held open below
    (fs, rec) => write(fs, rec, '/d/e', 0, new Uint8Array(0)),
    async (fs, rec) => {
      // One group (an op held open around two calls, as concurrent calls would): unlink frees
      // /d/b's blocks, the write reuses them — logged, not in place, since the free is not durable.
      const f = await fs.open('/d/e', O_RDWR);
      await fs.log.beginOp();
      await fs.unlink('/d/b');
      assert.equal(await fs.write(f, 0, pattern(2 * bs, 6)), 2 * bs);
      await fs.log.endOp();
      await fs.close(f);
      await rec();
    },
    (fs, rec) => write(fs, rec, '/d/c', 0, pattern(bs, 7), true), // overwrite of a whole block from a buffer: logged
    one((fs) => fs.unlink('/d/a')),
  ];
}

for (const variant of ['xv6', 'large'] as const) {
  test(`ordered mode (${variant}): a power cut at every device write leaves a clean image with every returned op`, async () => {
    // Small images (about 150 data blocks, 110 for large), so that filling them is quick; a log
    // that admits two ops at once (the large variant's are up to 64 blocks each).
    const size = variant === 'xv6' ? 200 * 1024 : 1280 * 1024;
    const base = new RamBlockDevice(size, 512);
    mkfs(base, { variant, sizeBytes: size, ...(variant === 'large' ? { nlog: 200, inodes: 64 } : { inodes: 32 }) });
    const steps = workload(variant === 'xv6' ? 1024 : 4096);

    // Reference run: the state after each call that wrote, and the device writes by then.
    const ref = new PowerCutDevice(base.clone());
    const rfs = await mountRam(ref);
    const { states, doneAt, record } = await referenceRecorder(rfs, ref);
    for (const step of steps) await step(rfs, record);

    assert.ok(states.length > steps.length, `${states.length} states recorded`);
    for (let k = 0; k <= ref.writes; k++) {
      const raw = base.clone();
      const cfs = await mountRam(new PowerCutDevice(raw, k));
      try {
        for (const step of steps) await step(cfs, async () => undefined);
      } catch (e) {
        // After the cut the disk lags the fs's memory: a block re-read from it may be stale.
        if (!(e instanceof FsError) && !(e instanceof assert.AssertionError)) throw e;
      }
      const fs2 = await mountRam(raw);
      assertClean(raw);
      const { ok, i } = cutStateMatches(states, doneAt, k, await snapshot(fs2));
      assert.ok(ok, `cut at write ${k}/${ref.writes}: the state after call ${i} (or ${i + 1}) expected`);
    }
  });
}
