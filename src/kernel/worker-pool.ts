/**
 * Warm threads for the worker tier (trusted). Starting a worker thread, loading the worker
 * runtime (worker-host.ts) and locking it down takes ~0.1 s on the machines we measure, nearly
 * all of a worker domain's load, and the kernel thread waits through it (loading is synchronous).
 * The pool keeps threads that have done all of that and wait for the domain they are to run (their
 * first message: the WorkerBoot), two at first; a load takes one, and the next one starts in the
 * background, in parallel with the kernel thread. A thread says when it is ready (READY, its
 * first message); a load takes a ready one if there is one, and one that finds none ready (three
 * programs of a pipeline started at once) makes the pool keep one more, up to four. A thread that
 * must have resource limits is started fresh: limits are fixed when a thread starts.
 *
 * Invariants: an idle thread holds nothing of any domain and is unref'd, so it keeps no process
 * alive; one that exits or fails while idle is dropped (its error reported to nobody: it never
 * ran domain code); close() terminates the idle ones, and take() after close() starts a thread
 * for that load alone.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';

/** What a started thread posts once it waits for its WorkerBoot (worker-host.ts). */
export const READY = 'redleaf-worker-ready';
/** Idle threads kept ready at first: two, so that both programs of a pipeline find one. */
const WARM_FIRST = 2;
/** At most this many: a take that finds none idle, once the pool had filled, asks for one more. */
const WARM_MOST = 4;

export class WorkerPool {
  private readonly idle: { w: Worker; ready: boolean; drop: () => void; onMessage: (m: unknown) => void }[] = [];
  private warm = WARM_FIRST;
  private filled = false;
  private closed = false;

  constructor(private readonly runtime: URL) {}

  /** A thread waiting for its WorkerBoot: a warm one when it can, else a new one. */
  take(resourceLimits?: ResourceLimits): Worker {
    if (resourceLimits !== undefined) return this.start(resourceLimits);
    const ready = this.idle.findIndex((e) => e.ready);
    // None ready: demand outran the pool (a thread still starting is taken all the same: it is the nearest).
    if (ready < 0 && this.filled) this.warm = Math.min(WARM_MOST, this.warm + 1);
    const [warm] = this.idle.splice(Math.max(ready, 0), 1);
    if (warm !== undefined) warm.w.off('exit', warm.drop).off('error', warm.drop).off('message', warm.onMessage);
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
    this.filled = true;
    while (!this.closed && this.idle.length < this.warm) {
      const w = this.start();
      const drop = (): void => {
        const i = this.idle.findIndex((e) => e.w === w);
        if (i >= 0) this.idle.splice(i, 1);
      };
      const entry = { w, ready: false, drop, onMessage: (m: unknown): void => void (m === READY && (entry.ready = true)) };
      w.once('exit', drop).once('error', drop).on('message', entry.onMessage);
      this.idle.push(entry);
    }
  }
}
