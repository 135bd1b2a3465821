/**
 * Memory pressure (trusted): which in-thread domain to terminate before the kernel's JS heap runs
 * out. Every in-thread domain allocates its private objects on the kernel's V8 heap, and V8 ends
 * the whole process when that heap is exhausted; a domain that hoards memory would take the
 * kernel and every other domain with it. Its deadline does not help: at 1 GB/s a 2 s deadline is
 * far more than the heap holds.
 *
 * Policy (decided here, ARCHITECTURE §4 is silent): the allocating task is killed, as Linux does
 * with vm.oom_kill_allocating_task. The kernel's deadline checks call `underPressure` on their
 * clock reads (the tick, at most once per 1024 checks), and it looks at the heap at most once per
 * CHECK_MS; the kernel's heartbeat, which runs between runs of domain code, calls `rebase`, so
 * what the host or a domain's earlier run allocated is the starting point, not anyone's growth.
 * The domain running when the heap is found over the threshold panics, if:
 *  - a full collection does not bring the heap back under the threshold (garbage is nobody's
 *    fault), and
 *  - the live heap grew by at least MARGIN of the threshold since the last look, the last
 *    heartbeat or the last time it was under the threshold: a domain that merely runs while
 *    memory allocated before sits there is left alone, and so are small allocations at the edge.
 * A forced collection happens only after the heap grew by that margin while over the threshold,
 * so a heap that stays high does not make the kernel collect over and over.
 *
 * What stays bounded: the heap can pass the threshold by what domain code allocates between two
 * looks (1 ms, or up to 1024 loop iterations of one activation between two ticks, or one native
 * call) and by what the collection frees when the domain's stack unwinds. The default threshold,
 * half of V8's heap limit, leaves the other half for that.
 *
 * What it does not do: account memory per domain (V8 cannot say which compartment an object
 * belongs to), so who is blamed is a heuristic. A runaway run, the common case (a loop that
 * allocates), is caught. Memory a domain allocated in one native call and kept, in a run with no
 * check after it, is blamed on the next domain whose check looks before a heartbeat does. Growth
 * spread over many short runs, each under the margin, is blamed on nobody, and the heap can still
 * run out. Code that must not be trusted with memory runs on the worker tier (resourceLimits).
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Least time between two looks at the heap, in ms. */
const CHECK_MS = 1;
/** Growth of the live heap (a fraction of the threshold) that a look acts on. */
const MARGIN = 1 / 16;

/** The default threshold: half of V8's heap limit. */
export function defaultHeapPanicBytes(): number {
  return Math.floor(getHeapStatistics().heap_size_limit / 2);
}

let collector: (() => void) | null = null;
/** A full garbage collection (V8's `gc`, exposed once for the kernel). */
function collectGarbage(): void {
  if (collector === null) {
    setFlagsFromString('--expose-gc');
    collector = runInNewContext('gc') as () => void;
  }
  collector();
}

export class MemoryPressure {
  private nextLook = 0;
  /** Where growth is counted from: the heap at the last heartbeat, at the last look that found it under the threshold, or after the last forced collection. */
  private base = 0;
  private readonly margin: number;

  /** `threshold`: heap bytes (V8's used_heap_size) above which the running domain may be terminated; Infinity: never. */
  constructor(readonly threshold: number) {
    if (!(threshold > 0)) throw new RangeError(`heapPanicBytes ${threshold} must be a positive number of bytes (Infinity: no limit)`);
    this.margin = threshold * MARGIN;
  }

  /** The heap now is the starting point for the next look (called between runs of domain code). */
  rebase(): void {
    if (this.threshold !== Infinity) this.base = getHeapStatistics().used_heap_size;
  }

  /**
   * Whether the domain running now must be terminated for the heap's sake (`now`: the clock the
   * caller has just read). When it returns a message, that says why.
   */
  underPressure(now: number): string | null {
    if (now < this.nextLook || this.threshold === Infinity) return null;
    this.nextLook = now + CHECK_MS;
    const used = getHeapStatistics().used_heap_size;
    if (used <= this.threshold) {
      this.base = used;
      return null;
    }
    if (used - this.base < this.margin) return null;
    collectGarbage();
    const live = getHeapStatistics().used_heap_size;
    const grew = live - this.base;
    this.base = live;
    if (live <= this.threshold || grew < this.margin) return null;
    return `memory pressure: the kernel's heap holds ${mb(live)} MB live, over its ${mb(this.threshold)} MB threshold, and grew by ${mb(grew)} MB while this domain ran`;
  }
}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
