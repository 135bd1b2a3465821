/**
 * Shared by the network tests: a host-owned NetIo (from src/host/net.ts), and running a packet
 * app until the work a test needs was done.
 *
 * Why progress-based: NetApp.run polls for a fixed wall-clock time, and on a loaded machine a
 * fixed window can end before the frames a test is about to check went through (the first pass of
 * the loop alone can take longer than the window). So tests run the app in short slices until
 * their condition holds, with a generous upper bound; the caller still asserts the condition and
 * reports what was processed and how long it took.
 */
import type { Net, NetApp } from '../../src/interfaces/index.js';

export { hostIo } from '../../src/host/net.js';

/** One slice of NetApp.run, in ms. */
const SLICE_MS = 50;
/** Give up (and let the caller's assertion fail with its diagnostics) after this long. */
export const PROGRESS_LIMIT_MS = 30_000;

export interface Progress {
  /** Frames the app processed over all slices. */
  frames: number;
  /** Wall-clock time spent, in ms. */
  ms: number;
}

/**
 * Run `app` in `mode` (batches of 32) in slices until `done(frames so far)` holds or `limitMs`
 * passed; at least one slice runs. A negative answer of run (bad arguments) is returned at once.
 */
export function runUntil(app: NetApp, mode: string, done: (frames: number) => boolean, limitMs = PROGRESS_LIMIT_MS): Progress {
  const t0 = performance.now();
  let frames = 0;
  do {
    const n = app.run(mode, 32, SLICE_MS);
    if (n < 0) return { frames: n, ms: performance.now() - t0 };
    frames += n;
  } while (!done(frames) && performance.now() - t0 < limitMs);
  return { frames, ms: performance.now() - t0 };
}

/** "N frames in M ms", for assertion messages. */
export const describeProgress = (p: Progress): string => `${p.frames} frames in ${p.ms.toFixed(0)} ms`;

/**
 * A host-side Net between an app domain and the Net `inner()` (bound for the app's domain on
 * first use, so the NetIos the app moves in move on as the app's): every method passes through,
 * but those `over` gives, which see the calls (and may change their answers) on the way.
 */
export function between(inner: () => Net, over: Partial<Net>): Net {
  return {
    rxSubmitAndPoll: (q, io) => inner().rxSubmitAndPoll(q, io),
    txSubmitAndPoll: (q, io) => inner().txSubmitAndPoll(q, io),
    outstanding: () => inner().outstanding(),
    drain: (io) => inner().drain(io),
    stats: (o) => inner().stats(o),
    link: (o) => inner().link(o),
    setInterrupts: (on) => inner().setInterrupts(on),
    waitRx: (ms) => inner().waitRx(ms),
    ...over,
  };
}
