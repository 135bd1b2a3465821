/**
 * Read-only mounts (MountOptions.readOnly, for images the user may only read): an image with a
 * committed, uninstalled log reads as recovery would leave it, nothing reaches the device — not
 * recovery, not a refused change, not unmount — and the log is still there for the next
 * read-write mount. Every call that would change the fs fails with EROFS and changes nothing
 * that later reads see; open reports its lookup's errors first, as Linux does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileSystem, O_CREATE, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from '../../src/domains/fs/fs.js';
import { hostAlloc } from '../../src/host/bytes.js';
import { expectCode, mountRam, pendingLogImage, PowerCutDevice, ramFs, snapshot } from './helpers.js';

const SIZE = 16 << 20;

for (const variant of ['xv6', 'large'] as const) {
  test(`read-only mount (${variant}): a pending log is seen as recovered, nothing is written, changes are EROFS`, async () => {
    const { dev } = await pendingLogImage(variant, SIZE);
    const before = dev.readAt(0, SIZE);
    const counted = new PowerCutDevice(dev);
    const ro = await FileSystem.mount(counted, { alloc: hostAlloc, readOnly: true });
    assert.ok(ro.readOnly);
    assert.ok(ro.recovered > 0, 'the log was applied (in memory)');
    const seen = await snapshot(ro);

    // What a read-write mount recovers, from a copy of the same bytes.
    const recovered = await snapshot(await mountRam(dev.clone()));
    assert.deepEqual(seen, recovered);
    assert.ok(!seen.has('/d/f2') && seen.has('/d/f5'), 'the unlink and the last file are there');

    const ino = await ro.lookup('/d/f1');
    const refused: Array<[string, () => Promise<unknown>]> = [
      ['create', () => ro.open('/new', O_CREATE | O_WRONLY)],
      ['open for writing', () => ro.open('/d/f1', O_RDWR)],
      ['truncate at open', () => ro.open('/d/f1', O_RDONLY | O_TRUNC)],
      ['reopen for writing', () => ro.openInode(ino, O_WRONLY)],
      ['mkdir', () => ro.mkdir('/nd')],
      ['mknod', () => ro.mknod('/dev0', 1, 0)],
      ['link', () => ro.link('/d/f1', '/f1-again')],
      ['unlink', () => ro.unlink('/d/f1')],
      ['rmdir', () => ro.rmdir('/e0')],
      ['rename', () => ro.rename('/d/f1', '/moved')],
      ['truncate', () => ro.truncate('/d/f1', 0)],
      ['writeFile', () => ro.writeFile('/d/f1', new Uint8Array(3))],
    ];
    for (const [what, call] of refused) await expectCode(call(), 'EROFS').catch((e: Error) => assert.fail(`${what}: ${e.message}`));
    assert.deepEqual(await snapshot(ro), recovered, 'the refused calls changed nothing');
    await ro.sync();
    await ro.unmount();
    assert.equal(counted.writes, 0, 'nothing was written to the device');
    assert.ok(Buffer.from(dev.readAt(0, SIZE)).equals(before), 'the image is byte for byte as it was');

    // The log is still there: a read-write mount installs it, and sees the same files.
    const rw = await mountRam(dev);
    assert.ok(rw.recovered > 0);
    assert.deepEqual(await snapshot(rw), recovered);
  });
}

test('read-only mount: a log naming more blocks than the cache it is mounted with has buffers still fits (the cache grows)', { timeout: 60_000 }, async () => {
  // Written by a mount with a big cache and a big log (1024 blocks from 64 MiB on): a directory
  // each makes a distinct logged block (its entries), and none is installed.
  const { dev, fs } = await ramFs('large', 64 << 20, {}, 2048);
  for (let i = 0; i < 150; i++) await fs.mkdir(`/m${i}`);
  const nbuf = 88; // the least a large-variant mount takes (maxOpBlocks + 24)
  assert.ok(fs.log.uninstalled > 2 * nbuf, `the workload left ${fs.log.uninstalled} entries`);
  const recovered = await snapshot(await mountRam(dev.clone()));
  const ro = await FileSystem.mount(dev, { alloc: hostAlloc, readOnly: true, nbuf });
  assert.deepEqual(await snapshot(ro), recovered);
  assert.equal(recovered.size, 150);
  await ro.unmount();
});

test('read-only mount: closing the last reference of an unlinked file leaves it an orphan, written nowhere', async () => {
  const { dev, fs } = await ramFs('xv6', SIZE);
  const f = await fs.open('/gone', O_CREATE | O_RDWR);
  await fs.write(f, 0, new Uint8Array(3000).fill(7));
  await fs.unlink('/gone'); // open still: the inode stays, with no link
  await fs.sync();
  // Abandoned with the file open (a crash): the inode is an orphan.
  const counted = new PowerCutDevice(dev);
  const ro = await FileSystem.mount(counted, { alloc: hostAlloc, readOnly: true });
  assert.equal(await ro.reclaimOrphans(), 0);
  const again = await ro.openInode(f.inum, O_RDONLY);
  const back = new Uint8Array(3000);
  assert.equal(await ro.read(again, 0, back), 3000);
  await ro.close(again); // would free it on a read-write mount
  await ro.unmount();
  assert.equal(counted.writes, 0);
  assert.equal(await (await mountRam(dev)).reclaimOrphans(), 1, 'the orphan is left for a read-write mount');
});

test('read-only mount: open reports the lookup\'s errors before EROFS, and O_CREATE of an existing file for reading opens it (Linux)', async () => {
  const { dev, fs } = await ramFs('large', SIZE);
  await fs.mkdir('/d');
  await fs.writeFile('/d/f', new Uint8Array([1, 2, 3]));
  await fs.unmount();
  const counted = new PowerCutDevice(dev);
  const ro = await FileSystem.mount(counted, { alloc: hostAlloc, readOnly: true });
  const before = await snapshot(ro);
  const expected: Array<[string, () => Promise<unknown>, string]> = [
    ['a missing name for writing', () => ro.open('/missing', O_WRONLY), 'ENOENT'],
    ['a missing name with O_TRUNC', () => ro.open('/missing', O_RDONLY | O_TRUNC), 'ENOENT'],
    ['O_CREATE under a missing directory', () => ro.open('/nodir/f', O_CREATE | O_WRONLY), 'ENOENT'],
    ['O_CREATE | O_EXCL of an existing file', () => ro.open('/d/f', O_CREATE | O_EXCL | O_RDONLY), 'EEXIST'],
    ['a directory for writing', () => ro.open('/d', O_WRONLY), 'EISDIR'],
    ['a file named as a directory', () => ro.open('/d/f/', O_RDWR), 'ENOTDIR'],
    ['O_CREATE of a new name', () => ro.open('/d/new', O_CREATE | O_RDONLY), 'EROFS'],
    ['O_CREATE of an existing file for writing', () => ro.open('/d/f', O_CREATE | O_WRONLY), 'EROFS'],
    ['O_TRUNC of an existing file', () => ro.open('/d/f', O_CREATE | O_RDONLY | O_TRUNC), 'EROFS'],
  ];
  for (const [what, call, code] of expected) await expectCode(call(), code).catch((e: Error) => assert.fail(`${what}: ${e.message}`));
  const f = await ro.open('/d/f', O_CREATE | O_RDONLY);
  const back = new Uint8Array(3);
  assert.equal(await ro.read(f, 0, back), 3);
  assert.deepEqual([...back], [1, 2, 3]);
  await ro.close(f);
  assert.deepEqual(await snapshot(ro), before, 'nothing changed');
  await ro.unmount();
  assert.equal(counted.writes, 0, 'nothing was written to the device');
});
