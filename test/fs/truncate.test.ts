/**
 * Truncation to a size inside a block, then growth: the bytes past the new end must read as zeros
 * when the file grows again (POSIX ftruncate), whether it grows by truncating up (a hole in the
 * large variant, zeros written in the xv6 variant) or by a write past its end — not as what the
 * file held before it shrank. Checked live, after a remount (the log replayed) and with fsck.
 *
 * Also: open(O_TRUNC) of a file too scattered to free in one transaction, while another call
 * waits for the file's inode, completes (it once cycled transactions holding the inode's lock,
 * waiting for log room the waiting call's open op kept from being committed: the fs hung).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { O_CREATE, O_RDWR, O_TRUNC, O_WRONLY } from '../../src/domains/fs/fs.js';
import { XV6 } from '../../src/domains/fs/format.js';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { mkfs } from '../../src/host/mkfs.js';
import { assertCleanSynced, fragmentBitmaps, mountRam, pattern, ramFs } from './helpers.js';
import { within } from '../within.js';

for (const variant of ['xv6', 'large'] as const) {
  test(`truncate into a block, then grow (${variant}): the bytes past the old end read as zeros`, async () => {
    const { dev, fs } = await ramFs(variant, variant === 'xv6' ? 2 << 20 : 16 << 20);
    const bs = variant === 'xv6' ? 1024 : 4096;
    // Each case cuts the file to `cut` bytes, then grows it to `size`, the last bytes `tail`
    // written by the growing call (none for a truncation up).
    type File = Awaited<ReturnType<typeof fs.open>>;
    const tail = pattern(3, 99);
    const cases: Array<{ name: string; cut: number; size: number; grow: (f: File, size: number) => Promise<unknown>; written: boolean }> = [
      { name: 'truncate up', cut: 1, size: 3 * bs, grow: (f, size) => fs.ftruncate(f, size), written: false },
      { name: 'truncate up within the block', cut: bs + 7, size: 2 * bs - 1, grow: (f, size) => fs.ftruncate(f, size), written: false },
      { name: 'write past the end', cut: 100, size: 2 * bs + 8, grow: (f, size) => fs.write(f, size - 3, tail), written: true },
      { name: 'write past the end within the block', cut: 2 * bs + 10, size: 2 * bs + 53, grow: (f, size) => fs.write(f, size - 3, tail), written: true },
    ];
    const expected = new Map<string, Uint8Array>();
    for (const [i, c] of cases.entries()) {
      const path = `/f${i}`;
      const old = pattern(3 * bs, i + 1); // a stale byte past the cut shows wherever this is not 0
      const f = await fs.open(path, O_CREATE | O_RDWR);
      await fs.write(f, 0, old);
      await fs.ftruncate(f, c.cut);
      await c.grow(f, c.size);
      await fs.close(f);
      const want = new Uint8Array(c.size);
      want.set(old.subarray(0, c.cut));
      if (c.written) want.set(tail, c.size - 3);
      const back = await fs.readFile(path);
      assert.equal(back.length, c.size, c.name);
      const stale = back.findIndex((b, k) => b !== want[k]);
      assert.equal(stale, -1, `${c.name}: byte ${stale} is ${back[stale]}, expected ${want[stale]}`);
      expected.set(path, want);
    }
    await assertCleanSynced(fs, dev, false);
    await fs.unmount();
    const fs2 = await mountRam(dev);
    for (const [path, want] of expected) assert.deepEqual(await fs2.readFile(path), want, `${path} after a remount`);
    await fs2.unmount();
  });
}

test('open(O_TRUNC) of a file freed in several transactions, while a stat of it waits, does not hang the fs', async () => {
  const g = XV6;
  const nbitmap = 16; // 128 MiB, sparse in RAM: the file's 15 data blocks and its indirect block lie in 16 bitmap blocks
  const size = nbitmap * g.bpb * g.bsize;
  const dev = new RamBlockDevice(size, 512);
  mkfs(dev, { variant: 'xv6', sizeBytes: size });
  fragmentBitmaps(dev, g, nbitmap);
  const fs = await mountRam(dev);
  const f = await fs.open('/t', O_CREATE | O_RDWR);
  assert.equal(await fs.write(f, 0, pattern((nbitmap - 1) * g.bsize, 1)), (nbitmap - 1) * g.bsize);
  assert.equal((await fs.statfs()).freeBlocks, 0);
  await fs.close(f);
  const truncating = fs.open('/t', O_WRONLY | O_TRUNC);
  const statting = fs.stat('/t');
  const [t] = await within(Promise.all([truncating, statting]), 5000, () => 'open(O_TRUNC) and stat of the file never finished');
  assert.equal((await fs.fstat(t)).size, 0);
  assert.equal((await fs.statfs()).freeBlocks, nbitmap, 'every block is free again');
  await fs.close(t);
  await fs.unmount(); // (no fsck: the blocks marked in use to scatter the file are in no file)
  const fs2 = await mountRam(dev);
  assert.equal((await fs2.stat('/t')).size, 0, 'after a remount');
  await fs2.unmount();
});
