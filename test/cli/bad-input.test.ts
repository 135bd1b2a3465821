/**
 * The host commands given bad or unusual input, run as a child process on the built CLI: damaged
 * images the writing commands refuse, copies that do not fit, images mkfs must not remove, host
 * paths that are directories or cannot be written. Each failure exits non-zero with a message that
 * says what was wrong, and leaves what it was given as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import { runCli, tmpdirFor, type CliRun } from './run-cli.js';

const run = (...args: string[]): CliRun => runCli(args, { timeoutMs: 60_000 });
const tmpdir = (t: { after(fn: () => void): void }): string => tmpdirFor(t, 'redleaf-bad-input-');

/** u32 `i` of an xv6 superblock (at byte 1024: magic, size, nblocks, ninodes, nlog, logstart, inodestart, bmapstart). */
function xv6SuperblockWord(img: string, i: number): number {
  const fd = nfs.openSync(img, 'r');
  try {
    const sb = Buffer.alloc(32);
    nfs.readSync(fd, sb, 0, 32, 1024);
    return sb.readUInt32LE(4 * i);
  } finally {
    nfs.closeSync(fd);
  }
}
const xv6BitmapStart = (img: string): number => xv6SuperblockWord(img, 7);

test('cp and boot refuse an image fsck finds damaged (used blocks free in the bitmap); --no-check writes anyway', (t) => {
  const d = tmpdir(t);
  const img = npath.join(d, 'disk.img');
  const tree = npath.join(d, 'tree');
  nfs.mkdirSync(tree);
  nfs.writeFileSync(npath.join(tree, 'a.txt'), 'the first file\n');
  assert.equal(run('mkfs', img, '--size', '2M', '--variant', 'xv6', '--add', tree).status, 0);
  // Clear the whole bitmap: every used block (the root directory's, a.txt's) now looks free.
  const fd = nfs.openSync(img, 'r+');
  nfs.writeSync(fd, Buffer.alloc(1024), 0, 1024, xv6BitmapStart(img) * 1024);
  nfs.closeSync(fd);
  const before = nfs.readFileSync(img);
  const src = npath.join(d, 'b.txt');
  nfs.writeFileSync(src, 'a second file\n');

  const cp = run('cp', src, `${img}:/b.txt`);
  assert.equal(cp.status, 1, cp.stdout + cp.stderr);
  assert.match(cp.stderr, /disk\.img is damaged \(fsck found \d+ errors?, the first: block \d+: used by inode \d+ but free in the bitmap\); refusing to write/);
  assert.ok(nfs.readFileSync(img).equals(before), 'the image is as it was');
  const boot = run('boot', '--disk', img);
  assert.equal(boot.status, 1, boot.stdout + boot.stderr);
  assert.match(boot.stderr, /boot: .*disk\.img is damaged/);
  assert.ok(nfs.readFileSync(img).equals(before), 'the image is as it was');
  // In memory nothing is written to the file, and the message does not say it would be.
  const inMemory = run('boot', '--membdev', '--disk', img);
  assert.equal(inMemory.status, 1, inMemory.stdout + inMemory.stderr);
  assert.match(inMemory.stderr, /disk\.img is damaged .*refusing to use it, even in memory, where writing would spread the damage through the session .*boot --no-check uses it anyway/);
  assert.ok(nfs.readFileSync(img).equals(before), 'the image is as it was');
  // Reading out of it is not refused.
  const out = run('cp', `${img}:/a.txt`, npath.join(d, 'a.out'));
  assert.equal(out.status, 0, out.stderr);
  assert.equal(nfs.readFileSync(npath.join(d, 'a.out'), 'utf8'), 'the first file\n');

  const forced = run('cp', '--no-check', src, `${img}:/b.txt`);
  assert.equal(forced.status, 0, forced.stderr);
});

test('boot --no-check boots an image fsck finds damaged (a leaked block), which boot refuses', (t) => {
  const img = npath.join(tmpdir(t), 'leaky.img');
  assert.equal(run('mkfs', img, '--size', '2M', '--variant', 'xv6', '--programs').status, 0);
  // Mark the last block (2047, free) in use: byte 255, bit 7 of the bitmap's one block.
  const fd = nfs.openSync(img, 'r+');
  nfs.writeSync(fd, Buffer.from([0x80]), 0, 1, xv6BitmapStart(img) * 1024 + 255);
  nfs.closeSync(fd);
  const refused = run('boot', '--disk', img);
  assert.equal(refused.status, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /leaky\.img is damaged \(fsck found 1 error, the first: block 2047: marked in use in the bitmap but not referenced\).*boot --no-check writes anyway/);
  // Its shell reads the end of its input at once and exits 0.
  const booted = run('boot', '--no-check', '--disk', img);
  assert.equal(booted.status, 0, booted.stdout + booted.stderr);
  assert.match(booted.stdout, /\$ /);
});

