/**
 * The benchmark harness's same-run comparison: runsOf alternates the paths' runs (the order
 * flipping every round) and keeps them by round, and versus reads a shadow/domain ratio from them
 * with the spread of its per-round ratios.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { runsOf, versus, warmupRestarts } from '../../src/bench/harness.js';

test('runsOf: runs alternate, the order flipping every round, and come back by function and round', async () => {
  const order: string[] = [];
  let n = 0;
  const fn = (name: string) => (): number => {
    order.push(name);
    return n++;
  };
  const xs = await runsOf(3, [fn('a'), fn('b')], 1);
  assert.deepEqual(order, ['a', 'b', 'b', 'a', 'a', 'b', 'b', 'a']);
  // Round 0 (n 0, 1) is the warm-up; then b=2 a=3, a=4 b=5, b=6 a=7.
  assert.deepEqual(xs, [[3, 4, 7], [2, 5, 6]]);
});

test('versus: the ratio of the medians, and the lowest and highest ratio of one round', () => {
  const v = versus([10, 20, 10], [9, 10, 11]);
  assert.deepEqual(v, { vs_domain: 1, vs_domain_min: 0.5, vs_domain_max: 1.1 });
});

test('versus: the ratio of the medians always lies between the lowest and the highest per-round ratio', () => {
  const runs = fc.integer({ min: 1, max: 15 }).chain((n) =>
    fc.tuple(fc.array(fc.double({ min: 0.01, max: 100, noNaN: true }), { minLength: n, maxLength: n }), fc.array(fc.double({ min: 0.01, max: 100, noNaN: true }), { minLength: n, maxLength: n })),
  );
  fc.assert(
    fc.property(runs, ([a, b]) => {
      const v = versus(a, b);
      // Each is rounded to three decimals: allow that much.
      assert.ok(v.vs_domain_min <= v.vs_domain + 0.001 && v.vs_domain <= v.vs_domain_max + 0.001, JSON.stringify(v));
    }),
  );
});

test('warmupRestarts: the first restart and the list in order, an untimed one as null / -', () => {
  assert.deepEqual(warmupRestarts([28.384, 17.5, 3]), { first_restart_ms: 28.38, warmup_restarts_ms: '28.4 17.5 3.0' });
  assert.deepEqual(warmupRestarts([NaN, 2.25]), { first_restart_ms: null, warmup_restarts_ms: '- 2.3' });
});
