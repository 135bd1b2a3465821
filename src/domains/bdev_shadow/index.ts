/**
 * bdev_shadow: the block shadow. Wraps a BDev driver (imported as `Supervisor:BDev`), exports the
 * same BDev, and hides driver crashes: when the driver dies (panic, injected fault, deadline) with
 * requests in flight, the shadow restarts it from its artifact — the kernel resets the controller
 * (detach/attach), the fresh instance brings it up and re-creates its queues in init — and
 * reissues every request that had not completed. Callers get normal results.
 *
 * How each method recovers (the interface side is documented in src/interfaces/block.ts):
 *  - info getters, flush: reissued as they are;
 *  - write (borrowed buffer): the shadow lends the caller's buffer on to the driver (a borrower
 *    may lend onward within its own borrow); a driver crash cannot free it, so the call is
 *    reissued with the same buffer — zero copy;
 *  - submit / submitAndPoll (requests moved in): zero copy too. Before forwarding, the shadow
 *    ENTRUSTS the request (or the batch's deque, with every request and buffer in it) through its
 *    supervisor capability, and records each request's op, lba, nblocks, tag and address. If the
 *    driver dies holding them, the kernel's reclaim gives the entrusted values back to the shadow
 *    instead of freeing them (src/kernel/heap.ts, bequeath) — after the device stopped DMA, with
 *    the dead driver's handles revoked — and recall() hands them over. The shadow finds each
 *    request again by its address, resets its fields from the record and reissues the batch with
 *    the caller's own buffers: the written bytes are the original ones, nothing is copied.
 *    Why this and not a borrowed write buffer in submit: a borrow lasts one call, the requests
 *    of submitAndPoll are owned by the driver while the controller works on them, and callers
 *    (the fs log, bcache) rely on getting their buffers back by move. Why not a copy: it cost
 *    one 4 KiB memcpy and a pooled buffer per written block (half the throughput of 32-request
 *    sequential writes). Cost now: one capability call per call (a walk over the batch's slots
 *    setting a flag) and five field reads per request.
 *    A request the driver did not give back (it freed the caller's request, or gave it away):
 *    a read is rebuilt with a fresh buffer and reissued; a write cannot be, its data is gone —
 *    it is sent as a flush (harmless) and answered -EIO with its own op, never written with
 *    other bytes.
 * A restart can fail too (the fresh instance dies during its init, e.g. a controller that breaks
 * during bring-up): that is one more death. Each call retries at most MAX_RETRIES restarts; then
 * its requests come back with status -EIO (write and flush return -EIO) instead of an exception —
 * an exception escaping this domain would be its panic. The next call tries again, so a device
 * that recovers is used again. blockSize / blockCount / model / serial are answered from what the
 * driver last reported while no driver can be brought up (it is the same device).
 */
import type { BDev, BlkReq } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRef, RRefArray, RRefBase, RRefDeque } from '../../runtime/types.js';
import { shadowControl, type Supervisor } from '../../runtime/shadow.js';

const EIO = -5;
const MAX_RETRIES = 20;
const DEATHS = ['panic', 'callee-dead', 'timeout'];
const BLK_WRITE = 1;
const BLK_FLUSH = 2;

/** What finding (or, failing that, rebuilding) one request after a crash needs. */
interface Rec {
  op: number;
  lba: number;
  nblocks: number;
  tag: number;
  /** Address of the request struct: how it is recognised among the recalled values. */
  addr: number;
  /** A write that did not come back: reissued as a flush, answered -EIO (see fixLost). */
  lost: boolean;
}

/**
 * One submit / submitAndPoll call in flight: the records of its requests (`n` of `recs`), its
 * deque's capacity and address, what it was forwarded with, and its two continuations — made once
 * per pooled record, so that the common path (`driver.call(arg).then(done, failed)`) allocates no
 * closure and runs no async function of its own.
 */
