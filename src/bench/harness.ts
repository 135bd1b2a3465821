/**
 * Benchmark harness shared by every `redleaf bench <suite>`: repeated runs, medians, a table for
 * people and one JSON object for machines. Suites live in src/bench/<suite>.ts and export
 * `run(opts: BenchOptions): Promise<SuiteResult>`; `redleaf bench <suite>` finds them by name.
 */
import { SingleBar, Presets } from 'cli-progress';
import type { MachineMoment } from './lib/machine.js';

export interface BenchOptions {
  /** Repetitions per case (the median is reported); default 5. */
  runs: number;
  /** Print machine-readable JSON instead of a table. */
  json: boolean;
  /** Scale factor for work per run (1 = default; smaller for quick checks). */
  scale: number;
  /** Show a progress bar (on a TTY and not --json). */
  progress: boolean;
  /** Run only the cases whose name starts with this (default: all); suites that take it export `caseFilter = true`. */
  only?: string;
}

export type ResultRow = Record<string, string | number | null>;

export interface SuiteResult {
  suite: string;
  node: string;
  results: ResultRow[];
  notes?: string[];
  /** The machine's moment just before and just after the suite (`--machine`: lib/machine.ts). */
  machine?: { before: MachineMoment; after: MachineMoment };
}

/**
 * `--case` for a suite whose cases are `all`: whether case `c` runs (its name starts with `only`;
 * every case without it). Refuses, naming the suite's cases, an `only` that no case starts with.
 */
export function caseChooser(suite: string, all: readonly string[], only: string | undefined): (c: string) => boolean {
  const wants = (c: string): boolean => only === undefined || c.startsWith(only);
  if (!all.some(wants)) throw new Error(`--case ${only}: no case of suite ${suite} starts with it (cases: ${all.join(', ')})`);
  return wants;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Run each of `fns` `runs` times (after `warmup` unrecorded rounds); returns each one's results,
 * xs[k][i] what fns[k] gave in recorded round i. With several, their runs alternate, the order
 * flipping every round, so that load drifting during the measurement hits them alike (a same-run
 * comparison such as shadow/domain: see versus).
 */
export async function runsOf(runs: number, fns: readonly (() => number | Promise<number>)[], warmup = 1): Promise<number[][]> {
  const xs = fns.map(() => [] as number[]);
  for (let round = 0; round < warmup + runs; round++) {
    for (let k = 0; k < fns.length; k++) {
      const j = round % 2 === 0 ? k : fns.length - 1 - k;
      const x = await fns[j]!();
      if (round >= warmup) xs[j]!.push(x);
    }
  }
  return xs;
}

/**
 * Path `b` against path `a`, from their alternating runs (runsOf: run i of each in the same
 * round, one beside the other): `vs_domain`, the ratio of their medians (the figure a target such
 * as "shadow within 10% of domain" is read from), and the lowest and highest ratio of one run of b
 * to the run of a in its round — how far a single run's noise moves that ratio on this machine.
 */
export function versus(a: readonly number[], b: readonly number[]): { vs_domain: number; vs_domain_min: number; vs_domain_max: number } {
  const per = b.map((x, i) => x / a[i]!);
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return { vs_domain: r3(median(b) / median(a)), vs_domain_min: r3(Math.min(...per)), vs_domain_max: r3(Math.max(...per)) };
}

/** The note a suite prints when its rows carry versus's fields. */
export const VERSUS_NOTE = 'shadow rows: vs_domain = the shadow median / the domain median; vs_domain_min / vs_domain_max = the lowest and highest ratio of one shadow run to the domain run of its round (how far one run\'s noise moves the ratio)';

/**
 * A recovery row's report of the restarts its warm-up made (a process's first ones, slower than
 * those its medians are taken over), `ms` in order, NaN for one that could not be timed:
 * `first_restart_ms` (null if NaN) and `warmup_restarts_ms`, the list ('-' for NaN).
 */
export function warmupRestarts(ms: readonly number[]): { first_restart_ms: number | null; warmup_restarts_ms: string } {
  const first = ms[0] ?? NaN;
  return {
    first_restart_ms: Number.isNaN(first) ? null : Math.round(first * 100) / 100,
    warmup_restarts_ms: ms.map((x) => (Number.isNaN(x) ? '-' : x.toFixed(1))).join(' '),
  };
}

/** Run `fn` `runs` times (after `warmup` unrecorded runs); returns the median of its results. */
export async function medianOf(runs: number, fn: () => number | Promise<number>, warmup = 1): Promise<number> {
  return median((await runsOf(runs, [fn], warmup))[0]!);
}

/** A progress bar over `total` steps, or a no-op when not wanted. */
export function progressBar(opts: BenchOptions, title: string, total: number): { tick(label?: string): void; stop(): void } {
  if (!opts.progress || opts.json || !process.stderr.isTTY) return { tick() {}, stop() {} };
  const bar = new SingleBar({ format: `${title} [{bar}] {value}/{total} {label}`, stream: process.stderr }, Presets.shades_classic);
  bar.start(total, 0, { label: '' });
  return {
    tick(label = '') {
      bar.increment(1, { label });
    },
    stop() {
      bar.stop();
    },
  };
}

/** A machine's moment (lib/machine.ts) as one line of text. */
export function describeMachine(m: MachineMoment): string {
  return `compute ${m.compute_ns.toFixed(2)} ns a step, memory ${m.load_ns.toFixed(1)} ns a load, handoff ${m.handoff_ns.toFixed(1)} ns one way`;
}

export function formatTable(r: SuiteResult): string {
  const cols = [...new Set(r.results.flatMap((row) => Object.keys(row)))];
  const cell = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : v === null || v === undefined ? '' : String(v));
  const rows = r.results.map((row) => cols.map((c) => cell(row[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((x) => x[i]!.length)));
  const line = (xs: string[]): string => xs.map((x, i) => x.padEnd(widths[i]!)).join('  ');
  const out = [`suite ${r.suite} (node ${r.node})`, line(cols), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  if (r.notes?.length) out.push('', ...r.notes);
  if (r.machine !== undefined) out.push('', `machine before: ${describeMachine(r.machine.before)}`, `machine after:  ${describeMachine(r.machine.after)}`);
  return out.join('\n');
}
