/**
 * Interfaces and layouts of the kernel test domains (test/domains/*): the fault suite, the escape
 * suite and the proxy tests use them. Nothing outside the tests implements or imports these.
 */
import type { Borrow, FixedArray, Layout, RRef, RRefArray, RRefDeque, bool, u32, u64, u8 } from '../runtime/types.js';
import type { Callee } from './calls.js';

/** A request-like layout struct: scalars, a fixed array and an owned child buffer. */
export interface TestReq extends Layout {
  id: u32;
  lba: u64;
  ok: bool;
  tag: FixedArray<u8, 4>;
  data: RRefArray<u8> | null;
}

/** A host capability the tests pass in (`{ object }` import) to observe what a domain does. */
export interface Recorder {
  hit(tag: string): void;
}

/** test/domains/faulty: one method per way a domain can fault, plus borrow/timer/peer helpers. */
export interface Faulty {
  ok(x: number): number;
  throwSync(msg: string): number;
  rejectAsync(msg: string): Promise<number>;
  /** Hands sys.detach a promise that rejects with `msg` a moment later; answers 1 (then panics). */
  detachRejection(msg: string): number;
  /**
   * Throws a value that runs its own code when looked at (test/domains/faulty: hostile(how)), from
   * the call (`where` 0), as the rejection of its promise (1), or from a timer it arms (2).
   */
  throwHostile(how: number, where: number): Promise<number>;
  panic(reason: string): void;
  /** Moves a buffer into a deque, then reads it through the old handle. */
  useAfterMove(): number;
  /** Passes a revoked RRef to its Callee import. */
  passRevoked(): number;
  /** Passes a plain object where its Callee import expects an RRef. */
  passPlainObject(): number;
  /** Returns a plain object where an RRef is expected. */
  badResult(): RRefArray<u8>;
  /** Resolves with a string where a number is expected. */
  badResultAsync(): Promise<number>;
  /**
   * Returns a promise that runs its own code when the kernel subscribes to it and throws:
   * how 0, an own `constructor` getter (read by `then` for the species); how 1, a Proxy in its
   * prototype chain (walked by `instanceof`).
   */
  trapPromise(how: number): Promise<number>;
  /** Loops forever; with catchDeadline, every iteration catches whatever is thrown at it. */
  spin(catchDeadline: boolean): number;
  /**
   * Recurses until the stack runs out, each level pushing a fresh buffer onto a deque, popping
   * one of `pad` levels and moving between deques, so that the overflow lands in kernel code as
   * often as in its own; catches the RangeError and returns depth * 1e6 + the buffers its two
   * deques hold (it keeps the deques).
   */
  deepKernelCalls(pad: number): number;
  /** Constructs a tree of objects 2^depth wide, recursing only through `new` (no call, no loop). */
  constructTree(depth: number): number;
  /** Tests `/(a+)+$/` against n a's and a b: 2^n backtracking steps for a backtracking engine. */
  backtrack(n: number): boolean;
  /** Allocates `bytes` more and keeps it; returns how many allocations it holds. */
  hold(bytes: number): number;
  /** Allocates `mib` MiB more of its private heap, in 64 KiB arrays, and keeps it; returns the MiB it holds. */
  hoard(mib: number): number;
  /** sys.setTimeout(rec.hit('timer'), ms). */
  armTimer(ms: number): number;
  /** sys.setInterval(rec.hit('interval'), ms). */
  armInterval(ms: number): number;
  /** A call that answers only when resolvePending is called. */
  pending(): Promise<number>;
  resolvePending(v: number): number;
  /** Queues continuations (then, await, spawn) that try to reach dom_c, the kernel and rec. */
  queueWork(): number;
  /**
   * Leaves unawaited a chain on `peer.pending()` whose continuation loops long enough to meet a
   * deadline check (so it is stopped by a throw if this domain is dead by then): handed to
   * sys.detach (`handOver`), or dropped.
   */
  floatOn(peer: Faulty, handOver: boolean): number;
  /** Keeps the borrowed buffer (and the call) until releaseBorrow. */
  holdBorrow(buf: Borrow<RRefArray<u8>>): Promise<number>;
  /** First byte of the held borrowed buffer. */
  peekBorrow(): number;
  releaseBorrow(): number;
  /** Allocates `bytes` (first byte 42), lends it to peer.holdBorrow and answers with its result. */
  lendTo(peer: Faulty, bytes: number): Promise<number>;
  callPeer(peer: Faulty, x: number): number;
  self(): Faulty;
  /** Tries to write a borrowed buffer. */
  writeBorrowed(buf: Borrow<RRefArray<u8>>): number;
  /** Moves a request in, sets ok, increments data[0], moves it back. */
  echoReq(req: RRef<TestReq>): RRef<TestReq>;
  makeReq(id: number): RRef<TestReq>;
  /** Moves `buf` in and keeps it (never returns it). */
  keep(buf: RRefArray<u8>): number;
}

/** test/domains/escapee: each attempt returns 'blocked: <error>' or 'ESCAPED'. */
export interface Probe {
  attempt(name: string): string;
  attemptAsync(name: string): Promise<string>;
  /** Keeps the borrowed handle past the call (for the 'stale-borrow' attempt). */
  stash(buf: Borrow<RRefArray<u8>>): number;
  /** Throws an object that looks like an RpcError. */
  throwLookalike(): number;
}

