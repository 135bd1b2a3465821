/**
 * bdev_shadow: the block shadow. Wraps a BDev driver (imported as `Supervisor:BDev`), exports the
 * same BDev, and hides driver crashes: when the driver dies (panic, injected fault, deadline) with
 * requests in flight, the shadow restarts it from its artifact — the kernel resets the controller
 * (detach/attach), the fresh instance brings it up and re-creates its queues in init — and
 * reissues every request that had not completed. Callers get normal results.
 *
 * How each method recovers (the trade-off is documented in src/interfaces/block.ts):
 *  - info getters, flush: reissued as they are;
 *  - write (borrowed buffer): the shadow lends the caller's buffer on to the driver (a borrower
 *    may lend onward within its own borrow); a driver crash cannot free it, so the call is
 *    reissued with the same buffer — zero copy;
 *  - submit / submitAndPoll (requests moved in): moved RRefs die with the driver, so before
 *    forwarding the shadow records each request and keeps a copy of WRITE data in reused
 *    shadow-owned buffers (one memcpy per written block; reads stay zero-copy). After a crash it
 *    rebuilds the requests in fresh allocations and reissues the whole batch. The records, their
 *    arrays and the copy buffers are pooled: a call without a crash allocates no records.
 * A restart can fail too (the fresh instance dies during its init, e.g. a controller that breaks
 * during bring-up): that is one more death. Each call retries at most MAX_RETRIES restarts; then
 * its requests come back with status -EIO (write and flush return -EIO) instead of an exception —
 * an exception escaping this domain would be its panic. The next call tries again, so a device
 * that recovers is used again. blockSize / blockCount / model / serial are answered from what the
 * driver last reported while no driver can be brought up (it is the same device).
 */
import type { BDev, BlkReq } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRef, RRefArray, RRefDeque } from '../../runtime/types.js';
import { shadowControl, type Supervisor } from '../../runtime/shadow.js';

const EIO = -5;
const MAX_RETRIES = 20;
const DEATHS = ['panic', 'callee-dead', 'timeout'];

/** What reissuing one request needs. */
interface Rec {
  op: number;
  lba: number;
  nblocks: number;
  tag: number;
  /** Byte length of the request's buffer (-1: none). */
  len: number;
  /** Copy of the data a write transfers (its first nblocks · blockSize bytes, not the whole buffer). */
  copy: RRefArray<number> | null;
}

/** The records of one call's requests (`n` of `recs` in use) and the capacity of its deque. */
interface Batch {
  recs: Rec[];
  n: number;
  cap: number;
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

  // Reused copy buffers, by size.
  const copies = new Map<number, RRefArray<number>[]>();
  const copyOf = (src: RRefArray<number>, len: number): RRefArray<number> => {
    const free = copies.get(len);
    const c = free?.pop() ?? sys.alloc.bytes(len, len % 4096 === 0 ? 4096 : 64);
    c.copyFrom(src, 0, 0, len);
    return c;
  };

  // Batch records, pooled: several calls may be in flight at once, each holds one.
  const batches: Batch[] = [];
  const record = (b: Batch, i: number, h: RRef<BlkReq>): void => {
    const r = b.recs[i] ?? (b.recs[i] = { op: 0, lba: 0, nblocks: 0, tag: 0, len: -1, copy: null });
    const op = h.op;
    const data = op === 2 ? null : h.data;
    r.op = op;
    r.lba = h.lba;
    r.nblocks = h.nblocks;
    r.tag = h.tag;
    r.len = data === null ? -1 : data.byteLength;
    // Only the transferred blocks are copied: a caller may hand in a large buffer (the fs log's
    // staging area) to write a few blocks of it; bytes past the transfer come back zero after a
    // recovery, as for reads.
    // (Before the driver ever reported its block size, the whole buffer is copied.)
    const transfer = known.blockSize > 0 ? Math.min(r.len, r.nblocks * known.blockSize) : r.len;
    r.copy = op === 1 && data !== null && transfer > 0 ? copyOf(data, transfer) : null;
  };
  const release = (b: Batch): void => {
    for (let i = 0; i < b.n; i++) {
      const r = b.recs[i]!;
      if (r.copy === null) continue;
      const len = r.copy.byteLength;
      let free = copies.get(len);
      if (free === undefined) copies.set(len, (free = []));
      free.push(r.copy);
      r.copy = null;
    }
    batches.push(b);
  };

