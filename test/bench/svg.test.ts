/**
 * `--svg`: a suite result drawn as a bar chart. Properties over random results: one bar (a rect
 * with a tooltip) per row that has the chosen metric, none for the others, which the footnote
 * names; every piece of row text appears only escaped; the axis is logarithmic exactly when the
 * values span more than two decades; bar widths are monotone in the values. And through the CLI:
 * a real `bench calls` run writes a chart with one bar per case, and a bad --svg path is refused
 * before the run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { chartOf, renderSvg } from '../../src/bench/lib/svg.js';
import type { ResultRow, SuiteResult } from '../../src/bench/harness.js';
import { benchJson, runCliAsync } from '../cli/run-cli.js';

const rowArb = fc.record({
  case: fc.string({ minLength: 1, maxLength: 12 }),
  path: fc.constantFrom('driver', 'domain', 'shadow', 'a<b&"c\''),
  mpps: fc.option(fc.double({ min: 0.001, max: 1e4, noNaN: true }), { nil: undefined }),
});

/** Bars are the rects that carry a tooltip. */
const barWidths = (svg: string): number[] => [...svg.matchAll(/<rect [^>]*width="([\d.]+)"[^>]*><title>/g)].map((m) => Number(m[1]));

test('svg: one bar per plottable row, text escaped, log axis iff more than two decades', () => {
  fc.assert(fc.property(fc.array(rowArb, { minLength: 1, maxLength: 20 }), (rows) => {
    fc.pre(rows.some((r) => r.mpps !== undefined));
    const results = rows.map((r): ResultRow => (r.mpps === undefined ? { case: r.case, path: r.path, restart_ms: 1 } : { case: r.case, path: r.path, mpps: r.mpps }));
    const result: SuiteResult = { suite: 'net', node: 'v20', results };
    const svg = renderSvg(result);
    const plotted = rows.filter((r) => r.mpps !== undefined);
    assert.equal(barWidths(svg).length, plotted.length);
    // No raw markup from the data: every '<' opens one of our own elements.
    for (const m of svg.matchAll(/<(\/?)([a-z]+)/g)) assert.ok(['svg', 'style', 'rect', 'text', 'title', 'line'].includes(m[2]!), `unexpected tag ${m[2]}`);
    assert.equal((svg.match(/<text/g) ?? []).length, (svg.match(/<\/text>/g) ?? []).length);
    const values = plotted.map((r) => r.mpps!);
    const chart = chartOf(result);
    assert.equal(chart.metric, 'mpps');
    assert.equal(chart.log, Math.max(...values) / Math.min(...values) > 100);
    if (rows.some((r) => r.mpps === undefined)) assert.match(svg, /not plotted \(no mpps\)/);
  }));
});

test('svg: wider bars for larger values (linear and log axes)', () => {
  for (const values of [[1, 2, 3, 4], [0.01, 1, 100, 10000]]) {
    const svg = renderSvg({ suite: 'calls', node: 'v20', results: values.map((ns, i) => ({ case: `c${i}`, ns })) });
    const w = barWidths(svg);
    assert.equal(w.length, values.length);
    for (let i = 1; i < w.length; i++) assert.ok(w[i]! > w[i - 1]!, `bar ${i} (${w[i]}) not wider than bar ${i - 1} (${w[i - 1]})`);
  }
});

test('svg: a result with no known metric is refused with the columns it looked for', () => {
  assert.throws(() => chartOf({ suite: 'x', node: 'v20', results: [{ case: 'a', restart_ms: 3 }] }), /no row has a numeric mpps\/kiops\/mbps\/per_s\/ns column/);
});

test('bench calls --svg through the CLI: a chart with a bar per case; a bad path is refused before the run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'redleaf-svg-'));
  try {
    const file = join(dir, 'calls.svg');
    const r = await benchJson('calls', ['--runs', '1', '--scale', '0.01', '--svg', file]);
    const svg = readFileSync(file, 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.equal(barWidths(svg).length, r.results.length);
    for (const row of r.results) assert.ok(svg.includes(`>${String(row.case)}</text>`), `no label for ${String(row.case)}`);
    await assert.rejects(runCliAsync(['bench', 'calls', '--svg', join(dir, 'no', 'such', 'dir', 'x.svg')], 60_000), (e: { stderr: string }) => /--svg .*does not exist or is not writable/.test(e.stderr));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
