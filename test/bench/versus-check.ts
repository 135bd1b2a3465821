/**
 * What a suite's shadow row must say about itself against the domain row of its run (harness.ts
 * versus), shared by the nvme and net suite tests: the ratio of the medians agrees with the two
 * rows' figures (each rounded to `step`), and lies within the per-round range.
 */
import assert from 'node:assert/strict';
import { VERSUS_NOTE } from '../../src/bench/harness.js';
import type { BenchJson } from '../cli/run-cli.js';

type Row = BenchJson['results'][number];

export function checkVersus(r: BenchJson, domain: Row, shadow: Row, metric: string, step: number): void {
  assert.ok(r.results.every((x) => x === shadow || x.vs_domain === undefined), 'only the shadow row compares');
  const vs = shadow.vs_domain as number;
  const [s, d] = [shadow[metric] as number, domain[metric] as number];
  assert.ok(Math.abs(vs - s / d) <= vs * (step / 2 / s + step / 2 / d) + 0.001, `vs_domain ${vs} against ${JSON.stringify(r.results)}`);
  const [lo, hi] = [shadow.vs_domain_min as number, shadow.vs_domain_max as number];
  assert.ok(lo > 0 && lo <= vs + 0.001 && vs <= hi + 0.001, JSON.stringify(shadow));
  assert.ok(r.notes.includes(VERSUS_NOTE), 'the note that says what the fields are');
}