  /** A fresh request equal to the recorded one (its data: the write copy, or a fresh read buffer). */
  const rebuild = (r: Rec, status: number): RRef<BlkReq> => {
    const h = sys.alloc.struct<BlkReq>('BlkReq');
    h.op = r.op;
    h.lba = r.lba;
    h.nblocks = r.nblocks;
    h.tag = r.tag;
    h.status = status;
    if (r.len >= 0) {
      const b = sys.alloc.bytes(r.len, r.len % 4096 === 0 ? 4096 : 64);
      if (r.copy !== null) b.copyFrom(r.copy, 0, 0, r.copy.byteLength);
      h.data = b;
    }
    return h;
  };
  const rebuildAll = (b: Batch, status: number): RRefDeque<RRef<BlkReq>> => {
    const d = sys.alloc.deque<RRef<BlkReq>>(b.cap);
    for (let i = 0; i < b.n; i++) d.push(rebuild(b.recs[i]!, status));
    return d;
  };

  /**
   * A call to the live driver `t` (made directly by the caller: no bookkeeping, no closures, the
   * common case) threw `e`. Rethrow unless it is a death; else restart the driver — one restart
   * for all the calls that saw the same death; a concurrent call may have done it already — and
   * issue the call again with `f.arg()`, at most MAX_RETRIES times; then answer
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
      const a = f.arg();
      driver = ctl.target();
      try {
        return await f.call(driver, a);
      } catch (e2) {
        if (!died(e2)) throw e2;
        if (attempt >= MAX_RETRIES) return f.giveUp(a);
      }
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
    async submit(h: RRef<BlkReq>) {
      const b = batches.pop() ?? { recs: [], n: 0, cap: 0 };
      b.n = 1;
      record(b, 0, h);
      const t = ctl.target();
      let out: RRef<BlkReq>;
      try {
        out = await t.submit(h);
      } catch (e) {
        let cur = h;
        out = await afterDeath(t, e, {
          // The request itself while it is still ours (the call was refused before the move).
          arg: () => (cur.valid ? cur : (cur = rebuild(b.recs[0]!, 0))),
          call: (t2, a) => t2.submit(a),
          giveUp: (a) => {
            if (!a.valid) return rebuild(b.recs[0]!, EIO);
            a.status = EIO;
            return a;
          },
        });
      }
      release(b);
      return out;
    },
    async submitAndPoll(dq: RRefDeque<RRef<BlkReq>>) {
      const b = batches.pop() ?? { recs: [], n: 0, cap: 0 };
      const n = (b.n = dq.length);
      b.cap = dq.capacity;
      for (let i = 0; i < n; i++) {
        const h = dq.pop()!;
        record(b, i, h);
        dq.push(h);
      }
      const t = ctl.target();
      let out: RRefDeque<RRef<BlkReq>>;
      try {
        out = await t.submitAndPoll(dq);
      } catch (e) {
        let cur = dq;
        out = await afterDeath(t, e, {
          arg: () => (cur.valid ? cur : (cur = rebuildAll(b, 0))),
          call: (t2, a) => t2.submitAndPoll(a),
          giveUp: (a) => {
            if (!a.valid) return rebuildAll(b, EIO);
            for (let i = 0; i < n; i++) {
              const h = a.pop()!;
              h.status = EIO;
              a.push(h);
            }
            return a;
          },
        });
      }
      release(b);
      return out;
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
