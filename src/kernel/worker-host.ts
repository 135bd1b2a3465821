/**
 * The worker tier, worker side (trusted; the entry module of a worker domain's thread): lockdown,
 * then — once the kernel sends the domain this thread is to run, which may be long after it
 * started (worker-pool.ts) — a handle kit over the shared exchange heap, the domain's compartment,
 * its `sys`, stubs of the capabilities it holds (its imports and the interface references it is
 * given: calls out through the kernel thread), and the loop that serves calls from the down ring
 * (see worker-tier.ts for the protocol and the ownership rules, worker-ring.ts for the channel).
 *
 * Invariants:
 *  - this thread never writes the slot table: the heap view below forwards every change to the
 *    kernel thread as a blocking system call, and reads the shared columns to check handles;
 *  - after the first fault the domain is dead here too: no more calls are dispatched, its timers
 *    are cancelled, every deadline check and await guard throws, and `sys` refuses service (the
 *    kernel terminates the thread right after);
 *  - the serve loop parks in Atomics.wait only when nothing of the domain is pending (no timers,
 *    async calls, async calls out, yields or tasks, and the microtask queue drained); otherwise it
 *    waits with Atomics.waitAsync so the domain's timers and continuations keep running;
 *  - a capability's stub is the only way the domain names it: a stub's number goes to the kernel
 *    only in the calls out, arguments and results the domain makes with the stub itself, and once
 *    the stub is collected the kernel is told (Kind.CapDrop), after everything that named it.
 */
import './lockdown.js';
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { FREE, HeapError, TypeKind, TypeTable, type TypeInfo } from './heap.js';
import { createHandleKit, type HandleHeap, type HandleKit, type ScalarKind } from './rref.js';
import { STOPPED_RUNNING, describeThrown, isRpcError, makeRpcError, type RpcErrorKind } from './errors.js';
import { TICK_BUDGET, checkExport, instantiateDomain } from './isolation.js';
import { Ctl, FaultKind, Kind, OutcallStatus, OutcallTakes, Reader, Ring, Sys, WireHandle, Writer, ifaceOf, isPrimitive, kernelMayWait } from './worker-ring.js';
import { primOk, type WorkerBoot } from './worker-tier.js';
import { READY } from './worker-pool.js';
import { timerDelay } from './timers.js';
import type { MethodModel, TypeRef } from '../build/idl.js';
import { LAYOUTS, SIGNATURES } from '../gen/idl.js';

/** How long an idle worker spins on the down ring before it parks (ms). */
const SPIN_MS = 0.05;
/** The serve loop gives the event loop a turn at least this often while calls keep coming (ms). */
const MACROTASK_EVERY_MS = 5;
/** Period of the runtime's heartbeat: refreshes the run clock and tells the watchdog we are alive. */
const HEARTBEAT_MS = 5;

/**
 * The domain this thread is to run: its first message. The thread may have started long before,
 * as a warm thread of the kernel's pool (worker-pool.ts), with everything above already done.
 */
const boot = await new Promise<WorkerBoot>((resolve) => {
  parentPort!.once('message', resolve);
  parentPort!.postMessage(READY);
});
const ctl = new Int32Array(boot.channel);
const dv = new DataView(boot.channel);
const u8 = new Uint8Array(boot.channel);
const down = Ring.down(ctl);
const up = Ring.up(ctl);
const port = boot.port;
const me = boot.id;
const promiseThen = Promise.prototype.then;

/** The kernel's clock (its performance.now()), so sys.now() reads the same in both tiers. */
const clockShift = performance.timeOrigin - boot.clockOrigin;
const now = (): number => performance.now() + clockShift;

// ---- upcalls ------------------------------------------------------------------------------------

const out = new Writer();

/** Spin up to SPIN_MS while `waiting()` holds; true if it stopped holding (what we waited for came). */
function spinWhile(waiting: () => boolean): boolean {
  const until = performance.now() + SPIN_MS;
  for (let i = 1; waiting(); i++) {
    if ((i & 63) === 0 && performance.now() > until) return false;
  }
  return true;
}

