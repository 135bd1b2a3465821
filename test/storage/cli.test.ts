/**
 * `redleaf disk create|info` run as a child process, and clear errors (never a hang) for
 * missing, malformed/truncated and too-small images.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootStorage } from '../../src/host/storage.js';
import { runCli, type CliRun } from '../cli/run-cli.js';

const run = (...args: string[]): CliRun => runCli(args, { timeoutMs: 30_000 });

test('disk create / info / --help', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rl-disk-'));
  try {
    const img = join(dir, 'a.img');
    let r = run('disk', 'create', img, '--size', '64M');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(img).size, 64 << 20);
    r = run('disk', 'create', img, '--size', '1M');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /exists already.*--force/);
    r = run('disk', 'create', img, '--size', '1M', '--force');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(img).size, 1 << 20);
    r = run('disk', 'create', join(dir, 'b.img'), '--size', 'lots');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not a size/);
    r = run('disk', 'info', img);
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout;
    assert.match(out, /model: +RedLeaf\.ts NVMe/);
    assert.match(out, /block size: +512/);
    assert.match(out, /blocks: +2048/);
    assert.match(out, /capacity: +1 MiB/);
    assert.match(out, /access: +read-write/);
    for (const sub of ['create', 'info']) {
      const h = run('disk', sub, '--help');
      assert.equal(h.status, 0);
      assert.match(h.stdout, /Usage: redleaf disk/);
    }
    // create cannot run without --size, and its help says so (Commander's does not by itself).
    assert.match(run('disk', 'create', '--help').stdout, /--size <size> +image size \(required\)/);
    r = run('disk', 'create', join(dir, 'c.img'));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /required option '--size <size>' not specified/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('missing, malformed/truncated and too-small images give clear errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rl-disk-'));
  try {
    let r = run('disk', 'info', join(dir, 'none.img'));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /does not exist/);
    const bad = join(dir, 'trunc.img');
    writeFileSync(bad, Buffer.alloc(1000));
    r = run('disk', 'info', bad);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /malformed or truncated/);
    const empty = join(dir, 'empty.img');
    writeFileSync(empty, '');
    r = run('disk', 'info', empty);
    assert.match(r.stderr, /is empty/);
    const small = join(dir, 'small.img');
    writeFileSync(small, Buffer.alloc(1 << 20));
    await assert.rejects(bootStorage({ image: small, minBytes: 16 << 20 }), /too small: 1 MiB, at least 16 MiB/);
    await assert.rejects(bootStorage({ image: bad, blockSize: 4096 }), /malformed or truncated/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
