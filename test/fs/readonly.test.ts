/**
 * Read-only mounts (MountOptions.readOnly, for images the user may only read): an image with a
 * committed, uninstalled log reads as recovery would leave it, nothing reaches the device — not
 * recovery, not a refused change, not unmount — and the log is still there for the next
 * read-write mount. Every call that would change the fs fails with EROFS and changes nothing
 * that later reads see; the path calls report the lookup errors Linux reports first.
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

/** A read-only mount (counting its writes) of an image holding /d/f = [1, 2, 3], an empty /d/e and a device /d/tty. */
async function roWithFile(): Promise<{ ro: FileSystem; counted: PowerCutDevice; before: Map<string, string> }> {
  const { dev, fs } = await ramFs('large', SIZE);
  await fs.mkdir('/d');
  await fs.mkdir('/d/e');
  await fs.writeFile('/d/f', new Uint8Array([1, 2, 3]));
  await fs.mknod('/d/tty', 1, 0);
  await fs.unmount();
  const counted = new PowerCutDevice(dev);
  const ro = await FileSystem.mount(counted, { alloc: hostAlloc, readOnly: true });
  return { ro, counted, before: await snapshot(ro) };
}

/** Each call fails with its code (what names it in a failure). */
async function expectCodes(expected: Array<[string, () => Promise<unknown>, string]>): Promise<void> {
  for (const [what, call, code] of expected) await expectCode(call(), code).catch((e: Error) => assert.fail(`${what}: ${e.message}`));
}

test('read-only mount: open reports the lookup\'s errors before EROFS, and O_CREATE of an existing file for reading opens it (Linux)', async () => {
  const { ro, counted, before } = await roWithFile();
  await expectCodes([
    ['a missing name for writing', () => ro.open('/missing', O_WRONLY), 'ENOENT'],
    ['a missing name with O_TRUNC', () => ro.open('/missing', O_RDONLY | O_TRUNC), 'ENOENT'],
    ['O_CREATE under a missing directory', () => ro.open('/nodir/f', O_CREATE | O_WRONLY), 'ENOENT'],
    ['O_CREATE | O_EXCL of an existing file', () => ro.open('/d/f', O_CREATE | O_EXCL | O_RDONLY), 'EEXIST'],
    ['a directory for writing', () => ro.open('/d', O_WRONLY), 'EISDIR'],
    ['a file named as a directory', () => ro.open('/d/f/', O_RDWR), 'ENOTDIR'],
    ['O_CREATE of a new name', () => ro.open('/d/new', O_CREATE | O_RDONLY), 'EROFS'],
    ['O_CREATE of an existing file for writing', () => ro.open('/d/f', O_CREATE | O_WRONLY), 'EROFS'],
    ['O_TRUNC of an existing file', () => ro.open('/d/f', O_CREATE | O_RDONLY | O_TRUNC), 'EROFS'],
  ]);
  const f = await ro.open('/d/f', O_CREATE | O_RDONLY);
  const back = new Uint8Array(3);
  assert.equal(await ro.read(f, 0, back), 3);
  assert.deepEqual([...back], [1, 2, 3]);
  await ro.close(f);
  assert.deepEqual(await snapshot(ro), before, 'nothing changed');
  await ro.unmount();
  assert.equal(counted.writes, 0, 'nothing was written to the device');
});

