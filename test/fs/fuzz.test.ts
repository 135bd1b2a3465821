/**
 * Byte-level fuzzing at the layer level: random bytes of the superblock, inode blocks and directory
 * blocks; mount refuses or every operation fails with an errno code, fsck never throws. The
 * structured, through-the-domain counterpart is fuzz-domain.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { mkfs } from '../../src/host/mkfs.js';
import { fsck } from '../../src/host/fsck.js';
import { mountRam, snapshot, pattern, fcParams } from './helpers.js';

test('fuzzed superblock / inode / dirent bytes: mount refuses or ops fail with errno codes; fsck never throws', async () => {
  const base = new RamBlockDevice(2000 * 1024, 512);
  mkfs(base, { variant: 'xv6', blocks: 2000 });
  {
    const fs = await mountRam(base);
    await fs.mkdir('/d');
    for (let i = 0; i < 6; i++) await fs.writeFile(`/d/f${i}`, pattern(300 + i * 5000, i));
    await fs.unmount();
  }
  // Regions: superblock (1024..1056), inode blocks (32..45), root + /d directory blocks (data start).
  const region = fc.oneof(
    fc.integer({ min: 1024, max: 1055 }),
    fc.integer({ min: 32 * 1024, max: 34 * 1024 - 1 }),
    fc.integer({ min: 46 * 1024, max: 48 * 1024 - 1 }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(region, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), async (muts) => {
      const d = base.clone();
      for (const [off, v] of muts) d.writeAt(off, Uint8Array.of(v));
      const r = fsck(d);
      assert.equal(typeof r.ok, 'boolean');
      let fs;
      try {
        fs = await mountRam(d);
      } catch (e) {
        assert.ok((e as { code?: string }).code, String(e));
        return;
      }
      for (const op of [
        () => snapshot(fs),
        () => fs.writeFile('/d/new', pattern(5000, 1)),
        () => fs.unlink('/d/f1'),
        () => fs.mkdir('/e'),
        () => fs.truncate('/d/f5', 10),
      ]) {
        try { await op(); } catch (e) { assert.ok((e as { code?: string }).code, String((e as Error).stack)); }
      }
    }),
    fcParams(300),
  );
});
