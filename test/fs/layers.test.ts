import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufCache } from '../../src/domains/fs/bio.js';
import { skipelem } from '../../src/domains/fs/path.js';
import { O_CREATE, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, FsError } from '../../src/domains/fs/fs.js';
import { LARGE, XV6 } from '../../src/domains/fs/format.js';
import { hostAlloc } from '../../src/host/bytes.js';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { fsck } from '../../src/host/fsck.js';
import { mkfs } from '../../src/host/mkfs.js';
import { ramFs, assertClean, assertCleanSynced, expectCode, pattern, mountRam } from './helpers.js';

test('bcache: O(1) hits, LRU eviction, waiting when all buffers are held', async () => {
  const dev = new RamBlockDevice(64 * 1024, 512);
  const bc = new BufCache(dev, hostAlloc, 1024, 4);
  for (const b of [0, 1, 2, 3]) bc.brelse(await bc.bread(b));
  assert.equal(bc.misses, 4);
  bc.brelse(await bc.bread(0));
  assert.equal(bc.hits, 1); // a cached, unlocked buffer comes back at once
  bc.brelse(await bc.bread(4)); // evicts 1 (least recently released)
  assert.equal(bc.peek(1), undefined);
  assert.ok(bc.peek(0));
  const held = await Promise.all([5, 6, 7, 8].map((b) => bc.bread(b)));
  let got = false;
  const p = Promise.resolve(bc.bread(9)).then((b) => { got = true; return b; });
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(got, false);
  bc.brelse(held[0]!);
  bc.brelse(await p);
  assert.equal(got, true);
  held.slice(1).forEach((b) => bc.brelse(b));
});

test('skipelem follows xv6', () => {
  assert.deepEqual(skipelem('a/bb/c'), { name: 'a', rest: 'bb/c' });
  assert.deepEqual(skipelem('///a//bb'), { name: 'a', rest: 'bb' });
  assert.deepEqual(skipelem('a'), { name: 'a', rest: '' });
  assert.equal(skipelem(''), null);
  assert.equal(skipelem('////'), null);
  assert.deepEqual(skipelem('a///'), { name: 'a', rest: '' });
});

test('bmap across direct / indirect / double / triple boundaries and truncation (large)', async () => {
  const { dev, fs } = await ramFs('large', 64 << 20);
  const g = LARGE, B = g.bsize, N = g.nindirect;
  const fbns = [0, g.ndirect - 1, g.ndirect, g.ndirect + N - 1, g.ndirect + N, g.ndirect + N + N * N - 1, g.ndirect + N + N * N, g.ndirect + N + N * N + 5 * N + 3];
  const f = await fs.open('/s', O_CREATE | O_RDWR);
  for (const [i, b] of fbns.entries()) await fs.write(f, b * B + 7, pattern(100, i));
  for (const [i, b] of fbns.entries()) {
    const r = new Uint8Array(100);
    await fs.read(f, b * B + 7, r);
    assert.deepEqual(r, pattern(100, i));
  }
  await assertCleanSynced(fs, dev, false);
  // Truncate step by step down through every boundary.
  for (let j = fbns.length - 1; j >= 0; j--) {
    await fs.ftruncate(f, fbns[j]! * B + 50);
    await assertCleanSynced(fs, dev, false);
    const r = new Uint8Array(43);
    await fs.read(f, fbns[j]! * B + 7, r);
    assert.deepEqual(r, pattern(100, j).subarray(0, 43));
  }
  await fs.ftruncate(f, 0);
  await fs.close(f);
  await assertCleanSynced(fs, dev, false);
  assert.equal(fsck(dev).stats.usedBlocks, 1); // only the root directory block
});

test('xv6 variant: 12 direct + 1 indirect, EFBIG past 268 blocks, truncation', async () => {
  const { dev, fs } = await ramFs('xv6', 2000 * 1024);
  const max = XV6.maxFileSize;
  const f = await fs.open('/f', O_CREATE | O_RDWR);
  assert.equal(await fs.write(f, 0, pattern(max, 1)), max);
  await expectCode(fs.write(f, max, new Uint8Array(1)), 'EFBIG');
  assert.equal(await fs.write(f, max - 10, new Uint8Array(20)), 10);
  await fs.ftruncate(f, 12 * 1024 + 1);
  await assertCleanSynced(fs, dev, false);
  await fs.ftruncate(f, 20000); // grows with zeros (no holes in xv6)
  const r = new Uint8Array(20000);
  await fs.read(f, 0, r);
  assert.deepEqual(r.subarray(0, 12 * 1024 + 1), pattern(max, 1).subarray(0, 12 * 1024 + 1));
  assert.ok(r.subarray(12 * 1024 + 1).every((v) => v === 0));
  await fs.close(f);
  await fs.sync();
  assert.equal(fsck(dev).warnings.length, 0);
  assertClean(dev, false);
});