/** Free data blocks of an image, as fsck counts them. */
function freeBlocks(img: string): number {
  const f = run('fsck', '--json', img);
  assert.equal(f.status, 0, f.stdout + f.stderr);
  return (JSON.parse(f.stdout) as { stats: { freeBlocks: number } }).stats.freeBlocks;
}

test('cp: a file whose data blocks fit but whose indirect block does not is refused before anything is written', (t) => {
  const d = tmpdir(t);
  const img = npath.join(d, 'small.img');
  assert.equal(run('mkfs', img, '--size', '200K', '--variant', 'xv6', '--inodes', '16').status, 0);
  const free = freeBlocks(img);
  const before = nfs.readFileSync(img);
  // As many 1 KiB data blocks as are free: past the 12 direct ones, so one indirect block more.
  const src = npath.join(d, 'fits-by-data.bin');
  nfs.writeFileSync(src, Buffer.alloc(free * 1024, 7));
  const r = run('cp', src, `${img}:/f`);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`image full: .* needs ${free + 1} blocks of 1024 bytes \\(its data and indirect blocks\\), ${free} are free`));
  assert.ok(nfs.readFileSync(img).equals(before), 'the image is as it was');
  // One block less fits, indirect block and all.
  nfs.truncateSync(src, (free - 1) * 1024);
  const ok = run('cp', src, `${img}:/f`);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(freeBlocks(img), 0);
});

test('cp: a copy that runs out of space part-way (the new entry took a directory block) leaves no partial file', (t) => {
  const d = tmpdir(t);
  const tree = npath.join(d, 'tree');
  nfs.mkdirSync(tree);
  // 62 empty files, "." and "..": the root directory's one block of 64 entries is full.
  for (let i = 0; i < 62; i++) nfs.writeFileSync(npath.join(tree, `f${i}`), '');
  const img = npath.join(d, 'full-dir.img');
  assert.equal(run('mkfs', img, '--size', '200K', '--variant', 'xv6', '--inodes', '80', '--add', tree).status, 0);
  const free = freeBlocks(img);
  // Data and indirect blocks take every free block; the directory then needs one more.
  const src = npath.join(d, 'big.bin');
  nfs.writeFileSync(src, Buffer.alloc((free - 1) * 1024, 1));
  const r = run('cp', src, `${img}:/big`);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /short write after \d+ bytes .*; the partial copy was removed/);
  const f = run('fsck', img);
  assert.equal(f.status, 0, f.stdout + f.stderr);
  const back = run('cp', `${img}:/big`, npath.join(d, 'back'));
  assert.equal(back.status, 1);
  assert.match(back.stderr, /no such file or directory in the image/);
});

test('mkfs --force keeps an existing image it fails before opening (an --add name too long, an image it cannot write)', (t) => {
  const d = tmpdir(t);
  const img = npath.join(d, 'keep.img');
  assert.equal(run('mkfs', img, '--size', '1M').status, 0);
  const before = nfs.readFileSync(img);
  const tree = npath.join(d, 'tree');
  nfs.mkdirSync(tree);
  nfs.writeFileSync(npath.join(tree, 'a-name-longer-than-any-directory-entry-holds'), 'x');
  const r = run('mkfs', img, '--force', '--size', '1M', '--add', tree);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /name 'a-name-longer-than-any-directory-entry-holds' longer than 28 bytes/);
  assert.ok(nfs.existsSync(img) && nfs.readFileSync(img).equals(before), 'the image is as it was');
  // One it started writing and could not finish is removed, as before.
  nfs.writeFileSync(npath.join(tree, 'a-name-longer-than-any-directory-entry-holds'), '');
  nfs.renameSync(npath.join(tree, 'a-name-longer-than-any-directory-entry-holds'), npath.join(tree, 'big.bin'));
  nfs.writeFileSync(npath.join(tree, 'big.bin'), Buffer.alloc(2 << 20));
  const full = run('mkfs', img, '--force', '--size', '1M', '--add', tree);
  assert.equal(full.status, 1, full.stdout + full.stderr);
  assert.match(full.stderr, /image full/);
  assert.equal(nfs.existsSync(img), false);

  assert.equal(run('mkfs', img, '--size', '1M').status, 0);
  nfs.chmodSync(img, 0o444);
  const ro = runCli(['mkfs', img, '--force', '--size', '1M'], { unprivileged: true });
  assert.equal(ro.status, 1, ro.stdout + ro.stderr);
  assert.match(ro.stderr, /keep\.img is not writable \(EACCES\)/);
  assert.ok(nfs.existsSync(img));
});

