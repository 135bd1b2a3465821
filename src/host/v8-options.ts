/**
 * The V8 options the kernel process runs with: the command line (and the bench probes, so that
 * they measure what `redleaf` runs) calls startWithV8Options() before it does anything.
 *
 * V8's worker pool sized to the machine. V8 compiles optimized code and collects garbage on a pool
 * of worker threads, four by default (Node's --v8-pool-size). RedLeaf.ts runs the kernel on the
 * main thread and each device model on a thread of its own, and a NIC model polls: on a machine of
 * few cores, four V8 workers busy at once take the cores those threads need. They are busy at once
 * exactly when it hurts: after a driver crash, V8 re-optimizes what the crash deoptimized, while
 * the kernel restarts the driver and the device resets. On the 2-vCPU machines this project is
 * measured on, a process's first NIC driver restart kept its caller waiting 21–37 ms with four
 * workers and 10–22 ms with one (bench/RESULTS.md, session 21); throughput did not change. So the
 * pool gets the cores left after the kernel thread and one device thread: at least one, at most
 * V8's default.
 *
 * Eager compilation (--no-lazy). By default V8 only pre-parses a function when its script loads
 * and compiles it the first time it is called. The kernel's recovery path — a dead driver's
 * termination and reclaim, the shadow's revival, the new instance's init — is code that runs
 * for the first time when a driver first dies, so its first run paid for compiling dozens of
 * functions while the caller waited: a process's first NIC driver restart took 10.9–23.1 ms
 * (median 15.3) lazily and 6.1–15.7 (9.6) with everything compiled as it loads, alternating
 * (bench/RESULTS.md, session 23). The price is paid once, at start: 0.05–0.1 s and 4–8 MB more
 * (`redleaf --help`, `redleaf boot`). A kernel should not make its rare paths pay for being rare.
 *
 * Node reads these only as it starts, so a process that was not started with them starts itself
 * again with them and passes on its exit status (or signal; it passes SIGTERM on to the new
 * process, which gets a terminal's ^C and hangup itself). What the user chose is kept: a pool size
 * (--v8-pool-size in the node flags or NODE_OPTIONS), --lazy or --no-lazy; and
 * REDLEAF_V8_OPTIONS=0 turns the restart off.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

/** V8's worker threads for a machine of `cores`: what the kernel thread and one device thread leave, 1..4. */
export function poolSizeFor(cores: number): number {
  return Math.max(1, Math.min(4, cores - 2));
}

/** Set in the restarted process (and by a user who wants no restart). */
const MARK = 'REDLEAF_V8_OPTIONS';

/**
 * The node flags this process should add for a machine of `cores`, given the flags it runs with
 * (`given`: its own and NODE_OPTIONS'): the pool size unless one was chosen (none when it is
 * V8's default), eager compilation unless --lazy or --no-lazy was chosen.
 */
export function missingV8Flags(given: readonly string[], cores: number): string[] {
  const out: string[] = [];
  const size = poolSizeFor(cores);
  if (size < 4 && !given.some((a) => a.startsWith('--v8-pool-size'))) out.push(`--v8-pool-size=${size}`);
  if (!given.some((a) => a === '--lazy' || a === '--no-lazy')) out.push('--no-lazy');
  return out;
}

/**
 * Unless this process already runs with the V8 options for this machine (or ones the user chose,
 * or REDLEAF_V8_OPTIONS is set), runs it again with them and ends it as the new one ends: returns
 * only in the process that is to go on.
 */
export async function startWithV8Options(): Promise<void> {
  if (process.env[MARK] !== undefined) return;
  const flags = missingV8Flags([...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)], availableParallelism());
  if (flags.length === 0) return;
  const child = spawn(process.execPath, [...flags, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [MARK]: flags.join(' ') },
  });
  // A terminal's ^C and hangup reach the whole process group, the child too, which decides what
  // they mean (boot shuts rv6 down cleanly, and takes a second one as "do not wait"): passing them
  // on would double them. SIGTERM is sent to one process (kill, a test's timeout): passed on.
  for (const sig of ['SIGINT', 'SIGHUP'] as const) process.on(sig, () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, sg) => resolve([c, sg])));
  if (signal !== null) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code ?? 1);
}
