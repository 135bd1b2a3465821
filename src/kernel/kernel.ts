/**
 * The microkernel (trusted): loader, domain lifecycle, faults, the exchange heap and the proxy
 * runtime, tied together.
 *
 * Invariants:
 *  - the kernel survives every domain fault: domain code only ever runs inside a proxy call, a
 *    timer/task/interrupt wrapper, or init, and each of those turns an escaping exception into a
 *    termination of that domain;
 *  - termination is one procedure whatever the cause: refuse new calls (state 'dead'), unwind
 *    async calls in flight as RpcError, cancel timers, tasks and interrupt registrations, free the
 *    domain's exchange-heap slots (borrowed ones when the borrow ends), drop its objects so its
 *    private heap can be collected (its compartment and evaluated code are kept with its
 *    artifact and hold no instance state, see isolation.ts);
 *  - a device DMAs only for the live domain it was loaded with: it is reset with bus mastering on
 *    before that domain's init (attach) and with bus mastering off when it terminates (detach,
 *    the first step of the termination, so that the device answers while the rest runs), and
 *    the domain's memory is reclaimed only once the device acknowledged the detach (see
 *    src/devices/bus.ts), so no DMA can land in memory that was reclaimed and handed out again;
 *  - a domain never receives a kernel object that is not hardened;
 *  - placement is configuration: the same artifact runs in the kernel's thread ('thread', the
 *    default) or on its own worker thread ('worker', see worker-tier.ts for what that tier
 *    supports); a worker domain's slots are reclaimed once its thread has exited; loadAsync waits
 *    for a worker's start-up and init without holding the kernel thread (load holds it);
 *  - a shadow's supervisor capability may entrust values it moves into its driver: when a driver
 *    instance the capability handed out dies holding them, the reclaim gives them back to the live
 *    shadow (with fresh handles, through recall) instead of freeing them; nothing else changes
 *    hands, and the dead instance's own handles stay revoked (see heap.ts, reclaim); it may also
 *    route its callers' calls straight to the instance it holds, its code run only when one fails
 *    (routes.ts).
 */
import './lockdown.js';
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { KeyObject } from 'node:crypto';
import { ExchangeHeap, KERNEL_OWNER, type HeapOptions } from './heap.js';
import { createHandleKit, HandleError, type HandleKit, type ScalarKind } from './rref.js';
import { Domain } from './domain.js';
import { createProxyRuntime, type Link, type ProxyRuntime } from './proxy.js';
import { KernelError, STOPPED_RUNNING, describeThrown, isDeadDomainLeftover, printable, isRpcError, makeRpcError } from './errors.js';
import { defaultTrustedKeys, parseArtifact, verifyArtifact, type Artifact } from './artifact.js';
import { FINGERPRINT, LAYOUTS, PROXIES, SIGNATURES, VIA_PROXIES } from '../gen/idl.js';
import { dequeFieldsOf, routeRefusal, type RouteHook, type RouteRecord, type RouteTable } from './routes.js';
import { TICK_BUDGET, checkExport, instantiateDomain, type DeadlineHooks } from './isolation.js';
import type { DetachWait, DeviceHandle } from '../devices/host.js';
import { LOAN_COLUMNS, NO_LOANS, type DmaFault } from '../devices/iommu.js';
import { ringWake, WAKE_WORD } from '../devices/bus.js';
import type { ResourceLimits } from 'node:worker_threads';
import { WorkerDomain, checkWorkerPlacement, type WorkerHost } from './worker-tier.js';
import { isPrimitive } from './worker-ring.js';
import { WorkerPool } from './worker-pool.js';
import { MemoryPressure, defaultHeapPanicBytes } from './memory-pressure.js';
import { timerDelay } from './timers.js';

/** A cross-domain async result is delivered through setImmediate once a run is this old (ms). */
const YIELD_AFTER_MS = 20;

/**
 * Instance tokens (isolation.ts): what the shared deadline hooks read a check's instance from —
 * a private field, one load per check and per `await` (a WeakMap from token to instance cost ~12
 * ns each). To domain code, which can hold its own token, a token is an empty frozen object:
 * nothing leads from it back to this class (its prototype has no constructor), so no token can be
 * made, nor its instance read, outside this file.
 */
let instanceOfToken: (token: object) => Domain | undefined;
class InstanceToken {
  readonly #instance: Domain;
  constructor(d: Domain) {
    this.#instance = d;
  }
  static {
    instanceOfToken = (t) => (#instance in t ? (t as InstanceToken).#instance : undefined);
  }
}
Reflect.deleteProperty(InstanceToken.prototype, 'constructor');
harden(InstanceToken.prototype);

export type ImportSpec =
  /** The export of the live domain with this name. */
  | string
  /** The live domain itself (its export). */
  | Domain
  /** A supervisor capability over the named domain (for shadows): current(), restart(). */
  | { supervise: string }
  /** A trusted host object, passed hardened (tests, host services). */
  | { object: object };

export type Placement = 'thread' | 'worker';

export interface LoadOptions {
  /** Instance name (default: the manifest's name). */
  name?: string;
  /**
   * Where the domain runs: in the kernel's thread (default), or on its own worker thread, where
   * it can be preempted, given resource limits and run in parallel (see worker-tier.ts).
   */
  placement?: Placement;
  /** Worker placement only: heap and stack limits of the domain's thread (exceeding them kills it). */
  resourceLimits?: ResourceLimits;
  imports?: ImportSpec[];
  /** Deadline for one synchronous run of this domain, in ms. */
  deadlineMs?: number;
  /** Device whose registers and interrupts the domain drives. */
  device?: DeviceHandle;
  config?: Record<string, string | number | boolean>;
}

export interface KernelOptions extends HeapOptions {
  trustedKeys?: KeyObject[];
  defaultDeadlineMs?: number;
  /** Called for every domain log line (default: stderr with the domain name). */
  log?: (domain: string, line: string) => void;
  /**
   * Kernel heap bytes (V8's used_heap_size) over which the in-thread domain allocating panics
   * (memory-pressure.ts; default half of V8's heap limit; Infinity: never).
   */
  heapPanicBytes?: number;
}

export interface DomainInfo {
  id: number;
  name: string;
  placement: Placement;
  state: 'live' | 'dead';
  calls: number;
  faults: number;
  restarts: number;
  heapBytes: number;
  heapSlots: number;
  deathCause: string | null;
  lastFault: string | null;
  /** Worker placement: the interface references it holds (imports included); null in-thread. */
  capabilities: number | null;
}

interface Recipe {
  artifact: Artifact;
  opts: LoadOptions;
}

export class Kernel {
  readonly heap: ExchangeHeap;
  readonly kit: HandleKit;
  readonly rt: ProxyRuntime;
  readonly fingerprint = FINGERPRINT;
  /** The kernel as a caller: always live, owner id 0. */
  readonly self = new Domain(KERNEL_OWNER, 'kernel', null, Infinity);

