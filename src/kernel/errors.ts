/**
 * RpcError: the one typed failure of a cross-domain call (trusted).
 *
 * Only the kernel can make one: the constructor demands a module-private token, so a domain that
 * reaches the class through `err.constructor` still cannot forge an error, and `isRpcError`
 * recognises exactly the errors the kernel made (a WeakSet, not a brand a domain could copy).
 */
import './lockdown.js';
import { types } from 'node:util';

const TOKEN = Symbol('rpc-error');
const genuine = new WeakSet<object>();

export type RpcErrorKind =
  /** The callee was dead before or during the call. */
  | 'callee-dead'
  /** The callee panicked while serving this call (it is now dead). */
  | 'panic'
  /** An argument or result was not of the interface's type (the offender panicked). */
  | 'bad-argument'
  /** The callee overran its deadline (it is now dead). */
  | 'timeout'
  /** The calling domain itself is dead (a continuation of a terminated domain). */
  | 'caller-dead';

export class RpcError extends Error {
  readonly kind: RpcErrorKind;
  /** Name of the domain the call went to. */
  readonly domain: string;
  readonly method: string;
  /** What went wrong, without the kind, domain and method (the message says all four). */
  readonly detail: string;
  constructor(token: symbol, kind: RpcErrorKind, domain: string, method: string, detail: string) {
    if (token !== TOKEN) throw new TypeError('RpcError is created by the kernel only');
    super(`${kind}: call ${domain}.${method} failed: ${detail}`);
    this.name = 'RpcError';
    this.kind = kind;
    this.domain = domain;
    this.method = method;
    this.detail = detail;
    genuine.add(this);
    Object.freeze(this);
  }
}
harden(RpcError);

export function makeRpcError(kind: RpcErrorKind, domain: string, method: string, detail: string): RpcError {
  return new RpcError(TOKEN, kind, domain, method, detail);
}

export function isRpcError(e: unknown): e is RpcError {
  return typeof e === 'object' && e !== null && genuine.has(e);
}

/** The method an RpcError names when it stopped a dead domain's own code (a deadline check or await guard), not a call. */
export const STOPPED_RUNNING = '(running)';

/**
 * A dead domain's own leftover: a continuation of it that ran after its death and was stopped
 * (at a deadline check or await guard, or refused by the kernel: 'caller-dead'). Such a rejection
 * ends a chain only that dead domain held, so it concerns nobody alive.
 */
export function isDeadDomainLeftover(e: unknown): boolean {
  return isRpcError(e) && (e.kind === 'caller-dead' || e.method === STOPPED_RUNNING);
}

export { KernelError } from './kernel-error.js';

/**
 * `s` as text for a console or a log: a domain's words (its log lines, what it threw, the strings
 * of its artifact's manifest) may hold line breaks and terminal escapes, which would let it forge
 * the lines of other domains or drive the operator's terminal; every control character is shown
 * as \uXXXX instead.
 */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * What a thrown value says, read without running any of its thrower's code. A domain may throw an
 * object whose `toString` throws, an Error whose `message` is a getter that never returns, or a
 * Proxy whose traps run at `instanceof`; the kernel describes every fault, often after the domain
 * is dead, and must neither run its code then nor let what that code throws escape into the
 * kernel (or, as the caller's error, leak the domain's object to the caller). So: a primitive is
 * printed; a Proxy is named, not inspected; otherwise a `message` of the value's own that is a
 * data property holding a string (what `new Error(msg)` makes), or else the kind of value it is.
 * What the domain wrote is returned printable: every fault message, log and error quoting it is.
 */
export function describeThrown(e: unknown): string {
  if (e === null || (typeof e !== 'object' && typeof e !== 'function')) return printable(String(e));
  if (types.isProxy(e)) return `a thrown Proxy (not looked into)`;
  const own = Object.getOwnPropertyDescriptor(e, 'message');
  if (own !== undefined && typeof own.value === 'string') return printable(own.value);
  return types.isNativeError(e) ? 'an Error without a message of its own' : `a thrown ${typeof e} that is not an Error`;
}
