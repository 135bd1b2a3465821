/**
 * bdev_shadow: the block shadow. Wraps a BDev driver (imported as `Supervisor:BDev`), exports the
 * same BDev, and hides driver crashes: when the driver dies (panic, injected fault, deadline) with
 * requests in flight, the shadow restarts it from its artifact — the kernel resets the controller
 * (detach/attach), the fresh instance brings it up and re-creates its queues in init — and
 * reissues every request that had not completed. Callers get normal results.
 *
 * How each method recovers (the interface side is documented in src/interfaces/block.ts):
 *  - info getters, flush: reissued as they are (flush is routed, see below);
 *  - write (borrowed buffer): the shadow lends the caller's buffer on to the driver (a borrower
 *    may lend onward within its own borrow); a driver crash cannot free it, so the call is
 *    reissued with the same buffer — zero copy;
 *  - submit / submitAndPoll (requests moved in): zero copy too, and ROUTED: the kernel passes
 *    the caller's call straight to the driver (Supervisor.route, src/kernel/routes.ts), moving the
 *    request (or the batch's deque) in one move and entrusting it to this shadow on the way, and
 *    the driver's answer straight back; none of this domain's code runs unless the call fails,
 *    when the route's hook is told where the call's requests were (their addresses, in order)
 *    and recovers below as for a call made here. Calls the kernel does not route (the instance
 *    held is dead) reach the methods below, which do the same by hand: the shadow ENTRUSTS the
 *    request (or the deque, with every request and buffer in it) through its supervisor
 *    capability; for a deque the same kernel call writes the addresses of its requests, in
 *    order, into an array of the shadow's (freed when the call ends). If the driver dies holding them,
 *    the kernel's reclaim gives the entrusted values back to the shadow instead of freeing them
 *    (src/kernel/heap.ts, reclaim) — after the device stopped DMA, with the dead driver's handles
 *    revoked — and recall() hands them over. The shadow finds each request again by its address
 *    and reissues the batch, in order, with the caller's own structs and buffers: the written
 *    bytes are the original ones, nothing is copied, and the caller gets its own requests back.
 *    Why this and not a borrowed write buffer in submit: a borrow lasts one call, the requests
 *    of submitAndPoll are owned by the driver while the controller works on them, and callers
 *    (the fs log, bcache) rely on getting their buffers back by move. Why not a copy (the former
 *    scheme): it cost a 4 KiB memcpy per written block and half the throughput of 32-request
 *    sequential writes. Cost of a routed call, over the driver's own: the kernel's entrust (O(1):
 *    one mark; for a deque, a read of its ring for the addresses) and one more record for the
 *    call (the driver's death must reach the hook); no request is touched one by one, no handle
 *    minted for this domain. (The path through the methods below costs a crossing into this
 *    domain, a move and a handle more.)
 *    A reissued request keeps the fields the dead driver left in it (a driver writes only
 *    `status`, reset before the reissue); after a crash the requests come back in a fresh deque.
 *    A request the driver did not give back (it freed the caller's request, or gave it away —
 *    a driver bug the interface forbids) cannot be reissued: in its place the caller gets a
 *    request answered -EIO with no data and zero fields (the shadow keeps nothing of it).
 * A driver answering with a bad result (e.g. an RRef of the wrong type) is terminated by the
 * kernel: a death like a panic. A restart can fail too (the fresh instance dies during its init,
 * e.g. a controller that breaks during bring-up): that is one more death. Each call retries at
 * most MAX_RETRIES restarts; then its requests come back with status -EIO (write and flush
 * return -EIO) instead of an exception — an exception escaping this domain would be its panic.
 * The next call tries again, so a device that recovers is used again. blockSize / blockCount / model / serial are answered from what the
 * driver last reported while no driver can be brought up (it is the same device).
 */
import { BLK_EIO, type BDev, type BlkReq } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRef, RRefArray, RRefBase, RRefDeque, u32 } from '../../runtime/types.js';
import { shadowControl, type Supervisor } from '../../runtime/shadow.js';