  private nextId = 1;
  private readonly byName = new Map<string, Domain>();
  /** Live instances by id (for attributing ownership violations). */
  private readonly liveById = new Map<number, Domain>();
  private readonly recipes = new Map<string, Recipe>();
  private readonly crashAt = new Map<Domain, number>();
  /** Live driver domains and the device each drives (attach at load, detach at termination). */
  private readonly deviceOf = new Map<Domain, DeviceHandle>();
  /** Per IOMMU loan column, the driver instance it was given to, until its device is released. */
  private readonly loanColumnUser: (Domain | null)[] = new Array<Domain | null>(LOAN_COLUMNS).fill(null);
  private readonly proxyLinks = new WeakMap<object, Link>();
  private readonly trusted: KeyObject[];
  private readonly defaultDeadlineMs: number;
  private readonly logSink: (domain: string, line: string) => void;
  /** Start of the current run of the event loop (refreshed by the heartbeat). */
  private sliceStart = performance.now();
  private readonly heartbeat: ReturnType<typeof setInterval>;
  private readonly pressure: MemoryPressure;
  /** Worker-placed instances, from load until their thread has exited. */
  private readonly workers = new Map<Domain, WorkerDomain>();
  /** Every worker-placed instance, for list() after its thread is gone. */
  private readonly inWorker = new WeakSet<Domain>();
  private readonly workerHost: WorkerHost;
  /** Fault listeners (observability: the shell's `domains`, tests, the CLI). */
  private readonly faultListeners = new Set<(d: Domain, cause: string, message: string) => void>();
  /** Per live shadow (heir) id: the instances of its supervised domain its capability handed out. */
  private readonly supervisedBy = new Map<number, Map<number, Domain>>();
  /** Per heir id: entrusted roots inherited from dead instances and not yet recalled. */
  private readonly bequests = new Map<number, number[]>();
  /** Reclaims of dead device drivers still waiting for the device to acknowledge its detach. */
  private readonly reclaiming = new WeakMap<Domain, Promise<void>>();
  /** The deadline hooks every in-thread instance's checks call (makeDeadlineHooks). */
  private readonly deadlineHooks = this.makeDeadlineHooks();

  constructor(opts: KernelOptions = {}) {
    this.heap = new ExchangeHeap(opts);
    this.kit = createHandleKit(this.heap, (holder, err) => this.onViolation(holder, err));
    for (const l of LAYOUTS) this.kit.registerLayout(l);
    this.heap.setInheritance({
      mayInherit: (dead, heir) => this.liveById.has(heir) && this.supervisedBy.get(heir)?.has(dead) === true,
      inherited: (_dead, heir, roots) => {
        const got = this.bequests.get(heir);
        if (got === undefined) this.bequests.set(heir, roots);
        else got.push(...roots);
      },
    });
    this.trusted = opts.trustedKeys ?? defaultTrustedKeys();
    this.defaultDeadlineMs = opts.defaultDeadlineMs ?? 2000;
    this.pressure = new MemoryPressure(opts.heapPanicBytes ?? defaultHeapPanicBytes());
    // Every line a domain logs (in-thread or from a worker) is its own words: printable.
    const sink = opts.log ?? ((d, line) => process.stderr.write(`[${d}] ${line}\n`));
    this.logSink = (d, line) => sink(d, printable(line));
    this.rt = createProxyRuntime({
      kit: this.kit,
      fault: (d, cause, err) => this.fault(d, cause, err),
      makeProxy: (name, link) => this.makeProxy(name, link),
      newLink: (caller, callee, target) => this.newLink(caller, callee, target),
      linkOfProxy: (o) => this.proxyLinks.get(o),
      routeVia: (outer, table, inst) => {
        const via = this.newLink(outer.caller, inst, inst.exportsObj!);
        via.outer = outer;
        outer.via = VIA_PROXIES[table.iface]!(this.rt, via);
        outer.viaLink = via;
      },
      shouldYield: () => performance.now() - this.sliceStart > YIELD_AFTER_MS,
      kernelEntry: () => {
        this.sliceStart = performance.now();
      },
    });
    this.heartbeat = setInterval(() => {
      this.sliceStart = performance.now();
      this.pressure.rebase(); // what was allocated outside domain code's runs is not theirs
    }, 5);
    this.heartbeat.unref();
    this.workerHost = {
      heap: this.heap,
      kit: this.kit,
      rt: this.rt,
      fault: (d, cause, err) => this.fault(d, cause, err),
      log: (d, line) => this.logSink(d.name, line),
      newRun: () => {
        this.sliceStart = performance.now();
      },
      calleeName: (proxy) => this.proxyLinks.get(proxy)?.callee.name ?? 'host',
      threads: new WorkerPool(new URL('./worker-host.js', import.meta.url)),
    };
    Kernel.trapUnhandledRejections();
  }

  /**
   * A rejection nobody handles may come from domain code (a promise a domain dropped); Node's
   * default would end the kernel process. The kernel logs it instead — unless it is a dead
   * domain's own leftover (isDeadDomainLeftover: a continuation of a terminated domain, stopped at
   * a deadline check or refused a kernel call), which concerns nobody alive. Installed once per
   * process. (A domain that must leave a chain unawaited hands it to sys.detach, which ends it in
   * the kernel: no rejection of it is ever left unhandled, dead or alive.)
   */
  private static trapped = false;
  private static trapUnhandledRejections(): void {
    if (Kernel.trapped) return;
    Kernel.trapped = true;
    process.on('unhandledRejection', (reason) => {
      if (isDeadDomainLeftover(reason)) return;
      const msg = describeThrown(reason);
      process.stderr.write(`kernel: unhandled rejection (ignored; the domain that dropped it keeps running): ${msg}\n`);
    });
  }

  // ---- loading ----------------------------------------------------------------------------------

  /**
   * The loader's checks of an artifact, in order, as load() and `redleaf inspect` run them:
   * verifyArtifact's, then its export against this kernel's interfaces. An export no interface
   * declares (a build before the trusted build refused one) loaded, ran its init unchecked
   * (checkExport knew no methods to look for) and failed only when bound.
   */
  static verify(a: Artifact, trusted: readonly KeyObject[]): void {
    verifyArtifact(a, trusted, FINGERPRINT);
    const exp = a.manifest.exports;
    if (exp !== null && !Object.hasOwn(PROXIES, exp)) {
      throw new KernelError('ENOIFACE', `domain artifact "${a.manifest.name}" exports ${exp}, which no interface of this kernel declares: fix "exports" in its domain.json and rebuild it`);
    }
  }

