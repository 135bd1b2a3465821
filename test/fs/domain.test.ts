/**
 * The fs domain (Rv6Fs over a BDev): every method and its errno paths over a preloaded membdev,
 * large files across the indirect boundaries over the nvme driver behind the block shadow on an
 * image file (remounted in a new kernel), getdents with small buffers, concurrent appends, a
 * damaged image answered with -EUCLEAN while the domain stays live; fsck is clean afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kernel } from '../../src/kernel/kernel.js';
import { bootMembdev, bootStorage } from '../../src/host/storage.js';
import { bootFs, readImageFromBDev, writeImageToBDev } from '../../src/host/bdev-image.js';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { geometryOf, type Variant } from '../../src/domains/fs/format.js';
import {
  ERRNO, O_APPEND, O_CREATE, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, T_DEVICE, T_DIR, T_FILE,
} from '../../src/interfaces/rv6.js';
import { FileSystem } from '../../src/domains/fs/fs.js';
import { hostAlloc } from '../../src/host/bytes.js';
import type { Rv6Fs } from '../../src/interfaces/rv6.js';
import { Client } from './client.js';
import { assertClean, mkfsImage as image, pattern } from './helpers.js';

const MiB = 1 << 20;

/** A kernel whose domain log lines are collected. */
function kernelWithLog(): { k: Kernel; lines: string[] } {
  const lines: string[] = [];
  const k = new Kernel({ physBytes: 128 * MiB, log: (d, line) => lines.push(`[${d}] ${line}`) });
  return { k, lines };
}

async function membdevFs(variant: Variant, bytes: number, opts: { nbuf?: number } = {}): Promise<{ k: Kernel; c: Client; lines: string[]; bytes: number }> {
  const { k, lines } = kernelWithLog();
  const bdev = bootMembdev(k, { bytes });
  await writeImageToBDev(k, bdev, image(variant, bytes));
  const c = new Client(k, bootFs(k, 'membdev', opts));
  return { k, c, lines, bytes };
}

async function fsckMembdev(k: Kernel, bytes: number): Promise<void> {
  const ram = new RamBlockDevice(bytes, 512);
  ram.writeAt(0, await readImageFromBDev(k, k.bind('membdev'), bytes));
  assertClean(ram);
}

const E = (name: keyof typeof ERRNO): number => -ERRNO[name];

