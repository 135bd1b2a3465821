/**
 * Probe: what SES lockdown (src/kernel/lockdown.ts, which the kernel process runs before any
 * domain loads) costs V8's optimized code, operation by operation — why hot paths never spread
 * arguments, and what the kernel's own freezing of the typed-array prototypes trades (stores stay
 * fast; subarray and slice look up the species constructor).
 * Runs each operation in a loop, in two processes of its own (without and with lockdown), and
 * prints ns per operation side by side (the best of seven runs of 100,000, after warm-up).
 *
 *   node dist/src/bench/probes/lockdown-costs.js
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const N = 100_000;

/** The operations, each a loop of N; what it returns is kept so the loop stays. */
function operations(): Record<string, () => number> {
  const ta = new Int32Array(64);
  const dv = new DataView(ta.buffer);
  const arr = [0, 0, 0, 0, 0, 0, 0, 0];
  const three = [1, 2, 3];
  const sum3 = (a: number, b: number, c: number): number => a + b + c;
  const sixteen = Array.from({ length: 16 }, (_, i) => i);
  return {
    'typed-array load': () => {
      let t = 0;
      for (let i = 0; i < N; i++) t += ta[i & 63]!;
      return t;
    },
    'typed-array store': () => {
      for (let i = 0; i < N; i++) ta[i & 63] = i;
      return ta[0]!;
    },
    'typed-array subarray': () => {
      let t = 0;
      for (let i = 0; i < N; i++) t += ta.subarray(i & 31, 48).length;
      return t;
    },
    'DataView store': () => {
      for (let i = 0; i < N; i++) dv.setInt32((i & 63) * 4, i, true);
      return ta[0]!;
    },
    'array store': () => {
      for (let i = 0; i < N; i++) arr[i & 7] = i;
      return arr[0]!;
    },
    'call f(a, b, c)': () => {
      let t = 0;
      for (let i = 0; i < N; i++) t += sum3(i, 2, 3);
      return t;
    },
    'spread call f(...xs)': () => {
      let t = 0;
      for (let i = 0; i < N; i++) t += sum3(...(three as [number, number, number]));
      return t;
    },
    'const [a, b] = pair': () => {
      let t = 0;
      for (let i = 0; i < N; i++) {
        const [a, b] = three;
        t += a! + b!;
      }
      return t;
    },
    'for-of over 16 numbers': () => {
      let t = 0;
      for (let i = 0; i < N; i++) for (const x of sixteen) t += x;
      return t;
    },
    'Array.from(16 numbers)': () => {
      let t = 0;
      for (let i = 0; i < N; i++) t += Array.from(sixteen).length;
      return t;
    },
  };
}

function measure(): Record<string, number> {
  const out: Record<string, number> = {};
  let keep = 0;
  for (const [name, op] of Object.entries(operations())) {
    for (let w = 0; w < 5; w++) keep += op();
    let best = Infinity;
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      keep += op();
      best = Math.min(best, performance.now() - t0);
    }
    out[name] = (best * 1e6) / N;
  }
  if (keep === 0.5) console.error(keep); // never: keeps the results alive
  return out;
}

const mode = process.argv[2];
if (mode === 'plain' || mode === 'lockdown') {
  if (mode === 'lockdown') await import('../../kernel/lockdown.js');
  console.log(JSON.stringify(measure()));
} else {
  const self = fileURLToPath(import.meta.url);
  const run = (m: string): Record<string, number> => JSON.parse(execFileSync(process.execPath, [self, m], { encoding: 'utf8' })) as Record<string, number>;
  const plain = run('plain');
  const locked = run('lockdown');
  console.log('operation                  plain ns  lockdown ns  ratio');
  for (const name of Object.keys(plain)) {
    const a = plain[name]!;
    const b = locked[name]!;
    console.log(`${name.padEnd(25)} ${a.toFixed(2).padStart(9)} ${b.toFixed(2).padStart(12)} ${(b / a).toFixed(1).padStart(6)}`);
  }
}
