/**
 * What a recovery row must say about the restarts its warm-up made (harness.ts warmupRestarts),
 * shared by the nvme and net suite tests: `n` of them in order, each a time, and first_restart_ms
 * the first of them (the list has one decimal, first_restart_ms two; null for an untimed one).
 * `estimated`: nvme's restarts are estimates (a batch's time less a normal one's: 0 or more, '-'
 * where a window was too short for a batch after its crash); net's are timed (more than 0).
 */
import assert from 'node:assert/strict';
import type { BenchJson } from '../cli/run-cli.js';

export function checkWarmupRestarts(row: BenchJson['results'][number], n: number, estimated: boolean): void {
  const list = String(row.warmup_restarts_ms).split(' ');
  assert.equal(list.length, n, `warmup_restarts_ms of ${JSON.stringify(row)}`);
  for (const w of list) assert.ok(estimated ? w === '-' || Number(w) >= 0 : Number(w) > 0, `warmup_restarts_ms of ${JSON.stringify(row)}`);
  if (list[0] === '-') assert.equal(row.first_restart_ms, null, `first_restart_ms of ${JSON.stringify(row)}`);
  else assert.ok(typeof row.first_restart_ms === 'number' && Math.abs(row.first_restart_ms - Number(list[0])) <= 0.051, `first_restart_ms ${row.first_restart_ms}: the first of ${row.warmup_restarts_ms}`);
}