  /**
   * Read an artifact file (no verification yet: `load` verifies). Only a regular file: a FIFO would
   * block the kernel thread until a writer came, and a device such as /dev/zero would be read
   * without end. It is opened without blocking and checked before anything is read.
   */
  static readArtifact(path: string): Artifact {
    let text: string;
    let fd = -1;
    try {
      fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
      const st = fstatSync(fd);
      if (st.isDirectory()) throw new KernelError('EISDIR', `cannot read domain artifact ${path}: it is a directory, not an artifact file`);
      if (!st.isFile()) throw new KernelError('EINVAL', `cannot read domain artifact ${path}: it is not a regular file (a FIFO, socket or device); give the path of an artifact file`);
      text = readFileSync(fd, 'utf8');
    } catch (e) {
      if (e instanceof KernelError) throw e;
      // The host's reason as the code (ENOENT, EISDIR, EACCES ...): what the caller should fix.
      throw new KernelError((e as NodeJS.ErrnoException).code ?? 'ENOENT', `cannot read domain artifact ${path}: ${(e as Error).message}`);
    } finally {
      if (fd >= 0) closeSync(fd);
    }
    return parseArtifact(text, path);
  }

  /** Verify, isolate and initialise a domain; returns its record. */
  load(artifactOrPath: Artifact | string, opts: LoadOptions = {}): Domain {
    const made = this.begin(artifactOrPath, opts);
    return this.loaded(this.initialised(made), made.artifact, opts);
  }

  /**
   * load() without holding the kernel thread while a worker domain's thread starts and its init
   * runs (Atomics.waitAsync instead of Atomics.wait): other domains run meanwhile. The domain is
   * live from the start but exports nothing until init has returned (bind answers ENOEXPORT);
   * terminating it meanwhile rejects the load with EINIT. In-thread domains load as with load().
   */
  async loadAsync(artifactOrPath: Artifact | string, opts: LoadOptions = {}): Promise<Domain> {
    const made = this.begin(artifactOrPath, opts);
    return this.loaded(await this.initialisedAsync(made), made.artifact, opts);
  }

  /** Verify the artifact and make the instance: initialised if in-thread, its worker started if not. */
  private begin(artifactOrPath: Artifact | string, opts: LoadOptions): { d: Domain; worker: WorkerDomain | null; artifact: Artifact } {
    const artifact = typeof artifactOrPath === 'string' ? Kernel.readArtifact(artifactOrPath) : artifactOrPath;
    Kernel.verify(artifact, this.trusted);
    const name = opts.name ?? artifact.manifest.name;
    const existing = this.byName.get(name);
    if (existing?.live) throw new KernelError('EEXIST', `a live domain named ${name} exists already`);
    return { ...this.instantiate(artifact, opts, name, existing, false), artifact };
  }

  /** `d` loaded and initialised: restart() makes its next instances from the same recipe. */
  private loaded(d: Domain, artifact: Artifact, opts: LoadOptions): Domain {
    this.recipes.set(d.name, { artifact, opts });
    return d;
  }

  /**
   * A new instance of `name`; `restarted`: by restart() (its count goes up before its init runs:
   * Sys.restarts). An in-thread instance comes back initialised; a worker instance with its
   * thread asked to boot, for the caller to wait for its init (WorkerDomain.start/startAsync).
   */
  private instantiate(artifact: Artifact, opts: LoadOptions, name: string, previous: Domain | undefined, restarted: boolean): { d: Domain; worker: WorkerDomain | null } {
    const m = artifact.manifest;
    const imports = opts.imports ?? [];
    if (imports.length !== m.imports.length) {
      throw new KernelError('EIMPORTS', `domain ${name} imports ${m.imports.length} interface(s) (${m.imports.join(', ') || 'none'}), but ${imports.length} were given`);
    }
    const placement = opts.placement ?? 'thread';
    if (placement !== 'thread' && placement !== 'worker') throw new KernelError('EINVAL', `placement must be 'thread' or 'worker', got ${String(placement)}`);
    if (placement === 'worker') checkWorkerPlacement(name, m, opts.device !== undefined);
    const d = new Domain(this.nextId++, name, artifact, opts.deadlineMs ?? this.defaultDeadlineMs);
    if (previous) {
      d.faults = previous.faults;
      d.restarts = previous.restarts + (restarted ? 1 : 0);
      d.lastFault = previous.lastFault;
    }
    this.byName.set(name, d);
    this.liveById.set(d.id, d);
    try {
      const importObjs = imports.map((spec, i) => this.resolveImport(d, spec, m.imports[i]!));
      if (placement === 'worker') {
        const w = new WorkerDomain(this.workerHost, d, artifact, { deadlineMs: d.deadlineMs, imports: importObjs, config: opts.config, resourceLimits: opts.resourceLimits });
        this.workers.set(d, w);
        this.inWorker.add(d);
        void w.stopped.then(() => this.workers.delete(d));
        return { d, worker: w };
      }
      if (opts.device) this.attachDevice(d, opts.device);
      const sys = this.makeSys(d, opts);
      this.sliceStart = performance.now(); // init is a new run of domain code (a kernel entry)
      const init = instantiateDomain(artifact, this.deadlineHooks, this.instanceToken(d), artifact.manifest.name);
      if (typeof init !== 'function') throw new KernelError('EINIT', `domain ${name} does not export an init function`);
      const exported = init(sys, ...importObjs) as unknown;
      if (!d.live) throw new KernelError('EINIT', `domain ${name} died during init (${d.lastFault?.message ?? d.deathCause})`);
      d.exportsObj = checkExport(name, m.exports, exported);
      return { d, worker: null };
    } catch (e) {
      this.initFailed(d, e);
    }
  }

  /** The instance `made`, its worker's init waited for (holding the kernel thread) if it has one. */
  private initialised(made: { d: Domain; worker: WorkerDomain | null }): Domain {
    const { d, worker } = made;
    if (worker === null) return d;
    try {
      return this.workerReady(d, worker.start());
    } catch (e) {
      this.initFailed(d, e);
    }
  }

  /** initialised() without holding the kernel thread: Atomics.waitAsync for the worker's init. */
  private async initialisedAsync(made: { d: Domain; worker: WorkerDomain | null }): Promise<Domain> {
    const { d, worker } = made;
    if (worker === null) return d;
    try {
      return this.workerReady(d, await worker.startAsync());
    } catch (e) {
      this.initFailed(d, e);
    }
  }

  /** A worker instance's init returned with `exported` (its export's endpoint). */
  private workerReady(d: Domain, exported: object | null): Domain {
    d.exportsObj = exported;
    this.sliceStart = performance.now(); // the kernel thread waited for the worker's init
    return d;
  }

  /** Instance `d` failed to initialise with `e`: it is terminated, and the load throws EINIT (or e's own KernelError). */
  private initFailed(d: Domain, e: unknown): never {
    if (d.live) this.terminate(d, 'panic');
    if (e instanceof KernelError) throw e;
    throw new KernelError('EINIT', `domain ${d.name} failed to initialise: ${describeThrown(e)}`);
  }

