/**
 * Shadow control (domain runtime library): the restart-and-retry loop every shadow shares.
 *
 * A shadow domain holds a Supervisor capability over the domain it wraps. On an RpcError that
 * says the target died (panic, callee-dead, timeout), `call` restarts the target from its
 * artifact, lets the shadow replay the initialisation protocol (`onRestart`; no call through the
 * control reaches the fresh instance before it has finished, nor ever if it failed: the next call
 * restarts again), and reissues the call when it can be reissued (nothing was moved into the
 * dead callee). Callers of the shadow see a normal result. A shadow that moves values into its
 * target (requests, buffers) entrusts them through the Supervisor first, and takes them back with
 * recall() after a death, to reissue them without copies (see src/domains/bdev_shadow); relay()
 * lets it pass a call through, merged by the kernel into the call it answers, and route() has
 * the kernel pass its callers' calls on without entering it at all, its hooks run only on a
 * failure. No authority here: everything comes from the capabilities passed in.
 */
import type { Sys } from './sys.js';
import type { RRefArray, RRefBase, RRefDeque, u8, u32 } from './types.js';

/** Kernel capability over a supervised domain (import spec `{ supervise: name }`). */
export interface Supervisor<T> {
  current(): T;
  restart(): T;
  restarts(): number;
  /**
   * When the supervised domain's latest instance died, on sys.now()'s clock (-1 while it lives):
   * the kernel stamps it as the termination begins, so a shadow that times its recovery from
   * here counts what the kernel did before the shadow's code ran — the dead instance's calls
   * unwound, its memory reclaimed (what it held of yours given back), its device detached.
   */
  diedAt(): number;
  /**
   * Entrust `v` (yours, with everything it holds) before moving it into the supervised domain:
   * if an instance you got from current()/restart() dies holding any of it, that part comes back
   * to you through recall() instead of being freed. Throws an RpcError 'bad-argument' for a value
   * you do not own. The mark costs one pass over the value and lasts until the value is freed.
   * With `order` (yours) and a deque `v`, the physical addresses of its elements are written to
   * `order` in deque order (0 for a corrupt entry) — how a shadow finds each request again after
   * a crash without touching them one by one; it must have room for all. Returns how many.
   */
  entrust(v: RRefBase, order?: RRefArray<u32>): number;
  /**
   * Pass a call through: `fn` makes one async call into an instance you got from
   * current()/restart() and returns its promise unchanged; its answer is your answer, and relay
   * settles as `fn().then((v) => (onDone?.(), v), onFailure)` would — with a throw of `fn` (e.g.
   * the instance is dead) a failure for onFailure like any other. Return what relay returns from
   * your method, at once: the kernel then merges that call into the one you are answering (one
   * call record and one promise for both crossings, no promise hop of yours), and its answer goes
   * to your caller as through you (its RRefs moved, typed as your method declares) without your
   * holding it; onDone tells you it came. What relay returns may be a token that only your
   * method's answer gives a meaning: use it for nothing else (awaited, it never settles; not
   * answered with at once, it is your panic). A call `fn` did not return is answered through the
   * hooks all the same.
   */
  relay<R>(fn: () => Promise<R>, onFailure: (e: unknown) => R | Promise<R>, onDone?: () => void): Promise<R>;
  /**
   * Have the kernel pass your callers' calls of the methods named in `hooks` straight to the
   * instance you last got from current()/restart(), without running your code: the call's moved
   * RRef goes from your caller to the instance in one move, entrusted to you on the way (as
   * entrust() does), and the instance's answer goes straight to your caller. Only when such a call
   * fails (the instance died, or answered wrongly and was terminated for it) does its hook run:
   * what it returns (or, for an async method, its promise's value) is your answer to that call —
   * for a synchronous method it runs before the call returns, and must answer at once. Methods
   * whose parameters are primitives and at most one moved RRef can be routed, a synchronous one
   * only if it moves one (else a bad-argument RpcError). Your own methods still serve every call
   * the kernel does not route: while the instance you hold is dead, or when false is returned
   * (the kernel cannot route for you, e.g. a domain in a worker). A later call replaces the
   * routes; `route({})` routes nothing.
   * With `record`, the kernel also keeps for you what each routed call answered in one u32 field
   * (`field`) of its answer struct, by the call's first argument (an integer below `keys`): at
   * index `m * keys + key` of `into` (your RRefArray<u32>, with room for `keys` entries per method
   * of the interface; `m` the method's position in it), for as long as you own `into` unmoved.
   * It is yours to read and write (after a recovery you know better than the dead instance).
   */
  route(
    hooks: RouteHooks<T>,
    record?: { field: string; into: RRefArray<u32>; keys: number },
  ): boolean;
  /**
   * Fresh handles (yours) to the entrusted values that dead instances held when they died — each
   * value as a root, with what it holds then — once their memory was reclaimed. Each comes back
   * once; what they freed or moved elsewhere does not.
   */
  recall(): Promise<readonly RRefBase[]>;
  /**
   * recall() at once, for what has come back by now: the values of dead instances whose memory
   * was reclaimed at their death (an in-thread driver whose device stopped DMA at once, the usual
   * case — what a synchronous route's hook can use). An instance still detaching gives its
   * values later, through either. With `into` (a deque of yours), the byte arrays among them are
   * pushed there, as room allows, instead of each coming back as a handle.
   */
  recallNow(into?: RRefDeque<RRefArray<u8>>): readonly RRefBase[];
  /**
   * The type of `v` (a valid RRef of yours): a layout's name ('NetIo'), 'RRefArray<u8>' (any
   * element kind) or 'RRefDeque' — how you sort what recall gave back (an operation of another
   * type on a handle is a violation).
   */
  typeOf(v: RRefBase): string;
}