test('read-only mount: mkdir, mknod, link, unlink, rmdir and rename fail where Linux does (parent lookup, then EEXIST for a new name, then EROFS)', async () => {
  const { ro, counted, before } = await roWithFile();
  await expectCodes([
    // The parent is resolved first, for every call.
    ['mkdir under a missing directory', () => ro.mkdir('/nodir/x'), 'ENOENT'],
    ['mkdir under a file', () => ro.mkdir('/d/f/x'), 'ENOTDIR'],
    ['mknod under a missing directory', () => ro.mknod('/nodir/x', 1, 0), 'ENOENT'],
    ['link of a missing name', () => ro.link('/missing', '/d/x'), 'ENOENT'],
    ['link to under a missing directory', () => ro.link('/d/f', '/nodir/x'), 'ENOENT'],
    ['unlink under a missing directory', () => ro.unlink('/nodir/x'), 'ENOENT'],
    ['unlink under a file', () => ro.unlink('/d/f/x'), 'ENOTDIR'],
    ['rmdir under a missing directory', () => ro.rmdir('/nodir/x'), 'ENOENT'],
    ['rename from under a missing directory', () => ro.rename('/nodir/x', '/d/y'), 'ENOENT'],
    ['rename to under a missing directory', () => ro.rename('/d/f', '/nodir/y'), 'ENOENT'],
    // A last component that is '.', '..' or the root.
    ['rmdir of .', () => ro.rmdir('/d/.'), 'EINVAL'],
    ['rename of ..', () => ro.rename('/d/..', '/x'), 'EBUSY'],
    ['mkdir of the root', () => ro.mkdir('/'), 'EEXIST'],
    // Creating a name that exists (filename_create): EEXIST wins over EROFS.
    ['mkdir of an existing directory', () => ro.mkdir('/d'), 'EEXIST'],
    ['mkdir of an existing file', () => ro.mkdir('/d/f'), 'EEXIST'],
    ['mknod of an existing name', () => ro.mknod('/d/f', 1, 0), 'EEXIST'],
    ['link onto an existing name', () => ro.link('/d/f', '/d/e'), 'EEXIST'],
    ['link to a name ending in /', () => ro.link('/d/f', '/d/x/'), 'ENOENT'],
    // Then EROFS: for a new name, and for removal or rename before the last component's lookup.
    ['mkdir of a new name', () => ro.mkdir('/d/x'), 'EROFS'],
    ['mknod of a new name', () => ro.mknod('/d/x', 1, 0), 'EROFS'],
    ['link to a new name', () => ro.link('/d/f', '/d/x'), 'EROFS'],
    ['link of a directory (EPERM comes after EROFS)', () => ro.link('/d/e', '/d/x'), 'EROFS'],
    ['unlink of a missing name', () => ro.unlink('/d/missing'), 'EROFS'],
    ['unlink of a directory', () => ro.unlink('/d/e'), 'EROFS'],
    ['unlink of a file', () => ro.unlink('/d/f'), 'EROFS'],
    ['rmdir of a missing name', () => ro.rmdir('/d/missing'), 'EROFS'],
    ['rmdir of a file', () => ro.rmdir('/d/f'), 'EROFS'],
    ['rename of a missing name', () => ro.rename('/d/missing', '/d/y'), 'EROFS'],
    ['rename of a file', () => ro.rename('/d/f', '/d/y'), 'EROFS'],
  ]);
  assert.deepEqual(await snapshot(ro), before, 'nothing changed');
  await ro.unmount();
  assert.equal(counted.writes, 0, 'nothing was written to the device');
});

test('read-only mount: a name too long is ENAMETOOLONG where Linux looks it up — before EROFS when creating it, after when removing or renaming it', async () => {
  // As Linux 6.18 answers on a read-only tmpfs (the length is checked by the file system's lookup
  // of the last component, which unlink, rmdir and rename make after mnt_want_write).
  const { ro, counted, before } = await roWithFile();
  const long = `/d/${'n'.repeat(300)}`;
  await expectCodes([
    ['mkdir', () => ro.mkdir(long), 'ENAMETOOLONG'],
    ['mknod', () => ro.mknod(long, 1, 0), 'ENAMETOOLONG'],
    ['open(O_CREATE)', () => ro.open(long, O_CREATE | O_WRONLY), 'ENAMETOOLONG'],
    ['open(O_CREATE) for reading', () => ro.open(long, O_CREATE | O_RDONLY), 'ENAMETOOLONG'],
    ['link to a long name', () => ro.link('/d/f', long), 'ENAMETOOLONG'],
    ['link of a long name', () => ro.link(long, '/d/x'), 'ENAMETOOLONG'],
    ['link of a directory to a long name', () => ro.link('/d/e', long), 'ENAMETOOLONG'],
    ['a long name before the last (mkdir)', () => ro.mkdir(`${long}/x`), 'ENAMETOOLONG'],
    ['a long name before the last (unlink)', () => ro.unlink(`${long}/x`), 'ENAMETOOLONG'],
    ['unlink', () => ro.unlink(long), 'EROFS'],
    ['rmdir', () => ro.rmdir(long), 'EROFS'],
    ['rename from a long name', () => ro.rename(long, '/d/y'), 'EROFS'],
    ['rename to a long name', () => ro.rename('/d/f', long), 'EROFS'],
  ]);
  assert.deepEqual(await snapshot(ro), before, 'nothing changed');
  await ro.unmount();
  assert.equal(counted.writes, 0, 'nothing was written to the device');
});

test('read-only mount: a device opens for writing (with O_TRUNC too, which it ignores), as on Linux; a file or directory does not', async () => {
  const { ro, counted, before } = await roWithFile();
  const dev = await ro.lookup('/d/tty');
  const opened = [
    await ro.open('/d/tty', O_WRONLY),
    await ro.open('/d/tty', O_RDWR | O_TRUNC),
    await ro.open('/d/tty', O_CREATE | O_WRONLY | O_TRUNC),
    await ro.openInode(dev, O_RDWR),
  ];
  for (const f of opened) {
    assert.ok(f.writable);
    await ro.close(f);
  }
  await expectCodes([
    ['a file for writing', () => ro.open('/d/f', O_WRONLY), 'EROFS'],
    ['a file reopened for writing', async () => ro.openInode(await ro.lookup('/d/f'), O_WRONLY), 'EROFS'],
    ['a directory for writing', () => ro.open('/d/e', O_RDWR), 'EISDIR'],
    ['a directory reopened for writing', async () => ro.openInode(await ro.lookup('/d/e'), O_WRONLY), 'EISDIR'],
  ]);
  assert.deepEqual(await snapshot(ro), before, 'nothing changed');
  await ro.unmount();
  assert.equal(counted.writes, 0, 'nothing was written to the device');
});