const MAX_RETRIES = 20;
/**
 * RpcError kinds that mean the driver instance called is gone. 'bad-argument' too: for a call of
 * ours it is the driver's bad result, for which the kernel terminated it (were it a bad argument
 * of ours, this domain would be dead and nothing of it would run on).
 */
const DEATHS = ['panic', 'callee-dead', 'timeout', 'bad-argument'];

/**
 * One submit / submitAndPoll call in flight: how to find its requests again after a crash (their
 * addresses, in order), its deque's capacity and address, what it was forwarded with, and its two
 * continuations — made once per pooled record, so that the common path
 * (`sup.relay(forward, failed, done)`) allocates no closure and runs no async function.
 */
interface Batch {
  n: number;
  cap: number;
  /** Address of the call's deque (submitAndPoll), -1 for submit. */
  dq: number;
  /** submit: the address of its request. */
  one: number;
  /** An unrouted submitAndPoll: the addresses of its requests in order (written by entrust). */
  order: RRefArray<u32> | null;
  /** A routed call's request addresses in order, as the kernel recorded them (instead of `order`). */
  addrs: readonly number[] | null;
  /** Positions whose request the dead driver did not give back (recovery only). */
  lost: boolean[];
  /** In flight (not in the pool). */
  busy: boolean;
  /** The driver instance called, and the request (submit) or deque (submitAndPoll) it was given. */
  driver: BDev | null;
  arg: RRef<BlkReq> | RRefDeque<RRef<BlkReq>> | null;
  /** The call onward, for relay: `arg` to `driver` (made once per record: no closure per call). */
  forward: () => Promise<RRef<BlkReq> | RRefDeque<RRef<BlkReq>>>;
  /** The call succeeded (its answer went to the caller): the record goes back to the pool. */
  done: () => void;
  /** The call failed: recover (afterDeath), or rethrow what is not a death. */
  failed: (e: unknown) => Promise<never>;
}

/** How one call is forwarded: its argument for each attempt, the call, and the answer when recovery gave up. */
interface Forward<A, R> {
  arg(): A;
  call(t: BDev, a: A): Promise<R>;
  giveUp(last: A): R;
}

