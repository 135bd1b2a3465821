/**
 * What both placement tiers share to run a domain's code (trusted): the compartment a domain is
 * evaluated in, the deadline-check budget the trusted build's instrumentation works with, and the
 * check of what `init` returned. The in-thread tier (kernel.ts) and the worker tier
 * (worker-host.ts, on its own thread) call the same functions, so a domain sees the same world
 * whichever tier runs it.
 *
 * An artifact's code is evaluated once per source object (the kernel's Artifact, kept for
 * restarts): the bundle evaluates to a factory `(tick, aw, instance) => module`, and every instance
 * — the first, a restarted one, a second instance under another name — is a fresh call of that
 * factory, with the same deadline hooks `tick` and `aw` and a token of its own (bundle.ts says why
 * the hooks are shared).
 * Why: closures made at the same site of the same function share V8's feedback cells, so a
 * restarted driver runs the optimized code of its predecessor at once. Evaluated afresh, its code
 * was optimized again (70–120 ms of slow running after each restart, most of what a crash cost),
 * except when V8's eval cache happened to still hold the same source (it is aged out by GCs).
 * Two limits, both V8's: the first restart of a domain still re-optimizes (code optimized while a
 * closure was the only one of its site is specialized to it and not shared), and objects of a
 * class declared in a domain get a new hidden class per instance (each instance declares the
 * class anew), so code using them deoptimizes at each restart and, after a few, its property
 * accesses go megamorphic. Hot driver code therefore uses object literals and closures, whose
 * hidden classes are the same in every instance (see src/domains/nvme/core.ts).
 *
 * Why sharing the compartment and the factory between instances is safe:
 *  - all of a domain's module-level state (its `let`s, classes, the module object) is created
 *    inside the factory, so each call makes its own; the bundle wrapper is an anonymous
 *    strict-mode function expression, so no instance can name the factory (no self-reference,
 *    no `arguments.callee`, no `.caller`) — and it is hardened anyway;
 *  - what instances do share is the compartment's globalThis, which is hardened before any
 *    domain code runs and holds only powerless intrinsics (shared by every compartment after
 *    lockdown anyway), frozen host constructors and frozen per-compartment evaluators: nothing
 *    an instance can write, so two instances (or a dead one and its successor) have no channel.
 *    A dead instance's leftover continuations run in its own closures, and their checks pass
 *    its own token (the hooks refuse to run for a dead instance);
 *  - the deadline hooks are shared too, but what they act on is the token each check passes: an
 *    empty frozen object the kernel maps to the instance, so a domain that reads its factory's
 *    `arguments` (its bundle's top level can) holds only its own hooks and token, and with them
 *    can check nothing but its own deadline, as its code does anyway;
 *  - the cache holds the factory (and through it the compartment) only, never anything an
 *    instance made: a dead instance's objects are reachable only through what the kernel drops
 *    at termination. V8's feedback and optimized code refer weakly to the objects and maps they
 *    saw, so they do not keep a dead instance alive either (test/kernel/instances.test.ts checks
 *    all three).
 *
 * Invariant: a compartment's globalThis is hardened before the domain's code is evaluated, and
 * holds only powerless intrinsics plus an Atomics without `wait`/`waitAsync` (blocking would put
 * the thread beyond the reach of deadline checks), and no evaluator: its `eval`, `Function` and
 * `Compartment` throw an EvalError. Code made at run time is code the trusted build never saw, so
 * it would carry no deadline checks (`(0, eval)('for (;;);')` would hold the kernel's thread for
 * ever) and no signature. Under lockdown the constructors reachable from functions
 * (`(function () {}).constructor`, the async and generator ones) are inert already.
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

/**
 * A domain's `eval`, `Function` and `Compartment` (see the header): each refuses, called or
 * constructed, saying why. `prototype` is the real one's, so `f instanceof Function` and
 * `Function.prototype.call` mean in domain code what they mean anywhere.
 */
const noEvaluator = (name: string, prototype?: object): (() => never) => {
  const refuse = {
    [name]: function (): never {
      throw new EvalError(`${name} is not available to domain code: code made at run time has no deadline checks and no signature (build it into the domain instead)`);
    },
  }[name]!;
  if (prototype !== undefined) Object.defineProperty(refuse, 'prototype', { value: prototype });
  return harden(refuse);
};
const NO_EVALUATORS = harden({
  eval: noEvaluator('eval'),
  Function: noEvaluator('Function', Function.prototype),
  Compartment: noEvaluator('Compartment', Compartment.prototype),
});

/**
 * The hooks the trusted build compiles into a domain: deadline check and await guard. Each is given
 * the token of the instance whose code calls it; one pair serves every instance.
 */
export interface DeadlineHooks {
  tick: (instance: object) => number;
  aw: <T>(instance: object, v: T) => T;
}

/** The evaluated bundle: a fresh module instance per call. */
type DomainFactory = (tick: DeadlineHooks['tick'], aw: DeadlineHooks['aw'], instance: object) => { init?: unknown } | undefined;

interface Evaluated {
  /** The code it was evaluated from (a source object whose code changed is evaluated anew). */
  code: string;
  factory: DomainFactory;
}

/** Evaluated code per source object (for as long as the source is kept, e.g. for restarts). */
const evaluated = new WeakMap<object, Evaluated>();

/**
 * The factory of `source.code` in its own compartment: evaluated once per source object. The code
 * is named `redleaf-domain:<label>.js` (a sourceURL comment after it), so that stack traces, panics
 * and CPU profiles say which domain a frame is in: domain code has no file of its own.
 */
function evaluateOnce(source: { readonly code: string }, label: string): Evaluated {
  const hit = evaluated.get(source);
  if (hit !== undefined && hit.code === source.code) return hit;
  const compartment = new Compartment({
    globals: { TextEncoder, TextDecoder, Float32Array, Float64Array, Atomics: DOMAIN_ATOMICS, ...NO_EVALUATORS },
    __options__: true,
  });
  harden(compartment.globalThis);
  // The label is a domain's name; anything else (a line break would end the comment) becomes '_'.
  const url = `redleaf-domain:${label.replace(/[^\w.-]/g, '_')}.js`;
  const factory = harden(compartment.evaluate(`${source.code}\n//# sourceURL=${url}\n`) as DomainFactory);
  const ev: Evaluated = { code: source.code, factory };
  evaluated.set(source, ev);
  return ev;
}

/**
 * A new instance of the domain whose bundle is `source.code`, in the compartment its code was
 * evaluated in (see the header: one compartment and factory per source, fresh module state per
 * instance); returns the instance's `init` export. Its deadline checks call `hooks` with
 * `instance`. `label` names the code (evaluateOnce): the artifact's name, or the instance's in a
 * worker (which evaluates its own copy).
 */
export function instantiateDomain(source: { readonly code: string }, hooks: DeadlineHooks, instance: object, label: string): unknown {
  return evaluateOnce(source, label).factory(hooks.tick, hooks.aw, instance)?.init;
}

/**
 * Throws EINIT unless what init returned, `exported`, implements every method of interface
 * `iface` (the domain's export), or with `iface` null (it exports nothing) unless it is anything
 * but a Promise: an async init's rejection would reach no caller, and its promise, checked as an
 * export, was refused for lacking the interface's first method.
 */
export function checkExport(name: string, iface: string | null, exported: unknown): object | null {
  if (exported instanceof Promise) {
    const returns = iface === null ? 'return' : `return its ${iface} object itself`;
    throw new KernelError('EINIT', `domain ${name}: init returned a Promise (is it async?): it must ${returns}; start asynchronous work from init (sys tasks) instead`);
  }
  if (iface === null) return null;
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
