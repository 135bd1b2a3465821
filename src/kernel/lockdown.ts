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
 */
import 'ses';

let done = false;

export function ensureLockdown(): void {
  if (done) return;
  done = true;
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