/** A route's hooks, by method name (see Supervisor.route): each answers a routed call that failed. */
export type RouteHooks<T> = { [M in keyof T]?: (e: unknown, call: RoutedCall<T>) => unknown };

/** What a route's hook is told about the call that failed (see Supervisor.route). */
export interface RoutedCall<T> {
  /** The instance the call went to, as current()/restart() handed it to you. */
  readonly target: T;
  /** The call's arguments by position: primitives as passed, null in the moved RRef's place (empty for a method that takes no primitive). */
  readonly args: readonly unknown[];
  /**
   * The moved RRef as it went in (-1 / 0 / empty for a method that moves none): its address; for
   * a deque, its capacity and its elements' addresses in deque order. What the dead instance
   * held of it comes back through recall().
   */
  readonly addr: number;
  readonly capacity: number;
  readonly elements: readonly number[];
  /** For a moved struct: per RRef field in field order (the first 16), the length of the deque it held as the call went in (0: none). */
  readonly lengths: readonly number[];
}

export interface ShadowControl<T> {
  call<R>(reissuable: boolean, fn: (target: T) => R): R;
  /**
   * `fn(target)` (one async call into the target), restarted and reissued like `call`. Passed
   * through with `Supervisor.relay`: return what it returns from your method at once (it may be a
   * relay token, see there) — the generated shadows do.
   */
  callAsync<R>(reissuable: boolean, fn: (target: T) => Promise<R>): Promise<R>;
  /**
   * Route the calls of these async methods, whose parameters are all primitives (each call can
   * be reissued), through the kernel (Supervisor.route): none of the shadow's code runs on their
   * common path; after a failure `reissue[method](target, args)` makes the call again on a fresh
   * instance, restarted and retried as callAsync would. Returns whether the kernel routes them
   * (if not, the shadow's own methods serve every call, as before).
   */
  route(reissue: { [M in keyof T]?: (target: T, args: readonly unknown[]) => Promise<unknown> }): boolean;
  /**
   * The current target (after any restart). While an asynchronous onRestart runs on it, or after
   * one failed, it is not initialised: call and callAsync wait or restart instead of calling it.
   */
  target(): T;
  /**
   * Restart now (used by hand-written shadows that recover moved buffers themselves). Rejects as
   * a failed recovery fails the calls that wait for it: with the death if the fresh instance died
   * (in its init, or in onRestart's replay), else with a 'shadow: recovery failed' Error whose
   * cause is onRestart's failure.
   */
  recover(): Promise<T>;
  readonly restarts: number;
}

export interface ShadowOptions<T> {
  /**
   * Replay of the initialisation protocol on a fresh instance (e.g. device bring-up). It calls
   * `fresh` itself: until an asynchronous one has finished, calls through the control wait for it
   * (a synchronous call cannot wait, and throws), and routes the control set are suspended — not
   * routes set with Supervisor.route directly, which the control does not know of. If it fails
   * (throws, or its promise rejects), the instance is left uninitialised: no call reaches it, the
   * routes stay suspended, the failure is logged, and the next call restarts again (see
   * recoveryFailed).
   */
  onRestart?: (fresh: T) => void | Promise<void>;
  /** Give up after this many consecutive restarts of one call (default 5). */
  maxRetries?: number;
}

