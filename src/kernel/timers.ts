/**
 * The delay a domain's Sys.setTimeout / setInterval arms a Node timer with (kernel.ts for the
 * kernel thread, worker-host.ts for a worker domain). Node takes at most 2^31-1 ms (~24.8 days):
 * a longer delay, Infinity included, fires after 1 ms with a TimeoutOverflowWarning — a wait "for
 * ever" (NetApp.serve for an unbounded time, a driver's waitRx(Infinity)) became a 1 ms poll.
 * Decision: a longer delay is that longest one (a timer that fires after ~24.8 days is, for a
 * process, one that does not fire), rather than a chain of timers to re-arm that the kernel's
 * cleanup of a dead domain's timers would have to follow.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` as Node's timers take it: at most MAX_TIMER_MS (a NaN or negative one Node runs at once, as before). */
export const timerDelay = (ms: number): number => (ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms);
