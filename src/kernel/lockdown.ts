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
  lockdown({
    errorTaming: 'unsafe',
    stackFiltering: 'verbose',
    overrideTaming: 'severe',
    consoleTaming: 'unsafe',
    domainTaming: 'unsafe',
    errorTrapping: 'none',
    unhandledRejectionTrapping: 'none',
    evalTaming: 'safe-eval',
  });
}

ensureLockdown();
