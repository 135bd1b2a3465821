/**
 * The machine's moment (src/bench/lib/machine.ts) and `redleaf bench --machine`: three figures
 * that a real machine orders one way (a dependent multiply is far cheaper than a random load
 * through 64 MB), measured before and after a suite and printed with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measureMachine } from '../../src/bench/lib/machine.js';
import { describeMachine, formatTable } from '../../src/bench/harness.js';
import { benchJson } from '../cli/run-cli.js';

test('measureMachine: positive figures, a random DRAM load far slower than a multiply step; bad rounds refused', async () => {
  const m = await measureMachine(1);
  for (const v of [m.compute_ns, m.load_ns, m.handoff_ns]) assert.ok(Number.isFinite(v) && v > 0, JSON.stringify(m));
  assert.ok(m.load_ns > 5 * m.compute_ns, `a load through 64 MB (${m.load_ns} ns) against a multiply step (${m.compute_ns} ns)`);
  await assert.rejects(measureMachine(0), /rounds 0 must be a positive integer/);
});

test('formatTable prints the machine before and after when the result has it', () => {
  const before = { compute_ns: 1.25, load_ns: 160.5, handoff_ns: 90 };
  const after = { compute_ns: 1.5, load_ns: 170, handoff_ns: 100 };
  const out = formatTable({ suite: 's', node: 'v20', results: [{ case: 'a', ns: 1 }], machine: { before, after } });
  assert.ok(out.includes(`machine before: ${describeMachine(before)}`), out);
  assert.ok(out.includes(`machine after:  ${describeMachine(after)}`), out);
  assert.equal(describeMachine(before), 'compute 1.25 ns a step, memory 160.5 ns a load, handoff 90.0 ns one way');
  assert.ok(!formatTable({ suite: 's', node: 'v20', results: [{ case: 'a', ns: 1 }] }).includes('machine'));
});

test('bench calls --machine --json: the result carries the machine before and after the suite', async () => {
  const r = await benchJson('calls', ['--runs', '1', '--scale', '0.01', '--machine']) as unknown as { results: unknown[]; machine: Record<string, Record<string, number>> };
  assert.ok(r.results.length > 0);
  for (const when of ['before', 'after']) {
    const m = r.machine[when]!;
    assert.ok(m !== undefined, `machine.${when}`);
    assert.ok(m.load_ns! > m.compute_ns! && m.handoff_ns! > 0, JSON.stringify(m));
  }
});