test('fs domain over membdev: every method and its errno paths', async () => {
  const { k, c } = await membdevFs('xv6', 2 * MiB);
  const fs = c.fs;
  try {
    assert.equal(await fs.open('/a', O_RDONLY, 0), E('EIO'), 'nothing works before mount');
    assert.deepEqual((await Promise.all([fs.mount(), fs.mount()])).sort(), [E('EBUSY'), 0], 'one mount at a time');
    assert.equal(await fs.mount(), E('EBUSY'), 'mount once');

    // open / create / write / read / close
    const f = await fs.open('/hello', O_CREATE | O_RDWR, 0);
    assert.ok(f > 0);
    const msg = new TextEncoder().encode('hello, rv6');
    assert.equal(await c.write(f, 0, msg), msg.length);
    assert.deepEqual(await c.read(f, 0, 100), msg);
    assert.deepEqual(await c.read(f, 7, 3), msg.subarray(7));
    assert.deepEqual(await c.read(f, 100, 10), new Uint8Array(0), 'EOF');
    assert.equal(await c.read(f, 0, 10, 4), E('EINVAL'), 'n beyond the buffer');
    assert.equal(await c.read(f, -1, 1), E('EINVAL'), 'negative offset');
    const st = await c.fstat(f);
    assert.deepEqual({ ...st, ino: 0 }, { err: 0, type: T_FILE, nlink: 1, dev: 1, ino: 0, size: msg.length, major: 0, minor: 0 });
    assert.ok(st.ino > 1);
    assert.equal(await fs.close(f), 0);
    assert.equal(await fs.close(f), E('EBADF'), 'closed ids are gone');
    for (const bad of [0, -3, 999]) {
      assert.equal(await fs.close(bad), E('EBADF'));
      assert.equal(await c.read(bad, 0, 1), E('EBADF'));
      assert.equal(await c.write(bad, 0, msg), E('EBADF'));
      assert.equal((await c.fstat(bad)).err, E('EBADF'));
      assert.equal(await fs.open('x', O_RDONLY, bad === 0 ? 999 : bad), E('EBADF'), 'unknown cwd');
    }

    // flags
    assert.equal(await fs.open('/hello', O_CREATE | O_EXCL | O_WRONLY, 0), E('EEXIST'));
    assert.equal(await fs.open('/hello', 3, 0), E('EINVAL'));
    assert.equal(await fs.open('/hello', 0x4000, 0), E('EINVAL'));
    const ro = await fs.open('/hello', O_RDONLY | O_APPEND, 0);
    assert.ok(ro > 0, 'O_APPEND is accepted (the core applies it)');
    assert.equal(await c.write(ro, 0, msg), E('EBADF'), 'read-only');
    assert.equal(await fs.close(ro), 0);
    const wo = await fs.open('/hello', O_WRONLY | O_TRUNC, 0);
    assert.equal((await c.fstat(wo)).size, 0, 'O_TRUNC');
    assert.equal(await c.read(wo, 0, 1), E('EBADF'), 'write-only');
    const small = c.bytes(4);
    assert.equal(await fs.write(wo, 0, small, 5), E('EINVAL'), 'n beyond the buffer');
    small.drop();
    assert.equal(await fs.close(wo), 0);

    // names
    assert.equal(await fs.open('/nope', O_RDONLY, 0), E('ENOENT'));
    assert.equal(await fs.open('/nope/x', O_CREATE | O_RDWR, 0), E('ENOENT'));
    assert.equal(await fs.open('/hello/x', O_RDONLY, 0), E('ENOTDIR'));
    assert.equal(await fs.open('/' + 'n'.repeat(15), O_CREATE | O_RDWR, 0), E('ENAMETOOLONG'));
    assert.equal((await c.stat('/' + 'n'.repeat(15))).err, E('ENAMETOOLONG'));
    assert.equal(await fs.mkdir('/d', 0), 0);
    assert.equal(await fs.mkdir('/d', 0), E('EEXIST'));
    assert.equal(await fs.open('/d', O_RDWR, 0), E('EISDIR'));
    assert.equal(await fs.unlink('/d', 0), E('EISDIR'));
    assert.equal(await fs.rmdir('/hello', 0), E('ENOTDIR'));
    assert.equal(await fs.rmdir('/', 0), E('EBUSY'));
    assert.equal(await fs.rmdir('/d/.', 0), E('EINVAL'));
    assert.equal((await c.stat('/d')).type, T_DIR);
    assert.equal((await c.stat('/d')).nlink, 1, "xv6 does not count a directory's '.'");

    // cwd: relative paths from an open directory
    const d = await fs.open('/d', O_RDONLY, 0);
    assert.ok(d > 0);
    await c.writeFile('rel', msg, d);
    assert.deepEqual(await c.readFile('/d/rel'), msg);
    assert.deepEqual(await c.readFile('../d/./rel', d), msg);
    assert.equal(await fs.open('rel', O_RDONLY, 0), E('ENOENT'), 'cwd 0 is the root');
    assert.equal(await fs.rmdir('/d', 0), E('ENOTEMPTY'));
    assert.equal(await fs.link('/d/rel', 'rel2', d), 0);
    assert.equal((await c.stat('rel2', d)).nlink, 2);
    assert.equal(await fs.link('/d/rel', '/hello', 0), E('EEXIST'));
    assert.equal(await fs.link('/d', '/d2', 0), E('EPERM'), 'no links to directories');
    assert.equal(await fs.link('/nope', '/x', 0), E('ENOENT'));
    assert.equal(await fs.unlink('rel', d), 0);
    assert.equal(await fs.unlink('rel', d), E('ENOENT'));
    assert.equal(await fs.unlink('/d/rel2', 0), 0);
    assert.equal(await c.write(d, 0, msg), E('EBADF'), 'directories are open read-only');
    assert.equal(await fs.close(d), 0);
    assert.equal(await fs.rmdir('/d', 0), 0);
    assert.equal((await c.stat('/d')).err, E('ENOENT'));

    // mknod
    assert.equal(await fs.mknod('/console', 1, 0, 0), 0);
    const cs = await c.stat('/console');
    assert.equal(cs.type, T_DEVICE);
    assert.equal(cs.major, 1);
    assert.equal(await fs.mknod('/console', 1, 0, 0), E('EEXIST'));
    assert.equal(await fs.mknod('/bad', -1, 0, 0), E('EINVAL'));

    // getdents on a file, with a buffer too small for one entry
    const h = await fs.open('/hello', O_RDONLY, 0);
    const io = await fs.getdents(h, c.iobuf(64, 0, 0));
    assert.equal(io.n, E('ENOTDIR'));
    io.drop();
    assert.equal(await fs.close(h), 0);
    const root = await fs.open('/', O_RDONLY, 0);
    const tiny = await fs.getdents(root, c.iobuf(3, 0, 0));
    assert.equal(tiny.n, E('EINVAL'));
    assert.ok(tiny.data!.valid, 'the IoBuf comes back with its buffer');
    tiny.drop();
    const { entries } = await c.dents(root, 256);
    assert.deepEqual(entries.map((e) => e[1]), ['.', '..', 'hello', 'console']);
    assert.deepEqual(entries[0], [1, '.']);
    assert.equal(await fs.close(root), 0);

    // an unlinked file stays readable while open, and is freed at close
    const u = await fs.open('/hello', O_RDWR, 0);
    assert.equal(await c.write(u, 0, msg), msg.length);
    assert.equal(await fs.unlink('/hello', 0), 0);
    assert.deepEqual(await c.read(u, 0, msg.length), msg);
    assert.equal(await fs.close(u), 0);

    assert.equal(await fs.sync(), 0);
    const open = await fs.open('/console', O_RDONLY, 0);
    assert.ok(open > 0, 'unmount closes what is still open');
    assert.equal(await fs.unmount(), 0);
    assert.deepEqual(k.heap.usage(k.get('fs')!.id), { bytes: 0, slots: 0 }, 'unmount frees every buffer');
    assert.equal(await fs.sync(), E('EIO'));
    assert.equal(await fs.close(open), E('EIO'));
    await fsckMembdev(k, 2 * MiB);
    assert.equal(await fs.mount(), 0, 'mount again after unmount');
    assert.equal((await c.stat('/console')).type, T_DEVICE);
    assert.equal((await c.stat('/hello')).err, E('ENOENT'));
    assert.equal(await fs.unmount(), 0);
    assert.equal(k.get('fs')!.faults, 0);
    assert.equal(k.get('fs')!.live, true);
  } finally {
    k.shutdown();
  }
});

