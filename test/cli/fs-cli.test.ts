/**
 * The file-system CLI commands (`redleaf mkfs`, `fsck`, `cp`), run as a child process on the
 * built CLI: mkfs + fsck clean for both variants, refusing to overwrite, size errors, a byte-exact
 * host → image → host round trip, missing files, damaged images.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseSize, formatSize } from '../../src/cli/options.js';
import { runCli, tmpdirFor, type CliRun } from './run-cli.js';

const run = (...args: string[]): CliRun => runCli(args, { timeoutMs: 60_000 });
const tmpdir = (t: { after(fn: () => void): void }): string => tmpdirFor(t, 'redleaf-fs-cli-');

test('sizes: parse and format', () => {
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('512M'), 512 * 2 ** 20);
  assert.equal(parseSize('1G'), 2 ** 30);
  assert.equal(parseSize('16GiB'), 16 * 2 ** 30);
  assert.equal(parseSize('64k'), 65536);
  assert.equal(parseSize('1.5K'), 1536);
  for (const bad of ['', 'abc', '12X', '-1M', '0', '0.3', 'M']) assert.throws(() => parseSize(bad), /bad size/, bad);
  assert.equal(formatSize(64 * 2 ** 20), '64 MiB');
  assert.equal(formatSize(100), '100 bytes');
});

for (const variant of ['xv6', 'large'] as const) {
  test(`mkfs then fsck clean (${variant})`, (t) => {
    const d = tmpdir(t);
    const host = npath.join(d, 'tree');
    nfs.mkdirSync(npath.join(host, 'sub'), { recursive: true });
    nfs.writeFileSync(npath.join(host, 'a.txt'), 'hello\n');
    nfs.writeFileSync(npath.join(host, 'sub', 'b.bin'), randomBytes(50_000));
    const img = npath.join(d, 'disk.img');
    const m = run('mkfs', img, '--variant', variant, '--size', variant === 'xv6' ? '2M' : '16M', '--add', host);
    assert.equal(m.status, 0, m.stderr);
    assert.match(m.stdout, new RegExp(`${variant} variant`));
    assert.match(m.stdout, /inodes:/);
    assert.match(m.stdout, /data blocks:/);
    const f = run('fsck', img);
    assert.equal(f.status, 0, f.stdout + f.stderr);
    assert.match(f.stdout, /clean/);
    assert.match(f.stdout, /errors: none/);
    assert.match(f.stdout, /2 files, 2 directories/);
  });
}

test('mkfs refuses to overwrite without --force; --force overwrites', (t) => {
  const d = tmpdir(t);
  const img = npath.join(d, 'x.img');
  nfs.writeFileSync(img, 'precious');
  const r = run('mkfs', img, '--size', '1M');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /already exists.*--force/);
  assert.equal(nfs.readFileSync(img, 'utf8'), 'precious');
  const ok = run('mkfs', img, '--size', '1M', '--force');
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(nfs.statSync(img).size, 2 ** 20);
});

test('mkfs: bad sizes, missing --add, too many inodes', (t) => {
  const d = tmpdir(t);
  const img = npath.join(d, 'y.img');
  const cases: Array<[string[], RegExp]> = [
    [['--size', 'lots'], /bad size "lots"/],
    [['--size', '10K', '--variant', 'xv6'], /too small for the xv6 variant: at least \d+ blocks/],
    [['--size', '8K'], /too small for the large variant/],
    [['--size', '5T', '--variant', 'xv6'], /too large for the xv6 variant.*2\^32-1 blocks of 1024 bytes/],
    [['--size', '100000'], /not a multiple of the large block size/],
    [['--add', npath.join(d, 'nope')], /--add .*nope: no such file or directory/],
    [['--variant', 'xv6', '--inodes', '70000'], /inode numbers up to 65535/],
  ];
  for (const [args, re] of cases) {
    const r = run('mkfs', img, ...args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(nfs.existsSync(img), false, `no image left behind (${args.join(' ')})`);
  }
});

test('cp: host -> image -> host round trip is byte-exact; errors for missing files', (t) => {
  const d = tmpdir(t);
  const img = npath.join(d, 'disk.img');
  assert.equal(run('mkfs', img, '--size', '16M').status, 0);
  const src = npath.join(d, 'data.bin');
  const data = randomBytes(3 * 2 ** 20 + 123);
  nfs.writeFileSync(src, data);
  const a = run('cp', src, `${img}:/data.bin`);
  assert.equal(a.status, 0, a.stderr);
  // Overwrite with a shorter file: the destination is truncated.
  const small = npath.join(d, 'small.txt');
  nfs.writeFileSync(small, 'short\n');
  assert.equal(run('cp', small, `${img}:/notes.txt`).status, 0);
  const back = npath.join(d, 'back.bin');
  const b = run('cp', `${img}:/data.bin`, back);
  assert.equal(b.status, 0, b.stderr);
  assert.ok(Buffer.compare(nfs.readFileSync(back), data) === 0, 'round trip byte-exact');
  nfs.writeFileSync(src, 'v2');
  assert.equal(run('cp', src, `${img}:/data.bin`).status, 0);
  assert.equal(run('cp', `${img}:/data.bin`, back).status, 0);
  assert.equal(nfs.readFileSync(back, 'utf8'), 'v2');
  // Into a host directory: keeps the name.
  assert.equal(run('cp', `${img}:/notes.txt`, d + '/').status, 0);
  assert.equal(nfs.readFileSync(npath.join(d, 'notes.txt'), 'utf8'), 'short\n');

  const miss = run('cp', `${img}:/missing.txt`, npath.join(d, 'm'));
  assert.notEqual(miss.status, 0);
  assert.match(miss.stderr, /missing\.txt.*no such file/);
  assert.equal(nfs.existsSync(npath.join(d, 'm')), false);
  const hmiss = run('cp', npath.join(d, 'nothere'), `${img}:/x`);
  assert.notEqual(hmiss.status, 0);
  assert.match(hmiss.stderr, /nothere: no such file/);
  const long = run('cp', small, `${img}:/${'n'.repeat(40)}`);
  assert.notEqual(long.status, 0);
  assert.match(long.stderr, /name too long/);
  assert.equal(run('fsck', img).status, 0, 'image still clean after the copies');
});

test('fsck: damaged bitmap exits 1, bad magic exits 2, missing image exits 2', (t) => {
  const d = tmpdir(t);
  const img = npath.join(d, 'disk.img');
  assert.equal(run('mkfs', img, '--size', '4M', '--variant', 'xv6').status, 0);
  // xv6 superblock at byte 1024: magic, size, nblocks, ninodes, nlog, logstart, inodestart, bmapstart.
  const fd = nfs.openSync(img, 'r+');
  const sb = Buffer.alloc(32);
  nfs.readSync(fd, sb, 0, 32, 1024);
  const bmapstart = sb.readUInt32LE(28);
  // Mark blocks 1000..1007 (free data blocks) in use: leaked blocks.
  nfs.writeSync(fd, Buffer.from([0xff]), 0, 1, bmapstart * 1024 + 125);
  nfs.closeSync(fd);
  const r1 = run('fsck', img);
  assert.equal(r1.status, 1, r1.stdout + r1.stderr);
  assert.match(r1.stdout, /DAMAGED/);

  const fd2 = nfs.openSync(img, 'r+');
  nfs.writeSync(fd2, Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, 1024);
  nfs.closeSync(fd2);
  const r2 = run('fsck', img);
  assert.equal(r2.status, 2, r2.stdout + r2.stderr);
  assert.match(r2.stderr, /not an rv6 file-system image.*bad magic/);

  const r3 = run('fsck', npath.join(d, 'absent.img'));
  assert.equal(r3.status, 2);
  assert.match(r3.stderr, /absent\.img: no such file/);
});

test('--help describes each command', () => {
  for (const [cmd, re] of [['mkfs', /make an rv6 file-system image/], ['fsck', /check an rv6 file-system image/], ['cp', /copy a file between the host and an rv6 image/]] as const) {
    const r = run(cmd, '--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, re);
  }
  // mkfs's default size as one would write it, not in bytes.
  assert.match(run('mkfs', '--help').stdout, /--size <size>[^]*\(default: 64M\)/);
});