  private resolveImport(d: Domain, spec: ImportSpec, iface: string): object {
    if (typeof spec === 'string' || spec instanceof Domain) {
      const callee = typeof spec === 'string' ? this.byName.get(spec) : spec;
      if (!callee?.live) throw new KernelError('EIMPORTS', `domain ${d.name}: import ${iface} names domain ${String(typeof spec === 'string' ? spec : spec.name)}, which is not live`);
      const exp = callee.artifact?.manifest.exports;
      if (exp !== iface) throw new KernelError('EIMPORTS', `domain ${d.name} imports ${iface}, but ${callee.name} exports ${exp ?? 'nothing'}`);
      // A link made now would target nothing, and its first call would fault the callee.
      if (callee.exportsObj === null) throw new KernelError('EIMPORTS', `domain ${d.name}: import ${iface} names domain ${callee.name}, which is still initialising in its worker (Kernel.loadAsync)`);
      return this.makeProxy(iface, this.newLink(d, callee, callee.exportsObj));
    }
    if ('supervise' in spec) return this.supervisor(d, spec.supervise, iface);
    return this.hostCapability(d, spec.object);
  }

  /** A proxy of `d`'s export for `caller` (default: the kernel itself, for host code and tests). */
  bind<T = any>(d: Domain | string, caller: Domain = this.self): T {
    const callee = typeof d === 'string' ? this.byName.get(d) : d;
    if (!callee) throw new KernelError('ENOENT', `no domain named ${String(d)}`);
    const exp = callee.artifact?.manifest.exports;
    if (!exp || callee.exportsObj === null) {
      const why = !exp ? 'exports nothing' : !callee.live ? `is dead (${callee.deathCause ?? 'terminated'})` : 'is still initialising in its worker (Kernel.loadAsync)';
      throw new KernelError('ENOEXPORT', `domain ${callee.name} ${why}`);
    }
    return this.makeProxy(exp, this.newLink(caller, callee, callee.exportsObj)) as T;
  }

  private makeProxy(name: string, link: Link): object {
    const factory = PROXIES[name];
    if (!factory) throw new KernelError('ENOIFACE', `no interface named ${name}`);
    const worker = this.workers.get(link.callee);
    const p = worker ? worker.proxy(name, link) : factory(this.rt, link);
    this.proxyLinks.set(p, link);
    return p;
  }

  private newLink(caller: Domain, callee: Domain, target: object): Link {
    const link: Link = { caller, callee, target, relayFrom: null, relayTo: null, relayType: -1, via: null, viaLink: null, outer: null };
    if (callee !== this.self) {
      const inbound = callee.inbound;
      inbound.push(link);
      // A link whose caller died is garbage, but the list would keep it (and the callee object it
      // targets) for as long as the callee lives — one per process for the rv6 core. Drop such
      // links whenever the list reaches a power of two: amortized O(1) per new link.
      const n = inbound.length;
      if (n >= 64 && (n & (n - 1)) === 0) {
        let kept = 0;
        for (const l of inbound) if (l.caller.live) inbound[kept++] = l;
        inbound.length = kept;
      }
    }
    const crash = this.crashAt.get(callee);
    if (crash !== undefined) this.armCrash(link, crash);
    return link;
  }

  // ---- lifecycle ----------------------------------------------------------------------------------

  get(name: string): Domain | undefined {
    return this.byName.get(name);
  }

  list(): DomainInfo[] {
    const usage = this.heap.usageByOwner();
    return [...this.byName.values()].map((d) => {
      const u = usage.get(d.id) ?? { bytes: 0, slots: 0 };
      return {
        id: d.id,
        name: d.name,
        placement: this.inWorker.has(d) ? 'worker' : 'thread',
        state: d.state,
        calls: d.calls,
        faults: d.faults,
        restarts: d.restarts,
        heapBytes: u.bytes,
        heapSlots: u.slots,
        deathCause: d.deathCause,
        lastFault: d.lastFault?.message ?? null,
        capabilities: this.workers.get(d)?.capabilities ?? null,
      };
    });
  }

  onFault(fn: (d: Domain, cause: string, message: string) => void): () => void {
    this.faultListeners.add(fn);
    return () => this.faultListeners.delete(fn);
  }

  /** A fault of `d`: counted, reported, then the domain is terminated. */
  fault(d: Domain, cause: 'panic' | 'bad-argument' | 'deadline', err: unknown): void {
    if (!d.live || d === this.self) return;
    d.faults++;
    const message = describeThrown(err);
    d.lastFault = { kind: cause, message, at: Date.now() };
    this.terminate(d, cause === 'deadline' ? 'deadline' : 'panic');
    for (const l of this.faultListeners) l(d, cause, message);
  }

  /**
   * Terminate a domain (the same cleanup whatever the cause). Idempotent. Only a live domain of
   * this kernel's own records is terminated: an object that merely looks like one (its id naming
   * another domain) is ignored, not believed.
   */
  terminate(target: Domain | string, cause = 'terminated'): void {
    const d = typeof target === 'string' ? this.byName.get(target) : target instanceof Domain ? target : undefined;
    if (d === undefined || this.liveById.get(d.id) !== d) return;
    d.state = 'dead';
    d.deathCause = cause;
    d.diedAtMs = performance.now();
    this.liveById.delete(d.id);
    // Its device stops first (bus mastering off, a reset requested): the device answers while the
    // rest of the termination runs, and the reclaim below waits only for what is left of that.
    const dev = this.deviceOf.get(d);
    this.deviceOf.delete(d);
    const detached = dev === undefined ? null : dev.detach();
    for (const call of d.inflight.drain()) call.unwind(cause);
    for (const t of d.timers) clearTimeout(t);
    d.timers.clear();
    for (const t of d.intervals) clearInterval(t);
    d.intervals.clear();
    for (const off of d.irqs) off();
    d.irqs.clear();
    // A worker's thread may still be running: its slots are reclaimed once it has exited.
    const worker = this.workers.get(d);
    if (worker) worker.stop();
    else this.reclaimAfterDetach(d, detached);
    for (const l of d.inbound) l.target = null;
    d.inbound.length = 0;
    // As a shadow, it inherits nothing more (what it inherited is its own now, reclaimed above).
    this.supervisedBy.delete(d.id);
    this.bequests.delete(d.id);
    d.exportsObj = null;
    this.crashAt.delete(d);
  }

  /**
   * Give `dev` to the new instance `d`: refuse a device without an IOMMU over this kernel's
   * memory (its driver could have it reach any domain's) and one another live domain drives, then
   * reset it.
   */
  private attachDevice(d: Domain, dev: DeviceHandle): void {
    if (dev.iommu !== this.heap.iommuTables) {
      throw new KernelError('EINVAL', `device ${dev.name} has no IOMMU over this kernel's memory, so its driver could have it reach any domain's: start it with iommu: kernel.heap.iommuTables`);
    }
    for (const [owner, other] of this.deviceOf) {
      if (other === dev) throw new KernelError('EBUSY', `device ${dev.name} is driven by live domain ${owner.name}`);
    }
    const column = this.freeLoanColumn(dev);
    dev.onDmaFault((f) => this.dmaFault(dev, f));
    dev.attach(d.id, column);
    d.loanColumn = column;
    this.loanColumnUser[column] = d;
    this.heap.guardDma(d.id, dev.dmaEpoch);
    this.deviceOf.set(d, dev);
  }

