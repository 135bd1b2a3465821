/**
 * The kernel's record of one domain instance (trusted).
 *
 * A domain instance lives from `init` until termination; a restart makes a new instance (new id)
 * from the same artifact under the same name. Invariants: once `state` is 'dead' it never changes
 * again; a dead instance holds no timers, tasks, interrupt registrations or exchange-heap slots,
 * and every link that targets it has had its target dropped so its private heap can be collected.
 */
import type { Artifact } from './artifact.js';
import type { Link } from './proxy.js';
import type { RouteTable } from './routes.js';
import { NO_LOANS } from '../devices/iommu.js';

export type DomainState = 'live' | 'dead';

export interface FaultRecord {
  readonly kind: string;
  readonly message: string;
  readonly at: number;
}

/** An async call in flight into a domain: unwound (its caller's promise rejected) if the domain dies first. */
export interface InflightCall {
  /** Its index in the callee's InflightCalls while registered, -1 otherwise (kept by InflightCalls). */
  inflightSlot: number;
  /** The link it was made through (its caller, its callee). */
  readonly link: Link;
  unwind(cause: string): void;
}

/**
 * The async calls in flight into one domain: an array with each call's index kept in the call
 * itself (an intrusive registry), so that adding and removing one, once per async call, is a
 * push and a swap with the last entry rather than a hash-set insertion and deletion.
 */
export class InflightCalls {
  private readonly calls: InflightCall[] = [];

  get size(): number {
    return this.calls.length;
  }

  add(call: InflightCall): void {
    call.inflightSlot = this.calls.length;
    this.calls.push(call);
  }

  /** Remove `call`; false if it was not registered here (already removed, or drained). */
  delete(call: InflightCall): boolean {
    const i = call.inflightSlot;
    if (i < 0 || this.calls[i] !== call) return false;
    const last = this.calls.pop()!;
    if (last !== call) {
      this.calls[i] = last;
      last.inflightSlot = i;
    }
    call.inflightSlot = -1;
    return true;
  }

  /** How many of the calls were made by `caller`. */
  countFrom(caller: Domain): number {
    let n = 0;
    for (const c of this.calls) if (c.link.caller === caller) n++;
    return n;
  }

  /** Empty the registry and hand back what it held (at death, each is then unwound). */
  drain(): InflightCall[] {
    const all = this.calls.splice(0);
    for (const c of all) c.inflightSlot = -1;
    return all;
  }
}

export class Domain {
  state: DomainState = 'live';
  /** Calls served through proxies. */
  calls = 0;
  faults = 0;
  /** How many earlier instances of this name were restarted into this one. */
  restarts = 0;
  lastFault: FaultRecord | null = null;
  /** What killed it ('panic', 'deadline', 'terminated', ...). */
  deathCause: string | null = null;
  /** When it died, on the clock of sys.now() (performance.now()); -1 while it lives. */
  diedAtMs = -1;
  /** A shadow's routes (routes.ts): its callers' calls the kernel passes straight on; null: none. */
  routes: RouteTable | null = null;
  /** Exported object of the domain (the target of inbound links). */
  exportsObj: object | null = null;
  /** Links whose target is an object of this domain: dropped at death so its heap can be GCed. */
  readonly inbound: Link[] = [];
  readonly timers = new Set<ReturnType<typeof setTimeout>>();
  readonly intervals = new Set<ReturnType<typeof setInterval>>();
  /** Async calls in flight into this domain (unwound with RpcError at death). */
  readonly inflight = new InflightCalls();
  /** Unsubscribe functions for interrupt vectors this domain registered. */
  readonly irqs = new Set<() => void>();
  /** Deadline checks: the domain panics when one synchronous run exceeds this. */
  deadlineMs: number;
  /**
   * The IOMMU loan column of the device this instance drives (src/devices/iommu.ts), where the
   * loans of calls into it are counted; NO_LOANS if it drives none. Set before its first call
   * and never changed, so a loan ends in the column it began in, even after its death.
   */
  loanColumn = NO_LOANS;

  constructor(
    readonly id: number,
    readonly name: string,
    readonly artifact: Artifact | null,
    deadlineMs: number,
  ) {
    this.deadlineMs = deadlineMs;
  }

  get live(): boolean {
    return this.state === 'live';
  }
}
