/**
 * Damaged images through the fs domain (over membdev): structured corruptions of superblock
 * fields, inode fields (type, size, nlink, block pointers out of range, into metadata or shared)
 * and directory entries (inode numbers, names with '/', empty, duplicate, unterminated). Each image
 * is mounted by the fs domain and everything reachable is exercised — getdents, stat, read, write,
 * append, unlink, rmdir, then a mkdir and a create — every call bounded by a timeout:
 *
 *  - every answer is 0, a count or file id, or -errno of a known errno; a hang fails the test;
 *  - neither the fs domain nor membdev faults, the fs never meets an unexpected exception (it would
 *    log "unexpected"), and it mounts the next image afterwards;
 *  - a catalogue of damage (each entry damage by construction) is reported by fsck (ok = false, the
 *    CLI's non-zero exit) — checked for every entry — and, for the superblock, refused by mount
 *    with -EUCLEAN;
 *  - random values of the same fields keep fsck and the fs consistent: a refused mount means fsck
 *    reports damage, and on an image fsck calls clean the fs never answers -EUCLEAN.
 *
 * The byte-level fuzzing of the layers is test/fs/fuzz.test.ts; this is its structured, through-
 * the-domain counterpart. A failure prints fast-check's seed and path (FS_SEED / FS_PATH rerun it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Kernel } from '../../src/kernel/kernel.js';
import { bootMembdev } from '../../src/host/storage.js';
import { bootFs, writeImageToBDev } from '../../src/host/bdev-image.js';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { HostBytes } from '../../src/host/bytes.js';
import { fsck, type FsckResult } from '../../src/host/fsck.js';
import {
  decodeDinode, decodeName, decodeSuperblock, direntInum, encodeDinode, encodeSuperblock, geometryOf, iblock, ioffset, naddrs,
  ROOTINO, T_DIR, validateSuperblock, type Dinode, type Geometry, type Layout, type Superblock, type Variant,
} from '../../src/domains/fs/format.js';
import { ERRNO, O_CREATE, O_RDONLY, O_RDWR } from '../../src/interfaces/rv6.js';
import type { BDev } from '../../src/interfaces/block.js';
import { Client } from './client.js';
import { within } from '../within.js';
import { fcParams, pattern, ramFs } from './helpers.js';

const MiB = 1 << 20;
const KNOWN_ERRNOS = new Set<number>(Object.values(ERRNO));
/** A call that takes longer than this is a hang. */
const CALL_TIMEOUT_MS = 10_000;

/** An mkfs'd image holding a small tree, and where its structures are. */
interface Target {
  g: Geometry;
  sb: Superblock;
  layout: Layout;
  image: Uint8Array;
  /** The used inodes, in tree order (the root first). */
  inodes: Array<{ inum: number; path: string; d: Dinode }>;
  /** Every used directory entry: its byte offset in the image, its directory, inum and name. */
  dirents: Array<{ at: number; dir: number; inum: number; name: string }>;
  /** An unused inode number and an unused data block. */
  freeInum: number;
  freeBlock: number;
}

const dinodeAt = (t: { g: Geometry; sb: Superblock }, inum: number): number => iblock(t.g, t.sb, inum) * t.g.bsize + ioffset(t.g, inum);