  /**
   * An IOMMU loan column for a driver of `dev`: one no driver holds (they hold theirs until their
   * device acknowledged its detach) and with no loan left in it from the last (a call into a dead
   * driver still lending).
   */
  private freeLoanColumn(dev: DeviceHandle): number {
    for (let c = 0; c < LOAN_COLUMNS; c++) if (this.loanColumnUser[c] === null && this.heap.loansIn(c) === 0) return c;
    throw new KernelError('EBUSY', `device ${dev.name}: all ${LOAN_COLUMNS} IOMMU loan columns are held by drivers or by loans still out to dead ones; stop a driver, or wait for its callers' loans to end`);
  }

  /** Terminated driver `d`'s device acknowledged its detach: it does no DMA, reads no loan column. */
  private deviceReleased(d: Domain): void {
    this.heap.unguardDma(d.id);
    if (d.loanColumn !== NO_LOANS && this.loanColumnUser[d.loanColumn] === d) this.loanColumnUser[d.loanColumn] = null;
  }

  /**
   * A transfer `dev`'s IOMMU refused (src/devices/iommu.ts): the driver instance it was attached
   * to when it refused, if still live and still driving it, pointed its device at memory it does
   * not own. That is its violation, as a handle used on another's value is: it is terminated (its
   * shadow, if it has one, restarts it), and the memory's owner is never touched.
   */
  private dmaFault(dev: DeviceHandle, f: DmaFault): void {
    const d = this.liveById.get(f.domain);
    if (d === undefined || this.deviceOf.get(d) !== dev) return;
    const what = `${f.write ? 'write' : 'read'} ${f.len} bytes at physical address 0x${f.addr.toString(16)}`;
    const whose = f.write ? `memory domain ${d.name} does not own` : `memory domain ${d.name} does not own and no call into it has borrowed`;
    this.fault(d, 'panic', new KernelError('EDMA', `DMA fault (EDMA): device ${dev.name} refused to ${what}: ${whose}`));
  }

  /**
   * Free a terminated domain's heap slots; if it drove a device, only after the device stopped
   * DMA (`detached`: the wait for its detach, null if none). Detach normally answers at once; a
   * device slow to acknowledge delays only the reclamation, never the rest of termination.
   */
  private reclaimAfterDetach(d: Domain, detached: DetachWait | null): void {
    const quiet = detached === null ? true : detached();
    if (quiet === true) {
      this.deviceReleased(d);
      this.heap.reclaim(d.id);
    } else {
      this.reclaiming.set(
        d,
        quiet.then(() => {
          this.deviceReleased(d);
          this.heap.reclaim(d.id);
          this.reclaiming.delete(d);
        }),
      );
    }
  }

  /** Resolves once terminated instance `d`'s slots were reclaimed (device detach, worker exit). */
  private whenReclaimed(d: Domain): Promise<unknown> {
    return Promise.all([this.whenStopped(d), this.reclaiming.get(d)]);
  }

  /** Terminated in-thread instance `d`'s slots were reclaimed already (its device detached at once). */
  private reclaimedNow(d: Domain): boolean {
    return !d.live && !this.reclaiming.has(d) && !this.workers.has(d);
  }

  /**
   * Resolves once terminated instance `d` holds nothing any more: at once for an in-thread
   * domain, after its thread has exited for a worker domain (its slots are reclaimed then).
   */
  whenStopped(d: Domain): Promise<void> {
    return this.workers.get(d)?.stopped ?? Promise.resolve();
  }

  /**
   * Async calls `d` made that are still in flight in live domains. Those of a dead domain go on in
   * their callees (nothing unwinds a call because its caller died); a restart that must not race
   * with them (a file system's block I/O) waits for none to be left.
   */
  callsInFlightFrom(d: Domain): number {
    let n = 0;
    for (const callee of this.liveById.values()) n += callee.inflight.countFrom(d);
    return n;
  }

  /** Resolves true once callsInFlightFrom(d) is 0 (looked at every millisecond), false if it is not within `timeoutMs`. */
  async callsFromSettled(d: Domain, timeoutMs: number): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    while (this.callsInFlightFrom(d) > 0) {
      if (performance.now() > until) return false;
      await new Promise((r) => setTimeout(r, 1));
    }
    return true;
  }

  /** Restart `name` from the same artifact, with the same imports and options. */
  restart(name: string): Domain {
    return this.initialised(this.reinstantiate(name));
  }

  /**
   * restart() without holding the kernel thread while a worker domain's new thread starts and its
   * init runs, as loadAsync (the same rules meanwhile). In-thread domains restart as with restart().
   */
  async restartAsync(name: string): Promise<Domain> {
    return this.initialisedAsync(this.reinstantiate(name));
  }

  /** A new instance of `name` from its recipe, the old one terminated first if it still lives. */
  private reinstantiate(name: string): { d: Domain; worker: WorkerDomain | null } {
    const recipe = this.recipes.get(name);
    const old = this.byName.get(name);
    if (!recipe || !old) throw new KernelError('ENOENT', `no domain named ${name} to restart`);
    if (old.live) this.terminate(old, 'restarted');
    return this.instantiate(recipe.artifact, recipe.opts, name, old, true);
  }

  /**
   * Fault injection: crash `name` now, or at its `afterCalls`-th next call (1 = the next call).
   * An injected crash is a panic like any other: counted, cleaned up, reported. A shadow whose
   * calls the kernel routes (routes.ts) runs none of its code on a routed call, so arming one
   * turns its routing off until it dies: its calls then reach it, and the one armed faults it.
   */
  injectFault(name: string, when: 'now' | { afterCalls: number }): void {
    const d = this.byName.get(name);
    if (!d?.live) throw new KernelError('ENOENT', `no live domain named ${name}`);
    if (when === 'now') {
      this.fault(d, 'panic', new Error('injected fault'));
      return;
    }
    if (!(when.afterCalls >= 1)) throw new KernelError('EINVAL', `afterCalls must be >= 1`);
    const at = d.calls + when.afterCalls;
    this.crashAt.set(d, at);
    d.routes = null;
    for (const l of d.inbound) this.armCrash(l, at);
  }

  /**
   * Arm a crash on a link by swapping its target for a trap object whose every method faults the
   * callee when the call count reaches `at`. Keeps the proxy fast path free of injection checks.
   */
  private armCrash(link: Link, at: number): void {
    const real = link.target;
    const callee = link.callee;
    const kernel = this;
    link.target = new Proxy(real, {
      get(t, prop) {
        const v = Reflect.get(t, prop);
        if (typeof v !== 'function') return v;
        return function (this: unknown, ...args: unknown[]) {
          if (callee.calls >= at && kernel.crashAt.get(callee) === at) {
            kernel.crashAt.delete(callee);
            for (const l of callee.inbound) if (l.target !== null) l.target = real;
            throw new Error(`injected fault at call ${at}`);
          }
          return Reflect.apply(v, t, args);
        };
      },
    });
  }

