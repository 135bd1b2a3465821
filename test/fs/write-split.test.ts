/**
 * The write path's transaction bound (fs.ts maxOpBytes, writeOpBlocks): however a write falls, no
 * transaction it makes logs more than MAXOPBLOCKS blocks, the budget every outstanding op is
 * admitted with (log.ts beginOp).
 *
 * The worst case is built for real on a sparse 5 GiB large-variant RAM image: a write that starts
 * mid-block just below the triply indirect tree (5 new indirect blocks), whose every allocated
 * block lies in its own bitmap block and is still named by the uninstalled log, so its data is
 * logged rather than written in place. The commit sizes are read off the device: a commit writes
 * its blocks into the log area in one transfer.
 *
 * Truncation's steps (inode.ts itrunc) obey the same bound: a file whose every block lies in a
 * bitmap block of its own, on a 10 GiB image, is shrunk and unlinked in several transactions,
 * the largest step built to log all it can besides bitmap blocks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileSystem, maxOpBytes, O_CREATE, O_RDWR, writeOpBlocks } from '../../src/domains/fs/fs.js';
import { LARGE, XV6 } from '../../src/domains/fs/format.js';
import type { DmaBytes } from '../../src/runtime/types.js';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { mkfs } from '../../src/host/mkfs.js';
import { fragmentBitmaps, mountRam, pattern, superblockOf } from './helpers.js';

const SECTOR = 512;

/** RamBlockDevice that remembers the largest single write into sectors [lo, hi) (the log area). */
class LogWatch extends RamBlockDevice {
  lo = 0;
  hi = 0;
  largest = 0;
  override async write(lba: number, buf: DmaBytes, count = 1): Promise<DmaBytes> {
    if (lba >= this.lo && lba < this.hi) this.largest = Math.max(this.largest, count);
    return super.write(lba, buf, count);
  }
}

test('the split bound keeps the worst case within MAXOPBLOCKS, and stays xv6 filewrite\'s on small images', () => {
  for (const g of [XV6, LARGE]) {
    const xv6Formula = Math.floor((g.maxOpBlocks - 4) / 2) * g.bsize;
    assert.equal(maxOpBytes(g, 1), xv6Formula, `${g.variant}: one bitmap block`);
    for (let nbitmap = 1; nbitmap <= 64; nbitmap++) {
      const blocks = maxOpBytes(g, nbitmap) / g.bsize;
      assert.ok(writeOpBlocks(g, nbitmap, blocks + 1) <= g.maxOpBlocks, `${g.variant}, ${nbitmap} bitmap blocks`);
    }
  }
  assert.equal(maxOpBytes(LARGE, 27), 30 * 4096, 'up to 27 bitmap blocks: 30 blocks as before');
  assert.equal(maxOpBytes(LARGE, 40), 25 * 4096);
});

/**
 * A sparse large-variant RAM image of `nbitmap` bitmap blocks (128 MiB each) whose data area has
 * one free block per bitmap block, everything else in use: every block allocated then lies in its
 * own bitmap block. Mounted, with the device watching the log area's writes (`dev.largest` in
 * sectors; `spb` sectors per block).
 */
async function fragmentedImage(nbitmap: number): Promise<{ dev: LogWatch; fs: FileSystem; spb: number }> {
  const g = LARGE;
  const bs = g.bsize;
  const size = nbitmap * g.bpb * bs;
  const dev = new LogWatch(size, SECTOR);
  mkfs(dev, { variant: 'large', sizeBytes: size, inodes: 64, nlog: 1024 });
  const { logstart, nlog } = superblockOf(dev, g);
  const spb = bs / SECTOR;
  dev.lo = (logstart + 1) * spb;
  dev.hi = (logstart + nlog) * spb;
  fragmentBitmaps(dev, g, nbitmap);
  const fs = await mountRam(dev);
  assert.ok(fs.log.uninstalled === 0);
  return { dev, fs, spb };
}

