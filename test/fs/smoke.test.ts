import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ramFs, assertCleanSynced, snapshot, pattern, mountRam, expectCode, settle } from './helpers.js';
import { O_CREATE, O_RDONLY, O_RDWR, type FileSystem } from '../../src/domains/fs/fs.js';

for (const variant of ['xv6', 'large'] as const) {
  test(`smoke ${variant}: create, write, read, mkdir, unlink, remount, fsck`, async () => {
    const { dev, fs } = await ramFs(variant, variant === 'xv6' ? 2000 * 1024 : 64 << 20);
    await fs.mkdir('/a');
    await fs.mkdir('/a/b');
    const data = pattern(variant === 'xv6' ? 200_000 : 3_000_000, 7);
    await fs.writeFile('/a/b/f', data);
    assert.deepEqual(await fs.readFile('/a/b/f'), data);
    const f = await fs.open('/x', O_CREATE | O_RDWR);
    await fs.write(f, 0, pattern(100, 1));
    await fs.close(f);
    await fs.unlink('/x');
    await assertCleanSynced(fs, dev, false);
    await fs.unmount();
    const fs2 = await mountRam(dev);
    const snap = await snapshot(fs2);
    assert.deepEqual([...snap.keys()].sort(), ['/a', '/a/b', '/a/b/f']);
    assert.deepEqual(await fs2.readFile('/a/b/f'), data);
    await fs2.truncate('/a/b/f', 10);
    assert.equal((await fs2.stat('/a/b/f')).size, 10);
    await fs2.unlink('/a/b/f');
    await fs2.rmdir('/a/b');
    await assertCleanSynced(fs2, dev, false);
  });
}

test('close while calls use the file: they complete, new ones are refused, and an unlinked file is freed after them', async () => {
  const { dev, fs } = await ramFs('large', 16 << 20);
  const data = pattern(1 << 20, 3);
  const free = (await fs.statfs()).freeBlocks;
  const f = await fs.open('/f', O_CREATE | O_RDWR);
  await fs.unlink('/f'); // its close frees it
  const writing = fs.write(f, 0, data); // many transactions
  const closing = fs.close(f);
  await assert.rejects(fs.write(f, 0, data), (e: unknown) => (e as { code?: string }).code === 'EBADF', 'a closed file takes no new call');
  assert.equal(await writing, data.length, 'the write in flight completes');
  await closing;
  assert.equal((await fs.statfs()).freeBlocks, free, 'every block the write allocated was freed with the file');
  await assertCleanSynced(fs, dev, false); // no orphan

  const g = await fs.open('/g', O_CREATE | O_RDWR);
  await fs.write(g, 0, data);
  const buf = new Uint8Array(data.length);
  const reading = fs.read(g, 0, buf);
  await fs.close(g);
  assert.equal(await reading, data.length, 'a read in flight completes');
  assert.deepEqual(buf, data);
  await assertCleanSynced(fs, dev, false);
});

test('a directory removed while in use (a current directory): "." and ".." still resolve, nothing else, nothing can be made in it, it lists empty; freed at the last close', async () => {
  const { dev, fs } = await ramFs('xv6', 4 << 20);
  await fs.mkdir('/d');
  await fs.mkdir('/d/sub');
  await fs.rmdir('/d/sub');
  const d = await fs.open('/d', O_RDONLY);
  await fs.rmdir('/d');
  const self = await fs.stat('.', d);
  assert.equal(self.ino, d.inum);
  assert.equal(self.nlink, 0);
  assert.equal((await fs.stat('..', d)).ino, (await fs.stat('/')).ino);
  await expectCode(fs.stat('sub', d), 'ENOENT');
  await expectCode(fs.open('f', O_CREATE | O_RDWR, d), 'ENOENT');
  await expectCode(fs.mkdir('e', d), 'ENOENT');
  assert.deepEqual(await fs.readdir(d), []);
  assert.deepEqual(await fs.readdir('.', d), []);
  const up = await fs.open('..', O_RDONLY, d);
  assert.equal(up.inum, (await fs.stat('/')).ino);
  await fs.close(up);
  await fs.close(d); // the last reference: the directory is freed
  await assertCleanSynced(fs, dev, false);
});

test('a directory removed while a call waited to lock it (the path walk hands it over unlocked): nothing is made in it, ENOENT', async () => {
  const { dev, fs } = await ramFs('large', 16 << 20, { nlog: 1000 });
  const il = fs.il;
  await fs.writeFile('/f', pattern(10, 1));
  const makers: [string, (fs: FileSystem) => Promise<unknown>][] = [
    ['mkdir', (f) => f.mkdir('/d/x')],
    ['open O_CREATE', (f) => f.open('/d/x', O_CREATE | O_RDWR)],
    ['link', (f) => f.link('/f', '/d/x')],
    ['rename', (f) => f.rename('/f', '/d/x')],
  ];
  for (const [what, make] of makers) {
    await fs.mkdir('/d');
    // Hold /d's lock, so that the call's walk waits for it, then the rmdir (queued behind it).
    const ip = il.iget(await fs.lookup('/d'));
    await il.ilock(ip);
    const made = make(fs).then(() => 'made', (e: { code?: string }) => e.code);
    await settle();
    const removed = fs.rmdir('/d').then(() => 'removed', (e: { code?: string }) => e.code);
    await settle();
    il.iunlock(ip);
    assert.deepEqual([await made, await removed], ['ENOENT', 'removed'], what);
    await fs.log.beginOp(); // the last reference frees the removed directory: a transaction
    await il.iput(ip);
    await fs.log.endOp();
  }
  assert.equal((await fs.stat('/f')).nlink, 1);
  await assertCleanSynced(fs, dev, false); // nothing leaked into a removed directory
});

test('reclaimOrphans frees what a power cut left with no link (a file unlinked while open, a directory removed while in use), and nothing else', async () => {
  const { dev, fs } = await ramFs('xv6', 4 << 20);
  const free = (await fs.statfs()).freeBlocks;
  const keep = await fs.open('/keep', O_CREATE | O_RDWR);
  await fs.write(keep, 0, pattern(5000, 1));
  await fs.close(keep);
  const f = await fs.open('/gone', O_CREATE | O_RDWR);
  await fs.write(f, 0, pattern(20_000, 2));
  await fs.unlink('/gone');
  await fs.mkdir('/d');
  const d = await fs.open('/d', O_RDONLY);
  await fs.rmdir('/d');
  await fs.sync();
  const cut = dev.clone(); // the power goes with both still open

  const after = await mountRam(cut);
  assert.deepEqual((await after.il.orphans()).sort(), [d.inum, f.inum].sort());
  assert.equal(await after.reclaimOrphans(), 2);
  assert.deepEqual(await after.il.orphans(), []);
  assert.equal(await after.reclaimOrphans(), 0);
  assert.deepEqual(await after.readFile('/keep'), pattern(5000, 1));
  assert.equal((await after.statfs()).freeBlocks, free - Math.ceil(5000 / after.g.bsize), 'only /keep holds blocks');
  await assertCleanSynced(after, cut, false); // no orphan warning
});
