/**
 * rename at the FileSystem layer: POSIX/Linux semantics (every errno path, link counts, '..' of a
 * moved directory, replaced files freed, open files kept), a model-based property over random
 * trees, and renames running concurrently with each other and with removals (no deadlock,
 * fsck-clean). Its power-cut atomicity is in crash.test.ts.
 *
 * Also: a rename that finds a parent removed meanwhile, the last holder of a large directory
 * spread over many bitmap blocks, frees it without hanging the fs (it once freed it holding the
 * rename lock, cycling transactions that a rename waiting for the lock kept from committing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { O_CREATE, O_EXCL, O_RDONLY, O_RDWR, O_WRONLY, type FileSystem } from '../../src/domains/fs/fs.js';
import { XV6 } from '../../src/domains/fs/format.js';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { mkfs } from '../../src/host/mkfs.js';
import { ramFs, assertCleanSynced, snapshot, pattern, expectCode, fcParams, fragmentBitmaps, ReadGate, settle, mountRam } from './helpers.js';
import { within } from '../within.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

for (const variant of ['xv6', 'large'] as const) {
  test(`rename ${variant}: files and directories, within and across directories, replacing; link counts and '..' stay right`, async () => {
    const { dev, fs } = await ramFs(variant, 4 << 20);
    const a = pattern(5000, 1);
    const b = pattern(300, 2);
    await fs.mkdir('/x');
    await fs.mkdir('/y');
    await fs.writeFile('/x/f', a);
    await fs.rename('/x/f', '/x/g');
    await fs.rename('/x/g', '/y/h');
    assert.deepEqual([...(await snapshot(fs)).keys()].sort(), ['/x', '/y', '/y/h']);
    assert.deepEqual(await fs.readFile('/y/h'), a);

    // Replacing a file: the old one's blocks are freed.
    const before = (await fs.statfs()).freeBlocks;
    await fs.writeFile('/y/old', pattern(20_000, 3));
    await fs.writeFile('/x/new', b);
    await fs.rename('/x/new', '/y/old');
    assert.deepEqual(await fs.readFile('/y/old'), b);
    await expectCode(fs.stat('/x/new'), 'ENOENT');
    await fs.unlink('/y/old');
    assert.equal((await fs.statfs()).freeBlocks, before, 'the replaced file and the renamed one are both freed');

    // A directory with contents moves: its '..' follows it, parents' link counts change.
    await fs.mkdir('/x/d');
    await fs.mkdir('/x/d/e');
    await fs.writeFile('/x/d/e/f', a);
    const xLinks = (await fs.stat('/x')).nlink;
    const yLinks = (await fs.stat('/y')).nlink;
    await fs.rename('/x/d', '/y/d2');
    assert.equal((await fs.stat('/x')).nlink, xLinks - 1);
    assert.equal((await fs.stat('/y')).nlink, yLinks + 1);
    assert.deepEqual(await fs.readFile('/y/d2/e/f'), a);
    assert.equal((await fs.stat('/y/d2/..')).ino, (await fs.stat('/y')).ino, "'..' names the new parent");
    assert.equal((await fs.stat('/y/d2/e/../../d2/e/f')).size, a.length);

    // A directory replaces an empty one (in another parent, and in its own).
    await fs.mkdir('/x/empty');
    await fs.rename('/y/d2', '/x/empty');
    assert.equal((await fs.stat('/x')).nlink, xLinks, "/x lost the empty directory's '..' and gained the moved one's");
    assert.equal((await fs.stat('/y')).nlink, yLinks);
    await fs.mkdir('/x/e2');
    await expectCode(fs.rename('/x/e2', '/x/empty'), 'ENOTEMPTY'); // it holds e/f now
    await fs.mkdir('/x/e3');
    await fs.rename('/x/e3', '/x/e2');
    assert.equal((await fs.stat('/x')).nlink, xLinks + 1, "one '..' less: e3's replaced e2's");
    await assertCleanSynced(fs, dev, false);

    // Directory renamed within its parent; a directory renamed onto itself; two names of one file.
    await fs.rename('/x/e2', '/x/e4');
    await fs.rename('/x/e4', '/x/e4');
    await fs.link('/y/h', '/y/h2');
    await fs.rename('/y/h', '/y/h2');
    assert.equal((await fs.stat('/y/h')).nlink, 2, 'rename of two names of one file changes nothing (POSIX)');
    assert.equal((await fs.stat('/y/h2')).ino, (await fs.stat('/y/h')).ino);
    await assertCleanSynced(fs, dev, false);
  });
}

test('a rename whose new entry grows the directory into its indirect block (the largest transaction rename makes) commits whole', async () => {
  const { dev, fs } = await ramFs('xv6', 4 << 20, { inodes: 1000 });
  await fs.mkdir('/big');
  const perBlock = 1024 / 16;
  for (let i = 0; i < 12 * perBlock - 2; i++) await fs.close(await fs.open(`/big/f${i}`, O_CREATE | O_WRONLY)); // 12 direct blocks full
  assert.equal((await fs.stat('/big')).size, 12 * 1024);
  await fs.mkdir('/d');
  await fs.mkdir('/d/sub');
  await fs.rename('/d', '/big/d'); // a new block, the indirect block, the bitmap, '..', both parents
  assert.equal((await fs.stat('/big')).size, 12 * 1024 + 16);
  assert.equal((await fs.stat('/big/d/sub/../..')).ino, (await fs.stat('/big')).ino);
  await assertCleanSynced(fs, dev, false);
});

test('rename refuses what Linux refuses, with its errno, and changes nothing then', async () => {
  const { dev, fs } = await ramFs('xv6', 4 << 20);
  await fs.mkdir('/a');
  await fs.mkdir('/a/b');
  await fs.mkdir('/full');
  await fs.writeFile('/full/x', pattern(10, 1));
  await fs.writeFile('/f', pattern(10, 2));
  const tree = await snapshot(fs);
  const refused: [string, string, string][] = [
    ['/a', '/a/b/c', 'EINVAL'], // into itself
    ['/a', '/a/c', 'EINVAL'],
    ['/a/b', '/a', 'ENOTEMPTY'], // onto a directory above it
    ['/a', '/full', 'ENOTEMPTY'],
    ['/a', '/f', 'ENOTDIR'],
    ['/f', '/a', 'EISDIR'],
    ['/missing', '/z', 'ENOENT'],
    ['/f', '/missing/z', 'ENOENT'],
    ['/f', '/f/z', 'ENOTDIR'],
    ['/', '/z', 'EBUSY'],
    ['/a/.', '/z', 'EBUSY'],
    ['/a/b/..', '/z', 'EBUSY'],
    ['/f', '/a/..', 'EBUSY'],
    ['/f', '/a/' + 'n'.repeat(15), 'ENAMETOOLONG'],
    ['', '/z', 'ENOENT'],
  ];
  for (const [from, to, code] of refused) {
    await expectCode(fs.rename(from, to), code).catch((e: Error) => assert.fail(`rename ${from} ${to}: ${e.message}`));
  }
  assert.deepEqual(await snapshot(fs), tree);
  await assertCleanSynced(fs, dev, false);
});

test('an open file keeps its data when renamed or replaced; a replaced one is freed at its last close', async () => {
  const { dev, fs } = await ramFs('large', 16 << 20);
  const a = pattern(100_000, 4);
  const b = pattern(2000, 5);
  await fs.writeFile('/a', a);
  await fs.writeFile('/b', b);
  const fa = await fs.open('/a', O_RDONLY);
  const fb = await fs.open('/b', O_RDWR);
  await fs.rename('/a', '/b'); // /b's file has no name now, but is open
  const buf = new Uint8Array(b.length);
  assert.equal(await fs.read(fb, 0, buf), b.length);
  assert.deepEqual(buf, b);
  await fs.write(fb, 0, pattern(10, 6));
  const whole = new Uint8Array(a.length);
  assert.equal(await fs.read(fa, 0, whole), a.length);
  assert.deepEqual(whole, a);
  assert.deepEqual(await fs.readFile('/b'), a);
  const free = (await fs.statfs()).freeBlocks;
  await fs.close(fb);
  assert.ok((await fs.statfs()).freeBlocks > free, 'the replaced file is freed at its close');
  await fs.close(fa);
  await assertCleanSynced(fs, dev, false);
});

test('rename relative to a starting directory, and of the starting directory itself', async () => {
  const { dev, fs } = await ramFs('xv6', 4 << 20);
  await fs.mkdir('/d');
  await fs.mkdir('/d/sub');
  const cwd = await fs.open('/d/sub', O_RDONLY);
  await fs.writeFile('f', pattern(50, 7), cwd);
  await fs.rename('f', '../g', cwd);
  assert.equal((await fs.stat('/d/g')).size, 50);
  await fs.rename('/d', '/e'); // a directory above the starting one moves: relative paths still work
  await fs.rename('../g', 'h', cwd);
  assert.equal((await fs.stat('/e/sub/h')).size, 50);
  await expectCode(fs.rename('.', 'x', cwd), 'EBUSY');
  await fs.close(cwd);
  await assertCleanSynced(fs, dev, false);
});

test('renames to and from a parent directory racing removals of the child directory all settle, with the answers those removals may get', async () => {
  // A log that admits many operations at once (xv6's default of 30 blocks admits about two).
  const { dev, fs } = await ramFs('large', 16 << 20, { nlog: 1000 });
  await fs.mkdir('/a');
  await fs.mkdir('/a/b');
  const N = 30;
  for (let i = 0; i < N; i++) await fs.writeFile(`/a/b/x${i}`, pattern(10, i));
  const ops: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    ops.push(fs.rename(`/a/b/x${i}`, `/a/y${i}`)); // from the child up to its parent
    ops.push(fs.rmdir('/a/b')); // locks /a, then /a/b (ENOTEMPTY while a file is left in it)
    ops.push(fs.rename(`/a/y${i}`, `/a/b/z${i}`)); // from the parent down into the child
  }
  const results = await within(Promise.allSettled(ops), 10_000, () => 'the renames and removals did not settle within 10 s (a deadlock)');
  for (const r of results) if (r.status === 'rejected') assert.ok(['ENOENT', 'ENOTEMPTY'].includes((r.reason as { code?: string }).code ?? ''), String(r.reason));
  await assertCleanSynced(fs, dev, false);
});

// ---- a model of rename, mkdir, create, unlink and rmdir over a small name space --------------

type Node = 'dir' | string; // a file's content (hex)
type TreeOp =
  | { k: 'rename'; from: string; to: string }
  | { k: 'mkdir'; p: string }
  | { k: 'create'; p: string; seed: number }
  | { k: 'unlink'; p: string }
  | { k: 'rmdir'; p: string };

/** Paths of up to three elements over names a, b, c: enough for moves into, above and across. */
const pathArb = fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 }).map((e) => '/' + e.join('/'));
const treeOpArb: fc.Arbitrary<TreeOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('rename' as const), from: pathArb, to: pathArb }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('mkdir' as const), p: pathArb }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('create' as const), p: pathArb, seed: fc.nat(1000) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('unlink' as const), p: pathArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('rmdir' as const), p: pathArb }) },
);