test('fs domain over membdev: the largest xv6 file, appends, getdents with a small buffer', async () => {
  const { k, c } = await membdevFs('xv6', 2 * MiB, { nbuf: 64 });
  const fs = c.fs;
  try {
    assert.equal(await fs.mount(), 0);
    // 12 direct blocks, then the singly indirect block: write the maximum file in odd pieces.
    const g = geometryOf('xv6');
    const big = pattern(g.maxFileSize, 3);
    const f = await fs.open('/big', O_CREATE | O_RDWR, 0);
    for (let off = 0; off < big.length; ) {
      const n = Math.min(big.length - off, 12_345);
      assert.equal(await c.write(f, off, big.subarray(off, off + n)), n);
      off += n;
    }
    assert.equal((await c.fstat(f)).size, g.maxFileSize);
    assert.deepEqual(await c.readAll(f, 7_777), big);
    const edge = 12 * g.bsize;
    assert.deepEqual(await c.read(f, edge - 3, 6), big.subarray(edge - 3, edge + 3), 'across the direct/indirect boundary');
    assert.equal(await c.write(f, g.maxFileSize, new Uint8Array(1)), E('EFBIG'));
    assert.equal(await fs.close(f), 0);

    // Concurrent appends (off < 0) never interleave and never overwrite each other.
    const a = await fs.open('/log', O_CREATE | O_WRONLY, 0);
    const pieces = Array.from({ length: 12 }, (_, i) => new Uint8Array(3000 + 17 * i).fill(65 + i));
    const counts = await Promise.all(pieces.map((p) => c.write(a, -1, p)));
    assert.deepEqual(counts, pieces.map((p) => p.length));
    assert.equal(await fs.close(a), 0);
    const log = await c.readFile('/log');
    assert.equal(log.length, pieces.reduce((s, p) => s + p.length, 0));
    const seen = new Set<number>();
    for (let off = 0; off < log.length; ) {
      const b = log[off]!;
      const p = pieces[b - 65]!;
      assert.ok(!seen.has(b), `piece ${b - 65} appears twice`);
      seen.add(b);
      assert.deepEqual(log.subarray(off, off + p.length), p, `piece ${b - 65} is whole`);
      off += p.length;
    }

    // Many entries (across directory blocks, with holes after unlinks) through a small buffer.
    assert.equal(await fs.mkdir('/many', 0), 0);
    const names = Array.from({ length: 90 }, (_, i) => `file-${i}`);
    for (const n of names) {
      const h = await fs.open(`/many/${n}`, O_CREATE | O_WRONLY, 0);
      assert.ok(h > 0);
      assert.equal(await fs.close(h), 0);
    }
    for (let i = 0; i < names.length; i += 7) assert.equal(await fs.unlink(`/many/${names[i]}`, 0), 0);
    const kept = names.filter((_, i) => i % 7 !== 0);
    const d = await fs.open('/many', O_RDONLY, 0);
    const { entries, calls } = await c.dents(d, 40);
    assert.deepEqual(entries.map((e) => e[1]), ['.', '..', ...kept]);
    assert.ok(calls > 20, `a 40-byte buffer takes many calls (${calls})`);
    for (const [inum, name] of entries.slice(2)) assert.equal((await c.stat(`/many/${name}`)).ino, inum);
    const again = await fs.getdents(d, c.iobuf(40, 0, 1e9));
    assert.equal(again.n, 0, 'past the end: no more entries');
    again.drop();
    assert.equal(await fs.close(d), 0);

    assert.equal(await fs.unmount(), 0);
    await fsckMembdev(k, 2 * MiB);
    assert.equal(k.get('fs')!.faults, 0);
  } finally {
    k.shutdown();
  }
});