async function buildTarget(variant: Variant, bytes: number): Promise<Target> {
  const g = geometryOf(variant);
  const { dev, fs } = await ramFs(variant, bytes);
  await fs.mkdir('/d');
  await fs.mkdir('/d/e');
  await fs.writeFile('/a', pattern(300, 1));
  await fs.writeFile('/d/big', pattern((g.ndirect + 3) * g.bsize + 17, 2)); // into the indirect tree
  await fs.writeFile('/d/e/g', pattern(1, 3));
  await fs.link('/a', '/d/hard');
  await fs.mknod('/d/dev', 1, 0);
  await fs.unmount();
  const image = dev.readAt(0, bytes);
  const hb = new HostBytes(image);
  const sb = decodeSuperblock(g, hb, g.sbOffset);
  const layout = validateSuperblock(g, sb, bytes / g.bsize);
  const t: Target = { g, sb, layout, image, inodes: [], dirents: [], freeInum: 0, freeBlock: sb.size - 1 };
  const dinode = (inum: number): Dinode => decodeDinode(g, hb, dinodeAt(t, inum));
  t.inodes.push({ inum: ROOTINO, path: '/', d: dinode(ROOTINO) });
  for (let i = 0; i < t.inodes.length; i++) {
    const { inum: dir, path, d } = t.inodes[i]!;
    if (d.type !== T_DIR) continue;
    for (let off = 0; off < d.size; off += g.direntSize) {
      const at = d.addrs[Math.floor(off / g.bsize)]! * g.bsize + (off % g.bsize); // small directories: direct blocks
      const inum = direntInum(g, image, at);
      if (inum === 0) continue;
      const name = decodeName(g, image, at);
      t.dirents.push({ at, dir, inum, name });
      if (name === '.' || name === '..' || t.inodes.some((x) => x.inum === inum)) continue;
      t.inodes.push({ inum, path: path === '/' ? `/${name}` : `${path}/${name}`, d: dinode(inum) });
    }
  }
  t.freeInum = Math.max(...t.inodes.map((x) => x.inum)) + 1;
  assert.equal(dinode(t.freeInum).type, 0, 'inodes are allocated in order');
  assert.equal(image[(sb.bmapstart + Math.floor(t.freeBlock / g.bpb)) * g.bsize + ((t.freeBlock % g.bpb) >> 3)]! & (1 << (t.freeBlock & 7)), 0, 'the last block is free');
  return t;
}

type SbField = 'magic' | 'size' | 'nblocks' | 'ninodes' | 'nlog' | 'logstart' | 'inodestart' | 'bmapstart';
const SB_FIELDS: SbField[] = ['magic', 'size', 'nblocks', 'ninodes', 'nlog', 'logstart', 'inodestart', 'bmapstart'];

/** One corruption, as plain data (fast-check prints it in counterexamples). Indices name Target entries. */
type Mutation =
  | { k: 'sb'; field: SbField; value: number }
  | { k: 'inode'; inode: number; field: 'type' | 'nlink' | 'size'; value: number }
  | { k: 'addr'; inode: number; slot: number; value: number }
  | { k: 'indirect'; entry: number; value: number }
  | { k: 'dirent-inum'; dirent: number; value: number }
  | { k: 'dirent-name'; dirent: number; name: number[] };

function apply(t: Target, m: Mutation, img: Uint8Array): void {
  const { g } = t;
  const hb = new HostBytes(img);
  const setDinode = (inode: number, change: (d: Dinode) => void): void => {
    const at = dinodeAt(t, t.inodes[inode]!.inum);
    const d = decodeDinode(g, hb, at);
    change(d);
    encodeDinode(g, d, hb, at);
  };
  switch (m.k) {
    case 'sb':
      encodeSuperblock(g, { ...decodeSuperblock(g, hb, g.sbOffset), [m.field]: m.value }, hb, g.sbOffset);
      break;
    case 'inode':
      setDinode(m.inode, (d) => { d[m.field] = m.value; });
      break;
    case 'addr':
      setDinode(m.inode, (d) => { d.addrs[m.slot] = m.value; });
      break;
    case 'indirect':
      hb.setU32(bigFile(t).d.addrs[g.ndirect]! * g.bsize + 4 * m.entry, m.value);
      break;
    case 'dirent-inum': {
      const at = t.dirents[m.dirent]!.at;
      for (let i = 0; i < g.direntSize - g.dirsiz; i++) img[at + i] = (m.value / 2 ** (8 * i)) & 0xff;
      break;
    }
    case 'dirent-name': {
      const at = t.dirents[m.dirent]!.at + g.direntSize - g.dirsiz;
      img.fill(0, at, at + g.dirsiz);
      img.set(m.name.slice(0, g.dirsiz), at);
      break;
    }
  }
}

function bigFile(t: Target): Target['inodes'][number] {
  return t.inodes.find((x) => x.path === '/d/big')!;
}

