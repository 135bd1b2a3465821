/**
 * `Sys`: the system-call interface a domain receives as the first argument of `init`.
 *
 * It is the domain's only authority besides the imports it was given: exchange-heap allocation
 * (owned by this domain, freed when it dies), tasks and timers (cancelled when it dies), time,
 * logging, explicit panic, and — for driver domains only — its device's registers and interrupts.
 */
import type { RRef, RRefArray, RRefBase, RRefDeque } from './types.js';

export type ElementKind = 'u8' | 'u16' | 'u32' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';

export interface Alloc {
  /** A zeroed byte buffer (RRefArray<u8>), aligned to `align` (power of two, <= 4096). */
  bytes(n: number, align?: number): RRefArray<number>;
  array(kind: ElementKind, count: number): RRefArray<number>;
  /** A zeroed layout struct declared in the interface folder, by name. */
  struct<T>(name: string): RRef<T>;
  deque<T extends RRefBase>(capacity: number): RRefDeque<T>;
}

/** A device's registers and interrupt line, handed to its driver domain only. */
export interface DeviceCap {
  /** BAR0 as 32-bit words (use Atomics for registers). */
  readonly bar0: Int32Array;
  /** Index of the WAKE word in bar0 (see the device bus conventions). */
  readonly wakeWord: number;
  /** Run `handler(vectorBits)` in this domain whenever the device raises interrupts. */
  onInterrupt(handler: (bits: number) => void): void;
  /**
   * Ring the device after doorbell writes: bump WAKE, and only if the device is parked notify it
   * and hand it this thread's CPU for a moment (at most 0.05 ms), so that polling right after
   * does not keep the woken device from running (src/devices/bus.ts: ringWake).
   */
  wake(): void;
}

export interface Sys {
  readonly name: string;
  /** How many times this domain was restarted before this instance started (0 for the first). */
  readonly restarts: number;
  readonly alloc: Alloc;
  /** Run `fn` as a task of this domain; a rejection is a panic of the domain. */
  spawn(fn: () => unknown): void;
  /**
   * Leave promise `p` unawaited: the kernel holds its end from now on, so its rejection is a panic
   * of this domain while it lives, and nothing after its death. The way to float a chain
   * (`sys.detach(p.then(a, b))`, not `void p.then(a, b)`): once this domain is dead its
   * continuations are stopped by a throw, which rejects whatever chain they are in — with nobody
   * left to handle that rejection unless the kernel holds it.
   */
  detach(p: Promise<unknown>): void;
  /** A delay above 2^31-1 ms (~24.8 days), Infinity included, is that longest one (src/kernel/timers.ts). */
  setTimeout(fn: () => void, ms: number): number;
  clearTimeout(id: number): void;
  setInterval(fn: () => void, ms: number): number;
  clearInterval(id: number): void;
  /** Resolve after the event loop turned (lets devices and other domains run). */
  yield(): Promise<void>;
  /** Milliseconds, high resolution, monotonic. */
  now(): number;
  log(...parts: (string | number | bigint | boolean | null | undefined)[]): void;
  panic(reason: string): never;
  /** The RpcError kind of `e` if the kernel made it ('callee-dead', 'panic', ...), else null. */
  rpcErrorKind(e: unknown): string | null;
  /** Present only for driver domains given a device. */
  readonly device?: DeviceCap;
  /** Configuration values the loader passed (primitives only). */
  readonly config: Readonly<Record<string, string | number | boolean>>;
}

/** A domain module's entry point. */
export type DomainInit<E = unknown> = (sys: Sys, ...imports: any[]) => E;
