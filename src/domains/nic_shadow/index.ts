/**
 * nic_shadow: transparent recovery for the NIC driver (ARCHITECTURE §5, issue 5). Exports `Net`
 * and holds a Supervisor capability over the driver domain.
 *
 * What it records: how many buffers the driver holds on the caller's behalf per queue (RX buffers
 * posted, TX frames in flight), as the driver reports them in NetIo.held after every call (never
 * more than it held plus what the call brought: a faulty driver's claim is bounded); the
 * number of buffers in each NetIo at call entry (what dies if the NetIo dies with the driver);
 * whether interrupt mode is on (replayed on a new instance). Per call that is six reads of the
 * caller's NetIo before and one after, plus the two stamps below: every field read of an RRef is
 * a checked kernel call, so the shadow reads nothing it can be told.
 *
 * When the driver dies (a panic, an injected fault, a deadline) during or before a call:
 *  1. it restarts the driver from its artifact; the new instance resets the NIC and programs new
 *     rings (its init), and interrupt mode is replayed;
 *  2. buffers that had been moved into the dead driver died with it: the kernel freed them with
 *     the domain. Frames lost are bounded — TX frames not yet reclaimed and those in the failed
 *     call (a frame not reclaimed may have left before the crash), RX buffers that were posted (a
 *     posted buffer may or may not have received a frame yet) — and reported in stats();
 *  3. the shadow allocates one fresh buffer (rxBufSize bytes) for every buffer that died. RX
 *     buffers that were posted are posted again, on their queue, into the new instance's ring
 *     before anything else reaches it, so the RX rings hold what they held and frames that follow
 *     (a loopback's very next transmission) find descriptors. The others are handed back to the
 *     caller as returned buffers of length 0 ("no frame") in `collect`, as room allows on this and
 *     later calls (and all of them on drain()). So the caller's pool keeps its size and no buffer
 *     is leaked or conjured;
 *  4. if the failed call's NetIo died too, it builds a fresh NetIo of the same capacities and
 *     reissues the call on the new instance, so the caller gets a normal result, never an RpcError.
 * Every NetIo it returns carries `restarts` (restarts so far) and `pktsLost` (buffers of the
 * call's own `pkts` that died with its NetIo), so a caller that keeps frames in flight (a
 * loopback loop) can count exactly what it lost on the call that went through the recovery.
 * Invariant: sum over time of buffers the caller moved in = buffers it got back + outstanding()
 * (which counts the driver's buffers plus replacements still owed).
 */
import type { Net, NetIo, NetLink, NetStats } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { Supervisor } from '../../runtime/shadow.js';
import type { RRef, RRefArray, RRefDeque } from '../../runtime/types.js';

const MAX_RETRIES = 5;
/** Queue pairs a driver may have (NetLink.queues is at most this). */
const MAX_QUEUES = 16;

