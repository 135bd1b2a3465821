/**
 * Blocking system calls (xv6's sleep/wakeup): a call that has to wait registers a waiter with
 * whatever will wake it (a pipe, the console, a timer, a parent's wait queue) and with the
 * cancellation scope of the program image that made the call.
 *
 * Invariants:
 *  - a blocked call settles exactly once: either its waker calls `wake(value)`, or its scope is
 *    cancelled (the process ended or exec'ed), which disarms the waiter — removing it from the
 *    waker's queue, so the waker can never touch the caller's buffers afterwards — and settles the
 *    call with the `cancelled` value;
 *  - every call a dead program had pending settles (the proxy of the call is released), so nothing
 *    of a dead domain stays reachable from the core.
 */

/** The blocked calls of one program image: all cancelled at once when the image goes away. */
export class CancelScope {
  private readonly hooks = new Set<() => void>();
  private cancelled = false;

  /** Blocked calls right now (`procs` shows such a process as sleeping). */
  get size(): number {
    return this.hooks.size;
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }

  /** Register `onCancel`; returns the function that unregisters it. */
  add(onCancel: () => void): () => void {
    if (this.cancelled) {
      onCancel();
      return () => {};
    }
    this.hooks.add(onCancel);
    return () => this.hooks.delete(onCancel);
  }

  /** Cancel every blocked call, now and for any call that tries to block later. */
  cancelAll(): void {
    this.cancelled = true;
    const hooks = [...this.hooks];
    this.hooks.clear();
    for (const h of hooks) h();
  }
}

/**
 * Block until `arm`'s waker calls `wake`, or until `scope` is cancelled (then resolve with
 * `cancelled`). `arm` registers the waiter and returns the function that removes it again; it
 * must not call `wake` synchronously.
 */
export function block<T>(scope: CancelScope, cancelled: T, arm: (wake: (v: T) => void) => () => void): Promise<T> {
  return new Promise<T>((resolve) => {
    let done = false;
    let unscope: () => void = () => {};
    const wake = (v: T): void => {
      if (done) return;
      done = true;
      unscope();
      resolve(v);
    };
    const disarm = arm(wake);
    unscope = scope.add(() => {
      if (done) return;
      done = true;
      disarm();
      resolve(cancelled);
    });
  });
}

/** Remove `item` from `queue` if present (waiter queues are short). */
export function removeFrom<T>(queue: T[], item: T): void {
  const i = queue.indexOf(item);
  if (i >= 0) queue.splice(i, 1);
}