const bytesOf = (s: string): number[] => [...new TextEncoder().encode(s)];

/** Corruptions each of which is damage fsck must report. */
function damageCatalogue(t: Target): Mutation[] {
  const { g, sb, layout } = t;
  const out: Mutation[] = [];
  const imageBlocks = t.image.length / g.bsize;
  const sbBad: Array<[SbField, number]> = [
    ['magic', sb.magic ^ 1], ['size', imageBlocks + 1], ['size', 3], ['nblocks', 0], ['nblocks', sb.size], ['ninodes', 1],
    ['nlog', 1], ['logstart', 1], ['logstart', sb.inodestart], ['inodestart', sb.logstart], ['bmapstart', sb.inodestart], ['bmapstart', sb.size],
  ];
  for (const [field, value] of sbBad) out.push({ k: 'sb', field, value });
  const firstBlockOf = (path: string): number => t.inodes.find((x) => x.path === path)!.d.addrs[0]!;
  t.inodes.forEach(({ path, d }, inode) => {
    for (const value of [0, 4, 0x7fff, 0xffff]) out.push({ k: 'inode', inode, field: 'type', value });
    for (const value of [d.nlink + 1, 0, 0xffff]) out.push({ k: 'inode', inode, field: 'nlink', value });
    if (d.addrs[0] === 0) return; // no blocks (the device)
    const sizes = [g.maxFileSize + 1, 0];
    if (d.type === T_DIR) sizes.push(d.size - 1, d.size + g.bsize);
    for (const value of sizes) out.push({ k: 'inode', inode, field: 'size', value });
    const shared = path === '/a' ? firstBlockOf('/d/big') : firstBlockOf('/a');
    d.addrs.forEach((a, slot) => {
      if (a === 0) return;
      for (const value of [1, sb.logstart, sb.inodestart, sb.bmapstart, layout.datastart - 1, sb.size, 0xffffffff, shared]) {
        out.push({ k: 'addr', inode, slot, value });
      }
    });
    if (d.size <= g.bsize) out.push({ k: 'addr', inode, slot: 5, value: t.freeBlock }); // a block beyond the size
  });
  for (const value of [sb.inodestart, sb.size, 0xffffffff, firstBlockOf('/a')]) out.push({ k: 'indirect', entry: 0, value });
  out.push({ k: 'indirect', entry: g.nindirect - 1, value: t.freeBlock });
  t.dirents.forEach(({ dir, inum, name }, dirent) => {
    const dot = name === '.' || name === '..';
    const others = [t.freeInum, sb.ninodes, Math.min(g.maxInum, 2 ** 32 - 1), 0];
    if (dot) others.push(t.inodes.find((x) => x.inum !== dir && x.inum !== inum && x.d.type === T_DIR)!.inum);
    else if (dir !== ROOTINO) others.push(ROOTINO);
    for (const value of others) out.push({ k: 'dirent-inum', dirent, value });
    const sibling = t.dirents.find((e) => e.dir === dir && e.name !== name && e.name !== '.' && e.name !== '..');
    const names = ['x/y', '', ...(dot ? ['x'] : ['.', '..']), ...(sibling && !dot ? [sibling.name] : [])];
    for (const n of names) out.push({ k: 'dirent-name', dirent, name: bytesOf(n) });
  });
  return out;
}

