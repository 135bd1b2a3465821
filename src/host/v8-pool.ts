/**
 * V8's worker pool sized to the machine: the command line (and the bench probes, so that they
 * measure what `redleaf` runs) calls startWithPool() before it does anything.
 *
 * V8 compiles optimized code and collects garbage on a pool of worker threads, four by default
 * (Node's --v8-pool-size). RedLeaf.ts runs the kernel on the main thread and each device model on
 * a thread of its own, and a NIC model polls: on a machine of few cores, four V8 workers busy at
 * once take the cores those threads need. They are busy at once exactly when it hurts: after a
 * driver crash, V8 re-optimizes what the crash deoptimized, while the kernel restarts the driver
 * and the device resets. On the 2-vCPU machines this project is measured on, a process's first
 * NIC driver restart kept its caller waiting 21–37 ms with four workers and 10–22 ms with one
 * (bench/RESULTS.md, session 21); throughput did not change.
 *
 * So the pool gets the cores left after the kernel thread and one device thread: at least one, at
 * most V8's default. Node reads the size only as it starts, so a process that was not started
 * with it starts itself again with it and passes on its exit status (or signal; it passes SIGTERM
 * on to the new process, which gets a terminal's ^C and hangup itself). A size chosen
 * by the user (--v8-pool-size in the node flags or NODE_OPTIONS) is kept, and REDLEAF_V8_POOL=0
 * turns the restart off.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

/** V8's worker threads for a machine of `cores`: what the kernel thread and one device thread leave, 1..4. */
export function poolSizeFor(cores: number): number {
  return Math.max(1, Math.min(4, cores - 2));
}

const MARK = 'REDLEAF_V8_POOL';

/**
 * Unless this process already runs with the pool size for this machine (or one the user chose, or
 * REDLEAF_V8_POOL is set), runs it again with that size and ends it as the new one ends: returns
 * only in the process that is to go on.
 */
export async function startWithPool(): Promise<void> {
  const chosen = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith('--v8-pool-size'));
  const size = poolSizeFor(availableParallelism());
  if (chosen || process.env[MARK] !== undefined || size >= 4) return;
  const child = spawn(process.execPath, [`--v8-pool-size=${size}`, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [MARK]: String(size) },
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
