/**
 * `redleaf bench net --case PREFIX` through the CLI, for the rows whose JSON shape the issue fixes
 * beside the Mpps rows: `recovery` ({case, path: shadow, restart_ms, frames_lost}; the driver
 * really crashed and the app saw no error; with the throughput with and without a crash per window
 * and the process's first restarts, which the medians leave out), `maglev-64-b32`
 * (its rate before and after a backend-set change, the flows it tracks), a path case's shadow row (how it compares with
 * the domain row: vs_domain and its spread) and the same-run baseline `node-dgram-64` ({case, mpps}).
 * Each run prints only its own case and the notes that explain it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchJson, type BenchJson } from '../cli/run-cli.js';
import { checkVersus } from './versus-check.js';
import { checkWarmupRestarts } from './warmup-check.js';

const run = (...args: string[]): Promise<BenchJson> => benchJson('net', ['--scale', '0.05', '--runs', '1', ...args]);

test('bench net --case recovery: one row {case, path, restart_ms, frames_lost} after a real crash', async () => {
  const r = await run('--case', 'recovery');
  assert.equal(r.suite, 'net');
  assert.deepEqual(r.results.map((x) => [x.case, x.path]), [['recovery', 'shadow']]);
  const row = r.results[0]!;
  assert.ok(typeof row.restart_ms === 'number' && row.restart_ms > 0, `restart_ms of ${JSON.stringify(row)}`);
  // The dead driver held buffers (RX posted at least), all counted lost: a crash did happen under traffic.
  assert.ok(typeof row.frames_lost === 'number' && row.frames_lost > 0, `frames_lost of ${JSON.stringify(row)}`);
  assert.equal(row.rpc_errors, 0, 'the app never saw the crash');
  // The throughput with a crash per window against none, measured in the same run.
  for (const f of ['mpps_no_crash', 'mpps_crash_per_s']) assert.ok(typeof row[f] === 'number' && row[f] > 0, `${f} of ${JSON.stringify(row)}`);
  const ratio = (row.mpps_crash_per_s as number) / (row.mpps_no_crash as number);
  assert.ok(Math.abs((row.crash_per_s_ratio as number) - ratio) < 0.01, `crash_per_s_ratio ${row.crash_per_s_ratio}: the ratio of the two (${ratio})`);
  assert.ok(typeof row.back_to_speed_ms === 'number' && row.back_to_speed_ms >= 0, `back_to_speed_ms of ${JSON.stringify(row)}`);
  assert.ok(typeof row.crash_cost_ms === 'number' && Number.isFinite(row.crash_cost_ms), `crash_cost_ms of ${JSON.stringify(row)}`);
  // The process's first restarts, before the measured ones: each a real restart's time (the shadow times every one).
  checkWarmupRestarts(row, 5, false);
  assert.ok(r.notes.some((n) => n.startsWith('recovery ') && n.includes('first_restart_ms')), 'the recovery note, naming the new fields');
  assert.ok(!r.notes.some((n) => n.startsWith('call-64-b32')), 'no note of a case that did not run');
});

test('bench net --case maglev: {case, path, mpps} with the flows tracked, the rate after a backend-set change and hashing in software', async () => {
  const r = await run('--case', 'maglev');
  assert.deepEqual(r.results.map((x) => [x.case, x.path]), [['maglev-64-b32', 'domain']]);
  const row = r.results[0]!;
  for (const f of ['mpps', 'mpps_after_change', 'mpps_software_hash']) assert.ok(typeof row[f] === 'number' && row[f] > 0, `${f} of ${JSON.stringify(row)}`);
  // pktgen's 2^20 flows, seen for a few hundred ms: far more than a cache line's worth are tracked.
  assert.ok(typeof row.flows === 'number' && row.flows > 10_000, `flows of ${JSON.stringify(row)}`);
  assert.ok(r.notes.some((n) => n.startsWith('maglev-64-b32: ')), 'the maglev note');
});

test('bench net --case rx-64-b32: the shadow row says how it compares with the domain row of its run', async () => {
  const r = await run('--case', 'rx-64-b32', '--runs', '3');
  assert.deepEqual(r.results.map((x) => [x.case, x.path]), [['rx-64-b32', 'driver'], ['rx-64-b32', 'domain'], ['rx-64-b32', 'shadow']]);
  const [, domain, shadow] = r.results;
  checkVersus(r, domain!, shadow!, 'mpps', 0.001);
});

test('bench net --case node-dgram: the same-run baseline as {case: node-dgram-64, mpps}', async () => {
  const r = await run('--case', 'node-dgram');
  assert.deepEqual(r.results.map((x) => x.case), ['node-dgram-64']);
  const row = r.results[0]!;
  assert.ok(typeof row.mpps === 'number' && row.mpps > 0, `mpps of ${JSON.stringify(row)}`);
  assert.ok(r.notes.some((n) => n.startsWith('node-dgram-64: ')), 'the baseline note');
  assert.ok(!r.notes.some((n) => n.startsWith('pktgen')), 'no pktgen note: no pktgen case ran');
});