/** Post an entry on the up ring; a blocking one waits for (and returns) the kernel's answer. */
function upcall(kind: number, id: number, aux: number, w: Writer, blocking: boolean): { status: number; r: Reader } | null {
  const o = post(kind, id, aux, w, blocking);
  if (!blocking) return null;
  // The kernel wrote its answer into our entry; we are its only producer, so it is still there.
  return { status: Reader.aux(dv, o), r: new Reader(dv, u8, o, boot.answers) };
}

/** Post an entry on the up ring, and with `ack` wait until the kernel has acknowledged it: its offset. */
function post(kind: number, id: number, aux: number, w: Writer, ack: boolean): number {
  let o: number;
  while ((o = up.reserve()) < 0) park(Ctl.UpHead, up.head(), 50);
  w.emit(dv, u8, o, kind, id, aux, port);
  const seq = up.publish(kernelMayWait);
  if (!ack) return o;
  // The kernel answers within its poll window when it is polling: spin briefly before parking.
  spinWhile(() => Atomics.load(ctl, Ctl.UpAck) !== seq);
  let a: number;
  while ((a = Atomics.load(ctl, Ctl.UpAck)) !== seq) park(Ctl.UpAck, a);
  return o;
}

/** Block until ctl[word] !== value (or the timeout), marked as parked for the watchdog. */
function park(word: number, value: number, timeoutMs?: number): void {
  Atomics.store(ctl, Ctl.Parked, 1);
  Atomics.wait(ctl, word, value, timeoutMs);
  Atomics.store(ctl, Ctl.Parked, 0);
}

function syscall(op: number, ...args: number[]): Reader {
  out.reset();
  for (const a of args) out.value(a);
  const { status, r } = upcall(Kind.Syscall, 0, op, out, true)!;
  if (status !== 0) throw new HeapError('EINVAL', String(r.next()));
  return r;
}

// ---- the exchange heap as this thread sees it -----------------------------------------------------

/**
 * What createHandleKit needs of an ExchangeHeap (HandleHeap): the shared slot-table columns
 * (read here) and the operations that change it (each a system call to the kernel thread). Type
 * ids are registered in the kernel's order and checked against it (boot.typeIds); the per-type
 * tables (a TypeTable) are this thread's own copy, filled in the same order.
 */
class SharedHeapView implements HandleHeap {
  readonly phys = boot.phys;
  readonly u8 = new Uint8Array(boot.phys);
  readonly dv = new DataView(boot.phys);
  readonly maxSlots = boot.maxSlots;
  readonly owner = new Int32Array(boot.slots.owner);
  readonly gen = new Uint32Array(boot.slots.gen);
  readonly borrows = new Int32Array(boot.slots.borrows);
  readonly type = new Int32Array(boot.slots.type);
  readonly off = new Uint32Array(boot.slots.off);
  readonly len = new Uint32Array(boot.slots.len);
  readonly rawLen = new Uint32Array(boot.slots.rawLen);
  readonly parent = new Int32Array(boot.slots.parent);
  private readonly typeTable = new TypeTable();
  readonly hasChildren = this.typeTable.hasChildren;

  registerType(name: string, kind: TypeKind, childOffsets: readonly number[] = []): TypeInfo {
    return this.typeTable.register(name, kind, childOffsets);
  }

  typeInfo(id: number): TypeInfo {
    return this.typeTable.info(id);
  }

  alloc(_owner: number, bytes: number, typeId: number, align = 8): number {
    return syscall(Sys.Alloc, bytes, typeId, align).number();
  }

  free(slot: number): void {
    syscall(Sys.Free, slot);
  }

  adopt(parentSlot: number, child: number): void {
    syscall(Sys.Adopt, parentSlot, child);
  }

  release(child: number): number {
    return syscall(Sys.Release, child).number();
  }

  transfer(child: number, to: number): void {
    // Two system calls (the kernel thread alone writes the slot table), with the same effect
    // (the kernel's release passes an entrusted holder's mark on, as transfer's `heir` does).
    this.release(child);
    this.adopt(to, child);
  }

