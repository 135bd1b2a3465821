/**
 * NVMe controller start-up errors: a missing, unreadable, empty or misaligned image (and a bad RAM
 * disk size) makes startNvme reject promptly with a message naming the image and the problem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNvme, type NvmeBackend } from '../../src/devices/nvme/index.js';

const phys = new SharedArrayBuffer(1 << 20);

async function rejects(backend: NvmeBackend, pattern: RegExp): Promise<void> {
  const t0 = Date.now();
  await assert.rejects(startNvme({ phys, backend }), pattern);
  assert.ok(Date.now() - t0 < 5000, 'rejected promptly');
}

test('bad images are refused with a clear message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvme-img-'));
  try {
    const p = (name: string, bytes: number | null): string => {
      const path = join(dir, name);
      if (bytes !== null) writeFileSync(path, Buffer.alloc(bytes));
      return path;
    };
    const missing = p('missing.img', null);
    await rejects({ kind: 'file', path: missing }, new RegExp(`image ${missing}.*cannot open image file .*ENOENT`));
    const empty = p('empty.img', 0);
    await rejects({ kind: 'file', path: empty }, new RegExp(`image file ${empty} is empty`));
    const odd = p('odd.img', 1000);
    await rejects({ kind: 'file', path: odd }, new RegExp(`image file ${odd} has size 1000, not a multiple of the block size 512`));
    const small = p('small.img', 512 * 3);
    await rejects({ kind: 'file', path: small, blockSize: 4096 }, /not a multiple of the block size 4096/);
    await rejects({ kind: 'file', path: dir }, /cannot open image file .*EISDIR/);
    await rejects({ kind: 'ram', bytes: 100 }, /RAM disk size 100 must be a positive multiple/);
    await rejects({ kind: 'ram', bytes: 4096, blockSize: 1024 as 512 }, /block size 1024 is not 512 or 4096/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