test('disk create: a directory, a missing directory, a size the host refuses: a message, and no file changed or left behind', (t) => {
  const d = tmpdir(t);
  const dirAsImage = run('disk', 'create', d, '--size', '1M', '--force');
  assert.equal(dirAsImage.status, 1);
  assert.match(dirAsImage.stderr, /disk create: .* is a directory/);
  const noDir = run('disk', 'create', npath.join(d, 'absent', 'x.img'), '--size', '1M');
  assert.equal(noDir.status, 1);
  assert.match(noDir.stderr, /disk create: cannot create .*x\.img: directory .*absent does not exist/);

  const img = npath.join(d, 'old.img');
  nfs.writeFileSync(img, 'precious');
  // 100 TiB: more than ext4 allows for one file (16 TiB); a file system that allows it makes it, sparse.
  const huge = run('disk', 'create', img, '--size', '100T', '--force');
  if (huge.status === 0) return; // this host's file system holds it: nothing to refuse
  assert.equal(huge.status, 1);
  assert.match(huge.stderr, /disk create: cannot create .*old\.img: 100 TiB is more than the host's file system allows for one file/);
  assert.doesNotMatch(huge.stderr, /EFBIG|ftruncate/);
  assert.equal(nfs.readFileSync(img, 'utf8'), 'precious', 'the existing image is as it was');
  assert.deepEqual(nfs.readdirSync(d), ['old.img'], 'no temporary file left behind');
});

test('cp out of an image: a read that fails part-way leaves the host file as it was (or none); a device is written in place', (t) => {
  const d = tmpdir(t);
  const tree = npath.join(d, 'tree');
  nfs.mkdirSync(tree);
  nfs.writeFileSync(npath.join(tree, 'a.txt'), 'in the image\n');
  const img = npath.join(d, 'disk.img');
  assert.equal(run('mkfs', img, '--size', '2M', '--variant', 'xv6', '--add', tree).status, 0);
  // Inode 2 (a.txt, the first inode mkfs allocates after the root): its first block address far outside the image.
  const inodestart = xv6SuperblockWord(img, 6);
  const fd = nfs.openSync(img, 'r+');
  const addr0 = Buffer.alloc(4);
  addr0.writeUInt32LE(999_999);
  nfs.writeSync(fd, addr0, 0, 4, inodestart * 1024 + 2 * 64 + 12);
  nfs.closeSync(fd);

  const old = npath.join(d, 'old.txt');
  nfs.writeFileSync(old, 'precious\n');
  const over = run('cp', `${img}:/a.txt`, old);
  assert.equal(over.status, 1, over.stdout + over.stderr);
  assert.match(over.stderr, /the image is damaged/);
  assert.equal(nfs.readFileSync(old, 'utf8'), 'precious\n', 'the host file is as it was');
  const fresh = run('cp', `${img}:/a.txt`, npath.join(d, 'new.txt'));
  assert.equal(fresh.status, 1);
  assert.deepEqual(nfs.readdirSync(d).sort(), ['disk.img', 'old.txt', 'tree'], 'no new or temporary file left behind');

  // A good copy over an existing file keeps its mode; to a device, in place (no fsync of /dev/null).
  assert.equal(run('mkfs', img, '--force', '--size', '2M', '--variant', 'xv6', '--add', tree).status, 0);
  nfs.chmodSync(old, 0o600);
  const ok = run('cp', `${img}:/a.txt`, old);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(nfs.readFileSync(old, 'utf8'), 'in the image\n');
  assert.equal(nfs.statSync(old).mode & 0o777, 0o600);
  const dev = run('cp', `${img}:/a.txt`, '/dev/null');
  assert.equal(dev.status, 0, dev.stderr);
});

test('bench --svg naming a directory is refused before the suite runs', (t) => {
  const d = tmpdir(t);
  const r = run('bench', 'calls', '--svg', d, '--runs', '1', '--scale', '0.001', '--no-progress');
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /--svg .*: is a directory; give a file name/);
  assert.equal(r.stdout, '', 'no suite ran');
});

