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

/** The xv6 superblock's bmapstart (superblock at byte 1024, bmapstart its eighth u32). */
function xv6BitmapStart(img: string): number {
  const fd = nfs.openSync(img, 'r');
  try {
    const sb = Buffer.alloc(32);
    nfs.readSync(fd, sb, 0, 32, 1024);
    return sb.readUInt32LE(28);
  } finally {
    nfs.closeSync(fd);
  }
}

test('cp and boot refuse an image fsck finds damaged (used blocks free in the bitmap); cp --no-check writes anyway', (t) => {
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
  // Reading out of it is not refused.
  const out = run('cp', `${img}:/a.txt`, npath.join(d, 'a.out'));
  assert.equal(out.status, 0, out.stderr);
  assert.equal(nfs.readFileSync(npath.join(d, 'a.out'), 'utf8'), 'the first file\n');

  const forced = run('cp', '--no-check', src, `${img}:/b.txt`);
  assert.equal(forced.status, 0, forced.stderr);
});