export function init(sys: Sys, sup: Supervisor<BDev>): BDev {
  const ctl = shadowControl(sys, sup, { maxRetries: MAX_RETRIES });
  const died = (e: unknown): boolean => DEATHS.includes(sys.rpcErrorKind(e) ?? '');

  // The records of calls, pooled (`free`): a call without a crash allocates nothing. `all` holds
  // every record ever made (as many as calls were ever in flight at once): the busy ones are the
  // calls in flight, with no set to update per call.
  const all: Batch[] = [];
  const free: Batch[] = [];
  const newBatch = (): Batch => {
    const b: Batch = {
      n: 0, cap: 0, dq: -1, one: 0, order: null, addrs: null, lost: [], busy: false, driver: null, arg: null,
      forward: () => (b.dq < 0 ? b.driver!.submit(b.arg as RRef<BlkReq>) : b.driver!.submitAndPoll(b.arg as RRefDeque<RRef<BlkReq>>)),
      done: () => end(b),
      failed: (e) => (b.dq < 0 ? recoverOne(b, e) : recoverMany(b, e)) as Promise<never>,
    };
    all.push(b);
    return b;
  };
  const begin = (n: number, cap: number, dq: number): Batch => {
    const b = free.pop() ?? newBatch();
    b.n = n;
    b.cap = cap;
    b.dq = dq;
    b.addrs = null;
    b.busy = true;
    if (b.lost.length !== 0) b.lost.length = 0;
    return b;
  };
  /**
   * Room for `n` addresses in `b.order` (a deque's capacity: as many as it can hold). Made per
   * call and freed by `end`, not pooled with the record: only calls the kernel does not route need
   * one (made while the driver is dead, so rare), and between calls the shadow then holds nothing.
   */
  const orderFor = (b: Batch, n: number): RRefArray<u32> => (b.order = sys.alloc.array('u32', Math.max(n, 1)));
  /** Address of request `i` of `b`. */
  const addrOf = (b: Batch, i: number): number => (b.addrs !== null ? b.addrs[i]! : b.dq < 0 ? b.one : b.order!.get(i));

  // Requests recalled from dead driver instances, by address, until their call takes them back.
  const found = new Map<number, RRef<BlkReq>>();
  const end = (b: Batch): void => {
    b.busy = false;
    b.driver = null;
    b.arg = null;
    if (found.size !== 0) {
      // A call that ended without taking back what was recalled for it (it gave up): free it.
      for (let i = 0; i < b.n; i++) {
        const h = found.get(addrOf(b, i));
        if (h === undefined) continue;
        found.delete(addrOf(b, i));
        h.drop();
      }
    }
    if (b.order !== null) {
      b.order.drop();
      b.order = null;
    }
    free.push(b);
  };

  /** Size of a BlkReq struct: a recalled value of another size at a request's address is not one. */
  const reqBytes = ((): number => {
    const h = sys.alloc.struct<BlkReq>('BlkReq');
    const n = h.byteLength;
    h.drop();
    return n;
  })();
  const isReq = (v: RRefBase): v is RRef<BlkReq> => {
    const h = v as Partial<BlkReq> & RRefBase;
    return v.byteLength === reqBytes && typeof h.op === 'number' && typeof h.tag === 'number' && typeof h.status === 'number';
  };
  /**
   * Take over what dead driver instances held of ours: the requests of calls in flight (out of
   * their deques too) go to `found`; anything else (a deque, a value the driver put in one) is
   * freed. A recall covers the instances dead when it began (it waits for their memory), so a call
   * that failed when `since` recalls had begun shares the last one only if it began later: one
   * recall for all the calls that saw the same deaths, and a death after a recall began (while it
   * waits for a device slow to detach) gets its own.
   * A routed call is registered here (its hook's begin) only a microtask after its driver's death,
   * and the kernel's recall takes whatever has come back by its end, that death's values too. Yet
   * no recall can drop them as wanted by nobody: the kernel queues the hooks of the death's calls
   * (proxy.ts legFailed, queueMicrotask) in the termination, before the reclaim that hands their
   * values to this shadow (kernel.ts terminate), so before the recall's end that takes them; and
   * the code below runs a microtask after that end (the await). Microtasks run in order, so each
   * such hook has begun its record by then (test/domains/bdev_shadow.test.ts, "just as the first
   * death's recall ends"; a hook put off by two microtasks more loses its request there).
   */
  let recalls = 0;
  let collecting: Promise<void> | null = null;
  const collect = (since: number): Promise<void> => {
    if (collecting !== null && recalls > since) return collecting;
    const mine = ++recalls;
    return (collecting = (async () => {
      try {
        const got = await sup.recall();
        if (got.length === 0) return;
        const wanted = new Set<number>();
        const deques = new Set<number>();
        for (const b of all) {
          if (!b.busy) continue;
          if (b.dq >= 0) deques.add(b.dq);
          for (let i = 0; i < b.n; i++) if (b.lost[i] !== true) wanted.add(addrOf(b, i));
        }
        const keep = (v: RRefBase): void => {
          if (wanted.has(v.addr) && !found.has(v.addr) && isReq(v)) found.set(v.addr, v);
          else v.drop();
        };
        for (const v of got) {
          if (!deques.has(v.addr)) {
            keep(v);
            continue;
          }
          const dq = v as RRefDeque<RRefBase>;
          for (let e = dq.pop(); e !== undefined; e = dq.pop()) keep(e);
          dq.drop();
        }
      } finally {
        if (recalls === mine) collecting = null; // no later recall began
      }
    })());
  };

  /** Request `i` of `b` as recalled (status set), or null if the dead driver did not give it back. */
  const claim = (b: Batch, i: number, status: number): RRef<BlkReq> | null => {
    if (b.lost[i] === true) return null;
    const addr = addrOf(b, i);
    const h = found.get(addr);
    if (h === undefined) {
      b.lost[i] = true;
      return null;
    }
    found.delete(addr);
    h.status = status;
    return h;
  };
  /** In the place of a request the driver did not give back: one answered -EIO (no data). */
  const lostReq = (): RRef<BlkReq> => {
    const h = sys.alloc.struct<BlkReq>('BlkReq');
    h.status = BLK_EIO;
    return h;
  };
  /** The requests of `b` that came back, in order, in a fresh deque (the lost ones left out). */
  const claimAll = (b: Batch, status: number): RRefDeque<RRef<BlkReq>> => {
    const d = sys.alloc.deque<RRef<BlkReq>>(b.cap);
    for (let i = 0; i < b.n; i++) {
      const h = claim(b, i, status);
      if (h !== null) d.push(h);
    }
    return d;
  };
  /** The answer to the caller: `dq` with a lostReq put back in the place of each lost request. */
  const withLost = (b: Batch, dq: RRefDeque<RRef<BlkReq>>): RRefDeque<RRef<BlkReq>> => {
    if (b.lost.length === 0) return dq;
    const out = sys.alloc.deque<RRef<BlkReq>>(b.cap);
    for (let i = 0; i < b.n; i++) out.push(b.lost[i] === true ? lostReq() : dq.pop()!);
    dq.drop();
    return out;
  };

  /**
   * A call to the live driver `t` (made directly by the caller: no bookkeeping, no closures, the
   * common case) threw `e`. Rethrow unless it is a death; else restart the driver — one restart
   * for all the calls that saw the same death; a concurrent call may have done it already —, take
   * back what the dead instance held (collect) and issue the call again with `f.arg()`, at most
   * MAX_RETRIES times; then answer
   * `f.giveUp(last argument)`. A failed restart (the fresh instance died in its init) is one more
   * death: the next attempt restarts again. Never throws a death (it would be this domain's panic).
   */
  async function afterDeath<A, R>(t: BDev, e: unknown, f: Forward<A, R>): Promise<R> {
    if (!died(e)) throw e;
    let driver = t; // the instance last called
    let since = recalls; // when the call last failed: a recall begun later covers that death
    for (let attempt = 1; ; attempt++) {
      try {
        if (driver === ctl.target()) await ctl.recover();
      } catch (e2) {
        if (!died(e2)) throw e2;
      }
      await collect(since);
      const a = f.arg();
      driver = ctl.target();
      try {
        return await f.call(driver, a);
      } catch (e2) {
        if (!died(e2)) throw e2;
        since = recalls;
        if (attempt >= MAX_RETRIES) {
          await collect(since);
          return f.giveUp(a);
        }
      }
    }
  }

  /** Recovery of a submit call (the cold path of Batch.failed). */
  async function recoverOne(b: Batch, e: unknown): Promise<RRef<BlkReq>> {
    let cur = b.arg as RRef<BlkReq> | null;
    try {
      return await afterDeath(b.driver!, e, {
        // The request itself while it is still ours (the call was refused before the move).
        arg: () => (cur !== null && cur.valid ? cur : (cur = claim(b, 0, 0))),
        call: (t, a) => {
          if (a === null) return Promise.resolve(lostReq());
          sup.entrust(a);
          return t.submit(a);
        },
        giveUp: (a) => {
          const r = (a !== null && a.valid ? a : claim(b, 0, BLK_EIO)) ?? lostReq();
          r.status = BLK_EIO;
          return r;
        },
      });
    } finally {
      end(b);
    }
  }

  /** Recovery of a submitAndPoll call (the cold path of Batch.failed). */
  async function recoverMany(b: Batch, e: unknown): Promise<RRefDeque<RRef<BlkReq>>> {
    let cur = b.arg as RRefDeque<RRef<BlkReq>> | null;
    try {
      return await afterDeath(b.driver!, e, {
        arg: () => {
          if (cur !== null && cur.valid) return cur;
          cur = claimAll(b, 0);
          b.dq = cur.addr;
          return cur;
        },
        call: async (t, a) => {
          sup.entrust(a);
          return withLost(b, await t.submitAndPoll(a));
        },
        giveUp: (a) => {
          const d = a.valid ? a : claimAll(b, BLK_EIO);
          for (let i = d.length; i > 0; i--) {
            const h = d.pop()!;
            h.status = BLK_EIO;
            d.push(h);
          }
          return withLost(b, d);
        },
      });
    } finally {
      end(b);
    }
  }

  /** Geometry and identity, as the driver last reported them (answers while no driver is up). */
  const known = { blockSize: 0, blockCount: 0, model: '', serial: '', readOnly: false };
  const info = <K extends keyof typeof known>(key: K, fn: (t: BDev) => (typeof known)[K]): (typeof known)[K] => {
    try {
      return (known[key] = ctl.call(true, fn));
    } catch (e) {
      if (died(e)) return known[key];
      throw e;
    }
  };
  info('blockSize', (t) => t.blockSize());
  info('blockCount', (t) => t.blockCount());
  info('model', (t) => t.model());
  info('serial', (t) => t.serial());
  info('readOnly', (t) => t.readOnly());

  /** How a failed flush is reissued (routed or relayed). */
  const flushAgain: Forward<null, number> = { arg: () => null, call: (t) => t.flush(), giveUp: () => BLK_EIO };
  // The common path of submit / submitAndPoll / flush without this domain: the kernel routes the
  // calls to the driver, entrusting their requests to us, and runs these hooks only when one
  // fails — with where its requests were, so that the recovery below finds them as for a call
  // made by us.
  sup.route({
    flush: (e, call) => afterDeath(call.target, e, flushAgain),
    submit: (e, call) => {
      const b = begin(1, 0, -1);
      b.one = call.addr;
      b.driver = call.target;
      return recoverOne(b, e);
    },
    submitAndPoll: (e, call) => {
      const b = begin(call.elements.length, call.capacity, call.addr);
      b.addrs = call.elements;
      b.driver = call.target;
      return recoverMany(b, e);
    },
  });

  return {
    blockSize: () => info('blockSize', (t) => t.blockSize()),
    blockCount: () => info('blockCount', (t) => t.blockCount()),
    model: () => info('model', (t) => t.model()),
    serial: () => info('serial', (t) => t.serial()),
    readOnly: () => info('readOnly', (t) => t.readOnly()),
    // A call refused at once (the driver is dead) reaches b.failed through relay, with the
    // request still ours (recoverOne / recoverMany take it back as it is).
    submit(h: RRef<BlkReq>) {
      const b = begin(1, 0, -1);
      b.one = h.addr;
      b.driver = ctl.target();
      b.arg = h;
      sup.entrust(h);
      return sup.relay(b.forward as () => Promise<RRef<BlkReq>>, b.failed, b.done);
    },
    submitAndPoll(dq: RRefDeque<RRef<BlkReq>>) {
      const cap = dq.capacity;
      const b = begin(0, cap, dq.addr);
      b.driver = ctl.target();
      b.arg = dq;
      // Marks the batch and records where its requests are and how many, in one kernel call:
      // no request is touched here one by one.
      b.n = sup.entrust(dq, orderFor(b, cap));
      return sup.relay(b.forward as () => Promise<RRefDeque<RRef<BlkReq>>>, b.failed, b.done);
    },
    // Zero copy: the shadow lends the buffer it was lent on to the driver; the borrow outlives a
    // driver crash (the caller still owns the buffer), so a reissue lends it again. Relayed (a
    // borrow cannot be routed): the kernel merges the call onward into this one.
    write(lba: number, data: RRefArray<number>) {
      const t = ctl.target();
      return sup.relay(() => t.write(lba, data), (e) => afterDeath(t, e, { arg: () => data, call: (t2, d) => t2.write(lba, d), giveUp: () => BLK_EIO }));
    },
    flush() {
      const t = ctl.target();
      return sup.relay(() => t.flush(), (e) => afterDeath(t, e, flushAgain));
    },
  };
}
