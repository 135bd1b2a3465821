/**
 * What both placement tiers share to run a domain's code (trusted): the compartment a domain is
 * evaluated in, the deadline-check budget the trusted build's instrumentation works with, and the
 * check of what `init` returned. The in-thread tier (kernel.ts) and the worker tier
 * (worker-host.ts, on its own thread) call the same functions, so a domain sees the same world
 * whichever tier runs it.
 *
 * Invariant: a compartment's globalThis is hardened before the domain's code is evaluated, and
 * holds only powerless intrinsics plus an Atomics without `wait`/`waitAsync` (blocking would put
 * the thread beyond the reach of deadline checks).
 */
import './lockdown.js';
import { KernelError } from './kernel-error.js';
import { INTERFACES } from '../gen/idl.js';

/** Back-edges and function entries between two clock reads in a domain's deadline check. */
export const TICK_BUDGET = 1024;

/** Atomics for domain code (drivers reach BAR0 with it): every operation but wait/waitAsync. */
const DOMAIN_ATOMICS = harden({
  load: Atomics.load, store: Atomics.store, add: Atomics.add, sub: Atomics.sub, and: Atomics.and, or: Atomics.or,
  xor: Atomics.xor, exchange: Atomics.exchange, compareExchange: Atomics.compareExchange,
  notify: Atomics.notify, isLockFree: Atomics.isLockFree,
});

/** The hooks the trusted build compiles into a domain: deadline check and await guard. */
export interface DeadlineHooks {
  tick: () => number;
  aw: <T>(v: T) => T;
}

/** A new compartment with frozen globals; returns it and the module object of `code`. */
export function evaluateDomain(code: string, hooks: DeadlineHooks): { compartment: Compartment; init: unknown } {
  const compartment = new Compartment({
    globals: { TextEncoder, TextDecoder, Float32Array, Float64Array, Atomics: DOMAIN_ATOMICS },
    __options__: true,
  });
  harden(compartment.globalThis);
  const factory = compartment.evaluate(code) as (tick: () => number, aw: <T>(v: T) => T) => { init?: unknown };
  const mod = factory(hooks.tick, hooks.aw);
  return { compartment, init: mod?.init };
}

/** Throws EINIT unless `exported` implements every method of interface `iface`. */
export function checkExport(name: string, iface: string, exported: unknown): object {
  if (typeof exported !== 'object' || exported === null) {
    throw new KernelError('EINIT', `domain ${name} must return an object implementing ${iface} from init`);
  }
  for (const method of INTERFACES[iface] ?? []) {
    if (typeof (exported as Record<string, unknown>)[method] !== 'function') {
      throw new KernelError('EINIT', `domain ${name}: its ${iface} export lacks method ${method}`);
    }
  }
  return exported;
}
