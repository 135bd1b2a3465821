/**
 * An image file that is truncated while the controller uses it (another program shrinks it): a
 * read of blocks that no longer exist fails with an NVMe status (Internal Error), promptly, and the
 * driver, the shadow and the rest of the disk carry on; a write there extends the file again.
 * (Images that are malformed or too small before boot: test/storage/cli.test.ts and
 * test/devices/nvme-image.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootStorage } from '../../src/host/storage.js';
import { BLK_NVME_STATUS } from '../../src/interfaces/index.js';
import { pattern, req } from './helpers.js';

const BS = 512;
const INTERNAL_ERROR = BLK_NVME_STATUS - 0x06;

for (const shadow of [false, true]) {
  test(`an image truncated under the running controller${shadow ? ' (through the shadow)' : ''}: errors for the lost blocks, no hang`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rl-trunc-'));
    const img = join(dir, 'disk.img');
    writeFileSync(img, Buffer.alloc(1 << 20));
    const s = await bootStorage({ image: img, shadow });
    try {
      const k = s.kernel;
      const io = async (op: number, lba: number, seed?: number): Promise<{ status: number; word: number }> => {
        let r = req(k, op, lba, 1, BS, seed);
        r = await s.bdev.submit(r);
        const out = { status: r.status, word: r.data!.getU32(0) };
        r.drop();
        return out;
      };
      assert.equal((await io(1, 10, 7)).status, 0);
      assert.equal((await io(1, 1500, 8)).status, 0);
      truncateSync(img, 512 << 10); // blocks 1024.. are gone
      const t0 = performance.now();
      assert.equal((await io(0, 1500)).status, INTERNAL_ERROR, 'a read past the new end of the file');
      assert.ok(performance.now() - t0 < 5000, 'answered promptly');
      assert.deepEqual(await io(0, 10), { status: 0, word: pattern(7, 0) }, 'the rest of the disk is intact');
      assert.equal((await io(1, 1500, 9)).status, 0, 'a write there extends the file');
      assert.equal(statSync(img).size, 1501 * BS);
      assert.deepEqual(await io(0, 1500), { status: 0, word: pattern(9, 0) });
      assert.equal(k.get(s.driverName)!.faults, 0, 'the driver never faulted');
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
