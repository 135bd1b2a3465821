/**
 * `redleaf bench nvme --case PREFIX` through the CLI: only the matching cases run (here one
 * recovery case at a tiny scale: its row has every field, the driver was really restarted; an I/O
 * case's shadow row compares itself with the domain row), a
 * prefix matching nothing is refused with the list of cases before any work, and a suite that
 * does not take --case refuses it instead of silently running everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchJson, runCliAsync } from '../cli/run-cli.js';
import { checkVersus } from './versus-check.js';
import { checkWarmupRestarts } from './warmup-check.js';

const run = (...args: string[]) => runCliAsync(['bench', ...args]);

test('bench nvme --case recovery-write: just that case, every field, the driver restarted', async () => {
  const r = await benchJson('nvme', ['--scale', '0.05', '--case', 'recovery-write']);
  assert.deepEqual(r.results.map((x) => x.case), ['recovery-write']);
  const row = r.results[0]!;
  for (const f of ['mbps_no_crash', 'mbps_crash_per_s']) assert.ok(typeof row[f] === 'number' && row[f] > 0, `${f} of ${JSON.stringify(row)}`);
  // restart_ms is NaN (null in JSON) when no batch ever followed a crash: a number says one did.
  for (const f of ['restart_ms', 'crash_cost_ms']) assert.equal(typeof row[f], 'number', `${f} of ${JSON.stringify(row)}`);
  // null when the driver was never back to speed within a window (possible on a loaded machine).
  assert.ok('back_to_speed_ms' in row);
  // The warm-up's restarts, in order ('-': no batch finished after that crash in its tiny window).
  checkWarmupRestarts(row, 2, true);
  assert.ok(r.notes.some((n) => n.startsWith('recovery: ')), 'the recovery notes');
  assert.ok(!r.notes.some((n) => n.startsWith('fio')), 'no fio run for a recovery case');
});

test('bench nvme --case randread-4k-b1: the shadow row says how it compares with the domain row of its run', async () => {
  const r = await benchJson('nvme', ['--scale', '0.05', '--runs', '3', '--case', 'randread-4k-b1']);
  const domain = r.results.find((x) => x.path === 'domain')!;
  const shadow = r.results.find((x) => x.path === 'shadow')!;
  checkVersus(r, domain, shadow, 'kiops', 0.1);
});

test('bench --case: a prefix matching nothing, and a suite without cases to choose, are refused', async () => {
  await assert.rejects(run('nvme', '--json', '--case', 'nope'), (e: { stderr: string }) => {
    assert.match(e.stderr, /--case nope: no case of suite nvme starts with it \(cases: randread-4k-b1, .*recovery-write\)/);
    return true;
  });
  await assert.rejects(run('calls', '--json', '--case', 'x'), (e: { stderr: string }) => {
    assert.match(e.stderr, /--case: suite calls runs all its cases/);
    return true;
  });
});
