/**
 * The worker tier's channel between the kernel thread and one worker domain's thread (trusted;
 * both threads load this module).
 *
 * One SharedArrayBuffer holds a block of control words and two descriptor rings:
 *  - down (kernel -> worker): calls, and the answers to the domain's async calls out;
 *  - up (worker -> kernel): results, faults, logs, system calls and the domain's calls out (to
 *    its imports).
 * Each ring is single-producer single-consumer over fixed-size entries. Head and tail are
 * free-running Int32 counters changed only with Atomics by their one writer (the consumer moves
 * head, the producer moves tail); an entry is written completely before the tail store that
 * publishes it, and read completely before the head store that frees it, so the sequentially
 * consistent tail/head accesses order the plain entry accesses in both threads.
 *
 * Wakeups are the expensive part of a crossing (a notify to the kernel's Atomics.waitAsync posts a
 * task to its event loop), so a producer notifies only when the consumer may be waiting: the
 * worker when the kernel is not polling (Ctl.KernelPolling), the kernel when the worker waits for
 * calls (Ctl.Listening), either side when a full ring gets room. Each of these is a store-then-load pair on
 * both sides (flag, then ring word; ring word, then flag), which sequentially consistent Atomics
 * make safe: at least one side sees the other's store, so no wakeup is lost.
 *
 * An entry is [kind i32][id i32][aux i32][payload length i32][payload]. The payload is a list of
 * tagged values (primitives, strings, handles as slot + generation). A payload too big for an
 * entry travels over a MessagePort instead (length -1): the producer posts it before publishing
 * the entry and the consumer takes it with receiveMessageOnPort, so port order is ring order. The
 * kernel's answers to blocking upcalls, written into the up-ring entries they answer, have a port
 * of their own (WorkerBoot.answers): on the down ring's, an answer posted after a call the worker
 * has not read yet would be taken for that call's payload, and the call's for the answer.
 *
 * Stores into typed arrays go through DataView setters, as everywhere in the kernel (until
 * lockdown.ts froze the typed-array prototypes itself, `a[i] = v` took a ~50 ns slow path under
 * SES lockdown; both are ~1 ns now).
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { TypeRef } from '../build/idl.js';

/** Bytes per ring entry (16 of header); a power of two. */
export const ENTRY_BYTES = 512;
/** Entries per ring; a power of two. */
export const RING_ENTRIES = 64;
const HEADER = 16;
const INLINE_PAYLOAD = ENTRY_BYTES - HEADER;

/** Control words (Int32 indexes into the channel buffer). */
export const Ctl = {
  DownHead: 0,
  DownTail: 1,
  UpHead: 2,
  UpTail: 3,
  /** Sequence number (up-ring tail value) of the last blocking upcall the kernel answered. */
  UpAck: 4,
  /** 1 while the worker is blocked in Atomics.wait (idle, or waiting for the kernel). */
  Parked: 5,
  /** Bumped whenever the worker's runtime (not domain code) runs: the kernel's watchdog reads it. */
  Heartbeat: 6,
  /** 1 while the kernel polls the up ring: the worker then publishes without a (costly) notify. */
  KernelPolling: 7,
  /** 1 while the worker waits for calls (in Atomics.wait or Atomics.waitAsync): the kernel notifies. */
  Listening: 8,
} as const;
const CTL_BYTES = 64;

/** Entry kinds. */
export const Kind = {
  /** down: call method `aux` of the export; payload = arguments. */
  Call: 1,
  /** up: result of call `id`; payload = the value. */
  Result: 2,
  /** up, blocking: a result that moves RRefs; the worker waits until the kernel took them over. */
  ResultMove: 3,
  /** up: the domain faulted (aux = FaultKind) while serving call `id` (-1: none); payload = message. */
  Fault: 4,
  /** up, blocking: system call `aux` (Sys); payload = arguments; the kernel's answer replaces it. */
  Syscall: 5,
  /** up: a log line. */
  Log: 6,
  /** up: the worker runtime is loaded and starts evaluating the domain. */
  Booted: 7,
  /** up: init returned; the domain serves calls from now on. */
  Ready: 8,
  /** up: the domain could not be initialised; payload = message. */
  InitFailed: 9,
  /**
   * up, blocking: the domain calls a synchronous method of a capability it holds (an import, or an
   * interface reference it was given); payload = capability number, method index, arguments (an
   * interface reference as the number of a capability). The kernel's answer replaces it (aux =
   * OutcallStatus).
   */
  Outcall: 10,
  /**
   * up: the same for an async method; the answer comes back as OutcallDone with the same id.
   * Blocking when aux = OutcallTakes.RRefs (an argument is an RRef, moved or lent): the kernel
   * acknowledges once it has taken the arguments, so that, as in-thread, a moved handle is revoked
   * and a lent one read-only from the call on, not from whenever the kernel thread gets to it.
   */
  OutcallAsync: 11,
  /** down: the answer to OutcallAsync `id` (aux = OutcallStatus). */
  OutcallDone: 12,
  /** up: the worker no longer holds capability `id` (its stub was garbage-collected). */
  CapDrop: 13,
} as const;

