/**
 * Hardened JavaScript for the kernel process (trusted).
 *
 * Decision (ARCHITECTURE §1): SES `lockdown()` runs once in the whole kernel process, before any
 * domain is loaded, and each domain gets its own Compartment whose globalThis is frozen. Under
 * lockdown every intrinsic is frozen and `Function.prototype.constructor` is inert, so an object
 * the kernel hands a domain (a proxy, an RRef handle, an error) does not lead back to an
 * evaluator through its constructor chain. The alternative — lockdown in a dedicated realm that
 * meets the kernel only through primitives — would force every handle and proxy to be rebuilt in
 * that realm on every crossing; we measured the in-process choice with the call benchmark and the
 * escape suite instead.
 *
 * Options: errors keep their stacks and messages (errorTaming 'unsafe') so node:test still prints
 * expected/actual; SES installs no process-wide traps (errorTrapping/unhandledRejectionTrapping
 * 'none'): the kernel attributes faults itself.
 *
 * Also set here, once for the whole process, because domain code runs on this thread and a native
 * call is never preempted nor reaches a deadline check: V8 falls back to its linear-time regexp
 * engine when a backtracking match runs away, so a catastrophic pattern such as /(a+)+$/ on a
 * long non-matching input takes a millisecond or so instead of hanging the kernel (the test in
 * test/kernel/faults.test.ts took 14.5 s for 28 characters without it). Patterns the
 * linear engine cannot run (backreferences, lookaround) still backtrack; code that must run them
 * on untrusted input belongs in the worker tier, whose thread can be terminated.
 */
import { setFlagsFromString } from 'node:v8';
import 'ses';

let done = false;

export function ensureLockdown(): void {
  if (done) return;
  done = true;
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  const options = {
    errorTaming: 'unsafe',
    stackFiltering: 'verbose',
    overrideTaming: 'severe',
    consoleTaming: 'unsafe',
    domainTaming: 'unsafe',
    errorTrapping: 'none',
    unhandledRejectionTrapping: 'none',
    evalTaming: 'safe-eval',
  } as const;
  // lockdown() is these two steps; between them, after SES's repairs and before any code but this
  // runs, the prototypes a typed-array store depends on are frozen our way (freezeBySpec).
  repairIntrinsics(options);
  for (const proto of typedArrayStorePrototypes()) freezeBySpec(proto);
  hardenIntrinsics();
}

/**
 * Object.prototype, %TypedArray%.prototype and every concrete typed array's prototype: the objects
 * whose freezing by Object.freeze makes V8 store into every typed array (`a[i] = v`) through a
 * runtime call, ~50–90 ns instead of ~1 (measured on Node 20 by `lockdown-costs.js`; freezing any
 * one of them is enough, freezing Array.prototype is not needed). Which internal assumption of
 * V8's Object.freeze breaks there we did not find out; freezeBySpec does not break it.
 */
function typedArrayStorePrototypes(): object[] {
  const typedArrays = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array];
  return [Object.prototype, Object.getPrototypeOf(Int8Array.prototype) as object, ...typedArrays.map((c) => c.prototype)];
}

/**
 * Freezes `o` by the steps the specification gives Object.freeze (SetIntegrityLevel "frozen"):
 * no more extensions, then every own property non-configurable and, if it holds a value,
 * non-writable. The object ends exactly as Object.freeze leaves it (hardenIntrinsics then freezes
 * it again, a no-op, and walks it as any other), and typed-array stores stay on V8's fast path.
 * The price: redefining the typed-array prototypes' `constructor` turns V8's typed-array species
 * protector off (`%TypedArraySpeciesProtector()`), so `subarray` and `slice` of a typed array look
 * up its species, ~90 ns instead of ~40 (`lockdown-costs.js`); no hot path calls them per frame
 * or per block. Not applied to Array.prototype: frozen this way, its push and pop got ~7x slower,
 * and array element stores stayed slow.
 */
function freezeBySpec(o: object): void {
  Object.preventExtensions(o);
  for (const key of Reflect.ownKeys(o)) {
    const d = Reflect.getOwnPropertyDescriptor(o, key)!;
    Reflect.defineProperty(o, key, 'value' in d ? { configurable: false, writable: false } : { configurable: false });
  }
}

ensureLockdown();