test('large variant: a write just below the triply indirect tree on a fragmented disk commits at most MAXOPBLOCKS per transaction', async () => {
  const g = LARGE;
  const bs = g.bsize;
  const nbitmap = 40; // 5 GiB, sparse in RAM
  const { dev, fs, spb } = await fragmentedImage(nbitmap);

  // File a takes every free block (24 direct, its singly indirect block, 15 more), is overwritten
  // (its data blocks logged now), then unlinked: every free block is named by the uninstalled log,
  // so whatever is allocated next is logged, not written in place.
  const aData = nbitmap - 1;
  const a = await fs.open('/a', O_CREATE | O_RDWR);
  assert.equal(await fs.write(a, 0, pattern(aData * bs, 1)), aData * bs);
  assert.equal(await fs.write(a, 0, pattern(aData * bs, 2)), aData * bs);
  await fs.close(a);
  await fs.unlink('/a');

  // File b: 30 blocks' worth (xv6 filewrite's bound for this variant) from mid-block, 15 blocks
  // below the first triply indirect block: 31 data blocks, the doubly root and a leaf under it,
  // the triply root, a middle block and a leaf, the inode, one bitmap block for each of the 36.
  const firstTriply = g.ndirect + g.nindirect + g.nindirect * g.nindirect;
  const off = (firstTriply - 15) * bs + 100;
  const data = pattern(30 * bs, 3);
  dev.largest = 0;
  const b = await fs.open('/b', O_CREATE | O_RDWR);
  assert.equal(await fs.write(b, off, data), data.length);
  assert.ok(fs.log.uninstalled > 0, 'the freed blocks were still named by the log (the case built)');
  const largest = dev.largest / spb;
  assert.ok(largest <= g.maxOpBlocks, `a transaction logged ${largest} blocks, more than MAXOPBLOCKS ${g.maxOpBlocks}`);

  // The data is all there, and the hole before it reads as zeros.
  const back = new Uint8Array(data.length + 100);
  assert.equal(await fs.read(b, off - 100, back), back.length);
  assert.ok(back.subarray(0, 100).every((x) => x === 0));
  assert.ok(Buffer.from(back.subarray(100)).equals(Buffer.from(data)));
  await fs.close(b);
  await fs.unmount();
});

test('large variant: truncating a file scattered over more bitmap blocks than a transaction may log takes steps of at most MAXOPBLOCKS', async () => {
  const g = LARGE;
  const bs = g.bsize;
  const nbitmap = 80; // 10 GiB, sparse in RAM
  const { dev, fs, spb } = await fragmentedImage(nbitmap);
  assert.equal((await fs.statfs()).freeBlocks, nbitmap);

  // Subtrees of the triply indirect tree (each under a middle indirect block of its own): 0..8
  // with two leaves of two data blocks each (7 blocks), 9..11 with one leaf of one block (3).
  // With the triply root, 73 blocks, each in a bitmap block of its own: freeing them logs one
  // bitmap block each. ftruncate's first step (a budget of 55 bitmap blocks, inode.ts itrunc)
  // frees subtrees 11 down to 3 and stops in subtree 2's first leaf after freeing one of its
  // blocks, so that the step also rewrites all three indirect blocks on its path: the most any
  // step logs besides bitmap blocks (59 blocks in all).
  const firstTriply = g.ndirect + g.nindirect + g.nindirect * g.nindirect;
  const at = (sub: number, leaf: number, i: number): number => firstTriply + sub * g.nindirect * g.nindirect + leaf * g.nindirect + i;
  const blocks: number[] = [];
  for (let sub = 0; sub < 12; sub++) {
    for (const [leaf, i] of sub < 9 ? [[0, 0], [0, 1], [1, 0], [1, 1]] : [[0, 0]]) blocks.push(at(sub, leaf!, i!));
  }
  const f = await fs.open('/t', O_CREATE | O_RDWR);
  const scatter = async (): Promise<void> => {
    for (const [n, fbn] of blocks.entries()) assert.equal(await fs.write(f, fbn * bs, pattern(bs, n + 1)), bs);
  };
  /** Run `op`, checking that it commits in at least two transactions of at most MAXOPBLOCKS blocks each. */
  const inSteps = async (what: string, op: () => Promise<void>): Promise<void> => {
    dev.largest = 0;
    const commits = fs.log.commits;
    await op();
    assert.ok(fs.log.commits - commits >= 2, `${what}: took more than one transaction (the case built)`);
    const largest = dev.largest / spb;
    assert.ok(largest <= g.maxOpBlocks, `${what}: a transaction logged ${largest} blocks, more than MAXOPBLOCKS ${g.maxOpBlocks}`);
  };
  await scatter();
  assert.equal((await fs.statfs()).freeBlocks, nbitmap - 73);

  // Shrink to 100 bytes into the file's first block in the tree: its tail zeroed, the path to it
  // kept and rewritten, everything above it freed.
  const len = at(0, 0, 0) * bs + 100;
  await inSteps('ftruncate', () => fs.ftruncate(f, len));
  assert.equal((await fs.fstat(f)).size, len);
  assert.equal((await fs.statfs()).freeBlocks, nbitmap - 4, 'the triply root, a middle, a leaf and a data block are left');
  const back = new Uint8Array(bs);
  assert.equal(await fs.read(f, at(0, 0, 0) * bs, back), 100);
  assert.ok(Buffer.from(back.subarray(0, 100)).equals(Buffer.from(pattern(bs, 1).subarray(0, 100))), 'the kept bytes are intact');

  // Unlinking it whole once it is scattered again: the unlink and the first step of freeing it
  // share a transaction (iput in the unlink's op).
  await scatter();
  await fs.close(f);
  await inSteps('unlink', () => fs.unlink('/t'));
  assert.equal((await fs.statfs()).freeBlocks, nbitmap, 'every block is free again');
  await fs.unmount();
});