  /** Stop the kernel: terminate every domain. */
  shutdown(): void {
    for (const d of [...this.byName.values()]) this.terminate(d, 'shutdown');
    clearInterval(this.heartbeat);
    this.workerHost.threads.close();
  }

  // ---- per-domain capabilities ------------------------------------------------------------------

  private onViolation(holder: number, err: HandleError): void {
    const d = this.liveById.get(holder);
    if (d?.live) this.fault(d, 'panic', err);
  }

  /** A new token for instance `d`'s deadline checks (InstanceToken). */
  private instanceToken(d: Domain): object {
    return Object.freeze(new InstanceToken(d));
  }

  /**
   * The deadline check and await guard the trusted build compiled into domain code: one pair for
   * every in-thread instance, told whose check it is by the instance's token (bundle.ts says why).
   */
  private makeDeadlineHooks(): DeadlineHooks {
    const instanceOf = (token: object): Domain => {
      const d = typeof token === 'object' && token !== null ? instanceOfToken(token) : undefined;
      if (d === undefined) throw new TypeError('a deadline check needs its instance token');
      return d;
    };
    const dead = (d: Domain): never => {
      throw makeRpcError(d.deathCause === 'deadline' ? 'timeout' : 'callee-dead', d.name, STOPPED_RUNNING, `domain ${d.name} is dead`);
    };
    const tick = (token: object): number => {
      const d = instanceOf(token);
      if (!d.live) return dead(d);
      const now = performance.now();
      if (now - this.sliceStart > d.deadlineMs) {
        this.fault(d, 'deadline', new Error(`deadline of ${d.deadlineMs} ms exceeded`));
        return dead(d);
      }
      const pressed = this.pressure.underPressure(now);
      if (pressed !== null) {
        this.fault(d, 'panic', new Error(pressed));
        return dead(d);
      }
      return TICK_BUDGET;
    };
    const aw = <T>(token: object, v: T): T => {
      const d = instanceOf(token);
      if (!d.live) dead(d);
      return v;
    };
    return harden({ tick, aw });
  }

  /**
   * Run domain code from a kernel entry point (timer, task, interrupt): a throw is a panic.
   * A timer or an interrupt is a macrotask, so it starts a new run (deadline clock reset); a
   * spawned task is a microtask of the current run and does not, or a chain of spawns could
   * starve the event loop without ever meeting its deadline.
   */
  private guard(d: Domain, fn: () => unknown, newRun: boolean): void {
    if (!d.live) return;
    if (newRun) this.sliceStart = performance.now();
    try {
      this.holdEnd(d, fn());
    } catch (e) {
      this.fault(d, 'panic', e);
    }
  }

  /** End a promise `r` of `d`'s in the kernel: its rejection is d's panic (nothing once d is dead). */
  private holdEnd(d: Domain, r: unknown): void {
    if (r instanceof Promise) Reflect.apply(Promise.prototype.then, r, [undefined, (e: unknown) => this.fault(d, 'panic', e)]);
  }

  private makeSys(d: Domain, opts: LoadOptions): object {
    const kit = this.kit;
    const live = (): void => {
      if (!d.live) throw makeRpcError('caller-dead', 'kernel', 'sys', `domain ${d.name} is dead`);
    };
    const timerIds = new Map<number, ReturnType<typeof setTimeout>>();
    let nextTimer = 1;
    const alloc = harden({
      bytes: (n: number, align?: number) => (live(), kit.allocBytes(d.id, n, align)),
      array: (kind: ScalarKind, count: number) => (live(), kit.allocArray(d.id, kind, count)),
      struct: (name: string) => (live(), kit.allocStruct(d.id, name)),
      deque: (capacity: number) => (live(), kit.allocDeque(d.id, capacity)),
    });
    const sys: Record<string, unknown> = {
      name: d.name,
      restarts: d.restarts,
      alloc,
      config: harden({ ...(opts.config ?? {}) }),
      spawn: (fn: () => unknown) => {
        live();
        queueMicrotask(() => this.guard(d, fn, false));
      },
      detach: (p: Promise<unknown>) => {
        live();
        // A throw here (p's species getter, a Proxy in its prototype chain) is the domain's own, in its own call.
        this.holdEnd(d, p);
      },
      setTimeout: (fn: () => void, ms: number) => {
        live();
        const id = nextTimer++;
        const t = setTimeout(() => {
          d.timers.delete(t);
          timerIds.delete(id);
          this.guard(d, fn, true);
        }, timerDelay(ms));
        d.timers.add(t);
        timerIds.set(id, t);
        return id;
      },
      clearTimeout: (id: number) => {
        const t = timerIds.get(id);
        if (t !== undefined) {
          clearTimeout(t);
          d.timers.delete(t);
          d.intervals.delete(t);
          timerIds.delete(id);
        }
      },
      setInterval: (fn: () => void, ms: number) => {
        live();
        const id = nextTimer++;
        const t = setInterval(() => this.guard(d, fn, true), timerDelay(ms));
        d.intervals.add(t);
        timerIds.set(id, t);
        return id;
      },
      clearInterval: (id: number) => (sys.clearTimeout as (id: number) => void)(id),
      yield: () => {
        live();
        return new Promise<void>((resolve) => setImmediate(resolve));
      },
      now: () => performance.now(),
      log: (...parts: unknown[]) => {
        live();
        this.logSink(d.name, parts.map((p) => String(p)).join(' '));
      },
      panic: (reason: string) => {
        const err = new Error(`panic: ${String(reason)}`);
        this.fault(d, 'panic', err);
        throw err;
      },
      rpcErrorKind: (e: unknown) => (isRpcError(e) ? e.kind : null),
    };
    if (opts.device) {
      const dev = opts.device;
      sys.device = harden({
        bar0: dev.bar0,
        wakeWord: WAKE_WORD,
        wake: () => ringWake(dev.bar0),
        onInterrupt: (handler: (bits: number) => void) => {
          live();
          dev.onIrq((bits) => this.guard(d, () => handler(bits), true));
          d.irqs.add(() => dev.onIrq(null));
        },
      });
    }
    return harden(sys);
  }

