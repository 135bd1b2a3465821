/**
 * A path walk that found a name and locks what it names after a removal took its last link (the
 * removal waited for that inode's lock before the walk did): ENOENT, as if the walk came after the
 * removal, and the inode is freed at its last put. It was EUCLEAN (an entry leading to an inode
 * with no link: corruption), and the cached inode was marked invalid, so no put freed it (an
 * orphan on disk until the next boot's reclaim).
 *
 * The walk of '/p/x/.' holds x's lock while reading x's block for '.'; an rmdir of /p/x waits for
 * that lock, and gets it when the walk lets go of x to lock what '.' names (x again).
 * An entry that leads to an inode with no link on disk stays corruption (EUCLEAN), never freed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iblock, ioffset, XV6 } from '../../src/domains/fs/format.js';
import { assertCleanSynced, expectCode, mountRam, pattern, ramFs, ReadGate, settle, superblockOf } from './helpers.js';

for (const path of ['/p/x/.', '/p/x/./y']) {
  test(`stat('${path}') racing rmdir('/p/x'): ENOENT, and x is freed`, async () => {
    const { dev: ram, fs: made } = await ramFs('xv6', 1 << 20);
    await made.mkdir('/p');
    await made.mkdir('/p/x');
    await made.unmount();
    const dev = new ReadGate(ram);
    const fs = await mountRam(dev);
    const free = (await fs.statfs()).freeBlocks;
    await fs.stat('/p/x'); // every inode and block of the walk cached, but x's block
    dev.holdNextRead();
    const statting = fs.stat(path);
    await dev.held; // the walk holds x's lock, reading x's block
    const removing = fs.rmdir('/p/x');
    await settle(); // waiting for x's lock
    dev.release();
    await removing;
    await expectCode(statting, 'ENOENT');
    assert.equal((await fs.statfs()).freeBlocks, free + 1, "x's block is free");
    await assertCleanSynced(fs, ram, false); // no orphan
    await fs.unmount();
  });
}

test('an entry leading to an inode with no link on disk is EUCLEAN, and the inode is not freed', async () => {
  const g = XV6;
  const { dev: ram, fs: made } = await ramFs('xv6', 1 << 20);
  await made.writeFile('/f', pattern(3000, 1));
  const { ino } = await made.stat('/f');
  await made.unmount();
  ram.writeAt(iblock(g, superblockOf(ram, g), ino) * g.bsize + ioffset(g, ino) + 6, new Uint8Array(2)); // nlink 0
  const fs = await mountRam(ram);
  const free = (await fs.statfs()).freeBlocks;
  await expectCode(fs.stat('/f'), 'EUCLEAN');
  assert.equal((await fs.statfs()).freeBlocks, free, "the lookup's put did not free the file");
  await fs.unmount();
});
