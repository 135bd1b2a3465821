/**
 * The worker tier, kernel side (trusted; ARCHITECTURE §6): a domain placed in a worker runs the
 * same signed artifact in a SES compartment on its own thread (worker-host.ts). Callers reach it
 * through generic proxies built from the IDL's method signatures (SIGNATURES), which encode each
 * call into the down ring of a SharedArrayBuffer channel (worker-ring.ts); the worker spins
 * briefly, then parks in Atomics.wait, for calls. Answers come back on the up ring and wake the
 * kernel thread through Atomics.waitAsync. RRef data never moves: arguments and results name
 * exchange-heap slots (slot + generation).
 *
 * Ownership (who may write the slot table):
 *  - the slot table's columns live in shared memory (heap.ts) and the worker reads them to check
 *    its handles, but only the kernel thread writes them. Everything that changes ownership —
 *    moves in and out, borrows, and the worker's own allocations, frees, deque pushes/pops and
 *    struct-field stores — happens on the kernel thread: the worker asks with a blocking system
 *    call (Kind.Syscall) and waits for the answer, so no word is written by two threads;
 *  - a result that moves RRefs is a blocking upcall too (Kind.ResultMove): the worker's domain
 *    code does not run again until the kernel has moved the RRefs to the caller (and bumped their
 *    generations, which revokes every handle the worker still has to them);
 *  - a domain that dies keeps its slots (and the borrows lent to it) until its thread has exited:
 *    only then are borrows ended and slots reclaimed, so a thread still finishing a stray write
 *    can never touch memory that has been handed to someone else.
 *
 * Calls: every method of a worker domain's export returns a Promise to its caller, synchronous
 * IDL methods included (the answer comes from another thread). Host code (Kernel.bind) may call
 * any interface; a domain (of either tier) may import a worker domain only when every method of
 * the interface already returns a Promise, so that its code sees the types it was written against.
 * Device drivers and shadows are not supported in this tier (refused at load with EPLACEMENT).
 *
 * Loading: the kernel waits for the thread to boot and the domain's init to return, serving its
 * system calls meanwhile, either holding the kernel thread (start, for Kernel.load and restart) or
 * not (startAsync, for Kernel.loadAsync: other domains run meanwhile, and a termination during
 * the wait rejects the load).
 *
 * Capabilities: the interface references a worker domain holds — its imports, resolved as for an
 * in-thread domain, and every reference it is given (an argument of a call into it, a result of
 * a call out) — are proxies whose caller is the worker domain, kept by number (worker-caps.ts); the
 * worker gets a stub per capability, built from SIGNATURES, and drops it (Kind.CapDrop) once the
 * stub is collected. The worker can pass a stub on (an argument of a call out, a result), which
 * names the kept proxy; it cannot hand out objects of its own (a bad argument or result).
 *
 * Calls out (a worker domain calling a capability): a synchronous method is a blocking
 * upcall (Kind.Outcall): the worker waits, parked, while the kernel thread makes the call through
 * the proxy and writes the answer into the entry, so the domain sees a value as in-thread. An
 * async method is an upcall (Kind.OutcallAsync) whose answer comes back on the down ring
 * (Kind.OutcallDone): the domain gets a Promise and keeps serving meanwhile; it waits only, when
 * an argument is an RRef, until the kernel has taken the arguments (as the proxy takes them at
 * the call in-thread, a moved handle is revoked and a lent one read-only from the call on).
 * Arguments name the worker's RRefs by slot + generation; the kernel mints handles for them only
 * when they are the worker's own and current (or, for a borrowed parameter, lent to it), and the
 * proxy then moves or lends them as for any caller, so every ownership rule and caller fault is
 * the proxy's.
 * Time the worker waits in a synchronous call out counts toward its run's deadline, as a
 * synchronous call's does in-thread. No call out deadlocks on the worker itself: a synchronous
 * callee that calls back into the worker gets a Promise (every method of a worker domain's export
 * answers with one) and cannot wait for it before it returns, and an async call out leaves the
 * worker free to serve such calls while it waits.
 *
 * Faults: an exception or rejection escaping the domain, sys.panic, an ownership violation, a bad
 * result and a deadline overrun (the worker's own deadline checks) are reported on the up ring and
 * terminate the domain like an in-thread fault. A domain that stops answering — stuck in a loop
 * that swallows deadline panics, or in native code with no deadline checks at all — is preempted:
 * a watchdog sees the worker neither parked nor making progress for its deadline and terminates
 * the thread (Worker.terminate). Exceeding the load option `resourceLimits` kills the thread; the
 * kernel turns that into a panic of the domain.
 */
