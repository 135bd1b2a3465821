/**
 * Bounding a test's wait: a promise that must settle within a time, where not settling (a hang, a
 * deadlock) is the failure to report — with what `failure()` says, computed only then.
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