test('fs domain: a damaged image mounts as -EUCLEAN with a log line naming the damage; the domain stays live', async () => {
  const bytes = 2 * MiB;
  const { k, lines } = kernelWithLog();
  try {
    const bdev = bootMembdev(k, { bytes });
    const c = new Client(k, bootFs(k, 'membdev'));
    // A blank disk: no superblock at all.
    assert.equal(await c.fs.mount(), E('EUCLEAN'));
    assert.ok(lines.some((l) => l.startsWith('[fs]') && /superblock: bad magic/.test(l)), lines.join('\n'));
    // A superblock whose size disagrees with the device.
    const img = image('xv6', bytes);
    const sbOff = geometryOf('xv6').sbOffset;
    new DataView(img.buffer, img.byteOffset).setUint32(sbOff + 4, 1 << 30, true);
    await writeImageToBDev(k, bdev, img);
    lines.length = 0;
    assert.equal(await c.fs.mount(), E('EUCLEAN'));
    assert.ok(lines.some((l) => l.startsWith('[fs]') && /superblock: size \d+ blocks beyond image size/.test(l)), lines.join('\n'));
    assert.equal(k.get('fs')!.live, true);
    assert.deepEqual(k.heap.usage(k.get('fs')!.id), { bytes: 0, slots: 0 }, 'a failed mount frees its buffers');
    assert.equal(await c.fs.open('/', O_RDONLY, 0), E('EIO'), 'not mounted');
    // Repaired: it mounts.
    await writeImageToBDev(k, bdev, image('xv6', bytes));
    assert.equal(await c.fs.mount(), 0);
    assert.equal((await c.stat('/')).type, T_DIR);
    assert.equal(await c.fs.unmount(), 0);
    assert.equal(k.get('fs')!.faults, 0);
  } finally {
    k.shutdown();
  }
});

