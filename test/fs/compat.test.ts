import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as npath from 'node:path';
import { xv6Mkfs, xv6ReadFile } from './xv6-mkfs-reference.js';
import { RamBlockDevice, FileBlockDevice } from '../../src/host/fs-image.js';
import { mkfs, mkfsParams } from '../../src/host/mkfs.js';
import { fsck } from '../../src/host/fsck.js';
import { XV6, LARGE } from '../../src/domains/fs/format.js';
import { O_CREATE, O_RDWR } from '../../src/domains/fs/fs.js';
import { mountRam, pattern, assertClean, assertCleanSynced, snapshot } from './helpers.js';
import { hostAlloc } from '../../src/host/bytes.js';
import { FileSystem } from '../../src/domains/fs/fs.js';

test('mkfs xv6 defaults match xv6 mkfs.c geometry', () => {
  const p = mkfsParams(XV6, 2000);
  assert.equal(p.nlog, 30);
  assert.equal(p.inodestart, 32);
  assert.equal(p.bmapstart, 45);
  assert.equal(p.nblocks, 2000 - 46);
  assert.equal(p.ninodes, 200);
});

test('mkfs refuses parameters mount would refuse, before writing anything', () => {
  assert.throws(() => mkfsParams(LARGE, 4096, 64, 8), /^Error: mkfs: superblock: log of 8 blocks too small for one operation/);
  assert.throws(() => mkfsParams(XV6, 2000, 200, 1.5), /^Error: mkfs: nlog 1.5 must be a whole number/);
  const img = new RamBlockDevice(4096 * LARGE.bsize, 512);
  assert.throws(() => mkfs(img, { variant: 'large', blocks: 4096, nlog: 8 }), /too small for one operation/);
  assert.equal(img.readAt(0, LARGE.bsize * 2).some((b) => b !== 0), false, 'nothing written');
});

test('rv6 mounts and reads an image made by the xv6 mkfs port, then writes it validly', async () => {
  const files = [
    { name: 'README', data: pattern(2500, 1) },
    { name: 'big', data: pattern(268 * 1024, 2) },
    { name: 'empty', data: new Uint8Array(0) },
    { name: 'exactly14chars', data: pattern(100, 3) },
  ];
  const img = xv6Mkfs(files);
  const dev = new RamBlockDevice(img.length, 512);
  dev.writeAt(0, img);
  const r0 = fsck(dev);
  assert.ok(r0.ok, r0.errors.join('\n'));
  const fs = await mountRam(dev);
  for (const f of files) assert.deepEqual(await fs.readFile('/' + f.name), f.data);
  const names = (await fs.readdir('/')).map((e) => e.name);
  assert.deepEqual(names, ['.', '..', ...files.map((f) => f.name)]);
  // rv6 writes; the independent reader decodes.
  await fs.mkdir('/d');
  const nd = pattern(40_000, 9);
  await fs.writeFile('/d/new', nd);
  const f = await fs.open('/README', O_RDWR);
  await fs.write(f, 3000, pattern(10, 4)); // beyond EOF: zero-filled, no hole in xv6
  await fs.close(f);
  await fs.unlink('/big');
  await fs.unmount();
  assertClean(dev, false);
  const raw = dev.readAt(0, img.length);
  assert.deepEqual(xv6ReadFile(raw, '/d/new'), nd);
  const rd = xv6ReadFile(raw, '/README');
  assert.equal(rd.length, 3010);
  assert.deepEqual(rd.subarray(0, 2500), files[0]!.data);
  assert.ok(rd.subarray(2500, 3000).every((v) => v === 0));
});

