/**
 * Bounding a test's wait: a promise that must settle within a time, where not settling (a hang, a
 * deadlock) is the failure to report — with what `failure()` says, computed only then; or, for a
 * test that must not turn the event loop meanwhile, a blocking wait for a condition (waitFor).
 */
export async function within<T>(p: Promise<T>, ms: number, failure: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(failure())), ms);
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = new Int32Array(new SharedArrayBuffer(4));
/**
 * Waits until `pred`, at most `ms`, blocking the thread in steps of 1 ms (so no event is delivered
 * meanwhile: what another thread does shows only in shared memory); returns whether it came.
 */
export function waitFor(pred: () => boolean, ms: number): boolean {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return false;
    Atomics.wait(sleep, 0, 0, 1);
  }
  return true;
}