const parent = (p: string): string => p.slice(0, p.lastIndexOf('/')) || '/';
const under = (p: string, d: string): boolean => p.startsWith(d + '/');

/** What Linux answers for op on tree `t` ('OK' or an errno name), applying it to `t` on success. */
function modelOp(t: Map<string, Node>, op: TreeOp): string {
  /** The error of walking to `p`'s parent: a missing element ENOENT, a file in the way ENOTDIR. */
  const walk = (p: string): string | null => {
    const parts = p.split('/').filter((s) => s !== '');
    for (let i = 1; i < parts.length; i++) {
      const n = t.get('/' + parts.slice(0, i).join('/'));
      if (n === undefined) return 'ENOENT';
      if (n !== 'dir') return 'ENOTDIR';
    }
    return null;
  };
  const isEmptyDir = (d: string): boolean => ![...t.keys()].some((k) => under(k, d));
  switch (op.k) {
    case 'mkdir': case 'create': {
      const e = walk(op.p);
      if (e) return e;
      if (t.has(op.p)) return 'EEXIST';
      t.set(op.p, op.k === 'mkdir' ? 'dir' : hex(pattern(40, op.seed)));
      return 'OK';
    }
    case 'unlink': case 'rmdir': {
      const e = walk(op.p);
      if (e) return e;
      const n = t.get(op.p);
      if (n === undefined) return 'ENOENT';
      if (op.k === 'unlink' && n === 'dir') return 'EISDIR';
      if (op.k === 'rmdir' && n !== 'dir') return 'ENOTDIR';
      if (op.k === 'rmdir' && !isEmptyDir(op.p)) return 'ENOTEMPTY';
      t.delete(op.p);
      return 'OK';
    }
    case 'rename': {
      const e = walk(op.from) ?? walk(op.to);
      if (e) return e;
      const n = t.get(op.from);
      if (n === undefined) return 'ENOENT';
      const np = parent(op.to);
      if (np === op.from || under(np, op.from)) return 'EINVAL';
      const target = t.get(op.to);
      if (target !== undefined) {
        const op_ = parent(op.from);
        if (op_ === op.to || under(op_, op.to)) return 'ENOTEMPTY';
        if (op.to === op.from) return 'OK';
        if (n === 'dir' && target !== 'dir') return 'ENOTDIR';
        if (n !== 'dir' && target === 'dir') return 'EISDIR';
        if (target === 'dir' && !isEmptyDir(op.to)) return 'ENOTEMPTY';
      }
      t.delete(op.to);
      for (const [k, v] of [...t]) {
        if (k === op.from || under(k, op.from)) {
          t.delete(k);
          t.set(op.to + k.slice(op.from.length), v);
        }
      }
      return 'OK';
    }
  }
}