/** OutcallAsync's aux: whether the worker waits until the kernel has taken its RRef arguments. */
export const OutcallTakes = { Values: 0, RRefs: 1 } as const;

export const FaultKind = { Panic: 1, Deadline: 2, BadResult: 3, BadArgument: 4 } as const;

/**
 * How an outcall ended. Ok: payload = the result (an RRef as a handle the caller now owns);
 * RpcError: payload = kind, domain, method, detail; Thrown: something else was thrown (a host
 * capability's own error), payload = its description.
 */
export const OutcallStatus = { Ok: 0, RpcError: 1, Thrown: 2 } as const;

/** System calls of a worker domain: every change to the slot table is made by the kernel thread. */
export const Sys = { Alloc: 1, Free: 2, Adopt: 3, Release: 4 } as const;

/** The kernel wakes the worker only when it waits for calls. */
export const workerMayWait = (ctl: Int32Array): boolean => Atomics.load(ctl, Ctl.Listening) === 1;
/** The worker wakes the kernel only when the kernel is not polling. */
export const kernelMayWait = (ctl: Int32Array): boolean => Atomics.load(ctl, Ctl.KernelPolling) === 0;

export function channelBytes(): number {
  return CTL_BYTES + 2 * RING_ENTRIES * ENTRY_BYTES;
}

/** One direction of the channel. */
export class Ring {
  private readonly base: number;
  constructor(
    readonly ctl: Int32Array,
    private readonly headWord: number,
    private readonly tailWord: number,
    index: 0 | 1,
  ) {
    this.base = CTL_BYTES + index * RING_ENTRIES * ENTRY_BYTES;
  }

  static down(ctl: Int32Array): Ring {
    return new Ring(ctl, Ctl.DownHead, Ctl.DownTail, 0);
  }

  static up(ctl: Int32Array): Ring {
    return new Ring(ctl, Ctl.UpHead, Ctl.UpTail, 1);
  }

  /** Producer: byte offset of the next free entry, or -1 when the ring is full. */
  reserve(): number {
    const t = Atomics.load(this.ctl, this.tailWord);
    if (((t - Atomics.load(this.ctl, this.headWord)) | 0) >= RING_ENTRIES) return -1;
    return this.base + (t & (RING_ENTRIES - 1)) * ENTRY_BYTES;
  }

  /** Producer: publish the reserved entry, waking the consumer if `wake` says it may wait; returns the new tail. */
  publish(wake: (ctl: Int32Array) => boolean): number {
    const t = (Atomics.add(this.ctl, this.tailWord, 1) + 1) | 0;
    if (wake(this.ctl)) Atomics.notify(this.ctl, this.tailWord);
    return t;
  }

  /** Consumer: byte offset of the oldest entry, or -1 when the ring is empty. */
  peek(): number {
    const h = Atomics.load(this.ctl, this.headWord);
    if (h === Atomics.load(this.ctl, this.tailWord)) return -1;
    return this.base + (h & (RING_ENTRIES - 1)) * ENTRY_BYTES;
  }

  /** Consumer: free the oldest entry; returns its sequence number (the tail value that published it). */
  pop(): number {
    const h = Atomics.add(this.ctl, this.headWord, 1);
    // A producer waits for room only when the ring was full.
    if (((Atomics.load(this.ctl, this.tailWord) - h) | 0) >= RING_ENTRIES) Atomics.notify(this.ctl, this.headWord);
    return (h + 1) | 0;
  }

  tail(): number {
    return Atomics.load(this.ctl, this.tailWord);
  }

  head(): number {
    return Atomics.load(this.ctl, this.headWord);
  }
}

/** Does `v` cross as a value of its own (what Writer.value takes: no objects, functions or symbols)? */
export const isPrimitive = (v: unknown): boolean => v === null || (typeof v !== 'object' && typeof v !== 'function' && typeof v !== 'symbol');

/** The interface a parameter or result of type `t` references (crossing as a capability's number), or null. */
export const ifaceOf = (t: TypeRef): string | null => (t.k === 'iface' ? t.name : t.k === 'nullable' ? ifaceOf(t.inner) : null);

/** A handle on the wire: slot number and generation. */
export class WireHandle {
  constructor(
    readonly slot: number,
    readonly gen: number,
  ) {}
}

