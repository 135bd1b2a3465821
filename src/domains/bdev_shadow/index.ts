/**
 * bdev_shadow: the block shadow. Wraps a BDev driver (imported as `Supervisor:BDev`), exports the
 * same BDev, and hides driver crashes: when the driver dies (panic, injected fault, deadline) with
 * requests in flight, the shadow restarts it from its artifact — the fresh instance resets the
 * controller and re-creates its queues in init — and reissues every request that had not
 * completed. Callers get normal results.
 *
 * How each method recovers (the trade-off is documented in src/interfaces/block.ts):
 *  - info getters, flush: reissued as they are;
 *  - write (borrowed buffer): the shadow lends the caller's buffer on to the driver (a borrower
 *    may lend onward within its own borrow); a driver crash cannot free it, so the call is
 *    reissued with the same buffer — zero copy;
 *  - submit / submitAndPoll (requests moved in): moved RRefs die with the driver, so before
 *    forwarding the shadow records each request and keeps a copy of WRITE data in reused
 *    shadow-owned buffers (one memcpy per written block; reads stay zero-copy). After a crash it
 *    rebuilds the requests in fresh allocations and reissues the whole batch.
 * If recovery keeps failing (maxRetries restarts for one call), requests come back with
 * status -EIO instead of an exception: an exception escaping this domain would be its panic.
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
  /** Copy of the data of a write. */
  copy: RRefArray<number> | null;
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
  const releaseCopies = (recs: Rec[]): void => {
    for (const r of recs) {
      if (r.copy === null) continue;
      const len = r.copy.byteLength;
      let free = copies.get(len);
      if (free === undefined) copies.set(len, (free = []));
      free.push(r.copy);
      r.copy = null;
    }
  };

  const record = (h: RRef<BlkReq>): Rec => {
    const op = h.op;
    const data = op === 2 ? null : h.data;
    const len = data === null ? -1 : data.byteLength;
    return { op, lba: h.lba, nblocks: h.nblocks, tag: h.tag, len, copy: op === 1 && data !== null ? copyOf(data, len) : null };
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
      if (r.copy !== null) b.copyFrom(r.copy, 0, 0, r.len);
      h.data = b;
    }
    return h;
  };

  /** Forward `call(arg)`; after a driver death, restart it and reissue `remake()`; never throws a death. */
  async function withRecovery<A, R>(arg: A, call: (t: BDev, a: A) => Promise<R>, remake: () => A, giveUp: () => R): Promise<R> {
    let cur = arg;
    for (let attempt = 0; ; attempt++) {
      try {
        // Not reissuable as such (the argument was moved): shadowControl restarts, we rebuild.
        return await ctl.callAsync(false, (t) => call(t, cur));
      } catch (e) {
        if (!died(e)) throw e;
        if (attempt >= MAX_RETRIES) return giveUp();
        cur = remake();
      }
    }
  }

  const safeAsync = async (fn: (t: BDev) => Promise<number>): Promise<number> => {
    try {
      return await ctl.callAsync(true, fn);
    } catch (e) {
      if (died(e)) return EIO;
      throw e;
    }
  };

  return {
    blockSize: () => ctl.call(true, (t) => t.blockSize()),
    blockCount: () => ctl.call(true, (t) => t.blockCount()),
    model: () => ctl.call(true, (t) => t.model()),
    serial: () => ctl.call(true, (t) => t.serial()),
    async submit(h: RRef<BlkReq>) {
      const rec = [record(h)];
      const out = await withRecovery(h, (t, a) => t.submit(a), () => rebuild(rec[0]!, 0), () => rebuild(rec[0]!, EIO));
      releaseCopies(rec);
      return out;
    },
    async submitAndPoll(dq: RRefDeque<RRef<BlkReq>>) {
      const n = dq.length;
      const cap = dq.capacity;
      const recs: Rec[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const h = dq.pop()!;
        recs[i] = record(h);
        dq.push(h);
      }
      const remake = (status: number) => (): RRefDeque<RRef<BlkReq>> => {
        const d = sys.alloc.deque<RRef<BlkReq>>(cap);
        for (const r of recs) d.push(rebuild(r, status));
        return d;
      };
      const out = await withRecovery(dq, (t, a) => t.submitAndPoll(a), remake(0), remake(EIO));
      releaseCopies(recs);
      return out;
    },
    // Zero copy: the shadow lends the buffer it was lent on to the driver; the borrow outlives a
    // driver crash (the caller still owns the buffer), so a reissue lends it again.
    write: (lba: number, data: RRefArray<number>) => safeAsync((t) => t.write(lba, data)),
    flush: () => safeAsync((t) => t.flush()),
  };
}
