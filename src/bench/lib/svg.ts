/**
 * A benchmark result as an SVG bar chart (`redleaf bench <suite> --svg FILE`), so that a suite's
 * figures and its same-run baselines can be compared at a glance.
 *
 * One horizontal bar per result row that carries the chart's metric, grouped by case; the bars of
 * a group are told apart by everything else in the row that is text (path, dev, ...), with one
 * colour per such series and a legend. The metric is the first column, in the order of METRICS,
 * that some row has as a number; rows without it (recovery rows with their own units) are left
 * out and named in the chart's footnote. When the values span more than two decades the axis is
 * logarithmic (the calls suite spans 1 ns to 70 µs), otherwise linear from zero.
 *
 * Pure function of the result: no I/O, no dependency; every piece of text is XML-escaped.
 */
import type { ResultRow, SuiteResult } from '../harness.js';

/** Metric columns a suite may report, in order of preference, with what "better" means. */
const METRICS: ReadonlyArray<{ key: string; unit: string; better: 'higher' | 'lower' }> = [
  { key: 'mpps', unit: 'Mpps', better: 'higher' },
  { key: 'kiops', unit: 'kIOPS', better: 'higher' },
  { key: 'mbps', unit: 'MB/s', better: 'higher' },
  { key: 'per_s', unit: 'per second', better: 'higher' },
  { key: 'ns', unit: 'ns per call', better: 'lower' },
];

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const BAR = 14;
const GAP = 3;
const GROUP_GAP = 10;
const LABEL_W = 190;
const PLOT_W = 520;
const VALUE_W = 80;
const TOP = 48;

interface Bar {
  group: string;
  series: string;
  value: number;
}

export interface Chart {
  title: string;
  metric: string;
  unit: string;
  better: 'higher' | 'lower';
  log: boolean;
  bars: Bar[];
  /** Groups (cases) whose rows have no value for the metric. */
  omitted: string[];
}

/** Picks the metric and turns rows into bars; throws when no row has any known metric. */
export function chartOf(r: SuiteResult): Chart {
  const m = METRICS.find((x) => r.results.some((row) => typeof row[x.key] === 'number' && Number.isFinite(row[x.key])));
  if (m === undefined) throw new Error(`suite ${r.suite}: no row has a numeric ${METRICS.map((x) => x.key).join('/')} column to plot`);
  const bars: Bar[] = [];
  const omitted: string[] = [];
  for (const row of r.results) {
    const v = row[m.key];
    const group = String(row.case ?? '?');
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      omitted.push(group);
      continue;
    }
    bars.push({ group, series: seriesOf(row, m.key), value: v });
  }
  const positive = bars.map((b) => b.value).filter((v) => v > 0);
  const log = positive.length > 0 && Math.max(...positive) / Math.min(...positive) > 100;
  return { title: `redleaf bench ${r.suite} (node ${r.node})`, metric: m.key, unit: m.unit, better: m.better, log, bars, omitted: [...new Set(omitted)] };
}

/** The text columns of a row other than its case: the series its bar belongs to. */
function seriesOf(row: ResultRow, metric: string): string {
  const parts = Object.entries(row)
    .filter(([k, v]) => k !== 'case' && k !== metric && typeof v === 'string')
    .map(([, v]) => v as string);
  return parts.join(' '); // '' for a suite with one series (calls): no legend
}

export function renderSvg(r: SuiteResult): string {
  const c = chartOf(r);
  const groups = [...new Set(c.bars.map((b) => b.group))];
  const series = [...new Set(c.bars.map((b) => b.series))];
  const colour = (s: string): string => PALETTE[series.indexOf(s) % PALETTE.length]!;
  const max = Math.max(...c.bars.map((b) => b.value), 0);
  const minPositive = Math.min(...c.bars.map((b) => b.value).filter((v) => v > 0), max);
  const lo = c.log ? 10 ** Math.floor(Math.log10(minPositive)) : 0;
  const hi = c.log ? 10 ** Math.ceil(Math.log10(max)) : niceCeiling(max);
  const x = (v: number): number => {
    if (c.log) return v <= lo ? 0 : (PLOT_W * Math.log10(v / lo)) / Math.log10(hi / lo);
    return hi === 0 ? 0 : (PLOT_W * v) / hi;
  };

  const out: string[] = [];
  let y = TOP;
  for (const g of groups) {
    const bars = c.bars.filter((b) => b.group === g);
    const h = bars.length * (BAR + GAP) - GAP;
    out.push(`<text x="${LABEL_W - 8}" y="${y + h / 2 + 4}" text-anchor="end">${esc(g)}</text>`);
    for (const b of bars) {
      const w = Math.max(x(b.value), 1);
      out.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${colour(b.series)}"><title>${esc(`${[g, b.series].filter(Boolean).join(' ')}: ${fmt(b.value)} ${c.unit}`)}</title></rect>`);
      out.push(`<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${y + BAR - 3}" class="v">${esc(fmt(b.value))}</text>`);
      y += BAR + GAP;
    }
    y += GROUP_GAP - GAP;
  }
  const plotBottom = y;

  const ticks = c.log ? decades(lo, hi) : [0, 0.25, 0.5, 0.75, 1].map((f) => f * hi);
  const axis = ticks.map((t) => {
    const tx = (LABEL_W + x(t)).toFixed(1);
    return `<line x1="${tx}" y1="${TOP - 4}" x2="${tx}" y2="${plotBottom}" class="grid"/><text x="${tx}" y="${TOP - 8}" text-anchor="middle" class="v">${esc(fmt(t))}</text>`;
  });

  let ly = plotBottom + 16;
  const legend = series.filter(Boolean).map((s, i) => {
    const lx = LABEL_W + (i % 3) * 180;
    if (i > 0 && i % 3 === 0) ly += 18;
    return `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${colour(s)}"/><text x="${lx + 16}" y="${ly}">${esc(s)}</text>`;
  });
  const notes = [`${c.unit}, ${c.better} is better${c.log ? ', logarithmic axis' : ''}`];
  if (c.omitted.length > 0) notes.push(`not plotted (no ${c.metric}): ${c.omitted.join(', ')}`);
  const noteLines = notes.map((n, i) => `<text x="8" y="${ly + 22 + i * 16}" class="v">${esc(n)}</text>`);
  const height = ly + 22 + notes.length * 16;
  const width = LABEL_W + PLOT_W + VALUE_W;

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    '<style>.v{fill:#444;font-size:11px}.grid{stroke:#ddd}</style>',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="8" y="20" font-size="15" font-weight="bold">${esc(c.title)}</text>`,
    ...axis,
    ...out,
    ...legend,
    ...noteLines,
    '</svg>',
    '',
  ].join('\n');
}

function niceCeiling(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function decades(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let t = lo; t <= hi * 1.0001; t *= 10) out.push(t);
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  if (v >= 1e6 || v < 1e-3) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  const p = v.toPrecision(4);
  return p.includes('.') && !p.includes('e') ? p.replace(/0+$/, '').replace(/\.$/, '') : p;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}
