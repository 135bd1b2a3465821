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
 *    rebuilds the requests in fresh allocations and reissues the whole batch.
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

  /**
   * Run `call` on the current driver; after a driver death (or a failed restart) run it again on
   * the restarted driver — at most MAX_RETRIES restarts — and then let `giveUp(last argument)`
   * answer. `arg()` is the argument of each attempt. Never throws a death.
   */
  async function withRecovery<A, R>(arg: () => A, call: (t: BDev, a: A) => Promise<R>, giveUp: (a: A) => R): Promise<R> {
    let a = arg();
    for (let attempt = 0; ; attempt++) {
      try {
        if (attempt > 0) a = arg();
        // Not reissued inside shadowControl (a moved argument died with the driver): it restarts
        // the driver once, or throws a death if the restart failed, and this loop reissues.
        return await ctl.callAsync(false, (t) => call(t, a));
      } catch (e) {
        if (!died(e)) throw e;
        if (attempt >= MAX_RETRIES) return giveUp(a);
      }
    }
  }

  /** The argument of each attempt: the first one while still ours (a call refused before the move), else a remade one. */
  const reuseOr = <T extends { readonly valid: boolean }>(first: T, remake: () => T) => {
    let cur = first;
    return (): T => (cur.valid ? cur : (cur = remake()));
  };

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
      const rec = [record(h)];
      const out = await withRecovery(reuseOr(h, () => rebuild(rec[0]!, 0)), (t, a) => t.submit(a), (a) => {
        if (!a.valid) return rebuild(rec[0]!, EIO);
        a.status = EIO;
        return a;
      });
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
      const out = await withRecovery(reuseOr(dq, remake(0)), (t, a) => t.submitAndPoll(a), (a) => {
        if (!a.valid) return remake(EIO)();
        for (let i = 0; i < n; i++) {
          const h = a.pop()!;
          h.status = EIO;
          a.push(h);
        }
        return a;
      });
      releaseCopies(recs);
      return out;
    },
    // Zero copy: the shadow lends the buffer it was lent on to the driver; the borrow outlives a
    // driver crash (the caller still owns the buffer), so a reissue lends it again.
    write: (lba: number, data: RRefArray<number>) => withRecovery(() => data, (t, d) => t.write(lba, d), () => EIO),
    flush: () => withRecovery(() => null, (t) => t.flush(), () => EIO),
  };
}