test('mkfs + fsck round trip with addDirs (both variants, host file)', async () => {
  const tmp = nfs.mkdtempSync(npath.join(os.tmpdir(), 'rv6fs-'));
  try {
    const src = npath.join(tmp, 'src');
    nfs.mkdirSync(npath.join(src, 'bin', 'sub'), { recursive: true });
    nfs.writeFileSync(npath.join(src, 'hello.txt'), 'hello world\n');
    nfs.writeFileSync(npath.join(src, 'bin', 'prog'), Buffer.from(pattern(100_000, 5)));
    nfs.writeFileSync(npath.join(src, 'bin', 'sub', 'deep'), Buffer.from(pattern(5000, 6)));
    for (const variant of ['xv6', 'large'] as const) {
      const image = npath.join(tmp, `${variant}.img`);
      let last = 0;
      const r = mkfs(image, { variant, sizeBytes: variant === 'xv6' ? 4 << 20 : 64 << 20, addDirs: [src], onProgress: (d) => { last = d; } });
      assert.equal(last, 12 + 100_000 + 5000);
      assert.equal(r.usedInodes, 6);
      const c = fsck(image);
      assert.ok(c.ok, c.errors.join('\n'));
      assert.equal(c.stats.dirs, 3);
      const dev = new FileBlockDevice(image, 512);
      const fs = await FileSystem.mount(dev, { alloc: hostAlloc });
      assert.equal(Buffer.from(await fs.readFile('/hello.txt')).toString(), 'hello world\n');
      assert.deepEqual(await fs.readFile('/bin/prog'), pattern(100_000, 5));
      assert.deepEqual(await fs.readFile('/bin/sub/deep'), pattern(5000, 6));
      assert.equal((await fs.stat('/bin')).nlink, 2);
      await fs.writeFile('/bin/sub/x', pattern(7000, 8));
      await fs.unmount();
      dev.close();
      const c2 = fsck(image);
      assert.ok(c2.ok, c2.errors.join('\n'));
    }
  } finally {
    nfs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('16 GiB sparse large image: fast mkfs, fsck, mount, write', async () => {
  const tmp = nfs.mkdtempSync(npath.join(os.tmpdir(), 'rv6fs-'));
  try {
    const image = npath.join(tmp, 'big.img');
    const r = mkfs(image, { variant: 'large', sizeBytes: 16 * 2 ** 30 });
    assert.equal(r.size, 4 * 2 ** 20);
    assert.ok(nfs.statSync(image).blocks * 512 < 64 << 20, 'image must be sparse');
    const c = fsck(image);
    assert.ok(c.ok, c.errors.join('\n'));
    assert.equal(c.stats.blocks, 4 * 2 ** 20);
    const dev = new FileBlockDevice(image, 4096);
    const fs = await FileSystem.mount(dev, { alloc: hostAlloc });
    await fs.writeFile('/f', pattern(1 << 20, 3));
    const sfs = await fs.statfs();
    assert.equal(sfs.blocks, 4 * 2 ** 20);
    await fs.unmount();
    dev.close();
    const c2 = fsck(image);
    assert.ok(c2.ok, c2.errors.join('\n'));
  } finally {
    nfs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('1 GiB file in the large variant (sparse RAM device)', async () => {
  const dev = new RamBlockDevice(2 * 2 ** 30, 4096);
  mkfs(dev, { variant: 'large', sizeBytes: 2 * 2 ** 30 });
  const fs = await mountRam(dev);
  const f = await fs.open('/huge', O_CREATE | O_RDWR);
  const GiB = 2 ** 30;
  const step = GiB / 256;
  for (let i = 0; i < 256; i++) await fs.write(f, i * step + (i % 7) * 100, pattern(4096, i));
  await fs.write(f, GiB - 5, pattern(5, 999));
  assert.equal((await fs.fstat(f)).size, GiB);
  for (let i = 0; i < 256; i++) {
    const b = new Uint8Array(4096);
    assert.equal(await fs.read(f, i * step + (i % 7) * 100, b), 4096);
    assert.deepEqual(b, pattern(4096, i));
  }
  const z = new Uint8Array(1000);
  await fs.read(f, step / 2, z);
  assert.ok(z.every((v) => v === 0));
  await fs.close(f);
  await assertCleanSynced(fs, dev);
  await fs.unlink('/huge');
  await assertCleanSynced(fs, dev, false);
  assert.equal((await fs.statfs()).freeBlocks, fsck(dev).stats.freeBlocks);
  assert.ok(LARGE.maxFileSize >= GiB);
  void snapshot;
});
