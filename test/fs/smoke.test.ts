import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ramFs, assertCleanSynced, snapshot, pattern, mountRam } from './helpers.js';
import { O_CREATE, O_RDWR } from '../../src/domains/fs/fs.js';

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