/** A tree every run starts from, so that most renames find something to move and somewhere to go. */
const START: TreeOp[] = [
  ...['/a', '/b', '/c', '/a/b', '/b/c', '/b/c/a'].map((p): TreeOp => ({ k: 'mkdir', p })),
  ...['/c/a', '/a/c', '/b/a'].map((p, seed): TreeOp => ({ k: 'create', p, seed })),
];

async function runTreeOp(fs: FileSystem, op: TreeOp): Promise<string> {
  try {
    switch (op.k) {
      case 'rename': await fs.rename(op.from, op.to); break;
      case 'mkdir': await fs.mkdir(op.p); break;
      case 'create': await fs.close(await fs.open(op.p, O_CREATE | O_EXCL | O_WRONLY)); await fs.writeFile(op.p, pattern(40, op.seed)); break;
      case 'unlink': await fs.unlink(op.p); break;
      case 'rmdir': await fs.rmdir(op.p); break;
    }
    return 'OK';
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === undefined) throw e;
    return code;
  }
}

test('property: random renames, mkdirs, creates and removals answer as Linux does and leave the tree the model holds, fsck-clean', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(treeOpArb, { minLength: 10, maxLength: 40 }), async (ops) => {
      const { dev, fs } = await ramFs('xv6', 2 << 20);
      const model = new Map<string, Node>();
      for (const [i, op] of [...START, ...ops].entries()) {
        const want = modelOp(model, op);
        const got = await runTreeOp(fs, op);
        assert.equal(got, want, `op ${i} ${JSON.stringify(op)}`);
      }
      const snap = await snapshot(fs);
      assert.deepEqual([...snap].sort(), [...model].sort());
      await assertCleanSynced(fs, dev, false);
    }),
    fcParams(200),
  );
});