  /** Marks are the kernel's (its release passes them on, see transfer): none to read here. */
  heirAbove(): number {
    return -1;
  }

  validChild(parentSlot: number, child: number): boolean {
    return child >= 0 && child < this.maxSlots && this.owner[child] !== FREE && this.parent[child] === parentSlot;
  }

  move(): number {
    throw new HeapError('EINVAL', 'a worker domain moves RRefs only through calls');
  }

  adoptFlat(): void {
    throw new HeapError('EINVAL', 'only the kernel thread appends roots by slot (HandleKit.appendRoots)');
  }
}

// ---- domain state ---------------------------------------------------------------------------------

let dead = false;
let deathKind = 0;
/** Start of the current run of domain code (deadline checks measure from here). */
let runStart = now();
/** The call whose synchronous part is running, or -1. */
let currentCall = -1;
/** While a result is being checked: its call (an ownership violation then is a bad result). */
let resultOf = -1;
/** Timers, intervals, yields, async calls and async tasks of the domain not yet finished. */
let outstanding = 0;
const timers = new Map<number, ReturnType<typeof setTimeout>>();

/** A new run of domain code begins (a call, a timer, a task): its deadline clock restarts, and the watchdog sees progress. */
function newRun(): void {
  runStart = now();
  Atomics.add(ctl, Ctl.Heartbeat, 1);
}

const deadError = (): Error =>
  makeRpcError(deathKind === FaultKind.Deadline ? 'timeout' : 'callee-dead', boot.name, STOPPED_RUNNING, `domain ${boot.name} is dead`);

/** The domain faulted: it is dead from now on; the kernel hears it once and terminates us. */
function fault(kind: number, message: string, id: number): void {
  if (dead) return;
  dead = true;
  deathKind = kind;
  for (const t of timers.values()) clearTimeout(t);
  timers.clear();
  upcall(Kind.Fault, id, kind, out.reset().value(message), false);
}

// ---- death during start-up ------------------------------------------------------------------------

/** The kernel was told how the start-up ended: init returned (Kind.Ready) or failed (Kind.InitFailed). */
let startTold = false;
/** The uncaught exception or rejection the thread is dying of, if any: the monitor leaves Node's handling of it as it is. */
let dyingOf: { e: unknown } | null = null;
process.on('uncaughtExceptionMonitor', (e) => (dyingOf = { e }));
/*
 * A thread that dies before its domain is ready says so on the up ring, as a fault: the kernel may
 * be blocked in Atomics.wait for it (a synchronous load, WorkerDomain.start), where the Worker's
 * 'error' and 'exit' events cannot reach it, and would otherwise wait out the whole boot timeout
 * or init deadline. 'exit' runs for an uncaught exception or rejection and for process.exit();
 * not for a thread killed by its resource limits or by Worker.terminate, where no JavaScript runs
 * (see WorkerDomain.start). Once the kernel was told how the start-up ended it no longer blocks
 * on this thread, and hears of its death from the Worker's events.
 */
process.once('exit', (code) => {
  if (startTold) return;
  const cause = dyingOf === null ? 'process.exit() or an empty event loop' : describeThrown(dyingOf.e);
  fault(FaultKind.Panic, `its worker thread exited (code ${code}) before init returned: ${cause}`, -1);
});

const kit: HandleKit<SharedHeapView> = createHandleKit(new SharedHeapView(), (_holder, err) =>
  fault(resultOf >= 0 ? FaultKind.BadResult : FaultKind.Panic, err.message, resultOf >= 0 ? resultOf : currentCall),
);
for (const l of LAYOUTS) kit.registerLayout(l);

/** Run domain code from a timer or task: a new run; a throw or rejection is a panic. */
function runDomain(fn: () => unknown, done?: () => void): void {
  if (dead) return;
  newRun();
  let r: unknown;
  try {
    r = fn();
  } catch (e) {
    done?.();
    fault(FaultKind.Panic, describeThrown(e), -1);
    return;
  }
  if (r instanceof Promise) {
    Reflect.apply(promiseThen, r, [() => done?.(), (e: unknown) => (done?.(), fault(FaultKind.Panic, describeThrown(e), -1))]);
  } else done?.();
}

