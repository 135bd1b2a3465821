/**
 * `redleaf bench <suite> [--json] [--runs N] [--scale X] [--case PREFIX] [--svg FILE] [--machine]`: run a
 * benchmark suite (src/bench/<suite>.ts) and print a table or one JSON object; optionally also
 * draw it as an SVG bar chart (src/bench/lib/svg.ts), and measure the machine's moment before
 * and after it (src/bench/lib/machine.ts), so that a result says what kind of moment of a shared
 * VM it was taken in.
 */
import { accessSync, constants, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { formatTable, type BenchOptions, type SuiteResult } from '../bench/harness.js';
import { renderSvg } from '../bench/lib/svg.js';
import { measureMachine } from '../bench/lib/machine.js';
import { numberOption } from './options.js';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench');
/** The suites are the modules of src/bench other than the harness. */
const suites = readdirSync(benchDir)
  .filter((f) => f.endsWith('.js') && f !== 'harness.js')
  .map((f) => f.slice(0, -3))
  .sort();


export function register(program: Command): void {
  program
    .command('bench')
    .description(`run a benchmark suite: ${suites.join(', ')}`)
    .argument('<suite>', `suite name (${suites.join(' | ')})`)
    .option('--json', 'print one JSON object instead of a table', false)
    .option('--runs <n>', 'repetitions per case; the median is reported', numberOption('--runs', 1, 1000), 5)
    .option('--scale <x>', 'work per run relative to the default (e.g. 0.1 for a quick look)', numberOption('--scale', 0.001, 1000, false), 1)
    .option('--case <prefix>', 'run only the cases whose name starts with <prefix>, e.g. recovery (nvme and net suites)')
    .option('--no-progress', 'no progress bar')
    .option('--svg <file>', 'also write the results as an SVG bar chart to <file>')
    .option('--machine', 'also measure the machine before and after the suite (a core\'s speed, a memory load, a handoff between cores: ~6 s each), to tell a slow phase of a shared VM from a slow build', false)
    .action(async (suite: string, o: { json: boolean; runs: number; scale: number; progress: boolean; case?: string; svg?: string; machine: boolean }) => {
      if (!suites.includes(suite)) throw new Error(`unknown benchmark suite "${suite}"; try ${suites.join(', ')}`);
      if (o.svg !== undefined) {
        // Refuse before a long run, not after it.
        try {
          accessSync(dirname(resolve(o.svg)), constants.W_OK);
        } catch {
          throw new Error(`--svg ${o.svg}: the directory ${dirname(resolve(o.svg))} does not exist or is not writable`);
        }
        if (existsSync(o.svg) && statSync(o.svg).isDirectory()) throw new Error(`--svg ${o.svg}: is a directory; give a file name, e.g. ${join(o.svg, `${suite}.svg`)}`);
      }
      const file = join(benchDir, `${suite}.js`);
      const mod = (await import(pathToFileURL(file).href)) as { run(opts: BenchOptions): Promise<SuiteResult>; caseFilter?: boolean };
      if (o.case !== undefined && mod.caseFilter !== true) throw new Error(`--case: suite ${suite} runs all its cases (only nvme and net take --case)`);
      const before = o.machine ? await measureMachine() : undefined;
      const result = await mod.run({ json: o.json, runs: Math.round(o.runs), scale: o.scale, progress: o.progress, ...(o.case !== undefined ? { only: o.case } : {}) });
      if (before !== undefined) result.machine = { before, after: await measureMachine() };
      console.log(o.json ? JSON.stringify(result) : formatTable(result));
      if (o.svg !== undefined) {
        writeFileSync(o.svg, renderSvg(result));
        if (!o.json) console.log(`chart written to ${o.svg}`);
      }
    });
}
