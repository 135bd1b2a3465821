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
 * The pool also says whether a thread it started has ended (ended()), without the event loop: a
 * blocking load (WorkerDomain.start) holds the kernel thread, where the Worker's 'exit' event
 * cannot reach it.
 *
 * Invariants: an idle thread holds nothing of any domain and is unref'd, so it keeps no process
 * alive; one that exits or fails while idle is dropped (its error reported to nobody: it never
 * ran domain code); close() terminates the idle ones, and take() after close() starts a thread
 * for that load alone; ended(w) is true only once w's OS thread is gone.
 */
import { existsSync, readdirSync } from 'node:fs';
import { Worker, type ResourceLimits } from 'node:worker_threads';

/** What a started thread posts once it waits for its WorkerBoot (worker-host.ts). */
export const READY = 'redleaf-worker-ready';
/** Idle threads kept ready at first: two, so that both programs of a pipeline find one. */
const WARM_FIRST = 2;
/** At most this many: a take that finds none idle, once the pool had filled, asks for one more. */
const WARM_MOST = 4;
/**
 * This process's OS threads, one entry per task id (Linux, proc(5)). An entry goes when its thread
 * has exited, whether or not anyone joined it yet: Node joins a Worker's thread only when its
 * event loop gets to the 'exit' event. Elsewhere there is no such directory, and ended() never
 * knows (a blocking load of a thread killed before it could report then waits out its timeout).
 */
const TASKS = '/proc/self/task';

/** This process's task ids, or null where TASKS cannot be read. */
function tasks(): string[] | null {
  try {
    return readdirSync(TASKS);
  } catch {
    return null;
  }
}

export class WorkerPool {
  private readonly idle: { w: Worker; ready: boolean; drop: () => void; onMessage: (m: unknown) => void }[] = [];
  private warm = WARM_FIRST;
  private filled = false;
  private closed = false;
  /** The task ids that appeared while each thread was started (see start()); none kept where unknown. */
  private readonly taskIds = new WeakMap<Worker, string[]>();

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

  /**
   * Has `w`'s OS thread ended? True only when it certainly has (every task started with it is
   * gone); false while it runs, and where that cannot be known. Costs a stat of a /proc entry or
   * two (microseconds), and no event loop turn.
   */
  ended(w: Worker): boolean {
    const ids = this.taskIds.get(w);
    return ids !== undefined && ids.every((id) => !existsSync(`${TASKS}/${id}`));
  }

  /**
   * A new thread. Node's Worker constructor creates the OS thread before it returns (it ends with
   * startThread, a uv_thread_create), so the thread is among the tasks that appeared meanwhile,
   * with any thread another thread of the process started at the same moment (rare: libuv's
   * pool threads, started once on first use). Watching them all, ended() errs only toward "not
   * known to have ended": that load then waits out its timeout, as where TASKS is missing. When
   * no task appeared (the thread already gone, or a Node that starts the thread later), nothing
   * is kept, for the same reason.
   */
  private start(resourceLimits?: ResourceLimits): Worker {
    const before = tasks();
    const w = new Worker(this.runtime, resourceLimits === undefined ? {} : { resourceLimits });
    w.unref();
    if (before !== null) {
      const old = new Set(before);
      const ids = (tasks() ?? []).filter((id) => !old.has(id));
      if (ids.length > 0) this.taskIds.set(w, ids);
    }
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