/** Sys.detach: the domain's promise `p` ends here, a rejection its panic. (Unlike a task, not outstanding work: p settles through work that is.) */
function detach(p: Promise<unknown>): void {
  if (p instanceof Promise) Reflect.apply(promiseThen, p, [undefined, (e: unknown) => fault(FaultKind.Panic, describeThrown(e), -1)]);
}

function makeSys(): object {
  const live = (): void => {
    if (dead) throw deadError();
  };
  let nextTimer = 1;
  const arm = (fn: () => void, ms: number, repeat: boolean): number => {
    live();
    const id = nextTimer++;
    outstanding++;
    const fire = (): void => {
      if (!repeat) {
        timers.delete(id);
        outstanding--;
      }
      runDomain(fn);
    };
    timers.set(id, repeat ? setInterval(fire, timerDelay(ms)) : setTimeout(fire, timerDelay(ms)));
    return id;
  };
  const clear = (id: number): void => {
    const t = timers.get(id);
    if (t === undefined) return;
    clearTimeout(t);
    timers.delete(id);
    outstanding--;
  };
  const alloc = harden({
    bytes: (n: number, align?: number) => (live(), kit.allocBytes(me, n, align)),
    array: (kind: ScalarKind, count: number) => (live(), kit.allocArray(me, kind, count)),
    struct: (name: string) => (live(), kit.allocStruct(me, name)),
    deque: (capacity: number) => (live(), kit.allocDeque(me, capacity)),
  });
  return harden({
    name: boot.name,
    restarts: boot.restarts,
    alloc,
    config: harden({ ...boot.config }),
    spawn: (fn: () => unknown) => {
      live();
      outstanding++;
      queueMicrotask(() => runDomain(fn, () => outstanding--));
    },
    detach: (p: Promise<unknown>) => {
      live();
      detach(p);
    },
    setTimeout: (fn: () => void, ms: number) => arm(fn, ms, false),
    clearTimeout: clear,
    setInterval: (fn: () => void, ms: number) => arm(fn, ms, true),
    clearInterval: clear,
    yield: () => {
      live();
      outstanding++;
      return new Promise<void>((resolve) =>
        setImmediate(() => {
          outstanding--;
          resolve();
        }),
      );
    },
    now,
    log: (...parts: unknown[]) => {
      live();
      upcall(Kind.Log, 0, 0, out.reset().value(parts.map((p) => String(p)).join(' ')), false);
    },
    panic: (reason: string) => {
      const err = new Error(`panic: ${String(reason)}`);
      fault(FaultKind.Panic, err.message, currentCall);
      throw err;
    },
    rpcErrorKind: (e: unknown) => (isRpcError(e) ? e.kind : null),
  });
}

// The deadline hooks (isolation.ts): a worker runs one instance, so they need not look its token up.
const tick = (_instance: object): number => {
  if (dead) throw deadError();
  if (now() - runStart > boot.deadlineMs) {
    fault(FaultKind.Deadline, `deadline of ${boot.deadlineMs} ms exceeded`, currentCall);
    throw deadError();
  }
  return TICK_BUDGET;
};
const aw = <T>(_instance: object, v: T): T => {
  if (dead) throw deadError();
  return v;
};

// ---- calls in: arguments and results ----------------------------------------------------------------

const sigs: readonly MethodModel[] = boot.exports === null ? [] : SIGNATURES[boot.exports]!;
let target: Record<string, (...args: unknown[]) => unknown> = {};

/** The type id a handle of IDL type `t` must have. */
function typeIdOf(t: TypeRef): number {
  switch (t.k) {
    case 'array':
      return kit.arrayType(t.elem);
    case 'deque':
      return kit.dequeType;
    case 'rref':
      return kit.layoutType(t.layout)!;
    default:
      throw new Error(`no type id for ${t.k}`);
  }
}