test('fs domain: a directory claiming more blocks than the data area is -EUCLEAN, not a scan that outlives the deadline', async () => {
  // The large variant's directory tree: every direct slot and every level of indirection leads to
  // the directory's one real block, so a size of ~4 TiB reads as valid entries all the way. A
  // lookup of a missing name would scan 2^30 blocks, holding the kernel thread until the domain's
  // deadline killed it. No directory can have more blocks than the data area (it has no holes).
  const bytes = 16 * MiB;
  const g = geometryOf('large');
  const ram = new RamBlockDevice(bytes, 512);
  ram.writeAt(0, image('large', bytes));
  const setup = await FileSystem.mount(ram, { alloc: hostAlloc });
  await setup.mkdir('/d');
  const inum = await setup.lookup('/d');
  await setup.unmount();
  const bs = g.bsize;
  const sb = new DataView(ram.readAt(g.sbOffset, bs).buffer);
  const nblocks = Number(sb.getBigUint64(24, true)), size = Number(sb.getBigUint64(16, true)), inodestart = sb.getUint32(40, true);
  const inodePos = (inodestart + Math.floor(inum / g.ipb)) * bs + (inum % g.ipb) * g.inodeSize;
  const dinode = ram.readAt(inodePos, g.inodeSize);
  const dv = new DataView(dinode.buffer, dinode.byteOffset, g.inodeSize);
  const block = dv.getUint32(16, true);
  // Three indirect blocks in the (unused) last data blocks: each full of the level below.
  const ind = [size - 3, size - 2, size - 1];
  ind.forEach((b, l) => {
    const entries = new DataView(new ArrayBuffer(bs));
    for (let i = 0; i < g.nindirect; i++) entries.setUint32(i * 4, l === 0 ? block : ind[l - 1]!, true);
    ram.writeAt(b * bs, new Uint8Array(entries.buffer));
  });
  for (let i = 0; i < g.ndirect; i++) dv.setUint32(16 + 4 * i, block, true);
  ind.forEach((b, l) => dv.setUint32(16 + 4 * (g.ndirect + l), b, true));
  dv.setBigUint64(8, BigInt(g.maxFileSize), true);
  ram.writeAt(inodePos, dinode);
  assert.ok(g.maxFileBlocks > nblocks);

  const { k, lines } = kernelWithLog();
  try {
    const bdev = bootMembdev(k, { bytes });
    await writeImageToBDev(k, bdev, ram.readAt(0, bytes));
    const c = new Client(k, bootFs(k, 'membdev'));
    assert.equal(await c.fs.mount(), 0);
    assert.equal(await c.fs.open('/d/missing', O_RDONLY, 0), E('EUCLEAN'));
    assert.ok(lines.some((l) => l.startsWith('[fs]') && /directory|inode/.test(l) && /data (area|blocks)/.test(l)), lines.join('\n'));
    assert.equal(await c.fs.mkdir('/e', 0), 0, 'the rest of the file system works');
    const fs = k.get('fs')!;
    assert.ok(fs.live && fs.faults === 0, 'the fs domain did not die');
  } finally {
    k.shutdown();
  }
});