// xv6's log of 30 blocks admits about two operations at once; the large variant's, with a log of
// 1000 blocks, about fifteen.
for (const variant of ['xv6', 'large'] as const) test(`property (${variant}): renames running concurrently with each other and with removals all settle (no deadlock) and leave an fsck-clean tree`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(treeOpArb, { minLength: 2, maxLength: 12 }), fc.array(treeOpArb, { minLength: 8, maxLength: 30 }), async (setup, concurrent) => {
      const { dev, fs } = variant === 'xv6' ? await ramFs('xv6', 2 << 20) : await ramFs('large', 16 << 20, { nlog: 1000 });
      for (const op of [...START, ...setup]) await runTreeOp(fs, op);
      const files = new Set([...(await snapshot(fs)).values()].filter((v) => v !== 'dir'));
      const codes = await within(Promise.all(concurrent.map((op) => runTreeOp(fs, op))), 10_000, () => 'the concurrent operations did not settle within 10 s (a deadlock)');
      for (const c of codes) assert.ok(c !== 'EUCLEAN' && c !== 'EIO', `an operation answered ${c}`);
      // Every file's content is one that existed or was created: renames never make up or mix data.
      for (const op of concurrent) if (op.k === 'create') files.add(hex(pattern(40, op.seed)));
      for (const v of (await snapshot(fs)).values()) if (v !== 'dir') assert.ok(files.has(v) || v === '', `unexpected content ${v.slice(0, 16)}…`);
      await assertCleanSynced(fs, dev, false);
    }),
    fcParams(150),
  );
});