interface Batch {
  recs: Rec[];
  n: number;
  cap: number;
  /** Address of the call's deque (submitAndPoll), -1 for submit. */
  dq: number;
  lost: number;
  /** In flight (not in the pool). */
  busy: boolean;
  /** The driver instance called, and the request (submit) or deque (submitAndPoll) it was given. */
  driver: BDev | null;
  arg: RRef<BlkReq> | RRefDeque<RRef<BlkReq>> | null;
  /** The call succeeded: the record goes back to the pool, the result to the caller. */
  done: <T>(out: T) => T;
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
      recs: [], n: 0, cap: 0, dq: -1, lost: 0, busy: false, driver: null, arg: null,
      done: (out) => {
        end(b);
        return out;
      },
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
    b.lost = 0;
    b.busy = true;
    return b;
  };
  const record = (b: Batch, i: number, h: RRef<BlkReq>): void => {
    const r = b.recs[i] ?? (b.recs[i] = { op: 0, lba: 0, nblocks: 0, tag: 0, addr: 0, lost: false });
    r.op = h.op;
    r.lba = h.lba;
    r.nblocks = h.nblocks;
    r.tag = h.tag;
    r.addr = h.addr;
    r.lost = false;
  };

  // Requests recalled from dead driver instances, by address, until their call takes them back.
  const found = new Map<number, RRef<BlkReq>>();
  const end = (b: Batch): void => {
    b.busy = false;
    b.driver = null;
    b.arg = null;
    if (found.size !== 0) {
      // A call that ended without taking back what was recalled for it (it gave up): free it.
      for (let i = 0; i < b.n; i++) {
        const h = found.get(b.recs[i]!.addr);
        if (h === undefined) continue;
        found.delete(b.recs[i]!.addr);
        h.drop();
      }
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
   * freed. One recall for all the calls that saw the same deaths.
   */
  let collecting: Promise<void> | null = null;
  const collect = (): Promise<void> =>
    (collecting ??= (async () => {
      try {
        const got = await sup.recall();
        if (got.length === 0) return;
        const wanted = new Set<number>();
        const deques = new Set<number>();
        for (const b of all) {
          if (!b.busy) continue;
          if (b.dq >= 0) deques.add(b.dq);
          for (let i = 0; i < b.n; i++) wanted.add(b.recs[i]!.addr);
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
        collecting = null;
      }
    })());

  /**
   * The request recorded in `r`, with `status`: the recalled one (the caller's own struct and
   * buffer, fields reset from the record), else a rebuilt one — a read with a fresh buffer, a
   * lost write as a flush (fixLost answers it -EIO).
   */
  const takeBack = (b: Batch, r: Rec, status: number): RRef<BlkReq> => {
    let h = found.get(r.addr);
    if (h !== undefined) found.delete(r.addr);
    const op = r.op;
    if (h !== undefined && op !== BLK_FLUSH && !r.lost) {
      const data = h.data;
      if (data === null || data.byteLength < r.nblocks * known.blockSize) {
        h.drop();
        h = undefined;
      }
    }
    if (h === undefined) {
      h = sys.alloc.struct<BlkReq>('BlkReq');
      if (op === BLK_WRITE) {
        if (!r.lost) b.lost++;
        r.lost = true;
      } else if (op !== BLK_FLUSH) {
        const len = r.nblocks * known.blockSize;
        h.data = sys.alloc.bytes(len, len % 4096 === 0 ? 4096 : 64);
      }
    }
    h.op = r.lost ? BLK_FLUSH : op;
    h.lba = r.lba;
    h.nblocks = r.nblocks;
    h.tag = r.tag;
    h.status = r.lost ? EIO : status;
    return h;
  };
  const takeBackAll = (b: Batch, status: number): RRefDeque<RRef<BlkReq>> => {
    const d = sys.alloc.deque<RRef<BlkReq>>(b.cap);
    for (let i = 0; i < b.n; i++) d.push(takeBack(b, b.recs[i]!, status));
    return d;
  };
  /** A lost write, reissued as a flush, is answered as what it was: a write that failed. */
  const fixLost = (r: Rec, h: RRef<BlkReq>): void => {
    if (!r.lost) return;
    h.op = r.op;
    h.status = EIO;
  };
  const fixLostAll = (b: Batch, dq: RRefDeque<RRef<BlkReq>>): RRefDeque<RRef<BlkReq>> => {
    if (b.lost === 0) return dq;
    for (let i = 0; i < b.n; i++) {
      const h = dq.pop()!;
      fixLost(b.recs[i]!, h);
      dq.push(h);
    }
    return dq;
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
    for (let attempt = 1; ; attempt++) {
      try {
        if (driver === ctl.target()) await ctl.recover();
      } catch (e2) {
        if (!died(e2)) throw e2;
      }
      await collect();
      const a = f.arg();
      driver = ctl.target();
      try {
        return await f.call(driver, a);
      } catch (e2) {
        if (!died(e2)) throw e2;
        if (attempt >= MAX_RETRIES) {
          await collect();
          return f.giveUp(a);
        }
      }
    }
  }

  /** Recovery of a submit call (the cold path of Batch.failed). */
  async function recoverOne(b: Batch, e: unknown): Promise<RRef<BlkReq>> {
    const rec = b.recs[0]!;
    let cur = b.arg as RRef<BlkReq>;
    try {
      return await afterDeath(b.driver!, e, {
        // The request itself while it is still ours (the call was refused before the move).
        arg: () => (cur.valid ? cur : (cur = takeBack(b, rec, 0))),
        call: async (t, a) => {
          sup.entrust(a);
          const r = await t.submit(a);
          fixLost(rec, r);
          return r;
        },
        giveUp: (a) => {
          const r = a.valid ? a : takeBack(b, rec, EIO);
          r.status = EIO;
          fixLost(rec, r);
          return r;
        },
      });
    } finally {
      end(b);
    }
  }

  /** Recovery of a submitAndPoll call (the cold path of Batch.failed). */
  async function recoverMany(b: Batch, e: unknown): Promise<RRefDeque<RRef<BlkReq>>> {
    let cur = b.arg as RRefDeque<RRef<BlkReq>>;
    try {
      return await afterDeath(b.driver!, e, {
        arg: () => {
          if (cur.valid) return cur;
          cur = takeBackAll(b, 0);
          b.dq = cur.addr;
          return cur;
        },
        call: async (t, a) => {
          sup.entrust(a);
          return fixLostAll(b, await t.submitAndPoll(a));
        },
        giveUp: (a) => {
          const d = a.valid ? a : takeBackAll(b, EIO);
          for (let i = 0; i < b.n; i++) {
            const h = d.pop()!;
            h.status = EIO;
            d.push(h);
          }
          return fixLostAll(b, d);
        },
      });
    } finally {
      end(b);
    }
  }

  /** Geometry and identity, as the driver last reported them (answers while no driver is up). */
  const known = { blockSize: 0, blockCount: 0, model: '', serial: '' };
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

  return {
    blockSize: () => info('blockSize', (t) => t.blockSize()),
    blockCount: () => info('blockCount', (t) => t.blockCount()),
    model: () => info('model', (t) => t.model()),
    serial: () => info('serial', (t) => t.serial()),
    submit(h: RRef<BlkReq>) {
      const b = begin(1, 0, -1);
      record(b, 0, h);
      const t = (b.driver = ctl.target());
      b.arg = h;
      try {
        sup.entrust(h);
        return t.submit(h).then(b.done, b.failed);
      } catch (e) {
        return b.failed(e); // refused at once (the driver is dead): h is still ours
      }
    },
    submitAndPoll(dq: RRefDeque<RRef<BlkReq>>) {
      const n = dq.length;
      const b = begin(n, dq.capacity, dq.addr);
      for (let i = 0; i < n; i++) {
        const h = dq.pop()!;
        record(b, i, h);
        dq.push(h);
      }
      const t = (b.driver = ctl.target());
      b.arg = dq;
      try {
        sup.entrust(dq);
        return t.submitAndPoll(dq).then(b.done, b.failed);
      } catch (e) {
        return b.failed(e);
      }
    },
    // Zero copy: the shadow lends the buffer it was lent on to the driver; the borrow outlives a
    // driver crash (the caller still owns the buffer), so a reissue lends it again.
    async write(lba: number, data: RRefArray<number>) {
      const t = ctl.target();
      try {
        return await t.write(lba, data);
      } catch (e) {
        return afterDeath(t, e, { arg: () => data, call: (t2, d) => t2.write(lba, d), giveUp: () => EIO });
      }
    },
    async flush() {
      const t = ctl.target();
      try {
        return await t.flush();
      } catch (e) {
        return afterDeath(t, e, { arg: () => null, call: (t2) => t2.flush(), giveUp: () => EIO });
      }
    },
  };
}
