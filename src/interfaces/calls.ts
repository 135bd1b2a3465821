/**
 * Interfaces of the example domains dom_c (callee) and dom_d (caller), after RedLeaf's
 * dom_c/dom_d: the cross-domain call benchmark and the proxy tests use them.
 */
import type { Borrow, RRefArray, u8 } from '../runtime/types.js';

/** dom_c: trivial methods, one per kind of crossing. */
export interface Callee {
  noarg(): void;
  onearg(x: number): number;
  /** The buffer is moved in, its first byte incremented, and moved back. */
  rref(buf: RRefArray<u8>): RRefArray<u8>;
  /** Sum of the bytes of a borrowed buffer. */
  sum(buf: Borrow<RRefArray<u8>>): number;
  /**
   * Moves `kept` and `last` in and drops them; answers the sum of the bytes of `lent`. A call
   * with arguments taken before a bad one (a move, then a loan), for the proxy tests.
   */
  mixed(kept: RRefArray<u8>, lent: Borrow<RRefArray<u8>>, last: RRefArray<u8>): number;
  asyncEcho(x: number): Promise<number>;
  /** Calls served so far. */
  count(): number;
}

/** dom_d: runs `n` calls of one kind into its Callee import; returns elapsed milliseconds. */
export interface Caller {
  run(kind: string, n: number): number;
  runAsync(n: number): Promise<number>;
}