test('fs domain over nvme behind the block shadow (image file, large variant): files across the indirect boundaries survive a new kernel', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rl-fsdom-'));
  try {
    const img = join(dir, 'fs.img');
    const bytes = 24 * MiB;
    writeFileSync(img, image('large', bytes));
    const g = geometryOf('large');
    // 24 direct blocks, 1024 singly indirect ones, then the doubly indirect tree.
    const size = (g.ndirect + g.nindirect + 3) * g.bsize + 123;
    const big = pattern(size, 11);
    const names = Array.from({ length: 40 }, (_, i) => `entry-with-a-long-name-${i}`);

    const s1 = await bootStorage({ image: img, shadow: true, log: () => {} });
    try {
      const c = new Client(s1.kernel, bootFs(s1.kernel, s1.shadowName!));
      assert.equal(await c.fs.mount(), 0);
      assert.equal(await c.fs.mkdir('/data', 0), 0);
      const f = await c.fs.open('/data/big', O_CREATE | O_RDWR, 0);
      for (let off = 0; off < size; ) {
        const n = Math.min(size - off, 300_000);
        assert.equal(await c.write(f, off, big.subarray(off, off + n)), n);
        off += n;
      }
      for (const b of [g.ndirect, g.ndirect + g.nindirect]) {
        const at = b * g.bsize;
        assert.deepEqual(await c.read(f, at - 5, 10), big.subarray(at - 5, at + 5), `across block ${b}`);
      }
      assert.equal(await c.fs.close(f), 0);
      for (const n of names) await c.writeFile(`/data/${n}`, new TextEncoder().encode(n));
      assert.equal(await c.fs.unmount(), 0);
      assert.equal(s1.kernel.get('fs')!.faults, 0);
    } finally {
      await s1.stop();
    }

    const s2 = await bootStorage({ image: img, shadow: true, log: () => {} });
    try {
      const c = new Client(s2.kernel, bootFs(s2.kernel, s2.shadowName!));
      assert.equal(await c.fs.mount(), 0);
      assert.deepEqual(await c.readFile('/data/big'), big);
      const d = await c.fs.open('/data', O_RDONLY, 0);
      const { entries } = await c.dents(d, 100);
      assert.deepEqual(entries.map((e) => e[1]).sort(), ['.', '..', 'big', ...names].sort());
      assert.equal(await c.fs.close(d), 0);
      assert.deepEqual(new TextDecoder().decode(await c.readFile('/data/' + names[7])), names[7]);
      assert.equal(await c.fs.unlink('/data/big', 0), 0);
      assert.equal(await c.fs.unmount(), 0);
    } finally {
      await s2.stop();
    }
    assertClean(img);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the first instance frees at mount what a power cut left with no link; a restarted one keeps it (its client may hold it)', async () => {
  // An image where the power went with an unlinked file still open.
  const ram = new RamBlockDevice(2 * MiB, 512);
  ram.writeAt(0, image('xv6', 2 * MiB));
  const host = await FileSystem.mount(ram, { alloc: hostAlloc });
  const f = await host.open('/gone', O_CREATE | O_RDWR);
  await host.write(f, 0, pattern(3000, 9));
  await host.unlink('/gone');
  await host.sync();
  const withOrphan = ram.clone().readAt(0, 2 * MiB);

  const { k, lines } = kernelWithLog();
  try {
    const bdev = bootMembdev(k, { bytes: 2 * MiB });
    await writeImageToBDev(k, bdev, withOrphan);
    // A restarted instance first (the first one crashed before it mounted): its mount keeps the orphan.
    bootFs(k, 'membdev');
    k.injectFault('fs', 'now');
    const again = k.bind<Rv6Fs>(k.restart('fs'));
    assert.equal(await again.mount(), 0);
    assert.equal(await again.reopen(f.inum, O_RDONLY), 1, 'the orphan is still there for a client that holds it');
    assert.ok(!lines.some((l) => /left with no link/.test(l)), lines.join('\n'));
    k.injectFault('fs', 'now'); // down again without closing it (an unmount would, and free it)
    // A first instance (a new boot): its mount frees it.
    const boot = bootFs(k, 'membdev', { name: 'fs2' });
    assert.equal(await boot.mount(), 0);
    assert.ok(lines.some((l) => /\[fs2\] mount: freed 1 inode left with no link by a crash/.test(l)), lines.join('\n'));
    assert.equal(await boot.reopen(f.inum, O_RDONLY), E('ENOENT'));
    assert.equal(await boot.unmount(), 0);
    assertClean(await readImage(k), false, 'no orphan left');
  } finally {
    k.shutdown();
  }

  async function readImage(kernel: Kernel): Promise<RamBlockDevice> {
    const out = new RamBlockDevice(2 * MiB, 512);
    out.writeAt(0, await readImageFromBDev(kernel, kernel.bind('membdev'), 2 * MiB));
    return out;
  }
});
