/**
 * The proxy runtime (trusted): what IDL-generated proxies call on every cross-domain call.
 *
 * A Link is one caller→callee edge: the generated proxy object closes over it. Invariants:
 *  - a call proceeds only while both ends are live (a dead caller is a zombie continuation: it
 *    gets 'caller-dead'; a dead callee gives 'callee-dead');
 *  - an exception escaping the callee is the callee's panic: it is terminated (full cleanup) and
 *    the caller gets an RpcError, never the callee's exception object;
 *  - a bad argument is the caller's fault: the caller panics and the call never reaches the callee;
 *    a bad result is the callee's fault;
 *  - moved RRefs change owner (fresh handle for the receiver, the sender's revoked); borrowed ones
 *    are lent read-only for the duration of the call (async: until it settles);
 *  - an async result reaches the caller through a kernel-made promise: no object of the callee is
 *    handed over, and a settlement after the callee died is ignored (the caller was already
 *    unwound with an RpcError).
 * Performance: the per-call functions (enter, after, landed, and the kit's tryMove) keep their
 * error paths in separate functions, so that they stay small enough for the JIT to inline them
 * into every generated proxy method: an RRef moves by tryMove, and only when that refuses does the
 * proxy take move / retMove, which find and report what is wrong. An async call costs one
 * AsyncCall record (registered in the callee's intrusive in-flight list), the kernel-made promise
 * and the two reactions on the callee's promise; the slice clock is sampled, not read per settle.
 * A callee that answers with the promise of its own pending call onward (a pass-through) is not
 * subscribed to: that call hands its answer on directly (AsyncCall.next). A shadow's relayed call
 * (Supervisor.relay) costs less still: it is merged into the call the shadow is answering — one
 * record, one promise (its caller's) and one subscription for both crossings (AsyncCall.leg). A
 * routed call (routes.ts) is the same merged record made by the kernel alone: the caller's proxy
 * calls the driver's through the via link (`via`, `routeArg`) and no shadow code runs; a routed
 * synchronous call needs no record at all unless it fails (routedAnswer, routedFault).
 */
import { setFlagsFromString } from 'node:v8';
import { describeThrown, makeRpcError, type RpcError, type RpcErrorKind } from './errors.js';
import type { Domain, InflightCall } from './domain.js';
import type { FastMove, HandleKit, KitRef } from './rref.js';
import { MAX_LENGTHS, type DequeFields, type RoutedCallInfo, type RouteTable } from './routes.js';

export interface Link {
  readonly caller: Domain;
  readonly callee: Domain;
  /** The callee's object; null once the callee died (so its heap can be collected). */
  target: any;
  /**
   * Merged relays answered on this link (its callee relays): the RRef type that the conversion
   * `relayTo` of one of its methods accepted after the conversion `relayFrom` of the call onward,
   * learned from the last such answer made with both (see AsyncCall.passValue); -1: none yet.
   */
  relayFrom: ((r: any) => unknown) | null;
  relayTo: ((r: any) => unknown) | null;
  relayType: number;
  /**
   * Routes (src/kernel/routes.ts). On a link to a routing shadow: the proxy the kernel keeps for
   * the instance the shadow routes to (`via`, on its link `viaLink`), made at the first routed
   * call and again after a restart. On such a via link: the link to the shadow it serves
   * (`outer`), whose callee's routes (Domain.routes, replaced by each Supervisor.route) are the
   * ones its calls follow. All null elsewhere.
   */
  via: any;
  viaLink: Link | null;
  outer: Link | null;
}

export interface ProxyHost {
  readonly kit: HandleKit;
  /** Terminate `d` because of a fault of the given cause. */
  fault(d: Domain, cause: 'panic' | 'bad-argument' | 'deadline', err: unknown): void;
  /** Create a proxy of interface `name` on `link`. */
  makeProxy(name: string, link: Link): object;
  /** Register a new link (so it is dropped when the callee dies). */
  newLink(caller: Domain, callee: Domain, target: object): Link;
  /** Domain whose object `obj` is (for interface references passed along). */
  linkOfProxy(obj: object): Link | undefined;
  /**
   * Make (or make again, for a new instance) `outer.via`, the proxy for routed calls on `outer` (a
   * link to the routing shadow of `table`) to `inst`. (Supervisor.route installs no routes where
   * a domain is in a worker, and a restart keeps an instance's placement.)
   */
  routeVia(outer: Link, table: RouteTable, inst: Domain): void;
  /** Yield point for long microtask chains (see kernel.ts). */
  shouldYield(): boolean;
  /** A call from host code (the kernel itself) starts a new run of domain code. */
  kernelEntry(): void;
}