test('a rename whose parent was removed meanwhile frees the large directory without hanging a rename waiting for the lock', async () => {
  const g = XV6;
  // 136 MiB, sparse in RAM: /p's block in the first bitmap block, /d's 15 blocks and its indirect
  // block in the 16 next ones.
  const nbitmap = 17;
  const size = nbitmap * g.bpb * g.bsize;
  const ram = new RamBlockDevice(size, 512);
  mkfs(ram, { variant: 'xv6', sizeBytes: size });
  fragmentBitmaps(ram, g, nbitmap);
  let fs = await mountRam(ram);
  await fs.mkdir('/p');
  await fs.mkdir('/d');
  await fs.writeFile('/f', new Uint8Array(0));
  const names = Array.from({ length: 15 * (g.bsize / 16) - 2 }, (_, i) => `/d/${i}`); // 15 blocks of entries
  for (const n of names) await fs.link('/f', n);
  assert.equal((await fs.statfs()).freeBlocks, 0);
  for (const n of names) await fs.unlink(n);
  await fs.unmount();
  const dev = new ReadGate(ram);
  fs = await mountRam(dev);
  await fs.stat('/d');
  await fs.stat('/p');
  // The rename holds the rename lock and /d, and stops reading /p's '..' (its ancestors).
  dev.holdNextRead();
  const renaming = fs.rename('/d/a', '/p/b');
  await dev.held;
  await fs.rmdir('/d'); // the rename's reference is the last
  const waiting = fs.rename('/f', '/g');
  await settle(); // in its transaction, waiting for the rename lock
  dev.release();
  const [r1, r2] = await within(Promise.allSettled([renaming, waiting]), 5000, () => 'the renames never finished');
  assert.equal(r1.status === 'rejected' && (r1.reason as { code?: string }).code, 'ENOENT');
  assert.equal(r2.status, 'fulfilled');
  assert.equal((await fs.statfs()).freeBlocks, nbitmap - 1, "every block of /d is free again");
  assert.equal((await fs.stat('/g')).nlink, 1);
  await fs.unmount(); // (no fsck: the blocks marked in use to scatter /d are in no file)
});
