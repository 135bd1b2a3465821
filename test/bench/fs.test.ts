/**
 * `redleaf bench fs`: the sizing rule (a property: the calibrated file size stays within its
 * bounds, in whole MiB, and grows with the measured rates), and the whole suite run through the
 * CLI at a tiny scale: one JSON object with every case, positive numbers, and a crash case whose
 * block driver really was crashed (and restarted) while benchfs ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { benchJson } from '../cli/run-cli.js';
import { calibratedSize, fileBounds, type BenchfsResult } from '../../src/bench/fs.js';

const MiB = 1 << 20;

test('bench fs: the calibrated file size is whole MiB within the bounds, and grows with the rates', () => {
  const rate = fc.double({ min: 0.01, max: 1e5, noNaN: true });
  fc.assert(fc.property(rate, rate, fc.double({ min: 0.01, max: 4, noNaN: true }), fc.double({ min: 0.1, max: 60, noNaN: true }), (w, r, scale, seconds) => {
    const bounds = fileBounds(scale);
    assert.ok(bounds.min >= MiB && bounds.min <= bounds.max);
    const warm = (k: number): BenchfsResult => ({ seqwrite_mbps: w * k, seqread_mbps: r * k, create_per_s: 1, delete_per_s: 1 });
    const size = calibratedSize(warm(1), seconds, bounds);
    assert.equal(size % MiB, 0);
    assert.ok(size >= bounds.min && size <= bounds.max, `${size} outside [${bounds.min}, ${bounds.max}]`);
    assert.ok(calibratedSize(warm(2), seconds, bounds) >= size);
  }));
  assert.deepEqual(fileBounds(1), { min: 4 * MiB, max: 512 * MiB });
});

test('bench fs --json at a tiny scale: every case, positive numbers, the crash case crashed the driver', async () => {
  const r = await benchJson('fs', ['--runs', '1', '--scale', '0.05'], 600_000);
  assert.equal(r.suite, 'fs');
  const find = (c: string, dev?: string, path?: string): Record<string, string | number> => {
    const rows = r.results.filter((x) => x.case === c && x.dev === dev && x.path === path);
    assert.equal(rows.length, 1, `one row ${c} ${dev ?? ''} ${path ?? ''}; got ${JSON.stringify(r.results)}`);
    return rows[0]!;
  };
  const positive = (row: Record<string, string | number>, field: string): void => {
    assert.ok(typeof row[field] === 'number' && row[field] > 0, `${field} of ${JSON.stringify(row)}`);
  };
  for (const dev of ['membdev', 'nvme']) {
    for (const path of ['domain', 'shadow', 'shadow-crash-per-s']) {
      for (const c of ['seqread-4k', 'seqwrite-4k']) positive(find(c, dev, path), 'mbps');
      for (const c of ['create', 'delete']) positive(find(c, dev, path), 'per_s');
    }
    const crashed = find('seqread-4k', dev, 'shadow-crash-per-s');
    assert.ok(typeof crashed.crashes === 'number' && crashed.crashes >= 1, `${dev}: the driver was never crashed: ${JSON.stringify(crashed)}`);
    const note = r.notes.find((n) => n.startsWith(`${dev} shadow and shadow-crash-per-s:`));
    assert.match(note ?? '', new RegExp(`${crashed.crashes} crashes injected .* restarted ${crashed.crashes} times and live`));
    for (const path of ['domain', 'shadow']) for (const c of ['raw-seqread-4k', 'raw-seqwrite-4k']) positive(find(c, dev, path), 'mbps');
  }
  positive(find('node-fs-read'), 'mbps');
  positive(find('node-fs-write'), 'mbps');
  assert.equal(r.results.length, 2 * (3 * 4 + 4) + 2);
});