export function init(sys: Sys, sup: Supervisor<Net>): Net {
  let drv = sup.current();
  let irq = false;
  /**
   * Per queue: RX buffers posted in the driver on the caller's behalf, TX frames in flight. One
   * object per queue written through properties: under lockdown an array element store takes a
   * slow path (Array.prototype is frozen), a property store does not.
   */
  const perQueue: { rx: number; tx: number }[] = Array.from({ length: MAX_QUEUES }, () => ({ rx: 0, tx: 0 }));
  let debt = 0;
  let restarts = 0;
  let txFramesLost = 0;
  let rxBuffersLost = 0;
  let replaced = 0;
  let lastRestartMs = 0;

  const died = (e: unknown): boolean => {
    const k = sys.rpcErrorKind(e);
    return k === 'panic' || k === 'callee-dead' || k === 'timeout';
  };

  /**
   * Restart the driver, count what died, replay interrupt mode and re-post the RX buffers. A new
   * instance that dies during that is restarted again (its buffers died with it, the caller's
   * were already counted).
   */
  const restart = (): void => {
    let posted = 0;
    let sent = 0;
    for (let q = 0; q < MAX_QUEUES; q++) {
      posted += perQueue[q]!.rx;
      sent += perQueue[q]!.tx;
      perQueue[q]!.tx = 0;
    }
    rxBuffersLost += posted;
    txFramesLost += sent;
    debt += sent;
    for (let attempt = 0; ; attempt++) {
      drv = sup.restart();
      restarts++;
      try {
        if (irq) drv.setInterrupts(true);
        for (let q = 0; q < MAX_QUEUES; q++) if (perQueue[q]!.rx > 0) repost(q);
        return;
      } catch (e) {
        if (!died(e) || attempt >= MAX_RETRIES) throw e;
      }
    }
  };

  /**
   * Posts perQueue[q].rx fresh buffers on queue q of a new instance, in one call: its ring is
   * empty, so the call collects nothing. Buffers it did not take are dropped and owed to the
   * caller instead.
   */
  const repost = (q: number): void => {
    const n = perQueue[q]!.rx;
    let io = freshIo(n, 1);
    const pk = io.pkts as RRefDeque<RRefArray<number>>;
    for (let i = 0; i < n; i++) pk.push(sys.alloc.bytes(bufSize));
    io = drv.rxSubmitAndPoll(q, io);
    for (const d of [io.pkts, io.collect] as (RRefDeque<RRefArray<number>> | null)[]) {
      for (let b = d?.pop(); b !== undefined; b = d!.pop()) {
        b.drop();
        perQueue[q]!.rx--;
        debt++;
        replaced--;
      }
    }
    replaced += n;
    io.drop();
  };

  /** Run fn on the driver; on its death restart it and run fn again (a call that moved nothing). */
  const plain = <R>(fn: (d: Net) => R): R => {
    for (let attempt = 0; ; attempt++) {
      try {
        return fn(drv);
      } catch (e) {
        if (!died(e) || attempt >= MAX_RETRIES) throw e;
        restart();
      }
    }
  };

  const bufSize = ((): number => {
    const l = plain((d) => d.link(sys.alloc.struct<NetLink>('NetLink')));
    const n = l.rxBufSize;
    l.drop();
    return n > 0 ? n : 2048;
  })();

  const freshIo = (pcap: number, ccap: number): RRef<NetIo> => {
    const io = sys.alloc.struct<NetIo>('NetIo');
    io.pkts = sys.alloc.deque<RRefArray<number>>(pcap);
    io.pktLens = sys.alloc.array('u32', pcap);
    io.collect = sys.alloc.deque<RRefArray<number>>(ccap);
    io.collectLens = sys.alloc.array('u32', ccap);
    return io;
  };

  /** Hand owed replacement buffers back in io.collect, as room allows (length 0: no frame). */
  const pay = (io: RRef<NetIo>): void => {
    const co = io.collect as RRefDeque<RRefArray<number>> | null;
    const cl = io.collectLens;
    if (co === null || cl === null) return;
    let n = co.length;
    const cap = co.capacity;
    while (debt > 0 && n < cap) {
      co.push(sys.alloc.bytes(bufSize));
      cl.setU32(n * 4, 0);
      n++;
      debt--;
      replaced++;
      io.count = io.count + 1;
    }
  };

  /** Sizes of the NetIo of the submit in progress, read by entry() for recover(). */
  let inC = 0;
  let capP = 0;
  let capC = 0;

  /**
   * At submit entry: the number of buffers in io.pkts (what the call brings), with the rest of
   * what recover() needs kept aside; -1 for a malformed NetIo or a queue no driver has, which the
   * driver refuses (nothing to record).
   */
  const entry = (q: number, io: RRef<NetIo>): number => {
    const pk = io.pkts;
    const co = io.collect;
    if (pk === null || co === null || !(q >= 0 && q < MAX_QUEUES && Number.isInteger(q))) return -1;
    inC = co.length;
    capP = pk.capacity;
    capC = co.capacity;
    return pk.length;
  };

  /**
   * After a submit on queue q that brought `brought` buffers: records what the driver says it
   * holds — bounded by what it can hold: what it held plus what this call brought (a faulty
   * driver's larger claim would make the shadow replace buffers that never existed after a crash,
   * memory it may not have) — pays owed buffers back and stamps the NetIo.
   */
  const leave = (rx: boolean, q: number, r: RRef<NetIo>, brought: number, pktsLost: number): RRef<NetIo> => {
    const o = perQueue[q]!;
    const most = (rx ? o.rx : o.tx) + brought;
    const claimed = r.held;
    const held = claimed < most ? claimed : most;
    if (rx) o.rx = held;
    else o.tx = held;
    if (debt > 0) pay(r);
    r.restarts = restarts;
    r.pktsLost = pktsLost;
    return r;
  };

  /**
   * The driver failed a submit of `io` (which brought `brought` buffers) with `e`: if it died,
   * restart it and reissue the call (on a fresh NetIo if io died with it). Kept out of the
   * submit methods, so that their common path stays small enough for the JIT to inline the
   * crossing into the driver.
   */
  const recover = (rx: boolean, q: number, io: RRef<NetIo>, brought: number, e: unknown): RRef<NetIo> => {
    const t0 = sys.now();
    let cur = io;
    let curP = brought;
    let curC = inC;
    const pCap = capP;
    const cCap = capC;
    let pktsLost = 0;
    for (let attempt = 0; ; attempt++) {
      if (!died(e) || attempt >= MAX_RETRIES) throw e;
      restart();
      if (!cur.valid) {
        // The NetIo died with the driver: its buffers are replaced; TX frames in it are lost.
        if (!rx) txFramesLost += curP;
        debt += curP + curC;
        pktsLost += curP;
        cur = freshIo(pCap, cCap);
        curP = curC = 0;
      }
      try {
        const r = leave(rx, q, rx ? drv.rxSubmitAndPoll(q, cur) : drv.txSubmitAndPoll(q, cur), curP, pktsLost);
        lastRestartMs = sys.now() - t0;
        return r;
      } catch (again) {
        e = again;
      }
    }
  };

  return {
    // One method per direction, each calling one driver method: small and monomorphic (see recover).
    // Written out twice on purpose: one shared body (or two closures of one factory) would share
    // its call-site feedback between the directions and make the driver call polymorphic.
    rxSubmitAndPoll(q: number, io: RRef<NetIo>) {
      const brought = entry(q, io);
      if (brought < 0) return plain((d) => d.rxSubmitAndPoll(q, io));
      let r: RRef<NetIo>;
      try {
        r = drv.rxSubmitAndPoll(q, io);
      } catch (e) {
        return recover(true, q, io, brought, e);
      }
      return leave(true, q, r, brought, 0);
    },
    txSubmitAndPoll(q: number, io: RRef<NetIo>) {
      const brought = entry(q, io);
      if (brought < 0) return plain((d) => d.txSubmitAndPoll(q, io));
      let r: RRef<NetIo>;
      try {
        r = drv.txSubmitAndPoll(q, io);
      } catch (e) {
        return recover(false, q, io, brought, e);
      }
      return leave(false, q, r, brought, 0);
    },
    outstanding: () => plain((d) => d.outstanding()) + debt,
    drain(io: RRef<NetIo>) {
      const co = io.collect;
      if (co !== null && co.capacity - co.length < plain((d) => d.outstanding()) + debt) {
        io.status = -28;
        io.count = 0;
        return io;
      }
      const r = submitDrain(io);
      for (const o of perQueue) o.rx = o.tx = 0;
      pay(r);
      r.restarts = restarts;
      return r;
    },
    stats(out: RRef<NetStats>) {
      const cur = out;
      let r: RRef<NetStats>;
      try {
        r = drv.stats(cur);
      } catch (e) {
        if (!died(e)) throw e;
        restart();
        r = plain((d) => d.stats(cur.valid ? cur : sys.alloc.struct<NetStats>('NetStats')));
      }
      r.restarts = restarts;
      r.txFramesLost = txFramesLost;
      r.rxBuffersLost = rxBuffersLost;
      r.framesLost = txFramesLost + rxBuffersLost;
      r.buffersReplaced = replaced;
      r.lastRestartMs = lastRestartMs;
      return r;
    },
    link: (out: RRef<NetLink>) => plain((d) => d.link(out.valid ? out : sys.alloc.struct<NetLink>('NetLink'))),
    setInterrupts(on: boolean) {
      irq = on;
      return plain((d) => d.setInterrupts(on));
    },
    async waitRx(timeoutMs: number) {
      try {
        return await drv.waitRx(timeoutMs);
      } catch (e) {
        if (!died(e)) throw e;
        restart();
        return 1; // poll after a restart
      }
    },
  };

  function submitDrain(io: RRef<NetIo>): RRef<NetIo> {
    const co = io.collect;
    const pCap = io.pkts?.capacity ?? 1;
    const cCap = co?.capacity ?? 1;
    const cIn = co?.length ?? 0;
    const pIn = io.pkts?.length ?? 0;
    let cur = io;
    let pktsLost = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        const r = drv.drain(cur);
        r.pktsLost = pktsLost;
        return r;
      } catch (e) {
        if (!died(e) || attempt >= MAX_RETRIES) throw e;
        restart();
        if (!cur.valid) {
          if (cur === io) {
            debt += pIn + cIn;
            pktsLost = pIn;
          }
          cur = freshIo(pCap, cCap);
        }
      }
    }
  }
}