import { MessageChannel, type MessagePort, type ResourceLimits, type Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { KernelError, makeRpcError, type RpcErrorKind } from './errors.js';
import { FREE, NO_PARENT, type ExchangeHeap } from './heap.js';
import type { HandleKit } from './rref.js';
import type { Domain, InflightCall } from './domain.js';
import type { Link, ProxyRuntime } from './proxy.js';
import type { Artifact, Manifest } from './artifact.js';
import type { MethodModel, TypeRef } from '../build/idl.js';
import { Ctl, FaultKind, Kind, OutcallTakes, Reader, Ring, Sys, WireHandle, Writer, channelBytes, emitEntry, workerMayWait } from './worker-ring.js';
import { WorkerCapabilities } from './worker-caps.js';
import type { WorkerPool } from './worker-pool.js';
import { LAYOUTS, SIGNATURES } from '../gen/idl.js';

/** How long a new worker thread may take to load the runtime before load() gives up (ms). */
const BOOT_TIMEOUT_MS = 30_000;
/** Slack on top of the deadline for the worker's own deadline check to report a hung init (ms). */
const INIT_GRACE_MS = 1000;
/** While start() holds the kernel thread, how often it looks whether the worker's thread has ended (ms). */
const THREAD_CHECK_MS = 10;
/**
 * After a call is sent, the kernel polls the up ring through its event loop (setImmediate, so
 * other domains and timers keep running) for this long before it relies on a notify from the
 * worker: a quick answer then costs no cross-thread wakeup at all (ms).
 */
const POLL_MS = 0.1;
/** Poll windows skipped, at most, after windows that ended with no answer (when the host is oversubscribed, polling only steals the worker's CPU). */
const MAX_POLL_BACKOFF = 64;

/** What the kernel gives the worker thread (its first message). */
export interface WorkerBoot {
  name: string;
  /** Restarts of this domain before this instance (Sys.restarts). */
  restarts: number;
  id: number;
  code: string;
  exports: string | null;
  /** The interface of each import, in init's order (capabilities 0, 1, ...: the kernel keeps their proxies, worker-caps.ts). */
  imports: string[];
  deadlineMs: number;
  config: Record<string, string | number | boolean>;
  phys: SharedArrayBuffer;
  /** The slot table's shared columns (heap.ts), read-only for the worker. */
  slots: Record<'owner' | 'gen' | 'borrows' | 'type' | 'off' | 'len' | 'rawLen' | 'parent', SharedArrayBuffer>;
  maxSlots: number;
  channel: SharedArrayBuffer;
  /** The side channel of the rings' entries (see worker-ring.ts). */
  port: MessagePort;
  /**
   * The side channel of the kernel's answers to blocking upcalls (written into their up-ring
   * entries): on `port` they could be taken for the payload of a call posted before them.
   */
  answers: MessagePort;
  /** Type ids the worker must arrive at: bytes, deque, then every layout in LAYOUTS order. */
  typeIds: number[];
  /** The kernel's performance.timeOrigin: sys.now() is the kernel's clock in both tiers. */
  clockOrigin: number;
}

/** What the kernel lends the worker tier. */
export interface WorkerHost {
  readonly heap: ExchangeHeap;
  readonly kit: HandleKit;
  readonly rt: ProxyRuntime;
  fault(d: Domain, cause: 'panic' | 'bad-argument' | 'deadline', err: unknown): void;
  log(d: Domain, line: string): void;
  /** An answer from a worker starts a new run of in-thread domain code (deadline clock). */
  newRun(): void;
  /** The domain a proxy reaches ('host' for a host capability), as RpcErrors name it. */
  calleeName(proxy: object): string;
  /** Threads to run worker domains on. */
  readonly threads: WorkerPool;
}

export interface WorkerLoadOptions {
  deadlineMs: number;
  /** The proxies the kernel resolved the domain's imports to (the domain their caller), in the manifest's order. */
  imports: readonly object[];
  config?: Record<string, string | number | boolean>;
  resourceLimits?: ResourceLimits;
}

/** Refuse (EPLACEMENT) a domain the worker tier cannot run; see the header for the limits. */
export function checkWorkerPlacement(name: string, m: Manifest, hasDevice: boolean): void {
  const refuse = (why: string): never => {
    throw new KernelError('EPLACEMENT', `domain ${name} cannot be placed in a worker: ${why}`);
  };
  if (hasDevice) refuse('it drives a device (drivers run in the kernel thread)');
  const shadowOf = m.imports.find((i) => i.startsWith('Supervisor:'));
  if (shadowOf !== undefined) refuse(`it is a shadow (it imports ${shadowOf}, whose instances are interface references); shadows run in the kernel thread, which routes their calls`);
  for (const iface of m.exports === null ? m.imports : [m.exports, ...m.imports]) {
    if (SIGNATURES[iface] === undefined) refuse(`unknown interface ${iface}`);
  }
}

/** The type-id key the proxy runtime resolves (as the generated proxies use). */
function typeKey(t: TypeRef): string | null {
  switch (t.k) {
    case 'rref':
      return 'struct:' + t.layout;
    case 'array':
      return 'array:' + t.elem;
    case 'deque':
      return 'deque';
    default:
      return null;
  }
}

/** Does converting an argument of type `t` move an RRef (nullable or not) to the callee? */
function moves(t: TypeRef): boolean {
  return typeKey(t.k === 'nullable' ? t.inner : t) !== null;
}

/** Does a value of primitive type `name` have the right JS type? (as the generated proxies check) */
export function primOk(name: string, v: unknown): boolean {
  switch (name) {
    case 'null':
      return v === null;
    case 'undefined':
    case 'void':
      return v === undefined;
    default:
      return typeof v === name;
  }
}

interface PendingCall extends InflightCall {
  readonly link: Link;
  readonly method: MethodModel;
  /** Kernel-side read-only handles lent for the call: the borrows end when it settles. */
  readonly borrows: object[];
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

/** The kernel's side of one worker-placed domain instance. */
export class WorkerDomain {
  /** Resolves once the thread has exited and the domain's slots and borrows are released. */
  readonly stopped: Promise<void>;
  private markStopped!: () => void;
  private readonly worker: Worker;
  private readonly ctl: Int32Array;
  private readonly dv: DataView;
  private readonly u8: Uint8Array;
  private readonly down: Ring;
  private readonly up: Ring;
  private readonly port: MessagePort;
  private readonly answers: MessagePort;
  private readonly writer = new Writer();
  private readonly pending = new Map<number, PendingCall>();
  /** Entries (calls, answers to calls out) waiting for room in the down ring. */
  private readonly backlog: { kind: number; id: number; aux: number; payload: Uint8Array }[] = [];
  /** Waiting (Atomics.waitAsync on the down ring's head) for the worker to make room for the backlog. */
  private awaitingRoom = false;
  /** The interface references the worker holds, by the number its stubs name (imports first). */
  private readonly caps: WorkerCapabilities;
  /** Borrows lent to calls that were unwound: they end when the thread has exited. */
  private readonly deferredBorrows: { link: Link; h: object }[] = [];
  private readonly sigs: readonly MethodModel[];
  private nextCall = 1;
  private phase: 'boot' | 'init' | 'ready' | 'failed' = 'boot';
  private initError = '';
  private stopping = false;
  /** Polling the up ring until this time (performance.now()), or -1. */
  private pollUntil = -1;
  /** Poll windows to skip: doubled by each window that ended unanswered, reset by an answer. */
  private pollBackoff = 0;
  private pollsToSkip = 0;
  private watchdog: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly host: WorkerHost,
    readonly d: Domain,
    artifact: Artifact,
    opts: WorkerLoadOptions,
  ) {
    const { heap, kit } = host;
    const channel = new SharedArrayBuffer(channelBytes());
    this.ctl = new Int32Array(channel);
    this.dv = new DataView(channel);
    this.u8 = new Uint8Array(channel);
    this.down = Ring.down(this.ctl);
    this.up = Ring.up(this.ctl);
    this.sigs = artifact.manifest.exports === null ? [] : SIGNATURES[artifact.manifest.exports]!;
    this.caps = new WorkerCapabilities(host, d);
    opts.imports.forEach((proxy, i) => this.caps.give(artifact.manifest.imports[i]!, proxy));
    this.stopped = new Promise((resolve) => (this.markStopped = resolve));
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const answers = new MessageChannel();
    this.answers = answers.port1;
    const shared = (a: { buffer: ArrayBufferLike }): SharedArrayBuffer => a.buffer as SharedArrayBuffer;
    const boot: WorkerBoot = {
      name: d.name,
      id: d.id,
      code: artifact.code,
      exports: artifact.manifest.exports,
      imports: artifact.manifest.imports,
      deadlineMs: opts.deadlineMs,
      restarts: d.restarts,
      config: { ...(opts.config ?? {}) },
      phys: heap.phys,
      slots: {
        owner: shared(heap.owner), gen: shared(heap.gen), borrows: shared(heap.borrows), type: shared(heap.type),
        off: shared(heap.off), len: shared(heap.len), rawLen: shared(heap.rawLen), parent: shared(heap.parent),
      },
      maxSlots: heap.maxSlots,
      channel,
      port: port2,
      answers: answers.port2,
      typeIds: [kit.bytesType, kit.dequeType, ...LAYOUTS.map((l) => kit.layoutType(l.name)!)],
      clockOrigin: performance.timeOrigin,
    };
    this.worker = host.threads.take(opts.resourceLimits);
    this.worker.postMessage(boot, [port2, answers.port2]);
    this.worker.on('error', (e: Error & { code?: string }) => {
      const why = e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `exceeded its resource limits (${e.message})` : `its thread failed: ${e.message}`;
      host.fault(d, 'panic', new Error(`worker domain ${d.name} ${why}`));
    });
    this.worker.on('exit', (code) => this.exited(code));
  }

  /**
   * Block until the domain's init has returned, serving its system calls meanwhile (init may
   * allocate). Throws EINIT when init fails, faults, or the thread does not come up in time.
   * The kernel thread runs nothing else meanwhile (Kernel.load); startAsync does not hold it.
   * Holding it, the kernel hears nothing of the Worker's 'error' and 'exit' events (they come
   * through the event loop): a thread that dies of an uncaught error or process.exit() before
   * init returns reports it on the up ring itself (worker-host.ts), and the load fails at once. A
   * thread killed by its resource limits runs no JavaScript to say so, nor does one that died
   * before it got its WorkerBoot, and Node offers no synchronous way to see that a Worker has
   * ended: so the wait is cut into THREAD_CHECK_MS slices, after each of which the pool looks
   * whether the OS thread is gone (WorkerPool.ended, Linux), and the load fails within a slice of
   * the death. Where that cannot be known, the load waits out init's deadline (plus
   * INIT_GRACE_MS) or BOOT_TIMEOUT_MS; loadAsync, which does not hold the kernel thread, sees the
   * death at once everywhere.
   */
  start(): object | null {
    const step = this.bootSteps();
    for (let wait = step(false); wait !== null; ) {
      Atomics.wait(this.ctl, Ctl.UpTail, wait.seen, Math.min(wait.left, THREAD_CHECK_MS));
      // Looked at before the step drains the up ring: what the thread said before it ended is read first.
      wait = step(this.host.threads.ended(this.worker));
    }
    return this.started();
  }

  /**
   * start() without holding the kernel thread (Kernel.loadAsync): the same steps, waiting with
   * Atomics.waitAsync, so that other domains run while the thread starts and the domain's init
   * runs. Rejects with EINIT as start() throws, and when the domain is terminated meanwhile.
   */
  async startAsync(): Promise<object | null> {
    const step = this.bootSteps();
    // The Worker's 'exit' event stops the domain (exited), which the steps see as `stopping`.
    for (let wait = step(false); wait !== null; wait = step(false)) {
      const w = Atomics.waitAsync(this.ctl, Ctl.UpTail, wait.seen, wait.left);
      if (w.async) await Promise.race([w.value, this.stopped]);
      this.host.newRun();
    }
    return this.started();
  }

  /**
   * The boot's steps: each serves what the worker sent, then says what to wait for (the up ring's
   * tail it saw, and for how long at most), or null once init has returned. `threadEnded`: the
   * worker's thread was seen gone before this step (so all it posted is in the up ring).
   */
  private bootSteps(): (threadEnded: boolean) => { seen: number; left: number } | null {
    let limit = performance.now() + BOOT_TIMEOUT_MS;
    return (threadEnded) => {
      const seen = this.up.tail();
      const before = this.phase;
      this.drainUp();
      if (this.phase === 'failed') throw new KernelError('EINIT', `domain ${this.d.name} failed to initialise in its worker: ${this.initError}`);
      // Terminated meanwhile (by a fault the kernel found, or by anyone): nothing more will come,
      // and a domain dead as its init returned is not handed out (as in-thread).
      if (this.stopping) throw new KernelError('EINIT', `domain ${this.d.name} was terminated while it initialised (${this.d.deathCause ?? 'terminated'})`);
      if (this.phase === 'ready') return null;
      if (threadEnded) {
        // It said nothing: no JavaScript ran in it to say so. A panic, as the Worker's 'error'
        // event, still to come, would make it (and then finds the domain dead).
        const why = `its worker thread ended before init returned, reporting nothing (killed by its resource limits, or terminated)`;
        this.host.fault(this.d, 'panic', new Error(`worker domain ${this.d.name}: ${why}`));
        throw new KernelError('EINIT', `domain ${this.d.name}: ${why}`);
      }
      if (before === 'boot' && this.phase === 'init') limit = performance.now() + this.d.deadlineMs + INIT_GRACE_MS;
      const left = limit - performance.now();
      if (left <= 0) {
        const what = this.phase === 'boot' ? `its worker thread did not start within ${BOOT_TIMEOUT_MS} ms` : `init did not return within its deadline (${this.d.deadlineMs} ms)`;
        throw new KernelError('EINIT', `domain ${this.d.name}: ${what}`);
      }
      return { seen, left };
    };
  }

  /** Init has returned: serve the domain from now on; its export's endpoint. */
  private started(): object | null {
    this.armUpcalls();
    this.startWatchdog();
    return this.sigs.length === 0 ? null : this.endpoint();
  }

  /**
   * A proxy of the export for `link.caller`. An in-thread domain may hold one only if every
   * method returns a Promise (see the header).
   */
  proxy(iface: string, link: Link): object {
    if (link.caller.id !== 0) {
      const sync = this.sigs.filter((m) => !m.async).map((m) => m.name);
      if (sync.length > 0) {
        throw new KernelError(
          'EPLACEMENT',
          `domain ${link.caller.name} cannot import ${iface} from ${this.d.name}, which runs in a worker: its synchronous methods (${sync.join(', ')}) can only answer with a Promise there; a domain may import a worker domain only through an interface whose methods all return Promises`,
        );
      }
    }
    const { rt } = this.host;
    const out: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
    for (const m of this.sigs) {
      const name = m.name;
      // The parameters whose RRef is moved (made once per proxy, for a bad argument's undoing).
      const movedAt = m.params.flatMap((p, i) => (moves(p.type) ? [i] : []));
      const kinds = 'm'.repeat(movedAt.length);
      out[name] = (...args: unknown[]): Promise<unknown> => {
        const lent: object[] = [];
        const given: number[] = [];
        const xs: unknown[] = [];
        try {
          const target = rt.enter(link, name) as Record<string, (link: Link, xs: unknown[], lent: object[]) => Promise<unknown>>;
          for (let i = 0; i < m.params.length; i++) xs.push(this.argIn(link, m.params[i]!.type, args[i], name, i, lent, given));
          try {
            return target[name]!(link, xs, lent);
          } catch (e) {
            // An injected fault (kernel.injectFault) throws here: a panic of the callee.
            this.release(link, lent, given);
            return rt.rejected(link, e, name);
          }
        } catch (e) {
          // A bad argument: what was moved before it (in xs, which ends there) the worker never
          // got (freed, as in-thread).
          this.release(link, lent, given);
          rt.undoArgs(link, kinds, movedAt.map((i) => xs[i]));
          return Promise.reject(e);
        }
      };
    }
    return harden(out);
  }

  /** How many interface references the worker holds (the kernel keeps a proxy for each). */
  get capabilities(): number {
    return this.caps.size;
  }

  /** Termination (Kernel.terminate, after it unwound the calls in flight): stop the thread. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.backlog.length = 0;
    // Let our own pending waitAsyncs settle (they then see `stopping`).
    Atomics.notify(this.ctl, Ctl.UpTail);
    Atomics.notify(this.ctl, Ctl.DownHead);
    void this.worker.terminate();
  }

  // ---- calls into the worker ---------------------------------------------------------------------

  /**
   * Check and convert argument `i` for the callee: primitives as they are, RRefs moved or lent,
   * an interface reference as a proxy for the worker domain, kept as a capability (`given`); the
   * callee's handles of RRefs lent also go into `lent`.
   */
  private argIn(link: Link, t: TypeRef, a: unknown, method: string, i: number, lent: object[], given: number[]): unknown {
    const { rt } = this.host;
    switch (t.k) {
      case 'prim':
        return primOk(t.name, a) ? a : rt.badArg(link, method, i, t.name, a);
      case 'nullable':
        return a === null ? null : this.argIn(link, t.inner, a, method, i, lent, given);
      case 'borrow': {
        const h = rt.borrow(link, a, rt.typeId(typeKey(t.inner)!), method, i);
        lent.push(h);
        return h;
      }
      case 'iface': {
        const cap = this.caps.give(t.name, rt.iface(link, a, t.name, method, i));
        given.push(cap);
        return cap;
      }
      default:
        return rt.move(link, a, rt.typeId(typeKey(t)!), method, i);
    }
  }

  /** A call that was not sent: end its borrows, forget the capabilities made for it. */
  private release(link: Link, lent: readonly object[], given: readonly number[] = []): void {
    for (const h of lent) this.host.rt.unborrow(link, h);
    for (const cap of given) this.caps.drop(cap);
  }

  /**
   * The callee-side object links point at: one function per method, sending the call. It never
   * reaches a domain (only proxies call it), and stays unfrozen so that fault injection can wrap
   * it like any in-thread export (Kernel.injectFault).
   */
  private endpoint(): object {
    const ep: Record<string, (link: Link, xs: unknown[], lent: object[]) => Promise<unknown>> = {};
    this.sigs.forEach((m, index) => {
      ep[m.name] = (link, xs, lent) => this.send(link, index, m, xs, lent);
    });
    return ep;
  }

  private send(link: Link, index: number, method: MethodModel, xs: unknown[], lent: object[]): Promise<unknown> {
    const { heap, kit } = this.host;
    const w = this.writer.reset();
    for (const x of xs) {
      if (x !== null && typeof x === 'object') {
        const s = kit.slotOf(x);
        w.handle(s, heap.gen[s]!);
      } else w.value(x);
    }
    const id = this.nextCall;
    this.nextCall = (this.nextCall + 1) | 0 || 1;
    return new Promise((resolve, reject) => {
      const callee = this.d;
      const call: PendingCall = {
        link,
        method,
        borrows: lent,
        resolve,
        reject,
        inflightSlot: -1,
        unwind: (cause) => {
          this.forget(id, call);
          for (const h of lent) this.deferredBorrows.push({ link, h });
          reject(makeRpcError(deadKind(callee), callee.name, method.name, `domain ${callee.name} died (${cause}) before answering`));
        },
      };
      if (this.pending.size === 0) this.worker.ref(); // an answer is awaited: keep the process alive for it
      this.pending.set(id, call);
      callee.inflight.add(call);
      this.postOrQueue(Kind.Call, id, index, w);
    });
  }

  /** Put an entry into the down ring, or behind the backlog when the ring is full (or others wait). */
  private postOrQueue(kind: number, id: number, aux: number, w: Writer): void {
    if (this.backlog.length > 0 || !this.post(kind, id, aux, w)) {
      this.backlog.push({ kind, id, aux, payload: w.take() });
      this.awaitRoom();
    }
  }

  /**
   * Flush the backlog as the worker makes room in the down ring (its pop of a full ring notifies
   * the head word): what waits there may be all the worker needs to go on, with no answer coming
   * back meanwhile to wake the kernel thread (calls that stay pending until a later one arrives).
   */
  private awaitRoom(): void {
    if (this.awaitingRoom) return;
    while (!this.stopping && this.backlog.length > 0) {
      const head = this.down.head();
      this.flushBacklog();
      if (this.backlog.length === 0) return;
      // Still full: the worker's next pop moves the head from the value read before the flush.
      const w = Atomics.waitAsync(this.ctl, Ctl.DownHead, head);
      if (w.async) {
        this.awaitingRoom = true;
        void w.value.then(() => {
          this.awaitingRoom = false;
          this.awaitRoom();
        });
        return;
      }
    }
  }

  /** Put an entry into the down ring; false when it is full. */
  private post(kind: number, id: number, aux: number, w: Writer | Uint8Array): boolean {
    const o = this.down.reserve();
    if (o < 0) return false;
    if (w instanceof Writer) w.emit(this.dv, this.u8, o, kind, id, aux, this.port);
    else emitEntry(this.dv, this.u8, o, kind, id, aux, w, this.port);
    this.down.publish(workerMayWait);
    if (kind === Kind.Call) this.poll();
    return true;
  }

  private flushBacklog(): void {
    for (let e = this.backlog[0]; e !== undefined && this.post(e.kind, e.id, e.aux, e.payload); e = this.backlog[0]) this.backlog.shift();
  }

  private forget(id: number, call: PendingCall): void {
    this.pending.delete(id);
    this.d.inflight.delete(call);
    if (this.pending.size === 0) this.worker.unref();
  }

  // ---- answers and upcalls ------------------------------------------------------------------------

  /** Start (or extend) polling the up ring for answers; see POLL_MS. */
  private poll(): void {
    if (this.pollUntil >= 0) {
      this.pollUntil = performance.now() + POLL_MS;
      return;
    }
    if (this.pollsToSkip > 0) {
      this.pollsToSkip--;
      return;
    }
    this.pollUntil = performance.now() + POLL_MS;
    Atomics.store(this.ctl, Ctl.KernelPolling, 1);
    const step = (): void => {
      if (this.stopping) return;
      this.host.newRun();
      // Anything served (an answer, or a call out or system call of a call still running) means
      // the worker is busy with us: more may follow soon.
      const served = this.drainUp();
      this.flushBacklog();
      if (served > 0) {
        this.pollUntil = performance.now() + POLL_MS;
        this.pollBackoff = 0;
      }
      if (this.pending.size > 0 && performance.now() < this.pollUntil) {
        setImmediate(step);
        return;
      }
      this.pollUntil = -1;
      if (this.pending.size > 0) this.pollsToSkip = this.pollBackoff = Math.min(MAX_POLL_BACKOFF, this.pollBackoff * 2 || 1);
      Atomics.store(this.ctl, Ctl.KernelPolling, 0);
      // Answers published while the worker still saw us polling came without a notify.
      this.drainUp();
      this.flushBacklog();
    };
    setImmediate(step);
  }

  private armUpcalls(): void {
    for (;;) {
      if (this.stopping) return;
      const seen = this.up.tail();
      this.drainUp();
      this.flushBacklog();
      const w = Atomics.waitAsync(this.ctl, Ctl.UpTail, seen);
      if (w.async) {
        void w.value.then(() => {
          if (this.stopping) return;
          this.host.newRun();
          this.armUpcalls();
        });
        return;
      }
    }
  }

  /** Process every upcall in the up ring, in order; answers blocking ones. Returns how many. */
  private drainUp(): number {
    const { dv, u8, port } = this;
    let o: number;
    let served = 0;
    while (!this.stopping && (o = this.up.peek()) >= 0) {
      served++;
      const kind = Reader.kind(dv, o);
      const id = Reader.id(dv, o);
      const aux = Reader.aux(dv, o);
      const r = new Reader(dv, u8, o, port);
      if (kind === Kind.Syscall) {
        let answer: Writer;
        let status = 0;
        try {
          answer = this.syscall(aux, r);
        } catch (e) {
          status = -1;
          answer = this.writer.reset().value((e as Error).message);
        }
        answer.emit(dv, u8, o, Kind.Syscall, id, status, this.answers);
      } else if (kind === Kind.Outcall) {
        const c = this.caps.callOut(r, false);
        // The call may have run code that used this.writer (a call into this domain): encode after it.
        const status = this.caps.outcome(this.writer.reset(), c);
        this.writer.emit(dv, u8, o, Kind.Outcall, id, status, this.answers);
      } else {
        this.upcall(kind, id, aux, r);
      }
      const seq = this.up.pop();
      if (kind === Kind.Syscall || kind === Kind.Outcall || kind === Kind.ResultMove || (kind === Kind.OutcallAsync && aux === OutcallTakes.RRefs)) {
        Atomics.store(this.ctl, Ctl.UpAck, seq);
        Atomics.notify(this.ctl, Ctl.UpAck);
      }
    }
    return served;
  }

  private upcall(kind: number, id: number, aux: number, r: Reader): void {
    switch (kind) {
      case Kind.Result:
      case Kind.ResultMove:
        this.settle(id, r);
        return;
      case Kind.Fault:
        this.faulted(id, aux, String(r.next()));
        return;
      case Kind.Log:
        this.host.log(this.d, String(r.next()));
        return;
      case Kind.CapDrop:
        this.caps.drop(id); // the worker's stub for it was collected
        return;
      case Kind.OutcallAsync: {
        const { m, ok, v: p } = this.caps.callOut(r, true);
        const done = (ok: boolean, v: unknown): void => {
          if (this.stopping) return; // what moved to the dead domain was freed as it landed (proxy.ts)
          const w = this.writer.reset();
          this.postOrQueue(Kind.OutcallDone, id, this.caps.outcome(w, { m, ok, v }), w);
        };
        if (ok) void Promise.resolve(p).then((v) => done(true, v), (e: unknown) => done(false, e));
        else done(false, p);
        return;
      }
      case Kind.Booted:
        this.phase = 'init';
        return;
      case Kind.Ready:
        this.phase = 'ready';
        return;
      case Kind.InitFailed:
        this.phase = 'failed';
        this.initError = String(r.next());
        return;
      default:
        this.host.fault(this.d, 'panic', new Error(`worker domain ${this.d.name}: unknown upcall kind ${kind}`));
    }
  }

  private settle(id: number, r: Reader): void {
    const call = this.pending.get(id);
    if (call === undefined) return;
    this.forget(id, call);
    let v: unknown;
    try {
      v = this.resultOut(call, call.method.ret, r.next());
    } catch (e) {
      this.release(call.link, call.borrows);
      call.reject(e);
      return;
    }
    this.release(call.link, call.borrows);
    call.resolve(v);
  }

  /** Check and convert a result for the caller; RRefs move to it. A bad result faults the callee. */
  private resultOut(call: PendingCall, t: TypeRef, raw: unknown): unknown {
    const { heap, kit } = this.host;
    const { link } = call;
    if (t.k === 'nullable') return raw === null ? null : this.resultOut(call, t.inner, raw);
    if (t.k === 'prim') return primOk(t.name, raw) ? raw : this.badResult(call, `must be ${t.name}, got ${typeof raw}`);
    if (t.k === 'iface') {
      const proxy = this.caps.proxyOf(raw, t.name);
      if (proxy === undefined) return this.badResult(call, `must be an interface reference to ${t.name} the domain was given`);
      return this.host.rt.retIface(link, proxy, t.name, call.method.name);
    }
    const typeId = this.host.rt.typeId(typeKey(t)!);
    if (!(raw instanceof WireHandle)) return this.badResult(call, `must be an RRef of type ${heap.typeInfo(typeId).name}`);
    const s = raw.slot;
    const ok =
      s < heap.maxSlots && heap.owner[s] === this.d.id && heap.gen[s] === raw.gen && heap.parent[s] === NO_PARENT && heap.borrows[s] === 0 && heap.type[s] === typeId;
    if (!ok) return this.badResult(call, `slot ${s} is not a movable RRef of type ${heap.typeInfo(typeId).name} owned by ${this.d.name}`);
    const caller = link.caller;
    if (caller.id !== 0 && !caller.live) {
      heap.free(s); // nobody is left to receive it
      return null;
    }
    heap.move(s, caller.id);
    return kit.mint(s, caller.id, false);
  }

  private badResult(call: PendingCall, detail: string): never {
    const err = makeRpcError('bad-argument', this.d.name, call.method.name, `bad result: ${detail}`);
    this.host.fault(this.d, 'bad-argument', err);
    throw err;
  }

  private faulted(id: number, kind: number, message: string): void {
    const { d } = this;
    const [rpc, cause, detail]: [RpcErrorKind, 'panic' | 'deadline' | 'bad-argument', string] =
      kind === FaultKind.Deadline
        ? ['timeout', 'deadline', message]
        : kind === FaultKind.BadResult
          ? ['bad-argument', 'bad-argument', `bad result: ${message}`]
          : kind === FaultKind.BadArgument
            ? ['panic', 'bad-argument', message] // as in-thread: the caller's own call fails with its death
            : ['panic', 'panic', `domain ${d.name} panicked: ${message}`];
    const call = this.pending.get(id);
    if (call !== undefined) {
      this.forget(id, call);
      for (const h of call.borrows) this.deferredBorrows.push({ link: call.link, h });
      call.reject(makeRpcError(rpc, d.name, call.method.name, detail));
    }
    if (this.phase !== 'ready') {
      this.phase = 'failed';
      this.initError = message;
    }
    this.host.fault(d, cause, new Error(message));
  }

  // ---- system calls: the worker's slot-table changes, made here ---------------------------------

  private syscall(op: number, r: Reader): Writer {
    const { heap } = this.host;
    const me = this.d.id;
    // ownerOf, not the owner column: an element of a deque belongs to the deque's owner (heap.ts).
    const mine = (s: number, what: string): number => {
      if (!(Number.isInteger(s) && s >= 0 && s < heap.highWater && heap.ownerOf(s) === me)) throw new Error(`${what}: slot ${s} is not owned by ${this.d.name}`);
      return s;
    };
    if (!this.d.live) throw new Error(`domain ${this.d.name} is dead`);
    const w = this.writer.reset();
    switch (op) {
      case Sys.Alloc: {
        const bytes = r.number();
        const typeId = r.number();
        const align = r.number();
        heap.typeInfo(typeId); // throws for an unknown type
        return w.value(heap.alloc(me, bytes, typeId, align));
      }
      case Sys.Free: {
        const s = mine(r.number(), 'free');
        if (heap.parent[s] !== NO_PARENT) throw new Error(`free: slot ${s} lives inside another allocation`);
        heap.free(s);
        return w;
      }
      case Sys.Adopt: {
        const parent = mine(r.number(), 'adopt');
        const child = mine(r.number(), 'adopt');
        if (heap.parent[child] !== NO_PARENT) throw new Error(`adopt: slot ${child} is already inside another allocation`);
        heap.adopt(parent, child);
        return w;
      }
      case Sys.Release: {
        const child = mine(r.number(), 'release');
        if (heap.parent[child] === NO_PARENT || heap.owner[child] === FREE) throw new Error(`release: slot ${child} is not inside another allocation`);
        return w.value(heap.release(child));
      }
      default:
        throw new Error(`unknown system call ${op}`);
    }
  }

  // ---- preemption and the end -----------------------------------------------------------------------

  /**
   * Preemption: every period, if the worker is not parked and its runtime has not run (the
   * Heartbeat word did not move) for the domain's deadline, the thread is stuck in domain code
   * that does not reach its deadline checks (or swallows their panics): terminate it.
   */
  private startWatchdog(): void {
    const { d } = this;
    const period = Math.min(250, Math.max(5, d.deadlineMs / 4));
    let beat = Atomics.load(this.ctl, Ctl.Heartbeat);
    let since = performance.now();
    this.watchdog = setInterval(() => {
      const now = performance.now();
      const b = Atomics.load(this.ctl, Ctl.Heartbeat);
      if (b !== beat || Atomics.load(this.ctl, Ctl.Parked) === 1) {
        beat = b;
        since = now;
      } else if (now - since > d.deadlineMs) {
        this.host.fault(d, 'deadline', new Error(`worker domain ${d.name} ran past its deadline of ${d.deadlineMs} ms without yielding: preempted (thread terminated)`));
      }
    }, period);
    this.watchdog.unref();
  }

  /** The thread is gone: end the borrows it held and reclaim its slots. */
  private exited(code: number): void {
    if (this.d.live) this.host.fault(this.d, 'panic', new Error(`worker domain ${this.d.name}: its thread exited (code ${code})`));
    this.stop();
    for (const { link, h } of this.deferredBorrows) this.host.rt.unborrow(link, h);
    this.deferredBorrows.length = 0;
    this.host.heap.reclaim(this.d.id);
    this.port.close();
    this.answers.close();
    this.markStopped();
  }
}

/** The RpcError kind for calls into a dead domain (as proxy.ts reports them). */
function deadKind(d: Domain): RpcErrorKind {
  return d.deathCause === 'deadline' ? 'timeout' : d.deathCause === 'panic' ? 'panic' : 'callee-dead';
}