/**
 * test/domains/wprobe: the worker-tier tests place it in a worker (test/kernel/worker-tier.test.ts).
 * Every method returns a Promise, so an in-thread domain may import it from a worker domain
 * (test/domains/wrelay does); some are plain functions that throw or loop synchronously.
 */
export interface WorkerProbe {
  echo(s: string): Promise<string>;
  /** `${a + 1}|${b * 2n}|${!flag}|${typeof nothing}`. */
  mix(a: number, b: bigint, flag: boolean, nothing: null): Promise<string>;
  /** A value of sys.config (String(undefined) when absent). */
  config(key: string): Promise<string>;
  /** sys.log(msg) */
  log(msg: string): Promise<number>;
  /** A buffer allocated in the worker, every byte `v`, moved out. */
  fill(n: number, v: number): Promise<RRefArray<u8>>;
  /** Increments byte 0 of a buffer moved in, and moves it back. */
  bump(buf: RRefArray<u8>): Promise<RRefArray<u8>>;
  /** Sum of a borrowed buffer, answered after `ms` (the borrow lasts until then). */
  sumLater(buf: Borrow<RRefArray<u8>>, ms: number): Promise<number>;
  /** Moves a request in, sets ok, increments data[0] (if any), moves it back with its child. */
  echoReq(req: RRef<TestReq>): Promise<RRef<TestReq>>;
  /** A request built in the worker: id, lba = id * 2, a child buffer of `bytes` bytes (first byte 7). */
  makeReq(id: number, bytes: number): Promise<RRef<TestReq>>;
  /** Pushes `n` buffers (byte 0 = index) into a new deque, pops the first back out, returns the deque. */
  deque(n: number): Promise<RRefDeque<RRefArray<u8>>>;
  /** Allocates `bytes` and keeps it; returns how many allocations it holds. */
  hold(bytes: number): Promise<number>;
  /** Moves `buf` in and keeps it. */
  keep(buf: RRefArray<u8>): Promise<number>;
  /** `n` rounds of busy work; answers `${start} ${end} ${result}` with start/end from sys.now(). */
  crunch(n: number): Promise<string>;
  throwSync(msg: string): Promise<number>;
  rejectAsync(msg: string): Promise<number>;
  /** Hands sys.detach a promise that rejects with `msg` a moment later; answers 1 (then panics). */
  detachRejection(msg: string): Promise<number>;
  panic(reason: string): Promise<number>;
  /** Loops forever; with catchDeadline, every iteration catches whatever is thrown at it. */
  spin(catchDeadline: boolean): Promise<number>;
  /** A regular expression with catastrophic backtracking on `n` characters (and a backreference, so no linear-time fallback): native code, no deadline checks. */
  regexBomb(n: number): Promise<number>;
  /** Grows the domain's own JS heap by `mb` MiB and keeps it. */
  grow(mb: number): Promise<number>;
  /** Resolves with a string where a number is expected. */
  badResult(): Promise<number>;
  /** Tries to move out a buffer it was only lent. */
  returnBorrowed(buf: Borrow<RRefArray<u8>>): Promise<RRefArray<u8>>;
  /** Pushes a buffer into a deque, then reads it through the old handle. */
  useAfterMove(): Promise<number>;
  /** One escape attempt ('process', 'function', 'handle-constructor', 'atomics-wait'): 'blocked: ...' or 'ESCAPED'. */
  attempt(name: string): Promise<string>;
}

/**
 * test/domains/wcaller: a domain calling its Callee import (dom_c) in every way an argument can
 * go right or wrong; the worker-tier tests place it in a worker, so each is a call out.
 */
export interface CallerProbe {
  /** Lends a buffer of `n` bytes, each `v`, to the import's sum; returns the sum (-1 if the buffer was not the caller's afterwards). */
  lendSum(n: number, v: number): number;
  /** Moves one buffer through the import's rref `k` times; returns its first byte, then drops it. */
  bounce(k: number): number;
  /** onearg(x) on the import, as a string; its RpcError's kind if it fails. */
  oneargOrKind(x: number): string;
  /** Lends a buffer the caller was itself lent onward to the import's sum. */
  lendOnward(buf: Borrow<RRefArray<u8>>): number;
  /** Moves a buffer to the import, then passes the revoked handle again. */
  passRevoked(): number;
  /** Passes a plain object where the import expects an RRef. */
  passPlainObject(): number;
  /** asyncEcho(x) on the import, awaited. */
  echoLater(x: number): Promise<number>;
  /** peer.onearg(x), as a string: a call on an interface reference the domain was given. */
  viaPeer(peer: Callee, x: number): string;
  /** Keeps `peer` for callKept. */
  keep(peer: Callee): number;
  /** onearg(x) on the kept peer, as a string, or its RpcError's kind. */
  callKept(x: number): string;
  /** Passes `peer` on: other.viaPeer(peer, x). */
  forward(other: CallerProbe, peer: Callee, x: number): string;
  /** Its Callee import, handed out. */
  handOut(): Callee;
  /** An object of its own, handed out as a Callee. */
  handOutOwn(): Callee;
  /** Allocates and drops about `mb` MiB of its own JS objects (garbage collections follow). */
  churn(mb: number): number;
}