test('inspect: a file here named without a slash or .rldom is read as a file, not looked up only as an installed name', (t) => {
  const d = tmpdir(t);
  nfs.writeFileSync(npath.join(d, 'download.img'), Buffer.alloc(4096));
  const r = runCli(['inspect', 'download.img'], { cwd: d });
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stdout, /verdict: +unreadable: EBADARTIFACT: download\.img: not a domain artifact/);
  const absent = runCli(['inspect', 'absent'], { cwd: d });
  assert.equal(absent.status, 2);
  assert.match(absent.stdout, /no installed domain or program is named absent/);
});

test('mkfs: --inodes 1 refused by the option itself, a dangling symbolic link under --add said in words', (t) => {
  const d = tmpdir(t);
  const img = npath.join(d, 'x.img');
  const one = run('mkfs', img, '--size', '1M', '--inodes', '1');
  assert.equal(one.status, 1);
  assert.match(one.stderr, /--inodes must be a whole number at least 2, got "1"/);
  // Past 2^53 - 1, not a rounded number the user did not write.
  const huge = run('mkfs', img, '--size', '1M', '--inodes', '99999999999999999999');
  assert.equal(huge.status, 1);
  assert.match(huge.stderr, /--inodes must be a whole number at least 2, got "99999999999999999999"/);
  const tree = npath.join(d, 'tree');
  nfs.mkdirSync(tree);
  nfs.symlinkSync(npath.join(d, 'nowhere'), npath.join(tree, 'dangling'));
  const r = run('mkfs', img, '--size', '1M', '--add', tree);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /mkfs: .*dangling: no such file \(a symbolic link to nothing\?\)/);
  assert.doesNotMatch(r.stderr, /ENOENT/);
  assert.equal(nfs.existsSync(img), false);
});

test('fsck, boot and cp on a file too small to be an image give its real size (not its whole 512-byte blocks)', (t) => {
  const d = tmpdir(t);
  for (const size of [0, 1000, 1500]) {
    const img = npath.join(d, `tiny-${size}.img`);
    nfs.writeFileSync(img, Buffer.alloc(size, 0xaa));
    const said = new RegExp(`tiny-${size}\\.img: not an rv6 file-system image: ${size} bytes, too small to hold one \\(at least 8192\\)`);
    const r = run('fsck', img);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, said);
    for (const args of [['boot', '--disk', img], ['cp', `${img}:/f`, npath.join(d, 'out')]]) {
      const w = run(...args);
      assert.equal(w.status, 1, w.stdout + w.stderr);
      assert.match(w.stderr, said, args[0]);
    }
    assert.equal(nfs.statSync(img).size, size, 'the file is as it was');
  }
});

test('cp with IMAGE: and no path names the image root it most likely meant', (t) => {
  const d = tmpdir(t);
  const img = npath.join(d, 'disk.img');
  assert.equal(run('mkfs', img, '--size', '1M').status, 0);
  const src = npath.join(d, 'a.txt');
  nfs.writeFileSync(src, 'a\n');
  const r = run('cp', src, `${img}:`);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /neither SRC nor DST is an image path.*\(for the image's root directory, write .*disk\.img:\/\)/);
  assert.equal(run('cp', src, `${img}:/`).status, 0, 'as the hint says, it copies');
});

test('boot: a default image it cannot create (a file where its directory goes) is said in words, with what to do', (t) => {
  const d = tmpdir(t);
  nfs.writeFileSync(npath.join(d, '.redleaf'), 'not a directory\n');
  const r = runCli(['boot'], { cwd: d, env: { REDLEAF_IMAGE: '' }, timeoutMs: 60_000 });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /boot: cannot create the default image .*\.redleaf\/rv6\.img: directory .*\.redleaf: exists and is not a directory \(set REDLEAF_IMAGE to an image path you may write, or boot --disk IMAGE\)/);
  assert.doesNotMatch(r.stderr, /EEXIST/);
  assert.equal(nfs.readFileSync(npath.join(d, '.redleaf'), 'utf8'), 'not a directory\n', 'the file is as it was');
  assert.deepEqual(nfs.readdirSync(d), ['.redleaf'], 'nothing left behind');
});

test('boot --disk with an empty path is refused as such, not as an image named "" that does not exist', () => {
  const r = run('boot', '--disk', '');
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /boot: --disk was given an empty path; name an image file \(or leave --disk out to use the default image\)/);
});