test('directories with many entries: create, lookup, unlink, slot reuse', async () => {
  const { dev, fs } = await ramFs('xv6', 2000 * 1024);
  await fs.mkdir('/d');
  for (let i = 0; i < 150; i++) await fs.writeFile(`/d/file${i}`, pattern(10, i));
  assert.equal((await fs.readdir('/d')).length, 152);
  for (let i = 0; i < 150; i += 2) await fs.unlink(`/d/file${i}`);
  const sizeBefore = (await fs.stat('/d')).size;
  for (let i = 0; i < 150; i += 2) await fs.writeFile(`/d/new${i}`, pattern(5, i));
  assert.equal((await fs.stat('/d')).size, sizeBefore);
  for (let i = 1; i < 150; i += 2) assert.deepEqual(await fs.readFile(`/d/file${i}`), pattern(10, i));
  await assertCleanSynced(fs, dev, false);
});

test('path edge cases', async () => {
  const { fs } = await ramFs('xv6', 2000 * 1024);
  await fs.mkdir('/a');
  await fs.mkdir('/a/b');
  await fs.writeFile('/a/b/c', pattern(3, 3));
  assert.deepEqual(await fs.readFile('//a///b//c'), pattern(3, 3));
  assert.deepEqual(await fs.readFile('/a/./b/../b/c'), pattern(3, 3));
  assert.equal((await fs.stat('/a/b/')).type, 1);
  assert.equal((await fs.stat('/')).ino, 1);
  assert.equal((await fs.stat('/..')).ino, 1);
  const cwd = await fs.open('/a', O_RDONLY);
  assert.deepEqual(await fs.readFile('b/c', cwd), pattern(3, 3));
  assert.equal(await fs.lookup('..', cwd), 1);
  await fs.close(cwd);
  await fs.writeFile('/abcdefghijklmn', pattern(1, 1)); // exactly DIRSIZ
  assert.deepEqual(await fs.readFile('/abcdefghijklmn'), pattern(1, 1));
  await expectCode(fs.stat('/abcdefghijklmno'), 'ENAMETOOLONG');
});

test('every errno path', async () => {
  const { fs } = await ramFs('xv6', 200 * 1024, { inodes: 16 });
  await fs.mkdir('/d');
  await fs.writeFile('/f', pattern(10, 1));
  await expectCode(fs.stat('/nope'), 'ENOENT');
  await expectCode(fs.stat(''), 'ENOENT');
  await expectCode(fs.open('/nope/x', O_CREATE | O_RDWR), 'ENOENT');
  await expectCode(fs.mkdir('/d'), 'EEXIST');
  await expectCode(fs.mkdir('/'), 'EEXIST');
  await expectCode(fs.open('/f', O_CREATE | O_EXCL | O_RDWR), 'EEXIST');
  await expectCode(fs.link('/f', '/d/../f'), 'EEXIST');
  await expectCode(fs.stat('/f/x'), 'ENOTDIR');
  await expectCode(fs.rmdir('/f'), 'ENOTDIR');
  await expectCode(fs.readdir('/f'), 'ENOTDIR');
  await expectCode(fs.open('/d', O_RDWR), 'EISDIR');
  await expectCode(fs.open('/d', O_CREATE | O_RDWR), 'EISDIR');
  await expectCode(fs.open('/d', O_RDONLY | O_TRUNC), 'EISDIR'); // as Linux (it opened the directory)
  await expectCode(fs.unlink('/d'), 'EISDIR');
  await expectCode(fs.truncate('/d', 0), 'EISDIR');
  await fs.writeFile('/d/x', pattern(1, 1));
  await expectCode(fs.rmdir('/d'), 'ENOTEMPTY');
  await expectCode(fs.stat('/' + 'x'.repeat(15)), 'ENAMETOOLONG');
  await expectCode(fs.mkdir('/d/' + 'x'.repeat(15)), 'ENAMETOOLONG');
  await expectCode(fs.rmdir('/d/.'), 'EINVAL');
  await expectCode(fs.unlink('/d/.'), 'EISDIR'); // as Linux (it was EINVAL, rmdir's answer)
  await expectCode(fs.unlink('/d/..'), 'EISDIR');
  await expectCode(fs.rmdir('/d/..'), 'ENOTEMPTY');
  await expectCode(fs.rmdir('/'), 'EBUSY');
  await expectCode(fs.link('/d', '/d2'), 'EPERM');
  const f = await fs.open('/f', O_RDONLY);
  await expectCode(fs.write(f, 0, pattern(1, 1)), 'EBADF');
  await expectCode(fs.read(f, -1, new Uint8Array(1)), 'EINVAL');
  await fs.close(f);
  await expectCode(fs.close(f), 'EBADF');
  await expectCode(fs.read(f, 0, new Uint8Array(1)), 'EBADF');
  const w = await fs.open('/f', O_WRONLY);
  await expectCode(fs.read(w, 0, new Uint8Array(1)), 'EBADF');
  await expectCode(fs.ftruncate(w, -1), 'EINVAL');
  await expectCode(fs.write(w, XV6.maxFileSize, pattern(1, 1)), 'EFBIG');
  await expectCode(fs.ftruncate(w, XV6.maxFileSize + 1), 'EFBIG');
  await fs.close(w);
  // ENOSPC: inodes (16 inodes, 3 used)
  let err: unknown = null;
  try { for (let i = 0; i < 20; i++) await fs.writeFile(`/i${i}`, new Uint8Array(0)); } catch (e) { err = e; }
  assert.ok(err instanceof FsError && err.code === 'ENOSPC', String(err));
  for (let i = 0; i < 20; i++) await fs.unlink(`/i${i}`).catch(() => undefined);
  // ENOSPC: blocks (200 blocks image)
  const g = await fs.open('/g', O_CREATE | O_RDWR);
  let n = 0;
  try { for (;;) { const r = await fs.write(g, n, pattern(3072, n)); n += r; if (r < 3072) break; } } catch (e) { err = e; }
  await expectCode(fs.write(g, n, pattern(3072, 1)), 'ENOSPC');
  await fs.close(g);
  // EMLINK
  const { fs: fs2 } = await ramFs('large', 8 << 20);
  await fs2.writeFile('/t', pattern(1, 1));
  const ip = await fs2.open('/t', O_RDWR);
  (ip.ip as { nlink: number }).nlink = 32767;
  await expectCode(fs2.link('/t', '/t2'), 'EMLINK');
  await fs2.close(ip);
});