export interface ProxyRuntime {
  enter(link: Link, method: string): any;
  after(link: Link, method: string): void;
  fault(link: Link, e: unknown, method: string): RpcError;
  /** The callee threw at once: its panic. `g`: the record of a routed call (its hook answers). */
  rejected(link: Link, e: unknown, method: string, g?: object | null): Promise<unknown>;
  /** A routed synchronous call's instance threw `e` (record `g`): its panic; the shadow's hook answers at once. */
  routedFault(link: Link, e: unknown, method: string, g: object): unknown;
  /**
   * A routed synchronous call's answer `r` (record `g`): moved from the instance straight to the
   * caller by `conv` (the via link's conversion) and recorded (RouteRecord) — or, if the instance
   * died during the call or answered wrongly, the shadow's hook answers at once.
   */
  routedAnswer(link: Link, r: unknown, method: string, conv: (r: any) => unknown, g: object): unknown;
  settle(link: Link, p: unknown, method: string, conv: (r: any) => unknown, release?: () => void, g?: object | null): Promise<unknown>;
  /**
   * On a link to a routing shadow, for its method number `index` (whose answers the caller's
   * proxy converts with `conv`): the proxy to call instead, for the instance the shadow routes
   * to — or null when this call cannot be routed and goes to the shadow's own method (see
   * routes.ts). The call made next through that proxy is the routed one.
   */
  via(link: Link, index: number, conv: (r: any) => unknown): any;
  /**
   * On a via link, after the argument moved to the instance (`h`, the instance's handle; null for
   * a method that moves none): entrust it to the shadow and make the call's record (opaque: the
   * `g` of rejected / settle / routedFault / routedAnswer), holding the call's arguments `a0`..
   * for the hook (primitives as passed, null in the moved RRef's place; at most
   * MAX_ROUTED_PARAMS), each in a field of the record: no list is made unless the hook runs.
   */
  routeArg(link: Link, index: number, h: unknown, a0?: unknown, a1?: unknown, a2?: unknown, a3?: unknown, a4?: unknown, a5?: unknown): object;
  /**
   * `fn().then((v) => (onDone?.(), v), onFailure)` for domain `by` (a shadow: Supervisor.relay),
   * where `fn` makes one async call onward: that call is captured and `token` (by's own, a
   * promise that never settles) is returned instead of its promise; when `by` answers the call it
   * is serving with `token`, the captured call is merged into that one (see AsyncCall.leg).
   * Anything else (no call captured, or `fn` did not return the token) gets an ordinary call and
   * `then`.
   */
  relay(by: Domain, fn: () => unknown, onFailure: (e: unknown) => unknown, onDone: (() => void) | null, token: Promise<never>): Promise<unknown>;
  badArg(link: Link, method: string, index: number, want: string, got: unknown): never;
  badRet(link: Link, method: string, want: string, got: unknown): never;
  /**
   * The kit's fast move and its state (HandleKit.fastMove, HandleKit.state): proxies try
   * `tryMove(moveState, h, typeId, from, to)` first, then take move / retMove.
   */
  readonly tryMove: FastMove;
  /** tryMove for RRefArray types (HandleKit.fastMoveFlat). */
  readonly tryMoveFlat: FastMove;
  readonly moveState: KitRef;
  move(link: Link, h: unknown, typeId: number, method: string, index: number): object;
  borrow(link: Link, h: unknown, typeId: number, method: string, index: number): object;
  unborrow(link: Link, h: object): void;
  /**
   * A bad argument after others were moved or lent (`kinds`: 'm' or 'b' for each of `taken`,
   * undefined or null where nothing was taken yet): end those loans and free those moved values,
   * which the callee never got.
   */
  undoArgs(link: Link, kinds: string, taken: readonly unknown[]): void;
  retMove(link: Link, h: unknown, typeId: number, method: string): object;
  /** A returned RRef reached the caller (moved by tryMove or retMove): `h`, unless the caller died. */
  landed(link: Link, h: object): object;
  iface(link: Link, obj: unknown, name: string, method: string, index: number): object;
  retIface(link: Link, obj: unknown, name: string, method: string): object;
  typeId(key: string): number;
  seal<T extends object>(link: Link, iface: string, obj: T): T;
}

const promiseThen = Promise.prototype.then;

/**
 * The slice clock (ProxyHost.shouldYield) is read on one async settle in this many, not on every
 * one: it was a tenth of an awaited call's cost. shouldYield keeps a chain of async crossings,
 * each step short, from holding the event loop (timers, I/O, the kernel's heartbeat that starts a
 * new slice) and from running into the deadline of the domain it ends in; with the check
 * sampled, such a chain yields at most YIELD_CHECK_EVERY - 1 settles later than its slice budget.
 * Once over budget, every settle reads the clock again until a new slice starts, as before.
 */
const YIELD_CHECK_EVERY = 8;

/**
 * The JIT's inlining budget, in bytecode bytes per optimized function (V8's default: 920).
 *
 * An in-thread call is fast only when the caller's optimized code inlines the whole crossing:
 * the generated proxy method, enter/after/landed, both moves of an RRef round trip (checks,
 * slot-table stores, the new handle), the callee's method and its handle accessors — about 1,750
 * bytes for `proxy-rref`. Under the default budget V8 inlines part of it, and which part depends
 * on which functions happened to be optimized on their own first (a candidate that already has
 * optimized code counts with everything that code inlined): measured with
 * --trace-turbo-inlining, that race is why proxy-rref was bimodal between invocations (~33 ns
 * when the caller's loop inlined the proxy, 45–55 ns when it called it). The budget is per
 * optimized function, and a caller with several hot call sites needs it for all of them: in
 * `bench calls`, dom_d's `run` holds the loops of every case, and with 2,500 bytes its last
 * optimization, after the proxy-arg loop, still left the RRef round trip out half the time
 * (~32 ns instead of ~21). 4,600 is V8's own absolute cap on inlining per function
 * (--max-inlined-bytecode-size-absolute). Set once, when the kernel's proxy runtime is first
 * loaded, before any domain code runs; it is a process-wide V8 flag (larger optimized functions,
 * somewhat longer optimizing compiles). Measured cost: proxy-noarg ~4.1 ns instead of 3.3–3.8.
 */
const INLINING_BUDGET = 4600;
setFlagsFromString(`--max-inlined-bytecode-size-cumulative=${INLINING_BUDGET}`);