  /**
   * A trusted host object handed to a domain: its methods are wrapped so that a dead domain's
   * leftover continuations cannot call them (like every other way out of a domain), and so that
   * they are given only what may cross a domain boundary: primitives and this kernel's RRef
   * handles (a test's fake Net is given NetIos). Anything else — an object with a getter or a
   * toString, a Proxy, a closure — would be the domain's code running inside host code, when and
   * as often as the host looks at it: the rv6 core's loader once handed such a "name" on to
   * Kernel.terminate, which took it for a Domain and reclaimed the memory of whatever live domain
   * its `id` getter named. It is the caller's bad argument, as through a proxy.
   */
  private hostCapability(d: Domain, obj: object): object {
    const wrapped: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) {
      wrapped[k] =
        typeof v === 'function'
          ? (...args: unknown[]) => {
              if (!d.live) throw makeRpcError('caller-dead', 'host', k, `domain ${d.name} is dead`);
              for (let i = 0; i < args.length; i++) {
                const a = args[i];
                if (!isPrimitive(a) && !this.kit.isHandle(a)) {
                  const detail = `argument ${i} must be a primitive or an RRef, got ${typeof a}`;
                  this.fault(d, 'bad-argument', new Error(`bad argument to host capability ${k}: ${detail}`));
                  throw makeRpcError('bad-argument', 'host', k, detail);
                }
              }
              return Reflect.apply(v, obj, args);
            }
          : v;
    }
    return harden(wrapped);
  }

  /**
   * Supervisor capability (for shadow domains) over the domain `name`. Besides restarting it, the
   * shadow may entrust values it moves into the instances it got from here, and recall them after
   * such an instance died (zero-copy reissue of moved requests: see bdev_shadow).
   */
  private supervisor(user: Domain, name: string, iface: string): object {
    const kernel = this;
    // One record per shadow, shared by all its supervisor capabilities: it is the heir of each.
    let handedOut = this.supervisedBy.get(user.id);
    if (handedOut === undefined) this.supervisedBy.set(user.id, (handedOut = new Map<number, Domain>()));
    const u32Array = this.kit.arrayType('u32');
    const u8Array = this.kit.arrayType('u8');
    /** What relay answers a captured call with (see ProxyRuntime.relay). */
    const token = harden(new Promise<never>(() => {}));
    /** The proxy last handed out, with its instance: the same object while that instance lives. */
    let bound: { d: Domain; proxy: object } | null = null;
    /** This shadow's routes, once route() was called (see routes.ts). */
    let routes: RouteTable | null = null;
    /**
     * A proxy to the current instance, which the shadow may now inherit from and its routes go
     * to. One proxy per instance, so that a route's hook is told the very object the shadow got.
     */
    const bindCurrent = (): object => {
      const d = kernel.byName.get(name);
      if (d === undefined || !d.live || bound?.d !== d) {
        if (d?.live) handedOut.set(d.id, d);
        const proxy = kernel.bind(name, user);
        bound = d?.live ? { d, proxy } : null;
        if (bound === null) return proxy;
      }
      if (routes !== null) {
        routes.instance = bound.d;
        routes.target = bound.proxy;
      }
      return bound.proxy;
    };
    const refuse = (method: string, detail: string): never => {
      throw makeRpcError('bad-argument', name, method, `supervisor.${method}: ${detail}`);
    };
    /**
     * Fresh handles to the values inherited so far and not yet recalled (each once); with `into`
     * (the slot of a deque of the shadow's), its byte arrays go there instead, as room allows.
     */
    const takeBequests = (into: number | null = null): readonly object[] => {
      const roots = kernel.bequests.get(user.id) ?? [];
      kernel.bequests.delete(user.id);
      const out: object[] = [];
      if (!user.live) return Object.freeze(out);
      // Byte arrays (buffers: childless) go into `into` by slot, in one run, with no handle minted
      // for them (a dead NIC driver gives back ~2000); those it has no room for come back as handles.
      const bufs: number[] = [];
      for (const s of roots) {
        if (kernel.heap.owner[s] !== user.id) continue;
        if (into !== null && kernel.heap.type[s] === u8Array) bufs.push(s);
        else out.push(kernel.kit.mint(s, user.id, false));
      }
      const taken = into === null ? 0 : kernel.kit.appendRoots(into, bufs, user.id);
      for (let i = taken; i < bufs.length; i++) out.push(kernel.kit.mint(bufs[i]!, user.id, false));
      // Frozen, not hardened: harden would freeze each handle too, and a frozen handle has a hidden
      // class of its own — every handle operation the JIT had specialised to the one class of
      // handles then deoptimizes ("wrong map"), which made a process's first driver restart cost
      // ~0.5 s of re-optimization. A handle needs no freezing: its state is in private fields,
      // its prototype is hardened (rref.ts sealHandles), and every other handle is unfrozen too.
      return Object.freeze(out);
    };
    /**
     * route()'s `record` checked: `field` a u32 field of the struct answered by at least one routed
     * method, `into` a u32 RRefArray the shadow owns with room for `keys` entries per method of
     * the interface up to the last one recorded, `keys` an integer from 1 to 4096.
     */
    const routeRecord = (iface: string, hooks: readonly (RouteHook | null)[], record: unknown): RouteRecord => {
      const { field, into, keys } = (typeof record === 'object' && record !== null ? record : {}) as Record<string, unknown>;
      if (typeof field !== 'string' || typeof keys !== 'number' || !Number.isInteger(keys) || keys < 1 || keys > 4096) {
        return refuse('route', 'record must be { field: a u32 field name, into: a u32 RRefArray, keys: an integer from 1 to 4096 }');
      }
      const slot = ownedSlot(into, 'record.into', 'route');
      const sigs = SIGNATURES[iface]!;
      if (kernel.heap.type[slot] !== u32Array) refuse('route', 'record.into must be an RRefArray<u32>');
      const offsets = sigs.map((m, i) => {
        const ret = m.ret;
        const f = hooks[i] !== null && ret.k === 'rref' ? LAYOUTS.find((l) => l.name === ret.layout)?.fields.find((x) => x.name === field) : undefined;
        return f?.kind === 'u32' ? f.offset : -1;
      });
      const last = offsets.findLastIndex((o) => o >= 0);
      if (last < 0) refuse('route', `no routed method of ${iface} answers with a struct that has a u32 field ${field}`);
      const room = (last + 1) * keys;
      if (kernel.heap.len[slot]! < room * 4) refuse('route', `record.into needs room for ${room} entries (${keys} for each method of ${iface} up to ${sigs[last]!.name})`);
      return { slot, gen: kernel.heap.gen[slot]!, keys, offsets };
    };
    /** The slot of `h` if the shadow owns it, writable; else a bad-argument RpcError naming `what`. */
    const ownedSlot = (h: unknown, what: string, method = 'entrust'): number => {
      const kit = kernel.kit;
      if (!kit.isHandle(h)) return refuse(method, `${what}: expected an RRef, got ${h === null ? 'null' : typeof h}`);
      const s = kit.slotOf(h as object);
      if (!(h as { valid: boolean }).valid || kit.isReadOnly(h as object) || kit.holderOf(h as object) !== user.id || kernel.heap.owner[s] !== user.id) {
        refuse(method, `${what}: only a valid RRef you own (not a borrowed, moved or foreign one) can be ${method === 'entrust' ? 'entrusted' : 'used'}`);
      }
      return s;
    };
    return harden({
      /** A proxy to the current instance. */
      current: bindCurrent,
      /**
       * Restart the supervised domain from its artifact; returns a proxy to the new instance. A
       * fresh instance that dies during init is a dead callee: an RpcError 'callee-dead' (hardened,
       * unlike the kernel's own errors), so the shadow can retry within its bound.
       */
      restart: () => {
        try {
          kernel.restart(name);
        } catch (e) {
          throw makeRpcError('callee-dead', name, 'restart', describeThrown(e));
        }
        return bindCurrent();
      },
      restarts: () => kernel.byName.get(name)?.restarts ?? 0,
      diedAt: () => {
        const d = kernel.byName.get(name);
        return d === undefined || d.live ? -1 : d.diedAtMs;
      },
      /**
       * Entrust `h` (a value the shadow owns, with everything it holds) before moving it into the
       * supervised domain: if an instance handed out here dies holding any of it, it comes back
       * to the shadow through recall() instead of being freed. The mark lasts until it is freed.
       * With `order` (a u32 RRefArray the shadow owns) and a deque `h`, the addresses of its
       * elements are written there in deque order; returns how many.
       */
      entrust: (h: unknown, order?: unknown): number => {
        if (!user.live) refuse('entrust', `domain ${user.name} is dead`);
        const s = ownedSlot(h, 'value');
        const o = order === undefined ? -1 : ownedSlot(order, 'order');
        if (o >= 0 && kernel.heap.type[o] !== u32Array) refuse('entrust', 'order must be an RRefArray<u32>');
        try {
          return kernel.heap.entrust(s, user.id, o);
        } catch (e) {
          return refuse('entrust', (e as Error).message);
        }
      },
      /**
       * `fn().then((v) => (onDone?.(), v), onFailure)` for the shadow's call onward made by `fn`
       * into an instance handed out here, merged into the call the shadow answers with what this
       * returns (see ProxyRuntime.relay and AsyncCall in proxy.ts): a captured call gives `token`,
       * this shadow's own promise that never settles (one per capability, so that reactions a
       * shadow hangs on it go with the shadow; hardened like all the kernel hands a domain).
       */
      relay: (fn: unknown, onFailure: unknown, onDone?: unknown): Promise<unknown> => {
        if (typeof fn !== 'function' || typeof onFailure !== 'function' || (onDone !== undefined && typeof onDone !== 'function')) {
          return refuse('relay', 'fn and onFailure must be functions, onDone a function if given');
        }
        if (!user.live) refuse('relay', `domain ${user.name} is dead`);
        return kernel.rt.relay(user, fn as () => unknown, onFailure as (e: unknown) => unknown, (onDone as (() => void) | undefined) ?? null, token);
      },
      /**
       * Route the shadow's callers' calls of the methods named in `hooks` straight to the current
       * instance (routes.ts): their moved RRef is entrusted to the shadow on the way and their
       * answer goes to the caller, with none of the shadow's code run unless a call fails — then
       * `hooks[method](error, call)` answers for the shadow. A later call replaces the routes.
       * With `record` ({ field, into, keys }): a RouteRecord into the shadow's u32 array `into`.
       * False when the kernel cannot route for this shadow (a worker domain): its own methods serve.
       */
      route: (hooks: unknown, record?: unknown): boolean => {
        if (!user.live) refuse('route', `domain ${user.name} is dead`);
        if (typeof hooks !== 'object' || hooks === null) return refuse('route', 'expected an object of hooks by method name');
        const supervised = kernel.byName.get(name);
        const served = supervised?.artifact?.manifest.exports;
        if (served === undefined || user.artifact?.manifest.exports !== served) {
          refuse('route', `only a shadow exporting the interface of ${name} (${served ?? 'none'}) can route its calls`);
        }
        const sigs = SIGNATURES[served!] ?? [];
        const byIndex: (RouteHook | null)[] = sigs.map(() => null);
        for (const [method, hook] of Object.entries(hooks)) {
          const i = sigs.findIndex((m) => m.name === method);
          if (i < 0) refuse('route', `${served} has no method ${method}`);
          const why = routeRefusal(sigs[i]!);
          if (why !== null) refuse('route', `cannot route ${why}`);
          if (typeof hook !== 'function') refuse('route', `the hook for ${method} must be a function`);
          byIndex[i] = hook as RouteHook;
        }
        const rec = record === undefined ? null : routeRecord(served!, byIndex, record);
        const told = sigs.map((m) => (m.params.some((p) => p.type.k === 'prim') ? m.params.length : 0));
        const deques = sigs.map((m, i) => (byIndex[i] === null ? null : dequeFieldsOf(m, LAYOUTS)));
        const table: RouteTable = { heir: user, iface: served!, hooks: byIndex, told, deques, record: rec, instance: null, target: null };
        if (kernel.inWorker.has(user) || kernel.inWorker.has(supervised!)) return false;
        routes = table;
        if (!kernel.crashAt.has(user)) user.routes = table; // an armed fault keeps them off (injectFault)
        bindCurrent();
        return true;
      },
      /**
       * Fresh handles to the entrusted values that dead instances handed out here held when they
       * died (each once), once those instances' memory has been reclaimed (devices detached,
       * worker threads gone). Values they had freed or given away are not among them.
       */
      recall: (): Promise<readonly object[]> =>
        harden(
          (async () => {
            const dead = [...handedOut.values()].filter((d) => !d.live);
            await Promise.all(dead.map((d) => kernel.whenReclaimed(d)));
            for (const d of dead) handedOut.delete(d.id);
            return takeBequests();
          })(),
        ),
      /**
       * The type of `h`, a value the shadow holds: a layout's name, 'RRefArray<kind>' or
       * 'RRefDeque' — how a shadow sorts what recall() gave back without touching it wrongly.
       */
      typeOf: (h: unknown): string => kernel.heap.typeInfo(kernel.heap.type[ownedSlot(h, 'value', 'typeOf')]!).name,
      /**
       * recall() for what has come back by now: the values of dead instances whose memory was
       * reclaimed at their death (an in-thread domain whose device detached at once, the usual
       * case); those of an instance still detaching come back later, through either. With `into`
       * (an RRefDeque the shadow owns), byte arrays go there, as room allows, rather than each
       * coming back as a handle: how a shadow takes back a driver's thousand buffers at once.
       */
      recallNow: (into?: unknown): readonly object[] => {
        const deque = into === undefined ? null : ownedSlot(into, 'into', 'recallNow');
        if (deque !== null && kernel.heap.type[deque] !== kernel.kit.dequeType) refuse('recallNow', 'into must be an RRefDeque');
        for (const d of handedOut.values()) if (kernel.reclaimedNow(d)) handedOut.delete(d.id);
        return takeBequests(deque);
      },
      interfaceName: iface,
    });
  }
}