/**
 * An argument as the domain sees it: RRefs become handles of this domain (read-only if lent), an
 * interface reference a stub of the capability the kernel made for it.
 */
function argIn(t: TypeRef, v: unknown, lent: object[]): unknown {
  if (t.k === 'nullable') return v === null ? null : argIn(t.inner, v, lent);
  if (t.k === 'iface') return capStub(v as number, t.name);
  if (!(v instanceof WireHandle)) return v;
  const h = kit.mint(v.slot, me, t.k === 'borrow');
  if (t.k === 'borrow') lent.push(h);
  return h;
}

/** Check the domain's result and post it; RRefs make it a blocking upcall (see worker-tier.ts). */
function answer(id: number, m: MethodModel, v: unknown): void {
  if (dead) return;
  out.reset();
  let moves = false;
  resultOf = id;
  try {
    const t = m.ret.k === 'nullable' ? (v === null ? null : m.ret.inner) : m.ret;
    if (t === null) {
      out.value(null);
    } else if (t.k === 'prim') {
      if (!primOk(t.name, v)) {
        fault(FaultKind.BadResult, `must be ${t.name}, got ${v === null ? 'null' : typeof v}`, id);
        return;
      }
      out.value(v);
    } else if (t.k === 'iface') {
      const cap = capOf(v);
      if (cap === undefined) {
        fault(FaultKind.BadResult, `must be an interface reference to ${t.name} the domain was given (a worker domain cannot hand out objects of its own)`, id);
        return;
      }
      out.value(cap);
    } else {
      const want = typeIdOf(t);
      if (!kit.isHandle(v) || kit.heap.type[kit.slotOf(v as object)] !== want) {
        fault(FaultKind.BadResult, `must be an RRef of type ${kit.heap.typeInfo(want).name}`, id);
        return;
      }
      const s = kit.checkMovable(v as object, me); // an ownership violation here faults as a bad result
      out.handle(s, kit.heap.gen[s]!);
      moves = true;
    }
  } catch (e) {
    fault(FaultKind.BadResult, describeThrown(e), id);
    return;
  } finally {
    resultOf = -1;
  }
  upcall(moves ? Kind.ResultMove : Kind.Result, id, 0, out, moves);
}

// ---- calls out: the capabilities the domain holds ------------------------------------------------

/**
 * The interface references this domain holds (its imports, and those it was given) are
 * capabilities the kernel keeps, by number; the domain sees a stub per capability. A stub that is
 * collected is dropped on the kernel side too (Kind.CapDrop).
 */
const capNumbers = new WeakMap<object, number>();
const collected = new FinalizationRegistry<number>((cap) => {
  if (!dead) upcall(Kind.CapDrop, cap, 0, out.reset(), false);
});

/** The domain's view of capability `cap` (interface `iface`): one function per method. */
function capStub(cap: number, iface: string): object {
  const stub: Record<string, (...args: unknown[]) => unknown> = {};
  SIGNATURES[iface]!.forEach((m, methodIndex) => {
    stub[m.name] = (...args: unknown[]) => callOut(iface, cap, methodIndex, m, args);
  });
  harden(stub);
  capNumbers.set(stub, cap);
  collected.register(stub, cap);
  return stub;
}

/** The capability number of a stub, or undefined for anything else. */
function capOf(v: unknown): number | undefined {
  return typeof v === 'object' && v !== null ? capNumbers.get(v) : undefined;
}

/** Async calls out waiting for their OutcallDone, by id. */
const outcalls = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void; m: MethodModel }>();
let nextOutcall = 1;

/**
 * Call method `m` of an import: a synchronous method blocks this thread until the kernel thread
 * has made the call and written its answer (so the domain gets a value, as in-thread); an async
 * one is answered later on the down ring (see worker-tier.ts). RRefs go as slot + the generation
 * their handle was minted for, so the kernel refuses a revoked one.
 */