export function createProxyRuntime(host: ProxyHost): ProxyRuntime {
  const { kit } = host;
  const heap = kit.heap;
  const typeIds = new Map<string, number>();

  const deadKind = (d: Domain): RpcErrorKind => (d.deathCause === 'deadline' ? 'timeout' : d.deathCause === 'panic' ? 'panic' : 'callee-dead');
  const deadError = (link: Link, method: string): RpcError =>
    makeRpcError(deadKind(link.callee), link.callee.name, method, `domain ${link.callee.name} is dead (${link.callee.deathCause ?? 'terminated'})`);

  const describe = (v: unknown): string => (v === null ? 'null' : kit.isHandle(v) ? 'an RRef' : typeof v === 'object' ? 'an object' : typeof v);

  /** The caller handed something wrong: it panics (unless it is the kernel) and gets the error. */
  const callerFault = (link: Link, method: string, detail: string): never => {
    const err = makeRpcError('bad-argument', link.callee.name, method, detail);
    if (link.caller.id !== 0) host.fault(link.caller, 'bad-argument', err);
    throw err;
  };

  /** The callee returned something wrong: it panics, the caller gets an RpcError. */
  const calleeFault = (link: Link, method: string, detail: string): never => {
    const err = makeRpcError('bad-argument', link.callee.name, method, `bad result: ${detail}`);
    host.fault(link.callee, 'bad-argument', err);
    throw err;
  };

  // The cold halves of the per-call paths, kept out of them so that those stay small enough for
  // the JIT to inline into the generated proxies (an error message costs bytecode).
  const notLive = (link: Link, method: string): RpcError =>
    link.callee.state !== 'live'
      ? deadError(link, method)
      : makeRpcError('caller-dead', link.callee.name, method, `calling domain ${link.caller.name} is dead`);
  const argFault = (link: Link, method: string, index: number, e: unknown): never =>
    callerFault(link, method, `argument ${index}: ${describeThrown(e)}`);
  const argNotRRef = (link: Link, method: string, index: number, typeId: number, h: unknown): never =>
    callerFault(link, method, `argument ${index} must be an RRef of type ${heap.typeInfo(typeId).name}, got ${describe(h)}`);
  const retNotRRef = (link: Link, method: string, typeId: number, h: unknown): never =>
    calleeFault(link, method, `must be an RRef of type ${heap.typeInfo(typeId).name}, got ${describe(h)}`);

  const faultFor = (link: Link, e: unknown, method: string): RpcError => {
    const c = link.callee;
    if (c.live) {
      host.fault(c, 'panic', e); // records what the domain threw (lastFault), described once
      return makeRpcError('panic', c.name, method, `domain ${c.name} panicked: ${c.lastFault!.message}`);
    }
    return deadError(link, method);
  };

  const wrapIface = (link: Link, obj: unknown, name: string, owner: Domain, user: Domain): object => {
    if (typeof obj !== 'object' || obj === null) throw new TypeError(`expected an object implementing ${name}`);
    const via = host.linkOfProxy(obj);
    // A proxy passed along reaches the domain it already pointed to; a domain's own object is served by that domain.
    const target = via ? via.target : obj;
    const calleeDomain = via ? via.callee : owner;
    if (target === null || !calleeDomain.live) throw new TypeError(`interface reference to a dead domain`);
    return host.makeProxy(name, host.newLink(user, calleeDomain, target));
  };

  const tryMove = kit.fastMove;
  const moveState = kit.state;
  /** A loan (borrow) ends: the borrower's handle revoked, the count dropped where it was made. */
  const unborrow = (link: Link, h: object): void => {
    kit.revoke(h);
    heap.endBorrow(kit.slotOf(h), link.callee.loanColumn);
  };
  const landed = (link: Link, h: object): object => {
    // The caller died while the call was in flight (an async call it was blocked in): its slots
    // were reclaimed at its death, so what it would receive now is freed rather than leaked.
    if (link.caller.state !== 'live') heap.free(kit.slotOf(h));
    return h;
  };

  // Whether a settle delivers through setImmediate (see YIELD_CHECK_EVERY): the slice's clock is
  // read on every YIELD_CHECK_EVERY-th settle, then on every one while the slice is over its budget.
  let settlesUntilClock = YIELD_CHECK_EVERY;
  let yielding = false;
  const mustYield = (): boolean => {
    if (!yielding && --settlesUntilClock > 0) return false;
    settlesUntilClock = YIELD_CHECK_EVERY;
    return (yielding = host.shouldYield());
  };

  /**
   * One async call in flight through a proxy, registered in its callee's inflight calls until it
   * settles: it settles the caller's kernel-made promise exactly once, with the converted result,
   * the callee's panic, or (unwound at the callee's death) an RpcError. One object per call
   * instead of a set of closures; the promise's resolvers are taken by a shared executor.
   *
   * Two additions for pass-through domains (a shadow forwarding a call to the domain it wraps):
   *  - relay hooks (`onValue`, `onFailure`: a relayed call not merged, see `materialize`): the
   *    caller's own continuations, run by the kernel instead of as reactions to a promise of the
   *    caller's — the promise then settles as `promise.then(onValue, onFailure)` would;
   *  - forwarding (`next`): a call whose callee answered with this call's promise unchanged (the
   *    callee's own pending call onward) gets this call's answer directly when it comes, instead
   *    of through a reaction to the promise: one promise hop and two closures less per crossing.
   * A failure with a hook or a forward is handled in a microtask of its own: an unwind runs inside
   * the callee's termination, where no domain code may run.
   *
   * A merged relay (`leg`, see `relay`): the call a shadow answers with its relayed call onward.
   * The record is the outer call (the shadow's caller's promise, registered with the shadow) and
   * follows the onward call's promise itself; the Leg, registered with the onward callee, carries
   * that call's conversion and the shadow's hooks. The onward answer is the shadow's answer,
   * unchanged (passValue: it goes to the caller as through the shadow, which never holds it), and
   * onDone runs; a failure onward, or the onward callee's death, goes to onFailure in a
   * microtask, and what that returns is answered as the shadow's own answer.
   * Either callee dying ends its own part only: the shadow's death fails the caller at once (the
   * leg then just lands what comes back, freed: the shadow is dead), the driver's runs onFailure.
   * Compared with two records (the shadow's call onward with `next` set), one promise, its
   * resolvers, a record and an answer pass less per relayed crossing.
   */
  class AsyncCall implements InflightCall {
    inflightSlot = -1;
    /** Finished: unregistered, its answer decided (maybe still to be delivered). */
    finished = false;
    resolve!: (v: unknown) => void;
    reject!: (e: unknown) => void;
    readonly promise: Promise<unknown>;
    onValue: ((v: unknown) => unknown) | null = null;
    onFailure: ((e: unknown) => unknown) | null = null;
    next: AsyncCall | null = null;
    /** The onward stage of a merged relay, while it is pending. */
    leg: Leg | null = null;

    constructor(
      readonly link: Link,
      private readonly method: string,
      private readonly conv: (r: any) => unknown,
      private readonly release: (() => void) | undefined,
    ) {
      resolversFor = this;
      this.promise = new Promise(takeResolvers);
      lastCall = this;
    }

    private finish(): boolean {
      if (this.finished) return false;
      this.finished = true;
      this.link.callee.inflight.delete(this);
      this.release?.();
      return true;
    }

    /**
     * Settle with what the callee's promise `p` (or plain value) settles with; a plain value in a
     * microtask of its own, or at once (`now`: a forward, already in one).
     */
    follow(p: unknown, now = false): void {
      try {
        if (typeof p === 'object' && p !== null && p instanceof Promise) {
          // The original then (the instance's own `then` could be the callee's).
          Reflect.apply(promiseThen, p, [(v: unknown) => this.value(v), (e: unknown) => this.error(e)]);
        } else if (now) {
          this.value(p);
        } else {
          queueMicrotask(() => this.value(p));
        }
      } catch (e) {
        // The callee's promise ran the callee's code in this turn and it threw: `instanceof` walks a
        // prototype chain that may hold a Proxy, and `then` reads the species from an own
        // `constructor` getter. That is the callee's panic; what it threw never reaches the caller.
        this.error(e);
      }
    }

    /** Follow the onward call's answer `p` (a merged relay's leg). */
    followLeg(p: unknown): void {
      try {
        if (typeof p === 'object' && p !== null && p instanceof Promise) {
          Reflect.apply(promiseThen, p, [(v: unknown) => this.legValue(v), (e: unknown) => this.legError(e)]);
        } else {
          queueMicrotask(() => this.legValue(p));
        }
      } catch (e) {
        this.legError(e); // as in follow: the onward callee's promise ran its code and threw
      }
    }

    private endLeg(leg: Leg): void {
      this.leg = null;
      leg.link.callee.inflight.delete(leg);
      leg.release?.();
    }

    private legValue(v: unknown): void {
      const leg = this.leg;
      // Ended already: the onward callee died (legDied) and onFailure has the call.
      if (leg === null || !leg.link.callee.live) return;
      this.endLeg(leg);
      this.passValue(leg, v);
    }

    /**
     * The onward answer `v` as this call's answer. An RRef moves from the onward callee to the
     * caller as it would through the shadow: converted by the onward call's conversion (its type
     * checked: a wrong one is the onward callee's fault) and then by this call's (the shadow's
     * declared type) — or, once those two conversions accepted an RRef of one type on this link,
     * in one typed move straight to the caller: a move and a handle less per answer (the typed
     * move refuses what either conversion would, and then the two conversions run and report it).
     */
    private passValue(leg: Leg, v: unknown): void {
      const link = this.link;
      if (leg.route !== null) {
        this.passRouted(leg, v);
        return;
      }
      if (this.finished) {
        try {
          leg.conv(v); // the relaying domain died (this call was unwound): lands there, freed
        } catch {
          // the onward callee's bad result: reported (it is faulted), nobody to tell
        }
        return;
      }
      const conv = this.conv;
      let out: unknown = link.relayTo === conv && link.relayFrom === leg.conv ? tryMove(moveState, v, link.relayType, leg.link.callee.id, link.caller.id) : null;
      if (out === null) {
        let mid: unknown;
        try {
          mid = leg.conv(v);
        } catch (e) {
          this.legFailed(leg, e);
          return;
        }
        if (!this.finish()) return;
        try {
          out = conv(mid);
        } catch (e) {
          this.failed(e);
          return;
        }
        if (kit.isHandle(out)) {
          link.relayFrom = leg.conv;
          link.relayTo = conv;
          link.relayType = heap.type[kit.slotOf(out as object)]!;
        }
      } else {
        this.finish();
        out = landed(link, out as object);
      }
      const onDone = leg.onDone;
      if (onDone !== null) {
        try {
          onDone();
        } catch (e) {
          faultFor(link, e, this.method); // the shadow's panic; its caller still gets the answer
        }
      }
      this.deliver(out);
    }

    /**
     * A routed call's answer `v`: the via link's conversion moves it from the instance straight to
     * the caller (a wrong one is the instance's fault: the hook then has the call). If the shadow
     * died meanwhile (its caller got an RpcError), nobody takes it: it is freed.
     */
    private passRouted(leg: Leg, v: unknown): void {
      let out: unknown;
      try {
        out = leg.conv(v);
      } catch (e) {
        if (!this.finished) this.legFailed(leg, e);
        return;
      }
      recordAnswer(leg, out);
      recycle(leg);
      if (!this.finish()) {
        if (kit.isHandle(out)) heap.free(kit.slotOf(out as object));
        return;
      }
      this.deliver(out);
    }

    /** The onward call is over with `err` (already the shadow's error): end the leg, then legFailed. */
    legFailedNow(err: unknown): void {
      const leg = this.leg!;
      this.endLeg(leg);
      this.legFailed(leg, err);
    }

    private legError(e: unknown): void {
      const leg = this.leg;
      if (leg === null || !leg.link.callee.live) return;
      this.endLeg(leg);
      this.legFailed(leg, faultFor(leg.link, e, leg.method));
    }

    /** The onward callee died with the leg pending (its unwind, or found dead at the merge). */
    legDied(cause: string): void {
      const leg = this.leg;
      if (leg === null) return;
      const callee = leg.link.callee;
      this.legFailedNow(makeRpcError(deadKind(callee), callee.name, leg.method, `domain ${callee.name} died (${cause}) before answering`));
    }

    /**
     * The onward call failed with `err` (already the shadow's error): onFailure — a routed call's
     * hook, told what the call moved — in a microtask.
     */
    private legFailed(leg: Leg, err: unknown): void {
      queueMicrotask(() => {
        if (this.finished) return; // the relaying domain died: none of its code runs
        const r = this.runHook(leg.route === null ? leg.onFailure : (e) => leg.hook(e), err, true);
        if (r !== NO_ANSWER) this.follow(r, true);
      });
    }

    unwind(cause: string): void {
      const callee = this.link.callee;
      if (this.finish()) this.failed(makeRpcError(deadKind(callee), callee.name, this.method, `domain ${callee.name} died (${cause}) before answering`));
    }

    value(v: unknown): void {
      if (!this.link.callee.live || !this.finish()) return;
      const conv = this.conv; // called as a plain function: the record is no receiver of anything
      let out: unknown;
      try {
        out = conv(v);
      } catch (e) {
        this.failed(e);
        return;
      }
      const onValue = this.onValue;
      if (onValue !== null && (!this.link.caller.live || (out = this.runHook(onValue, out)) === NO_ANSWER)) return; // no code of a dead relay runs
      this.deliver(out);
    }

    private deliver(out: unknown): void {
      if (mustYield()) setImmediate(answerLater, this, out);
      else this.answer(out);
    }

    error(e: unknown): void {
      if (!this.link.callee.live) return; // already unwound by the termination
      if (this.finish()) this.failed(faultFor(this.link, e, this.method));
    }

    /** The callee failed with `err` (already made the caller's error). */
    private failed(err: unknown): void {
      if (this.onFailure === null && this.next === null) this.reject(err);
      else queueMicrotask(() => this.recover(err));
    }

    private recover(err: unknown): void {
      const onFailure = this.onFailure;
      if (onFailure === null) {
        this.rejectOut(err);
        return;
      }
      if (!this.link.caller.live) return; // no code of a dead relay runs
      const r = this.runHook(onFailure, err);
      if (r !== NO_ANSWER) this.answer(r);
    }

    /**
     * A relay hook on `x`: what it returns, or NO_ANSWER once what it threw went on — as the
     * relaying domain's panic for a merged relay's hook (`panics`: its code failed while it was
     * answering this call), else to the caller (rejectOut).
     */
    private runHook(hook: (x: unknown) => unknown, x: unknown, panics = false): unknown {
      try {
        return hook(x);
      } catch (e) {
        if (panics) this.error(e);
        else this.rejectOut(e);
        return NO_ANSWER;
      }
    }

    answer(out: unknown): void {
      const next = this.next;
      // A relayed call forwarded (the shadow returned its promise, which it may use for nothing
      // else, see Supervisor.relay) leaves that promise unsettled: resolving a promise with an
      // object costs a lookup of `then` on it, felt at batch 1.
      if (next === null || this.onValue === null) this.resolve(out);
      // A Proxy in what onValue / onFailure returned is the fault of the domain that relayed.
      if (next !== null) next.follow(out, true);
    }

    /** The answer is an exception (the caller's own hook threw, or a failure without a hook). */
    private rejectOut(e: unknown): void {
      const next = this.next;
      if (next === null) {
        this.reject(e);
        return;
      }
      // Forwarded: nobody may be listening to this promise; the forward gets the failure.
      Reflect.apply(promiseThen, this.promise, [undefined, ignore]);
      this.reject(e);
      next.error(e);
    }
  }
  /**
   * The onward stage of a merged relay (see AsyncCall.leg): registered in the onward callee's
   * inflight calls, so that its death reaches the record (`call`, set at the merge).
   */
  class Leg implements InflightCall {
    inflightSlot = -1;
    call: AsyncCall | null = null;
    /**
     * A routed call (routes.ts; the Leg is made by routeArg, before the call): the shadow's routes
     * as the call found them, whose hook for method `index` runs instead of onFailure (hook), told
     * what the call moved (RoutedCallInfo); `answer` converts the hook's answer for the caller.
     * Null: a relayed call.
     */
    route: RouteTable | null = null;
    /** The instance the call went to, as the shadow held it (the table's changes with a restart). */
    target: object | null = null;
    /** The call's arguments (routeArg), as many as route.told says for the hook. */
    a0: unknown = undefined;
    a1: unknown = undefined;
    a2: unknown = undefined;
    a3: unknown = undefined;
    a4: unknown = undefined;
    a5: unknown = undefined;
    addr = -1;
    capacity = 0;
    /** The deque's element addresses (u32 each, `count` of them): a pooled list (takeList). */
    elements: DataView | null = null;
    count = 0;
    /** A moved struct's deque lengths (RoutedCallInfo.lengths) where route.deques says: the record's own. */
    readonly lengths = new DataView(new ArrayBuffer(4 * MAX_LENGTHS));
    /** The method's index in the interface. */
    index = 0;
    answer: ((r: unknown) => unknown) | null = null;
    constructor(
      public link: Link,
      public method: string,
      public conv: (r: any) => unknown,
      readonly release: (() => void) | undefined,
      readonly onFailure: (e: unknown) => unknown,
      readonly onDone: (() => void) | null,
    ) {}
    unwind(cause: string): void {
      this.call?.legDied(cause);
    }
    /** A routed call's hook run on `err`, told what the call moved (once: the element list then goes back to the pool). */
    hook(err: unknown): unknown {
      return this.route!.hooks[this.index]!(err, this.takeInfo());
    }
    private takeInfo(): RoutedCallInfo {
      const elements = listed(this.elements, this.count);
      const lengths = this.dequeLengths(this.route!.deques[this.index]!);
      this.dropList();
      const args = [this.a0, this.a1, this.a2, this.a3, this.a4, this.a5].slice(0, this.route!.told[this.index]!);
      return harden({ target: this.target!, args, addr: this.addr, capacity: this.capacity, elements, lengths });
    }
    /** RoutedCallInfo.lengths: per RRef field of the moved struct, its deque's length at entry (0: no deque). */
    private dequeLengths(d: DequeFields | null): number[] {
      const out = new Array<number>(d?.fields ?? 0).fill(0);
      for (let p = 0; d !== null && p < d.at.length; p += 2) out[d.at[p]!] = this.lengths.getUint32(d.at[p]! * 4, true);
      return out;
    }
    /** The call is over (answered, or its hook told): its element list goes back to the pool. */
    dropList(): void {
      if (this.elements !== null) giveList(this.elements);
      this.elements = null;
      this.count = 0;
    }
  }
  /**
   * Records of routed calls whose answer went on (passRouted): nothing refers to one any more
   * (its AsyncCall and the instance's inflight calls let go of it in endLeg), so the next routed
   * call reuses it — a record less to allocate and collect per call. One that failed is left to
   * the collector (its hook's microtask may still read it).
   */
  const legPool: Leg[] = [];
  const recycle = (leg: Leg): void => {
    leg.dropList();
    leg.call = null;
    leg.target = null;
    leg.a0 = leg.a1 = leg.a2 = leg.a3 = leg.a4 = leg.a5 = undefined;
    leg.answer = null;
    if (legPool.length < 64) legPool.push(leg);
  };
  /**
   * Element lists of routed calls, pooled by size (a power of two, index: its log2): a fresh list
   * per call cost a quarter of a 32-request routed call (under lockdown an array store is slow).
   */
  const listPool: DataView[][] = [];
  const takeList = (capacity: number): DataView => {
    const k = 32 - Math.clz32(capacity - 1);
    return listPool[k]?.pop() ?? new DataView(new ArrayBuffer(4 << k));
  };
  const giveList = (list: DataView): void => {
    const k = 31 - Math.clz32(list.byteLength >>> 2);
    (listPool[k] ??= []).push(list);
  };
  /** The first n u32 of a pooled list, as a fresh array (what a hook is told). */
  const listed = (list: DataView | null, n: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(list!.getUint32(i * 4, true));
    return out;
  };
  /**
   * The route's record (RouteRecord) of a routed call answered with `out`: the answer's field, at
   * the call's first argument, in the shadow's array — while the shadow owns that array unmoved.
   */
  const recordAnswer = (leg: Leg, out: unknown): void => {
    const table = leg.route!;
    const rec = table.record;
    if (rec === null || !kit.isHandle(out)) return;
    const at = rec.offsets[leg.index]!;
    const key = leg.a0;
    if (at < 0 || typeof key !== 'number' || !Number.isInteger(key) || key < 0 || key >= rec.keys) return;
    if (heap.gen[rec.slot] !== rec.gen || heap.owner[rec.slot] !== table.heir.id) return;
    // A u32 field is 4-aligned: read through the u32 view (reads of the DataView over shared memory are slower).
    const v = heap.u32[(heap.off[kit.slotOfOwn(out as object)]! + at) >>> 2]!;
    heap.dv.setUint32(heap.off[rec.slot]! + (leg.index * rec.keys + key) * 4, v, true);
  };
  /**
   * A routed synchronous call failed with `err` (already the instance's fault, or its death): the
   * shadow's hook answers now, inside the caller's call to the shadow. What it returns is the
   * shadow's answer, converted for the caller as any (a promise is a wrong answer: the shadow's
   * fault); what it throws is the shadow's panic, and the caller gets an RpcError.
   */
  const routedFailed = (link: Link, leg: Leg, method: string, err: unknown): unknown => {
    const outer = link.outer!;
    const answer = leg.answer!;
    if (!outer.callee.live) {
      leg.dropList();
      throw deadError(outer, method);
    }
    let v: unknown;
    try {
      v = leg.hook(err);
    } catch (e) {
      throw faultFor(outer, e, method);
    }
    if (outer.callee.state !== 'live') throw deadError(outer, method);
    return answer(v);
  };
  const answerLater = (call: AsyncCall, out: unknown): void => call.answer(out);
  /** relay's onDone as a `then` hook on the answer (a call not merged). */
  const doneThen = (onDone: (() => void) | null) => (v: unknown): unknown => {
    onDone?.();
    return v;
  };
  /** What runHook returns when the hook threw (private to the kernel: no hook can return it). */
  const NO_ANSWER: unique symbol = Symbol('no answer');
  const ignore = (): void => {};
  // The shared executor: a Promise runs it synchronously, for the call being constructed.
  let resolversFor: AsyncCall | null = null;
  const takeResolvers = (resolve: (v: unknown) => void, reject: (e: unknown) => void): void => {
    const call = resolversFor!;
    call.resolve = resolve;
    call.reject = reject;
    resolversFor = null;
  };
  /** The async call made last: what `relay` and a forward recognize by its promise. */
  let lastCall: AsyncCall | null = null;
  /**
   * relay's state, between a shadow's arming (relay) and its method's answer (the outer settle):
   * `armed*` while `fn` runs (the next async call `armedBy` makes is captured), then the captured
   * call (`pendingLeg` with its callee's promise `pendingP`) until the shadow answers with
   * `pendingToken`. All of it synchronous: a capture not merged by the next settle anywhere (the
   * shadow did not answer with the token at once) becomes an ordinary relayed call (materialize).
   */
  let armedBy: Domain | null = null;
  let armedToken: Promise<never> | null = null;
  let armedOnFailure: ((e: unknown) => unknown) | null = null;
  let armedOnDone: (() => void) | null = null;
  let pendingLeg: Leg | null = null;
  let pendingP: unknown = null;
  let pendingToken: Promise<never> | null = null;
  const disarm = (): void => {
    armedBy = null;
    armedToken = null;
    armedOnFailure = armedOnDone = null;
  };
  /** Forget the captured call (its taker read pendingLeg and pendingP first). */
  const clearPending = (): void => {
    pendingLeg = null;
    pendingP = pendingToken = null;
  };
  /** The captured call as an ordinary relayed call: its own record and promise, the hooks on it. */
  const materialize = (): Promise<unknown> => {
    const leg = pendingLeg!;
    const p = pendingP;
    clearPending();
    const call = new AsyncCall(leg.link, leg.method, leg.conv, leg.release);
    call.onValue = doneThen(leg.onDone);
    call.onFailure = leg.onFailure;
    const callee = leg.link.callee;
    if (!callee.live) {
      call.unwind(callee.deathCause ?? 'terminated');
    } else {
      callee.inflight.add(call);
      call.follow(p);
    }
    return call.promise;
  };
  /**
   * A capture whose token was handed out but not answered with at once (at the next settle or
   * relay, made by the shadow itself: it awaited the token, returned it from an async function,
   * relayed twice, ...): its caller would wait forever on the token, so that is the shadow's fault
   * (a panic: its callers get RpcErrors). The captured call itself is still answered (materialize).
   */
  const staleCapture = (): void => {
    const by = pendingLeg!.link.caller;
    void materialize();
    if (by.live) host.fault(by, 'panic', makeRpcError('panic', by.name, 'relay', `domain ${by.name} did not answer with its relay token at once`));
  };
  /** The outer call answered with the token: one record for both crossings (AsyncCall.leg). */
  const merge = (link: Link, method: string, conv: (r: any) => unknown, release: (() => void) | undefined): Promise<unknown> => {
    const leg = pendingLeg!;
    const p = pendingP;
    clearPending();
    const call = new AsyncCall(link, method, conv, release);
    link.callee.inflight.add(call);
    call.leg = leg;
    leg.call = call;
    const onward = leg.link.callee;
    if (!onward.live) {
      call.legDied(onward.deathCause ?? 'terminated'); // died since the call was made
    } else {
      onward.inflight.add(leg);
      call.followLeg(p);
    }
    return call.promise;
  };
  /** settle's relay cases: a call to capture, a token to merge, a stale capture; null: none of them. */
  const relayStep = (link: Link, p: unknown, method: string, conv: (r: any) => unknown, release: (() => void) | undefined): Promise<unknown> | null => {
    if (armedBy === link.caller) {
      if (pendingLeg !== null) staleCapture();
      pendingLeg = new Leg(link, method, conv, release, armedOnFailure!, armedOnDone);
      pendingP = p;
      pendingToken = armedToken;
      disarm();
      return pendingToken;
    }
    if (pendingLeg !== null) {
      if (p === pendingToken && link.callee === pendingLeg.link.caller) return merge(link, method, conv, release);
      staleCapture();
    }
    return null;
  };

  /**
   * A routed call (routes.ts) settling on via link `link` with the instance's promise `p`: one
   * record registered with the shadow (its caller's promise: the shadow's death fails it), the
   * Leg registered with the instance (its death, or `err` when it already failed, runs the
   * shadow's hook: AsyncCall.legFailed) — a merged relay made by the kernel alone.
   */
  const routedSettle = (link: Link, p: unknown, method: string, conv: (r: any) => unknown, leg: Leg, err?: unknown): Promise<unknown> => {
    const outer = link.outer!;
    const call = new AsyncCall(outer, method, leg.answer!, undefined);
    leg.method = method;
    leg.conv = conv;
    call.leg = leg;
    leg.call = call;
    if (outer.callee.live) outer.callee.inflight.add(call);
    else call.unwind(outer.callee.deathCause ?? 'terminated'); // what comes back is freed (passRouted)
    const inst = link.callee;
    if (err !== undefined) call.legFailedNow(err);
    else if (!inst.live) call.legDied(inst.deathCause ?? 'terminated');
    else {
      inst.inflight.add(leg);
      call.followLeg(p);
    }
    return call.promise;
  };
  /** A Leg's onFailure when its routed record's hook serves instead. */
  const noHook = (e: unknown): never => {
    throw e;
  };
  /** The answer conversion handed from `via` to the routeArg of the call it routes (same turn). */
  let routingConv: ((r: any) => unknown) | null = null;

  /** The last async call if `p` is its promise, it was made by `by`, and is pending and not forwarded yet. */
  const pendingOf = (p: unknown, by: Domain): AsyncCall | null => {
    const call = lastCall;
    return call !== null && call.promise === p && call.link.caller === by && !call.finished && call.next === null ? call : null;
  };

  const rt: ProxyRuntime = {
    enter(link, method) {
      if (link.callee.state !== 'live' || link.caller.state !== 'live') throw notLive(link, method);
      link.callee.calls++;
      // A via link's caller entered through the link it serves (routes.ts) just now.
      if (link.caller.id === 0 && link.outer === null) host.kernelEntry();
      return link.target;
    },
    after(link, method) {
      // A callee terminated during the call (e.g. by a deadline inside a nested call) cannot answer.
      if (link.callee.state !== 'live') throw deadError(link, method);
    },
    fault: faultFor,
    rejected(link, e, method, g) {
      const err = faultFor(link, e, method);
      return g == null ? Promise.reject(err) : routedSettle(link, undefined, method, noHook, g as Leg, err);
    },
    routedFault(link, e, method, g) {
      return routedFailed(link, g as Leg, method, faultFor(link, e, method));
    },
    routedAnswer(link, r, method, conv, g) {
      const leg = g as Leg;
      if (link.callee.state !== 'live') return routedFailed(link, leg, method, deadError(link, method));
      let out: unknown;
      try {
        out = conv(r);
      } catch (e) {
        return routedFailed(link, leg, method, e); // the instance's wrong answer: it was faulted
      }
      recordAnswer(leg, out);
      recycle(leg);
      return out;
    },
    via(link, index, conv) {
      const table = link.callee.routes!;
      const inst = table.instance;
      // armedBy: a relay being armed captures the caller's next call, which must be its own.
      if (table.hooks[index] === null || inst === null || !inst.live || armedBy !== null) return null;
      if (link.viaLink?.callee !== inst) host.routeVia(link, table, inst);
      routingConv = conv;
      return link.via;
    },
    routeArg(link, index, h, a0, a1, a2, a3, a4, a5) {
      const table = link.outer!.callee.routes!;
      let g = legPool.pop();
      if (g === undefined) g = new Leg(link, '', noHook, undefined, noHook, null);
      else g.link = link;
      g.route = table;
      g.index = index;
      g.target = table.target;
      g.a0 = a0;
      g.a1 = a1;
      g.a2 = a2;
      g.a3 = a3;
      g.a4 = a4;
      g.a5 = a5;
      g.answer = routingConv;
      routingConv = null;
      if (h !== null) {
        const s = kit.slotOfOwn(h as object); // the call's moved argument: a handle of this kit
        g.addr = heap.off[s]!;
        g.capacity = heap.capacityOf(s);
        if (g.capacity > 0) g.elements = takeList(g.capacity);
        const deques = table.deques[index]!;
        if (deques !== null) heap.dequeLengths(s, deques.at, g.lengths);
        g.count = heap.entrust(s, table.heir.id, -1, g.elements);
      } else {
        g.addr = -1;
        g.capacity = 0;
      }
      return g;
    },
    relay(by, fn, onFailure, onDone, token) {
      if (pendingLeg !== null) staleCapture();
      if (!by.live) return token; // faulted just now: nothing of it runs any more
      armedBy = by;
      armedToken = token;
      armedOnFailure = onFailure;
      armedOnDone = onDone;
      let q: unknown;
      let threw = false;
      try {
        q = fn();
      } catch (e) {
        // Refused at once (e.g. the callee is dead): a failure like any other, for onFailure.
        threw = true;
        q = e;
      }
      disarm();
      if (pendingLeg === null || pendingLeg.link.caller !== by) {
        return Reflect.apply(promiseThen, threw ? Promise.reject(q) : Promise.resolve(q), [doneThen(onDone), onFailure]) as Promise<unknown>;
      }
      // Captured: the token, to answer with; or, if fn did not return it (or threw after making
      // the call), an ordinary relayed call, whose answer goes through the hooks all the same.
      return q === token && !threw ? token : materialize();
    },
    settle(link, p, method, conv, release, g) {
      const callee = link.callee;
      if (!callee.live) {
        // The callee died during the call itself (a deadline or a fault before its first await):
        // its termination ran before this call was in flight, so nothing would ever unwind it.
        if (typeof p === 'object' && p !== null && p instanceof Promise) Reflect.apply(promiseThen, p, [undefined, () => {}]);
        release?.();
        // A capture this dead callee answered with is just answered (through its hooks: none run).
        if (pendingLeg !== null) {
          if (pendingLeg.link.caller === callee) void materialize();
          else staleCapture();
        }
        return g == null ? Promise.reject(deadError(link, method)) : routedSettle(link, p, method, conv, g as Leg);
      }
      if (armedBy !== null || pendingLeg !== null) {
        const relayed = relayStep(link, p, method, conv, release);
        if (relayed !== null) return relayed;
      }
      if (g != null) return routedSettle(link, p, method, conv, g as Leg);
      const prev = pendingOf(p, callee);
      const call = new AsyncCall(link, method, conv, release);
      callee.inflight.add(call);
      // The callee answered with its own pending call onward (a pass-through): forward that
      // call's answer here directly, rather than through a reaction to its promise.
      if (prev !== null) prev.next = call;
      else call.follow(p);
      return call.promise;
    },
    badArg(link, method, index, want, got) {
      return callerFault(link, method, `argument ${index} must be ${want}, got ${describe(got)}`);
    },
    badRet(link, method, want, got) {
      return calleeFault(link, method, `must be ${want}, got ${describe(got)}`);
    },
    tryMove,
    tryMoveFlat: kit.fastMoveFlat,
    moveState,
    move(link, h, typeId, method, index) {
      let moved: object | null;
      try {
        moved = kit.moveTyped(h, typeId, link.caller.id, link.callee.id);
      } catch (e) {
        return argFault(link, method, index, e);
      }
      return moved ?? argNotRRef(link, method, index, typeId, h);
    },
    borrow(link, h, typeId, method, index) {
      // Checked once: isHandle, then the slot without slotOf's second check.
      const s = kit.isHandle(h) ? kit.slotOfOwn(h as object) : -1;
      if (s < 0 || heap.type[s] !== typeId) {
        return callerFault(link, method, `argument ${index} must be a borrowed RRef of type ${heap.typeInfo(typeId).name}, got ${describe(h)}`);
      }
      // The owner may lend; so may a borrower, onward, within its own borrow (a shadow passing
      // the buffer it was lent to the driver it wraps): the nested borrow ends before the outer.
      const caller = link.caller.id;
      const mayLend = heap.owner[s] === caller || (kit.isReadOnly(h as object) && kit.holderOf(h as object) === caller);
      if (!(h as { valid: boolean }).valid || !mayLend) {
        return callerFault(link, method, `argument ${index}: a revoked or foreign RRef cannot be lent`);
      }
      // Counted in the callee's IOMMU loan column too, if it drives a device: its device may read it.
      heap.beginBorrow(s, link.callee.loanColumn);
      return kit.mint(s, link.callee.id, true);
    },
    unborrow,
    undoArgs(link, kinds, taken) {
      for (let i = 0; i < taken.length; i++) {
        const h = taken[i];
        if (h === undefined || h === null) continue;
        if (kinds[i] === 'b') unborrow(link, h as object);
        // Only while the callee's handle is still valid: the bad argument terminated the caller
        // first (callerFault), and a caller that called itself through a proxy is the callee too,
        // so its reclaim freed this value already; a second free would put its slot on the free
        // list twice (two later values sharing it).
        else if ((h as { valid: boolean }).valid) heap.free(kit.slotOf(h as object));
      }
    },
    retMove(link, h, typeId, method) {
      let moved: object | null;
      try {
        moved = kit.moveTyped(h, typeId, link.callee.id, link.caller.id);
      } catch (e) {
        return calleeFault(link, method, (e as Error).message);
      }
      return moved ?? retNotRRef(link, method, typeId, h);
    },
    landed,
    iface(link, obj, name, method, index) {
      try {
        return wrapIface(link, obj, name, link.caller, link.callee);
      } catch (e) {
        return callerFault(link, method, `argument ${index}: ${(e as Error).message}`);
      }
    },
    retIface(link, obj, name, method) {
      try {
        return wrapIface(link, obj, name, link.callee, link.caller);
      } catch (e) {
        return calleeFault(link, method, (e as Error).message);
      }
    },
    typeId(key) {
      let id = typeIds.get(key);
      if (id === undefined) {
        if (key === 'deque') id = kit.dequeType;
        else if (key.startsWith('array:')) id = kit.arrayType(key.slice(6) as never);
        else if (key.startsWith('struct:')) {
          id = kit.layoutType(key.slice(7));
          if (id === undefined) throw new Error(`unknown layout ${key}`);
        } else throw new Error(`unknown type key ${key}`);
        typeIds.set(key, id);
      }
      return id;
    },
    seal(_link, _iface, obj) {
      return harden(obj);
    },
  };
  return rt;
}

