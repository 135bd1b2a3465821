/**
 * Probe: how long shell commands take with user programs in the kernel thread or on worker threads
 * (`redleaf boot --programs worker`). Boots rv6 on a RAM disk holding a fresh default image, then
 * types each command at the shell's prompt `rounds` times, `gap` ms apart (a user's pace: time for
 * the pool of warm threads to refill), and prints each command's median milliseconds from the
 * newline to the next prompt.
 *
 *   node dist/src/bench/probes/rv6-commands.js thread|worker [rounds=5] [gap=300]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDefaultImage } from '../../host/image.js';
import { bootRv6 } from '../../host/rv6.js';
import { median } from '../harness.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const placement = process.argv[2] === 'worker' ? 'worker' : 'thread';
const rounds = Number(process.argv[3] ?? 5);
const gap = Number(process.argv[4] ?? 300);
const COMMANDS = ['echo hi', 'ls', 'cat README | wc', 'grep -c 7 numbers.txt', 'cat fruit.txt | grep apple | wc -l'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'rv6-commands-'));
try {
  const image = join(dir, 'rv6.img');
  await createDefaultImage(image);
  let out = '';
  /** Resolved (and cleared) by the console output that ends with the shell's prompt. */
  let atPrompt: (() => void) | null = null;
  const sys = await bootRv6({
    membdevImage: image,
    programPlacement: placement,
    console: (t) => {
      out += t;
      if (atPrompt !== null && out.endsWith('$ ')) {
        atPrompt();
        atPrompt = null;
      }
    },
    log: () => {},
  });
  /** Type `line` (empty: nothing) and wait for the next prompt, without polling (which would take a core from the workers). */
  const prompt = (line: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no prompt after ${JSON.stringify(line)}; console:\n${out}`)), 30_000);
      atPrompt = () => {
        clearTimeout(timer);
        resolve();
      };
      if (line !== '') sys.core.consoleInput(line + '\n');
    });
  const first = prompt('');
  if ((await sys.core.boot('/bin/init', 'init')) !== 0) throw new Error('init did not start');
  await first;
  const times = new Map<string, number[]>(COMMANDS.map((c) => [c, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of COMMANDS) {
      await sleep(gap);
      const t0 = performance.now();
      await prompt(c);
      times.get(c)!.push(performance.now() - t0);
    }
  }
  for (const [c, ms] of times) console.log(`${placement}  ${c.padEnd(36)} ${median(ms).toFixed(1)} ms`);
  await sys.stop();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
