/**
 * fsck of an image whose log holds committed, not yet installed transactions (what a power cut
 * or a killed `redleaf boot` leaves, since the fs installs its log lazily): the image is checked
 * as the next mount's recovery will leave it — clean, with a warning naming the pending log, and
 * without fsck writing a byte. The same image with the log ignored is damaged (so the overlay is
 * what makes it clean, not luck), and a log header naming a block outside the fs is an error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { fsck } from '../../src/host/fsck.js';
import { mountRam, pendingLogImage, snapshot } from './helpers.js';

const SIZE = 16 << 20;

/** An image (both variants) left with a committed, uninstalled log by a workload that never syncs. */
const pendingImage = (variant: 'xv6' | 'large'): ReturnType<typeof pendingLogImage> => pendingLogImage(variant, SIZE);

const digest = (dev: RamBlockDevice): string => createHash('sha256').update(dev.readAt(0, SIZE)).digest('hex');

for (const variant of ['xv6', 'large'] as const) {
  test(`fsck (${variant}): a pending log is checked as recovered, clean, with a warning, and nothing written`, async () => {
    const { dev, logHeaderAt } = await pendingImage(variant);
    const before = digest(dev);
    const r = fsck(dev);
    assert.deepEqual(r.errors, []);
    assert.ok(r.ok);
    assert.ok(r.warnings.some((w) => /not yet installed/.test(w)), `warnings: ${r.warnings.join('; ')}`);
    assert.equal(r.stats.files, 5, 'the recovered image has the five files left');
    assert.ok(r.stats.dirs >= 2, 'the root and /d');
    assert.equal(digest(dev), before, 'fsck wrote to the image');

    // The overlay is what makes it clean: with the log header cleared, the home locations alone are
    // an older, inconsistent state (the directory names inodes whose blocks are not yet home, or
    // the bitmap disagrees) — or at least a different one.
    const raw = new RamBlockDevice(SIZE, 512);
    raw.writeAt(0, dev.readAt(0, SIZE));
    raw.writeAt(logHeaderAt, new Uint8Array(4)); // n = 0
    const stale = fsck(raw);
    assert.ok(!stale.ok || stale.stats.files !== 5 || stale.stats.usedBlocks !== r.stats.usedBlocks, 'ignoring the log should not give the recovered state');

    // And the state fsck checked is the one mount recovers.
    const recovered = await mountRam(dev); // replays the log on `dev`
    const after = fsck(dev);
    assert.ok(after.ok);
    assert.deepEqual(after.stats, r.stats);
    assert.ok(!after.warnings.some((w) => /not yet installed/.test(w)), 'mount installed the log');
    assert.ok((await snapshot(recovered)).size > 0);
  });
}

test('fsck: a log header naming a block outside the fs is an error, not applied', async () => {
  const { dev, logHeaderAt } = await pendingImage('large');
  const entry0 = new Uint8Array(4);
  new DataView(entry0.buffer).setUint32(0, 0xfffffff0, true); // a block far beyond the image
  dev.writeAt(logHeaderAt + 4, entry0);
  const r = fsck(dev);
  assert.ok(!r.ok);
  assert.ok(r.errors.some((e) => /log header: entry 0 names block 4294967280, outside/.test(e)), r.errors.join('; '));
});
