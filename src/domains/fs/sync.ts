/**
 * Sleep-locks and wait queues for the file system's async code (xv6's sleeplock / sleep-wakeup).
 *
 * The fs runs on one JS thread, but its calls interleave at every `await`, so anything held across
 * an await (a buffer, an inode, the log's state) is guarded by a SleepLock.
 *
 * Invariants: a SleepLock is handed directly to the oldest waiter on release (FIFO, no barging),
 * so a waiter can never starve; `locked` is true exactly while some holder exists.
 */
export class SleepLock {
  locked = false;
  private waiters: Array<() => void> = [];

  /** Acquire; resolves immediately when free. */
  acquire(): Promise<void> {
    if (!this.locked) {
      this.locked = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Try to acquire without waiting. */
  tryAcquire(): boolean {
    if (this.locked) return false;
    this.locked = true;
    return true;
  }

  release(): void {
    if (!this.locked) throw new Error('SleepLock.release: not locked');
    const next = this.waiters.shift();
    if (next) next(); // ownership passes to `next`; locked stays true
    else this.locked = false;
  }

  get waiting(): number {
    return this.waiters.length;
  }
}

/** A condition-variable-like queue: sleepers are woken all at once (xv6 wakeup). */
export class WaitQueue {
  private sleepers: Array<() => void> = [];

  sleep(): Promise<void> {
    return new Promise<void>((resolve) => this.sleepers.push(resolve));
  }

  wakeup(): void {
    const s = this.sleepers;
    this.sleepers = [];
    for (const f of s) f();
  }

  get size(): number {
    return this.sleepers.length;
  }
}
