/**
 * The capabilities of one worker domain, kernel side (trusted; part of the worker tier, see
 * worker-tier.ts): the interface references the domain holds — its imports, and every reference it
 * is given — each a proxy whose caller is the domain, kept under a number its stubs name; and the
 * calls out it makes through them (Kind.Outcall, Kind.OutcallAsync), decoded, checked and made
 * here, their outcome encoded for the worker.
 *
 * Invariants: a number names one proxy for as long as the worker holds its stub (drop() when the
 * stub was collected, or when the call that would have given it was not sent), and numbers are
 * never reused; an argument of a call out reaches the proxy only as a primitive, a handle minted
 * for an RRef the domain owns (or was lent, for a borrowed parameter) at its current generation,
 * or the proxy of a capability it holds, so every ownership rule and caller fault is the proxy's.
 */
import { describeThrown, isRpcError, makeRpcError } from './errors.js';
import { FREE } from './heap.js';
import type { Domain } from './domain.js';
import type { WorkerHost } from './worker-tier.js';
import type { MethodModel, TypeRef } from '../build/idl.js';
import { OutcallStatus, WireHandle, ifaceOf, isPrimitive, type Reader, type Writer } from './worker-ring.js';
import { SIGNATURES } from '../gen/idl.js';

/** An interface reference a worker domain holds. */
interface Capability {
  readonly iface: string;
  /** A proxy whose caller is the worker domain (or a host capability's own object). */
  readonly proxy: object;
  /** The domain it reaches ('host' for a host capability), as RpcErrors name it. */
  readonly callee: string;
}

/** How a call out went: the method (null for an entry no method matches), and what it returned or threw. */
export interface CallOut {
  readonly m: MethodModel | null;
  readonly ok: boolean;
  readonly v: unknown;
}

export class WorkerCapabilities {
  private readonly held = new Map<number, Capability>();
  private next = 0;

  constructor(
    private readonly host: WorkerHost,
    private readonly d: Domain,
  ) {}

  get size(): number {
    return this.held.size;
  }

  /** Keep `proxy` (whose caller is the worker domain) as a capability of interface `iface`; returns its number. */
  give(iface: string, proxy: object): number {
    const n = this.next++;
    this.held.set(n, { iface, proxy, callee: this.host.calleeName(proxy) });
    return n;
  }

  /** The proxy behind capability `n` if it is one of interface `iface`, else undefined. */
  proxyOf(n: unknown, iface: string): object | undefined {
    const cap = typeof n === 'number' ? this.held.get(n) : undefined;
    return cap !== undefined && cap.iface === iface ? cap.proxy : undefined;
  }

  drop(n: number): void {
    this.held.delete(n);
  }

  /**
   * Decode a call out (capability number, method index, arguments) and make it through the
   * capability's proxy, the worker domain being the caller. `async`: the method must be one that
   * returns a Promise (Kind.OutcallAsync), or one that does not (Kind.Outcall).
   */
  callOut(r: Reader, async: boolean): CallOut {
    const capNumber = r.number();
    const methodIndex = r.number();
    const cap = this.held.get(capNumber);
    const m = cap === undefined ? undefined : SIGNATURES[cap.iface]![methodIndex];
    if (cap === undefined || m === undefined || m.async !== async) {
      // Only a broken worker runtime sends this: the domain's code cannot choose the numbers.
      const err = new Error(`worker domain ${this.d.name}: bad call out (capability ${capNumber}, method ${methodIndex})`);
      this.host.fault(this.d, 'panic', err);
      return { m: null, ok: false, v: err };
    }
    try {
      const args = m.params.map((p, i) => this.outArg(cap, m, p.type, r.next(), i));
      this.host.newRun(); // the callee's run starts now, as at any entry from outside the kernel thread
      const fn = (cap.proxy as Record<string, (...xs: unknown[]) => unknown>)[m.name]!;
      return { m, ok: true, v: Reflect.apply(fn, cap.proxy, args) };
    } catch (e) {
      return { m, ok: false, v: e };
    }
  }

  /**
   * An argument of a call out as the proxy takes it: primitives as they are (the proxy checks
   * them); an RRef as a kernel-side handle of the worker domain, minted only if the worker's
   * handle is current and the slot is its own, or, for a borrowed parameter, lent to it (a
   * borrow it lends onward); an interface reference as the proxy of a capability the worker
   * holds. Anything else is the caller's fault, as a bad argument in-thread.
   */
  private outArg(cap: Capability, m: MethodModel, t: TypeRef, raw: unknown, i: number): unknown {
    const callerFault = (detail: string): never => {
      const err = makeRpcError('bad-argument', cap.callee, m.name, `argument ${i}: ${detail}`);
      this.host.fault(this.d, 'bad-argument', err);
      throw err;
    };
    const iface = ifaceOf(t);
    if (iface !== null && raw !== null) return this.proxyOf(raw, iface) ?? callerFault(`not an interface reference to ${iface} the domain holds`);
    if (!(raw instanceof WireHandle)) return raw;
    const { heap, kit } = this.host;
    const me = this.d.id;
    const s = raw.slot;
    const current = s < heap.highWater && heap.owner[s] !== FREE && heap.gen[s] === raw.gen;
    const lendable = t.k === 'borrow' || (t.k === 'nullable' && t.inner.k === 'borrow');
    if (current && heap.owner[s] === me) return kit.mint(s, me, false);
    if (current && lendable && heap.borrows[s] > 0) return kit.mint(s, me, true);
    return callerFault(`a revoked or foreign RRef (slot ${s}) cannot be passed`);
  }

  /** Encode how call out `c` ended into `w`; returns its OutcallStatus. */
  outcome(w: Writer, { m, ok, v }: CallOut): number {
    if (!ok || m === null) {
      if (isRpcError(v)) {
        w.value(v.kind).value(v.domain).value(v.method).value(v.detail);
        return OutcallStatus.RpcError;
      }
      w.value(describeThrown(v));
      return OutcallStatus.Thrown;
    }
    const { heap, kit } = this.host;
    const iface = ifaceOf(m.ret);
    if (iface !== null && v !== null) {
      // The proxy made it for the worker domain (retIface): kept, and named by its number.
      w.value(this.give(iface, v as object));
      return OutcallStatus.Ok;
    }
    if (kit.isHandle(v)) {
      const s = kit.slotOf(v as object);
      if (heap.owner[s] === this.d.id && (v as { valid: boolean }).valid) {
        w.handle(s, heap.gen[s]!);
        return OutcallStatus.Ok;
      }
      w.value(`the answer is an RRef (slot ${s}) that ${this.d.name} does not own`);
      return OutcallStatus.Thrown;
    }
    if (!isPrimitive(v)) {
      w.value(`the answer (${typeof v}) cannot cross to a worker domain`);
      return OutcallStatus.Thrown;
    }
    w.value(v);
    return OutcallStatus.Ok;
  }
}
