/**
 * Warm threads for the worker tier (trusted). Starting a worker thread, loading the worker
 * runtime (worker-host.ts) and locking it down takes ~0.1 s on the machines we measure, nearly
 * all of a worker domain's load, and the kernel thread waits through it (loading is synchronous).
 * The pool keeps a thread that has done all of that and waits for the domain it is to run (its
 * first message: the WorkerBoot); a load takes it, and the next one starts in the background, in
 * parallel with the kernel thread. A thread that must have resource limits is started fresh:
 * limits are fixed when a thread starts.
 *
 * Invariants: an idle thread holds nothing of any domain and is unref'd, so it keeps no process
 * alive; one that exits or fails while idle is dropped (its error reported to nobody: it never
 * ran domain code); close() terminates the idle ones, and take() after close() starts a thread
 * for that load alone.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';

/** Idle threads kept ready: two, so that both programs of a pipeline find one. */
const WARM = 2;

export class WorkerPool {
  private readonly idle: { w: Worker; drop: () => void }[] = [];
  private closed = false;

  constructor(private readonly runtime: URL) {}

  /** A thread waiting for its WorkerBoot: a warm one when it can, else a new one. */
  take(resourceLimits?: ResourceLimits): Worker {
    if (resourceLimits !== undefined) return this.start(resourceLimits);
    const warm = this.idle.shift();
    if (warm !== undefined) {
      warm.w.off('exit', warm.drop).off('error', warm.drop);
    }
    const w = warm?.w ?? this.start();
    this.fill();
    return w;
  }

  /** Terminate the idle threads; later loads start their own. */
  close(): void {
    this.closed = true;
    for (const { w } of this.idle.splice(0)) void w.terminate();
  }

  private start(resourceLimits?: ResourceLimits): Worker {
    const w = new Worker(this.runtime, resourceLimits === undefined ? {} : { resourceLimits });
    w.unref();
    return w;
  }

  private fill(): void {
    while (!this.closed && this.idle.length < WARM) {
      const w = this.start();
      const drop = (): void => {
        const i = this.idle.findIndex((e) => e.w === w);
        if (i >= 0) this.idle.splice(i, 1);
      };
      w.once('exit', drop).once('error', drop);
      this.idle.push({ w, drop });
    }
  }
}