const enum Tag {
  Undefined = 0,
  Null = 1,
  False = 2,
  True = 3,
  Number = 4,
  String = 5,
  BigInt = 6,
  Handle = 7,
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Encodes a payload into a private scratch buffer, then into an entry or onto the side channel. */
export class Writer {
  private buf = new Uint8Array(INLINE_PAYLOAD);
  private dv = new DataView(this.buf.buffer);
  private pos = 0;

  reset(): this {
    this.pos = 0;
    return this;
  }

  private room(n: number): number {
    if (this.pos + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
      bigger.set(this.buf.subarray(0, this.pos));
      this.buf = bigger;
      this.dv = new DataView(bigger.buffer);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private tag(t: Tag): void {
    this.dv.setUint8(this.room(1), t);
  }

  /** A primitive (the caller checked it is exchangeable). */
  value(v: unknown): this {
    switch (typeof v) {
      case 'undefined':
        this.tag(Tag.Undefined);
        break;
      case 'boolean':
        this.tag(v ? Tag.True : Tag.False);
        break;
      case 'number':
        this.tag(Tag.Number);
        this.dv.setFloat64(this.room(8), v, true);
        break;
      case 'string':
        this.text(Tag.String, v);
        break;
      case 'bigint':
        this.text(Tag.BigInt, v.toString());
        break;
      default:
        if (v !== null) throw new TypeError(`not a primitive: ${typeof v}`);
        this.tag(Tag.Null);
    }
    return this;
  }

  handle(slot: number, gen: number): this {
    this.tag(Tag.Handle);
    const at = this.room(8);
    this.dv.setUint32(at, slot, true);
    this.dv.setUint32(at + 4, gen, true);
    return this;
  }

  private text(t: Tag, s: string): void {
    this.tag(t);
    const max = s.length * 3;
    const at = this.room(4 + max);
    const { written } = utf8.encodeInto(s, this.buf.subarray(at + 4, at + 4 + max));
    this.dv.setUint32(at, written, true);
    this.pos = at + 4 + written;
  }

  /** Write entry `o` of the channel (`dv`/`u8` over its buffer) with this payload. */
  emit(dv: DataView, u8: Uint8Array, o: number, kind: number, id: number, aux: number, port: MessagePort): void {
    emitEntry(dv, u8, o, kind, id, aux, this.buf.subarray(0, this.pos), port);
  }

  /** A copy of the payload (for a call queued while the ring is full; see emitEntry). */
  take(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Write entry `o`: header, then the payload inline or, when it does not fit, over `port`. */
export function emitEntry(dv: DataView, u8: Uint8Array, o: number, kind: number, id: number, aux: number, payload: Uint8Array, port: MessagePort): void {
  dv.setInt32(o, kind, true);
  dv.setInt32(o + 4, id, true);
  dv.setInt32(o + 8, aux, true);
  if (payload.length <= INLINE_PAYLOAD) {
    u8.set(payload, o + HEADER);
    dv.setInt32(o + 12, payload.length, true);
  } else {
    port.postMessage(payload.slice());
    dv.setInt32(o + 12, -1, true);
  }
}

/** Decodes the payload of one entry (copied out first if it came over the side channel). */
export class Reader {
  private pos: number;
  private readonly end: number;
  private readonly dv: DataView;
  private readonly u8: Uint8Array;

  constructor(dv: DataView, u8: Uint8Array, o: number, port: MessagePort) {
    const n = dv.getInt32(o + 12, true);
    if (n >= 0) {
      this.dv = dv;
      this.u8 = u8;
      this.pos = o + HEADER;
      this.end = this.pos + n;
    } else {
      const m = receiveMessageOnPort(port);
      if (m === undefined || !(m.message instanceof Uint8Array)) throw new Error('worker channel: side-channel payload missing');
      const bytes = m.message;
      this.u8 = bytes;
      this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.pos = 0;
      this.end = bytes.length;
    }
  }

  static kind(dv: DataView, o: number): number {
    return dv.getInt32(o, true);
  }

  static id(dv: DataView, o: number): number {
    return dv.getInt32(o + 4, true);
  }

  static aux(dv: DataView, o: number): number {
    return dv.getInt32(o + 8, true);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** The next value: a primitive or a WireHandle. */
  next(): unknown {
    if (this.pos >= this.end) throw new Error('worker channel: payload shorter than expected');
    const t = this.dv.getUint8(this.pos++) as Tag;
    switch (t) {
      case Tag.Undefined:
        return undefined;
      case Tag.Null:
        return null;
      case Tag.False:
        return false;
      case Tag.True:
        return true;
      case Tag.Number: {
        const v = this.dv.getFloat64(this.pos, true);
        this.pos += 8;
        return v;
      }
      case Tag.String:
        return this.text();
      case Tag.BigInt:
        return BigInt(this.text());
      case Tag.Handle: {
        const h = new WireHandle(this.dv.getUint32(this.pos, true), this.dv.getUint32(this.pos + 4, true));
        this.pos += 8;
        return h;
      }
      default:
        throw new Error(`worker channel: bad value tag ${t as number}`);
    }
  }

  /** The next value, which must be a number. */
  number(): number {
    const v = this.next();
    if (typeof v !== 'number') throw new Error(`worker channel: expected a number, got ${typeof v}`);
    return v;
  }

  private text(): string {
    const n = this.dv.getUint32(this.pos, true);
    const start = this.pos + 4;
    this.pos = start + n;
    // TextDecoder refuses views of shared memory: copy the bytes out first.
    return fromUtf8.decode(this.u8.slice(start, start + n));
  }
}