/** Random values of the same fields (damage or not). */
function randomMutation(t: Target): fc.Arbitrary<Mutation> {
  const { g, sb } = t;
  const u32 = fc.oneof(fc.nat(sb.size + 16), fc.constantFrom(0, 1, 0xffff, 0xffffffff), fc.nat(0xffffffff));
  const inode = fc.nat(t.inodes.length - 1);
  const dirent = fc.nat(t.dirents.length - 1);
  return fc.oneof(
    fc.record({ k: fc.constant('sb' as const), field: fc.constantFrom(...SB_FIELDS), value: u32 }),
    fc.record({ k: fc.constant('inode' as const), inode, field: fc.constantFrom('type' as const, 'nlink' as const), value: fc.nat(0xffff) }),
    fc.record({ k: fc.constant('inode' as const), inode, field: fc.constant('size' as const), value: fc.oneof(fc.nat(4 * g.bsize), fc.nat(Math.min(2 * g.maxFileSize, 2 ** 40))) }),
    fc.record({ k: fc.constant('addr' as const), inode, slot: fc.nat(naddrs(g) - 1), value: u32 }),
    fc.record({ k: fc.constant('indirect' as const), entry: fc.nat(g.nindirect - 1), value: u32 }),
    fc.record({ k: fc.constant('dirent-inum' as const), dirent, value: fc.oneof(fc.nat(sb.ninodes + 4), fc.nat(g.maxInum)) }),
    fc.record({
      k: fc.constant('dirent-name' as const), dirent,
      name: fc.oneof(
        fc.constant(Array<number>(g.dirsiz).fill(0x6e)), // unterminated: DIRSIZ bytes, no NUL (legal)
        fc.array(fc.nat(255), { maxLength: g.dirsiz }),
      ),
    }),
  );
}

/** The fs domain over membdev in one kernel, reused for every image. */
interface Rig {
  k: Kernel;
  bdev: BDev;
  c: Client;
  lines: string[];
}

function bootRig(bytes: number): Rig {
  const lines: string[] = [];
  const k = new Kernel({ physBytes: 64 * MiB, log: (d, line) => lines.push(`[${d}] ${line}`) });
  const bdev = bootMembdev(k, { bytes });
  return { k, bdev, c: new Client(k, bootFs(k, 'membdev')), lines };
}

function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  return within(p, CALL_TIMEOUT_MS, () => `${what}: no answer within ${CALL_TIMEOUT_MS} ms (a hang)`);
}

/**
 * Mount `img` in the rig and exercise everything reachable. Returns the mount's answer and whether
 * any call answered -EUCLEAN. Asserts every answer is well-formed and the domains survive.
 */
async function exercise(rig: Rig, img: Uint8Array): Promise<{ mount: number; euclean: boolean }> {
  const { c } = rig;
  const fs = c.fs;
  let euclean = false;
  const answer = (r: number, what: string): number => {
    assert.ok(Number.isInteger(r) && (r >= 0 || KNOWN_ERRNOS.has(-r)), `${what} answered ${r}`);
    if (r === -ERRNO.EUCLEAN) euclean = true;
    return r;
  };
  const call = async (what: string, p: Promise<number>): Promise<number> => answer(await bounded(p, what), what);

  await writeImageToBDev(rig.k, rig.bdev, img);
  rig.lines.length = 0;
  const mount = await call('mount', fs.mount());
  if (mount === 0) {
    const files: string[] = [];
    const dirs: string[] = [];
    const visited = new Set<number>([ROOTINO]);
    const walk = async (dir: string, depth: number): Promise<void> => {
      const fd = await call(`open ${dir}`, fs.open(dir, O_RDONLY, 0));
      if (fd < 0) return;
      const names: string[] = [];
      for (let off = 0, n = 1; n > 0; ) {
        const io = await bounded(fs.getdents(fd, c.iobuf(256, 0, off)), `getdents ${dir}`);
        n = answer(io.n, `getdents ${dir} at ${off}`);
        if (n > 0) {
          const raw = new Uint8Array(n);
          io.data!.read(0, raw, 0, n);
          for (const e of Buffer.from(raw).toString('utf8').slice(0, -1).split('\0')) names.push(e.slice(e.indexOf(' ') + 1));
          assert.ok(io.off > off, `getdents ${dir}: the offset advances`);
          off = io.off;
        }
        io.drop();
      }
      await call(`close ${dir}`, fs.close(fd));
      for (const name of names) {
        if (name === '.' || name === '..') continue;
        const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
        const st = await bounded(c.stat(path), `stat ${path}`);
        if (answer(st.err, `stat ${path}`) < 0) continue;
        if (st.type !== T_DIR) {
          files.push(path);
          await poke(path, st.size);
        } else if (!visited.has(st.ino) && depth < 8) {
          visited.add(st.ino);
          dirs.push(path);
          await walk(path, depth + 1);
        }
      }
    };
    const poke = async (path: string, size: number): Promise<void> => {
      const fd = await call(`open ${path}`, fs.open(path, O_RDWR, 0));
      if (fd < 0) return;
      for (const off of [0, Math.max(0, size - 10)]) {
        const r = await bounded(c.read(fd, off, 4096), `read ${path} at ${off}`);
        if (typeof r === 'number') answer(r, `read ${path} at ${off}`);
      }
      for (const off of [0, -1]) await call(`write ${path} at ${off}`, c.write(fd, off, pattern(100, 7)));
      await call(`close ${path}`, fs.close(fd));
    };
    await walk('/', 0);
    for (const f of files) await call(`unlink ${f}`, fs.unlink(f, 0));
    for (const d of dirs.reverse()) await call(`rmdir ${d}`, fs.rmdir(d, 0));
    await call('mkdir /new', fs.mkdir('/new', 0));
    const fd = await call('create /new/x', fs.open('/new/x', O_CREATE | O_RDWR, 0));
    if (fd > 0) {
      await call('write /new/x', c.write(fd, 0, pattern(5000, 8)));
      await call('close /new/x', fs.close(fd));
    }
    await call('unmount', fs.unmount());
  }
  for (const name of ['fs', 'membdev']) {
    const d = rig.k.get(name)!;
    assert.ok(d.live && d.faults === 0, `${name} survives (${d.deathCause ?? ''})`);
  }
  const unexpected = rig.lines.filter((l) => l.includes('unexpected'));
  assert.deepEqual(unexpected, [], 'the fs meets no unexpected exception');
  return { mount, euclean };
}