const DEATHS = new Set(['panic', 'callee-dead', 'timeout']);
/**
 * A synchronous call cannot wait for an asynchronous onRestart: rather than reach an instance not
 * yet initialised, it throws (a shadow with synchronous methods needs a synchronous onRestart).
 */
const SYNC_DURING_RECOVERY = 'shadow: a synchronous call cannot wait for an asynchronous restart';
/** How the message of the error a failed onRestart gives its waiting calls begins (see recoveryFailed). */
const RECOVERY_FAILED = 'shadow: recovery failed: onRestart did not initialise the restarted instance';

/** What `e` says, for a message: an Error's message, else the value as text. */
const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export function shadowControl<T>(sys: Sys, sup: Supervisor<T>, opts: ShadowOptions<T> = {}): ShadowControl<T> {
  let current = sup.current();
  let restarts = 0;
  const max = opts.maxRetries ?? 5;
  /**
   * Set while an asynchronous onRestart replays the initialisation protocol on `current`: calls
   * wait for it, so that none reaches a fresh instance before it is initialised (async calls and
   * retries wait; a synchronous call cannot, and throws; routed calls are not routed meanwhile).
   */
  let recovering: Promise<T> | null = null;
  /**
   * Set when onRestart failed on `current`: it is not initialised, so no call reaches it (nor is
   * routed to it); the next call restarts it instead, as it would a dead one (see recoveryFailed).
   */
  let failed = false;
  /** The hooks of route(), while the kernel routes them (null: nothing routed). */
  let routed: RouteHooks<T> | null = null;

  const died = (e: unknown): boolean => {
    const k = sys.rpcErrorKind(e);
    return k !== null && DEATHS.has(k);
  };
  /** Whether the kernel routes the control's hooks now (see reroute). */
  let routing = false;
  /**
   * Set the kernel's routes to what the state asks: the hooks of route() while `current` is ready
   * (no recovery under way, its onRestart not failed), none otherwise — the kernel routes to the
   * instance last handed out, at once.
   */
  const reroute = (): void => {
    const on = routed !== null && recovering === null && !failed;
    if (on === routing) return;
    routing = on;
    sup.route(on ? routed! : {});
  };
  /**
   * onRestart failed on `current` with `e`. Decision: a failed replay leaves an instance nobody may
   * call (it is not initialised, and may answer wrongly rather than fail), so the control treats
   * it as dead — its routes stay off, and the next call restarts it, bounded like any call's
   * restarts (maxRetries; a later call tries again, so a device that recovers is used again).
   * The failure is logged: a synchronous call that began the recovery could not wait for it, and
   * may have left nobody to hear of it. Returned: what the calls that needed the recovery get.
   * A death (the fresh instance died during the replay) is one more death, retried within their
   * bound; anything else (the shadow's own replay threw) is a recovery error that says so, with
   * onRestart's failure as its cause — not that failure itself, which is not about their call.
   * Not an RpcError: only the kernel can make one, and what a shadow's method throws is, at its
   * proxy, the shadow's panic — its caller gets an RpcError 'panic' naming the shadow, this
   * message its detail, as for any domain crash (test/kernel/shadow-recovery.test.ts, ishadow).
   */
  const recoveryFailed = (e: unknown): unknown => {
    failed = true;
    reroute();
    sys.log(`shadow: recovery failed: onRestart of restart ${restarts} failed: ${messageOf(e)}`);
    return died(e) ? e : new Error(`${RECOVERY_FAILED}: ${messageOf(e)}`, { cause: e });
  };
  /**
   * Restart the target and replay onRestart on the fresh instance: both paths (call's and
   * recover's) come here. An asynchronous onRestart is `recovering` until it settles (restart
   * returns true while it runs on); the kernel's routes are suspended meanwhile (the kernel would
   * route to the fresh instance at once) and put back once it succeeded. A failed onRestart
   * throws, or rejects `recovering` with, what recoveryFailed makes of it; `recovering` is always handled here (the chain that
   * ends it handed to sys.detach), so a recovery nobody waits for (a synchronous call's) leaves
   * no unhandled rejection.
   */
  const restart = (): boolean => {
    const fresh = (current = sup.restart());
    failed = false;
    restarts++;
    let r: void | Promise<void>;
    try {
      r = opts.onRestart?.(fresh);
    } catch (e) {
      throw recoveryFailed(e);
    }
    if (!(r instanceof Promise)) {
      reroute();
      return false;
    }
    const p = r.then(
      () => fresh,
      (e: unknown) => {
        throw recoveryFailed(e);
      },
    );
    recovering = p;
    reroute();
    const over = (): void => {
      if (recovering !== p) return;
      recovering = null;
      reroute();
    };
    sys.detach(p.then(over, over));
    return true;
  };
  const recover = (): Promise<T> => {
    // One restart for every call that saw the same death.
    if (recovering === null) {
      try {
        if (!restart()) return Promise.resolve(current);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return recovering!;
  };

  /**
   * callAsync after its first attempt, on `t`, failed with `e`: the same loop as `call`'s, from
   * `attempt` (the failed recoveries the call waited for before it was made, see afterRecovery).
   */
  const retryAsync = async <R>(reissuable: boolean, fn: (target: T) => Promise<R>, t: T, e: unknown, attempt = 0): Promise<R> => {
    for (; ; attempt++) {
      if (!died(e) || attempt >= max) throw e;
      try {
        if (t === current) await recover();
        // Until no recovery is under way (one may follow another) and `current` is initialised
        // (if its onRestart failed, recover() restarts it). Checked here, in the turn that goes
        // on to call: an awaited helper's answer came a turn later, in which another waiter
        // could already have found the fresh instance dead and begun the next recovery.
        while (recovering !== null || failed) await recover();
      } catch (e2) {
        if (!reissuable) throw e; // its own failure: it would not have been reissued
        e = e2; // the recovery failed (recoveryFailed): a death is one more attempt
        continue;
      }
      if (!reissuable) throw e;
      t = current;
      try {
        return await fn(t);
      } catch (e2) {
        e = e2;
      }
    }
  };
  /**
   * callAsync for a call that came while a recovery was under way, or after one failed: made once
   * `current` is ready. A failed recovery is a failed attempt of the call (not yet made, so
   * nothing of it is lost): a death is retried, within the call's bound, which counts them;
   * anything else thrown.
   */
  const afterRecovery = async <R>(reissuable: boolean, fn: (target: T) => Promise<R>): Promise<R> => {
    let attempt = 0;
    for (; ; attempt++) {
      try {
        while (recovering !== null || failed) await recover(); // as in retryAsync
        break;
      } catch (e) {
        if (!died(e) || attempt >= max) throw e;
      }
    }
    const t = current;
    try {
      return await fn(t);
    } catch (e) {
      return retryAsync(reissuable, fn, t, e, attempt);
    }
  };

  return {
    call(reissuable, fn) {
      // The instance the last attempt found dead, restarted before the next attempt (unless a
      // restart came meanwhile). A restart that fails (the fresh instance died in its init, or
      // in onRestart) is that attempt's failure: a death, retried within the bound as in
      // retryAsync — for any call, as in afterRecovery, since the call itself was not made.
      let dead: T | null = null;
      for (let attempt = 0; ; attempt++) {
        if (recovering !== null) throw new Error(SYNC_DURING_RECOVERY);
        let t = current;
        let made = false;
        try {
          if (t === dead || failed) {
            if (restart()) throw new Error(SYNC_DURING_RECOVERY);
            t = current;
          }
          made = true;
          return fn(t);
        } catch (e) {
          if (!died(e) || attempt >= max) throw e;
          if (!reissuable && made) {
            // Restarted for the calls after it; this call gets its own death, as in retryAsync,
            // and does not wait for an asynchronous onRestart (restart handles its end).
            if (t === current) {
              try {
                restart();
              } catch {
                // Logged if onRestart failed (recoveryFailed); the next call restarts again.
              }
            }
            throw e;
          }
          dead = t;
        }
      }
    },
    callAsync<R>(reissuable: boolean, fn: (target: T) => Promise<R>): Promise<R> {
      if (recovering !== null || failed) return afterRecovery(reissuable, fn);
      const t = current;
      return sup.relay(() => fn(t), (e) => retryAsync(reissuable, fn, t, e));
    },
    route(reissue) {
      const hooks: RouteHooks<T> = {};
      for (const method of Object.keys(reissue) as (keyof T)[]) {
        const again = reissue[method]!;
        hooks[method] = (e, call) => retryAsync(true, (t) => again(t, call.args), call.target, e);
      }
      const ok = sup.route(hooks);
      routed = ok ? hooks : null;
      routing = ok;
      reroute(); // off until `current` is ready (restart puts them in place then)
      return ok;
    },
    target: () => current,
    recover,
    get restarts() {
      return restarts;
    },
  };
}