function callOut(iface: string, cap: number, methodIndex: number, m: MethodModel, args: unknown[]): unknown {
  if (dead) throw deadError();
  out.reset().value(cap).value(methodIndex);
  let takes: number = OutcallTakes.Values;
  for (let i = 0; i < m.params.length; i++) {
    const a = args[i];
    const held = capOf(a);
    if (held !== undefined) out.value(held);
    else if (kit.isHandle(a)) {
      out.handle(kit.slotOf(a as object), kit.genOf(a as object) >>> 0);
      takes = OutcallTakes.RRefs;
    } else if (isPrimitive(a)) out.value(a);
    else {
      // In-thread, the proxy would find this and fault the caller: the same here, before sending.
      const detail = `argument ${i} must be exchangeable (a primitive, an RRef, or an interface reference the domain was given), got ${typeof a}`;
      fault(FaultKind.BadArgument, `bad argument to ${iface}.${m.name}: ${detail}`, currentCall);
      throw makeRpcError('bad-argument', iface, m.name, detail);
    }
  }
  if (!m.async) {
    const { status, r } = upcall(Kind.Outcall, 0, 0, out, true)!;
    return outcome(status, r, m);
  }
  const id = nextOutcall;
  nextOutcall = (nextOutcall + 1) | 0 || 1;
  outstanding++;
  const p = new Promise((resolve, reject) => outcalls.set(id, { resolve, reject, m }));
  // With RRef arguments, wait until the kernel has taken them (moved: our handle revoked; lent:
  // read-only until the answer), as the proxy takes them at the call in-thread: otherwise the
  // domain could read what it moved away, or change what it lent, until the kernel got to it.
  post(Kind.OutcallAsync, id, takes, out, takes === OutcallTakes.RRefs);
  return p;
}

/**
 * The value of an answered call out of `m` (an RRef becomes a handle of this domain, an interface
 * reference a stub), or its error, thrown.
 */
function outcome(status: number, r: Reader, m: MethodModel): unknown {
  if (status === OutcallStatus.Ok) {
    const v = r.next();
    if (v instanceof WireHandle) return kit.mint(v.slot, me, false);
    const iface = ifaceOf(m.ret);
    return iface !== null && v !== null ? capStub(v as number, iface) : v;
  }
  if (status === OutcallStatus.RpcError) {
    const [kind, domain, method, detail] = [r.next(), r.next(), r.next(), r.next()].map(String) as [RpcErrorKind, string, string, string];
    throw makeRpcError(kind, domain, method, detail);
  }
  throw new Error(String(r.next()));
}

/** An OutcallDone entry: settle its call out (a new run of the domain's code follows). */
function outcallDone(o: number): void {
  const id = Reader.id(dv, o);
  const pending = outcalls.get(id);
  let ok = true;
  let v: unknown;
  try {
    const r = new Reader(dv, u8, o, port); // first: it takes a side-channel payload off the port
    if (pending !== undefined) v = outcome(Reader.aux(dv, o), r, pending.m);
  } catch (e) {
    ok = false;
    v = e;
  }
  down.pop();
  if (pending === undefined) {
    fault(FaultKind.Panic, `worker runtime: an answer to call out ${id}, which is not waiting`, -1);
    return;
  }
  outcalls.delete(id);
  outstanding--;
  newRun();
  if (ok) pending.resolve(v);
  else pending.reject(v);
}

// ---- the down ring: calls in, answers to calls out ------------------------------------------------