test('link reports the new name\'s errors before EPERM for a directory and EMLINK (Linux\'s do_linkat order)', async () => {
  // Checked on Linux 6.18: filename_create(new) comes before vfs_link's EPERM and EMLINK.
  const { fs } = await ramFs('large', 8 << 20);
  await fs.mkdir('/d');
  await fs.writeFile('/f', pattern(1, 1));
  await fs.writeFile('/t', pattern(1, 2));
  const t = await fs.open('/t', O_RDWR);
  (t.ip as { nlink: number }).nlink = 32767;
  for (const old of ['/d', '/t']) {
    await expectCode(fs.link(old, '/f'), 'EEXIST');
    await expectCode(fs.link(old, '/d'), 'EEXIST');
    await expectCode(fs.link(old, '/nodir/x'), 'ENOENT');
    await expectCode(fs.link(old, '/f/x'), 'ENOTDIR');
    await expectCode(fs.link(old, '/x/'), 'ENOENT');
    await expectCode(fs.link(old, '/' + 'x'.repeat(40)), 'ENAMETOOLONG');
  }
  await expectCode(fs.link('/d', '/x'), 'EPERM');
  await expectCode(fs.link('/t', '/x'), 'EMLINK');
  assert.equal(t.ip.nlink, 32767, 'the refused links left the count as it was');
  (t.ip as { nlink: number }).nlink = 1;
  await fs.close(t);
  await fs.link('/f', '/x');
  assert.equal((await fs.stat('/f')).nlink, 2);
  await expectCode(fs.stat('/d/x'), 'ENOENT');
});

test('mount refuses bad superblocks with clear messages', async () => {
  const dev = new RamBlockDevice(2000 * 1024, 512);
  mkfs(dev, { variant: 'xv6', blocks: 2000 });
  const bad = async (off: number, v: number, re: RegExp): Promise<void> => {
    const d = dev.clone();
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    d.writeAt(1024 + off, b);
    await assert.rejects(mountRam(d), (e: FsError) => e.code === 'EUCLEAN' && re.test(e.message));
    assert.equal(fsck(d).ok, false);
  };
  await bad(0, 0xdeadbeef, /superblock: bad magic 0xdeadbeef/);
  await bad(4, 5000, /beyond image size/);
  await bad(24, 1999, /inodestart|bmapstart/);
  await bad(16, 1, /nlog/);
  await bad(28, 3000, /bmapstart .* beyond image size/);
  await bad(12, 0, /ninodes/);
  const m = await mountRam(dev);
  assert.ok(m);
});