function fsckOf(img: Uint8Array): FsckResult {
  const ram = new RamBlockDevice(img.length, 512);
  ram.writeAt(0, img);
  return fsck(ram);
}

const variants: Array<{ variant: Variant; bytes: number }> = [
  { variant: 'xv6', bytes: 2 * MiB },
  { variant: 'large', bytes: 4 * MiB },
];

for (const { variant, bytes } of variants) {
  const targetP = buildTarget(variant, bytes);

  test(`fuzzed images (${variant}): fsck reports every entry of the damage catalogue; a damaged superblock does not mount`, async () => {
    const t = await targetP;
    assert.ok(fsckOf(t.image).ok, 'the undamaged image is clean');
    const catalogue = damageCatalogue(t);
    for (const m of catalogue) {
      const img = t.image.slice();
      apply(t, m, img);
      assert.ok(!fsckOf(img).ok, `fsck misses ${JSON.stringify(m)}`);
    }
    const rig = bootRig(bytes);
    try {
      for (const m of catalogue.filter((x) => x.k === 'sb')) {
        const img = t.image.slice();
        apply(t, m, img);
        assert.equal((await exercise(rig, img)).mount, -ERRNO.EUCLEAN, `mount of ${JSON.stringify(m)}`);
      }
    } finally {
      rig.k.shutdown();
    }
  });

  test(`fuzzed images through the fs domain (${variant}): damage answers -errno, never hangs or faults; fsck and the fs agree`, { timeout: 240_000 }, async () => {
    const t = await targetP;
    const catalogue = damageCatalogue(t);
    const rig = bootRig(bytes);
    try {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.constantFrom(...catalogue).map((m) => [m]), fc.array(randomMutation(t), { minLength: 1, maxLength: 3 })), async (muts) => {
          const img = t.image.slice();
          for (const m of muts) apply(t, m, img);
          const report = fsckOf(img);
          const { mount, euclean } = await exercise(rig, img);
          if (mount !== 0) assert.ok(!report.ok, `mount answered ${mount} but fsck finds the image clean`);
          if (report.ok) assert.ok(!euclean, `the fs answered -EUCLEAN on an image fsck finds clean; fs log:\n${rig.lines.join('\n')}`);
        }),
        fcParams(variant === 'xv6' ? 120 : 60, { interruptAfterTimeLimit: 150_000 }),
      );
    } finally {
      rig.k.shutdown();
    }
  });
}