function dispatch(o: number): void {
  if (Reader.kind(dv, o) === Kind.OutcallDone) {
    outcallDone(o);
    return;
  }
  const id = Reader.id(dv, o);
  const index = Reader.aux(dv, o);
  const m = sigs[index];
  const lent: object[] = [];
  let args: unknown[];
  try {
    if (Reader.kind(dv, o) !== Kind.Call || m === undefined) throw new Error(`bad call entry (kind ${Reader.kind(dv, o)}, method ${index})`);
    const r = new Reader(dv, u8, o, port);
    args = m.params.map((p) => argIn(p.type, r.next(), lent));
  } catch (e) {
    down.pop();
    fault(FaultKind.Panic, `worker runtime: ${describeThrown(e)}`, id);
    return;
  }
  down.pop();
  const endBorrows = (): void => {
    for (const h of lent) kit.revoke(h);
  };
  newRun();
  currentCall = id;
  let v: unknown;
  try {
    v = Reflect.apply(target[m.name]!, target, args);
  } catch (e) {
    endBorrows();
    fault(FaultKind.Panic, describeThrown(e), id);
    return;
  } finally {
    currentCall = -1;
  }
  if (!m.async) {
    endBorrows();
    answer(id, m, v);
    return;
  }
  outstanding++;
  const settle = (ok: boolean, x: unknown): void => {
    outstanding--;
    endBorrows();
    if (ok) answer(id, m, x);
    else fault(FaultKind.Panic, describeThrown(x), id);
  };
  if (v instanceof Promise) Reflect.apply(promiseThen, v, [(x: unknown) => settle(true, x), (e: unknown) => settle(false, e)]);
  else queueMicrotask(() => settle(true, v));
}

// ---- the serve loop -------------------------------------------------------------------------------

const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Dispatch every call in the down ring; returns how many. */
function drain(): number {
  let n = 0;
  let o: number;
  while (!dead && (o = down.peek()) >= 0) {
    dispatch(o);
    n++;
  }
  return n;
}


async function serve(): Promise<void> {
  let lastMacrotask = performance.now();
  for (;;) {
    Atomics.add(ctl, Ctl.Heartbeat, 1);
    if (dead) return;
    if (drain() > 0) {
      // Let continuations run; give timers a turn now and then even under a stream of calls.
      if (outstanding > 0 || performance.now() - lastMacrotask > MACROTASK_EVERY_MS) {
        await macrotask();
        lastMacrotask = performance.now();
      } else await undefined;
      continue;
    }
    if (spinWhile(() => down.head() === down.tail())) continue; // a call arrived
    // Idle: drain the microtask queue before deciding how to wait.
    await macrotask();
    lastMacrotask = performance.now();
    // Announce that we wait, then look again (see worker-ring.ts on lost wakeups).
    Atomics.store(ctl, Ctl.Listening, 1);
    const t = down.tail();
    if (t === down.head() && !dead) {
      if (outstanding > 0) {
        const w = Atomics.waitAsync(ctl, Ctl.DownTail, t);
        if (w.async) await w.value;
      } else park(Ctl.DownTail, t);
    }
    Atomics.store(ctl, Ctl.Listening, 0);
  }
}

// ---- boot -----------------------------------------------------------------------------------------

function bootDomain(): boolean {
  upcall(Kind.Booted, 0, 0, out.reset(), false);
  try {
    const want = boot.typeIds.join(',');
    const got = [kit.bytesType, kit.dequeType, ...LAYOUTS.map((l) => kit.layoutType(l.name)!)].join(',');
    if (want !== got) throw new Error(`the worker's type table (${got}) differs from the kernel's (${want})`);
    const init = instantiateDomain(boot, harden({ tick, aw }), harden({}), boot.name);
    if (typeof init !== 'function') throw new Error(`domain ${boot.name} does not export an init function`);
    runStart = now();
    const exported = init(makeSys(), ...boot.imports.map((iface, i) => capStub(i, iface))) as unknown;
    if (dead) return false;
    const checked = checkExport(boot.name, boot.exports, exported);
    if (checked !== null) target = checked as typeof target;
  } catch (e) {
    if (!dead) {
      startTold = true;
      upcall(Kind.InitFailed, 0, 0, out.reset().value(describeThrown(e)), false);
    }
    return false;
  }
  startTold = true;
  upcall(Kind.Ready, 0, 0, out.reset(), false);
  return true;
}

if (bootDomain()) {
  // Ref'd: keeps this thread's event loop alive while it waits with waitAsync.
  setInterval(newRun, HEARTBEAT_MS);
  void serve().catch((e: unknown) => fault(FaultKind.Panic, `worker runtime: ${describeThrown(e)}`, -1));
}
