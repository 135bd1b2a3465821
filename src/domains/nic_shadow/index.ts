/**
 * nic_shadow: transparent recovery for the NIC driver (ARCHITECTURE §5, issue 5). Exports `Net`
 * and holds a Supervisor capability over the driver domain.
 *
 * Common path: none of its code runs. It routes rxSubmitAndPoll and txSubmitAndPoll
 * (Supervisor.route): the kernel passes each of its callers' calls straight to the driver
 * instance, entrusting the caller's NetIo to the shadow on the way — so whatever of it the driver
 * holds when it dies comes back to the shadow instead of being freed — and records the `held`
 * each answer reports, per direction and queue (the route's record: how many buffers the driver
 * holds on the caller's behalf there). The driver stamps `restarts` and `pktsLost` itself. The
 * shadow's own methods serve every call the kernel does not route: while the driver instance is
 * dead, while the shadow owes the caller buffers (it turns its routes off until it paid), and
 * the methods it does not route (drain, stats, link, ...); they keep the record themselves.
 *
 * When the driver dies (a panic, an injected fault, a deadline, a wrong answer), during a call or
 * between calls, the next call that meets the death (a routed call's hook, or an own method):
 *  1. restarts the driver from its artifact; the new instance resets the NIC and programs new
 *     rings (its init); interrupt mode is replayed;
 *  2. takes back at once (Supervisor.recallNow, the buffers straight into a deque of its own)
 *     what the dead instance held of the caller's:
 *     the failed call's NetIo, found by its address, and every buffer the driver held — RX
 *     buffers posted, TX frames in flight, what it had taken from the call's pkts or added to its
 *     collect. The NetIo is put back as the call brought it: collect as it came in; RX pkts what
 *     the driver had not taken; TX pkts emptied (the frames it left may have lost their lengths
 *     in the driver's rewrite: the call's frames are all lost, `pktsLost`); a deque a faulty
 *     driver set to null is there again, empty (its buffers are among those replaced, below),
 *     and so are lengths it set to null (collectLens; a TX call's pktLens);
 *  3. re-posts RX buffers on each queue, as many as the record says were posted there (on the
 *     failed RX call's queue, plus what that call had posted), into the new instance's rings
 *     before anything else reaches it, so frames that follow (a loopback's very next transmission)
 *     find descriptors. The other buffers are owed to the caller: handed back as buffers of
 *     length 0 ("no frame") in `collect`, as room allows on this and later calls (all of them on
 *     drain()), so the caller's pool keeps its size;
 *  4. reissues the call on the new instance and answers with its result: the caller never sees
 *     an RpcError, and sees the recovery on that very call (`restarts`).
 * What the caller is due at a death: what the record says the dead instance held — each row at
 * most its ring (NetLink's ring sizes at init: no driver holds more, and a claim of a million
 * buffers is not believed) — plus the failed call's buffers (the kernel's count of what it
 * brought, not the driver's: all of them if its NetIo did not come back, else those the driver
 * had taken, and a TX call's frames). The caller gets back exactly that, whatever the driver did
 * (freed the NetIo, moved more of its ring into collect than it took, or into pkts, freed buffers):
 *  - what did not come back is replaced by fresh buffers (buffersReplaced) of the caller's size
 *    (as far as the shadow can tell: see settle), and a NetIo that did not come back by a fresh
 *    one of the capacities it had (a routed call's hook knows only its deques' lengths: room for
 *    those, at least 1), an RX one with a collectInfo (freshIo). This runs ahead of the kernel
 *    when the dead instance's device is slow to confirm its stop (past DeviceHandle.detach's
 *    short wait): its memory, and so what it held of the caller's, comes back only later. The shadow keeps count of the buffers replaced
 *    (`advance`) ...
 *  - ... and what comes back late (those originals: the kernel gives them to the recall the
 *    shadow makes while an advance is open, or with the next recallNow), or beyond the due at a
 *    later death, pays the advance back first: freed, not handed to the caller on top of their
 *    replacements, nor counted lost again. Beyond the advance, a surplus (a driver that held more
 *    than it said) is the caller's and goes back to it. Once every dead instance's memory is
 *    reclaimed (that recall resolves) nothing more can come: the advance closes, for what it still
 *    counts was freed by a faulty driver (with a NetIo, say) and will never come.
 * Decision (the design does not say): the count is only as good as the record. A driver's word is
 * all the shadow sees of the routed calls — counting the caller's buffers itself would take work
 * on every call, which the kernel's route does without the shadow — so a driver that claims more
 * than it holds, within the rings it reported at init (what spare and owed are sized by), has that
 * much replaced: a bounded gift, at most its rings per death. One that holds more than it claims
 * and dies while an advance is open has the difference freed against the advance: an advance
 * stays open until the kernel has reclaimed the dead instances — for a device that confirms its
 * stop at once, until the shadow's recall runs, at the event loop's next turn (a caller polling
 * synchronously, as NetApp.run does, holds it open for the length of its run).
 * Counting (stats): every buffer the caller is due at a death was held by the dead driver, so its
 * frame is counted lost, once — an upper bound: a posted RX buffer may not have received a frame,
 * a TX frame may have left — as RX buffers up to what the record says was posted (with a failed
 * RX call's), the rest as TX frames.
 * Timing (stats.lastRestartMs): a call that met the death counts from the death itself
 * (Supervisor.diedAt: the kernel terminated the instance inside that call, its memory reclaimed
 * and its device detached, before any code of ours ran) to its reissue's answer.
 * Invariant: buffers the caller moved in = buffers it got back + outstanding() (the driver's
 * plus those owed).
 */
import { NET_ENOSPC, type Net, type NetIo, type NetLink, type NetStats } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import { newNetIo } from '../../runtime/netapp.js';
import type { RoutedCall, Supervisor } from '../../runtime/shadow.js';
import type { RRef, RRefArray, RRefBase, RRefDeque } from '../../runtime/types.js';

type Buf = RRefArray<number>;
type Deque = RRefDeque<Buf>;

const MAX_RETRIES = 5;
/** The largest replacement buffer (settle): no frame a NIC carries is larger than an IPv4 datagram's 64 KiB. */
const MAX_BUF = 65536;
/** Queue pairs a driver may have (NetLink.queues is at most this): the route record's keys. */
const MAX_QUEUES = 16;
/** The route record's rows: Net's methods by position (rxSubmitAndPoll, txSubmitAndPoll). */
const RX_ROW = 0;
const TX_ROW = 1;
/** A NetIo's RRef fields in order (RoutedCall.lengths): pkts, pktLens, collect, collectLens. */
const PKTS_FIELD = 0;
const COLLECT_FIELD = 2;

/** Where a failed call's NetIo was and what it held as it went in (what recovery puts back). */
interface FailedCall {
  rx: boolean;
  q: number;
  addr: number;
  pkts: number;
  collect: number;
  pktsCap: number;
  collectCap: number;
}

export function init(sys: Sys, sup: Supervisor<Net>): Net {
  let drv = sup.current();
  let irq = false;
  /** The route's record: per row (RX, TX) and queue, what the driver holds there. */
  const held = sys.alloc.array('u32', 2 * MAX_QUEUES);
  /** The most each entry of `held` can truly be: the ring's size (link at init), 0 on a queue the driver lacks. */
  const ringOf: number[] = new Array<number>(2 * MAX_QUEUES).fill(0);
  /**
   * Buffers taken back from a dead driver, until re-posted (`spare`), and those owed to the caller
   * (`owed`): deques, so that they move in bulk (RRefDeque.moveFrom), never a handle per buffer.
   * Grown at init to room for what a driver can hold, and again should more come back (roomy).
   */
  let spare = sys.alloc.deque<Buf>(64);
  let owed = sys.alloc.deque<Buf>(64);
  let txFramesLost = 0;
  let rxBuffersLost = 0;
  let replaced = 0;
  /** Buffers replaced whose originals a dead instance may still give back (late: see the header). */
  let advance = 0;
  /** A recall() that closes the advance is under way (closeAdvance). */
  let closing = false;
  /** The driver's RX buffer size (link at init), and the largest buffer of the caller's seen (0: none yet): see settle. */
  let rxBufSize = 2048;
  let seenSize = 0;
  let lastRestartMs = 0;
  let routed = false;

  const died = (e: unknown): boolean => {
    const k = sys.rpcErrorKind(e);
    return k === 'panic' || k === 'callee-dead' || k === 'timeout';
  };
  const queueOk = (q: number): boolean => q >= 0 && q < MAX_QUEUES && Number.isInteger(q);
  /**
   * When a call that met the driver's death began to wait for recovery: for a death during the
   * call, the death itself (the kernel terminated the instance inside that call, before any code
   * of ours ran: its memory reclaimed, the device detached — the caller waited for that too);
   * for an instance dead before the call, now (it was terminated then, and nobody waited).
   */
  const stallStart = (duringCall: boolean): number => {
    const died = sup.diedAt();
    return duringCall && died >= 0 ? died : sys.now();
  };

  /** `d`, or a bigger deque holding the same buffers, with room for `n` more. */
  const roomy = (d: Deque, n: number): Deque => {
    if (d.capacity - d.length >= n) return d;
    const bigger = sys.alloc.deque<Buf>(Math.max(2 * d.capacity, d.length + n));
    bigger.moveFrom(d, d.length);
    d.drop();
    return bigger;
  };
  /** Every buffer `d` holds, onto `spare` (the deque itself stays). */
  const spill = (d: Deque | null): void => {
    if (d === null) return;
    spare = roomy(spare, d.length);
    spare.moveFrom(d, d.length);
  };

  /** Run fn on the driver; on its death revive it and run fn again (a call that moved nothing). */
  const plain = <R>(fn: (d: Net) => R): R => {
    for (let attempt = 0; ; attempt++) {
      try {
        return fn(drv);
      } catch (e) {
        if (!died(e) || attempt >= MAX_RETRIES) throw e;
        revive(null);
      }
    }
  };

  {
    const l = plain((d) => d.link(sys.alloc.struct<NetLink>('NetLink')));
    if (l.rxBufSize > 0) rxBufSize = l.rxBufSize;
    // What the driver can hold: every ring full (a failed call's NetIo brings more: roomy grows).
    const rings = Math.max(1, l.queues * (l.rxRingSize + l.txRingSize));
    spare = roomy(spare, rings);
    owed = roomy(owed, rings);
    for (let q = 0; q < Math.min(l.queues, MAX_QUEUES); q++) {
      ringOf[RX_ROW * MAX_QUEUES + q] = l.rxRingSize;
      ringOf[TX_ROW * MAX_QUEUES + q] = l.txRingSize;
    }
    l.drop();
  }

  /**
   * A value taken back that is not the failed call's NetIo (recallNow put the buffers themselves
   * in spare, as room allowed): its buffers onto spare, the rest freed.
   */
  const takeLoose = (v: RRefBase): void => {
    const type = sup.typeOf(v);
    if (type === 'RRefArray<u8>') {
      spare = roomy(spare, 1);
      spare.push(v as Buf);
      return;
    }
    if (type === 'RRefDeque') spill(v as Deque);
    else if (type === 'NetIo') {
      // A NetIo of the shadow's own (a re-post the instance died in), or one a faulty driver made.
      const io = v as RRef<NetIo>;
      spill(io.pkts as Deque | null);
      spill(io.collect as Deque | null);
    }
    v.drop(); // the holder, emptied, or a length array
  };

  /**
   * Post `n` buffers from spare on queue q of the new instance, in one call (its ring is empty:
   * it collects nothing), and record what it holds there. What it did not take goes back to spare.
   */
  const repost = (q: number, n: number): void => {
    let io = newNetIo(sys, n, 1);
    (io.pkts as Deque).moveFrom(spare, n);
    sup.entrust(io);
    io = drv.rxSubmitAndPoll(q, io);
    held.set(RX_ROW * MAX_QUEUES + q, io.held);
    spill(io.pkts as Deque | null);
    spill(io.collect as Deque | null);
    io.drop();
  };

  /** Restart the driver, replaying interrupt mode (a new instance that dies in that is restarted again). */
  const restart = (): void => {
    for (let attempt = 0; ; attempt++) {
      try {
        drv = sup.restart();
        if (irq) drv.setInterrupts(true);
        return;
      } catch (e) {
        if (!died(e) || attempt >= MAX_RETRIES) throw e;
      }
    }
  };

  /** Route the driver's submits through the kernel, or (off: while buffers are owed) serve them here. */
  const setRoutes = (on: boolean): void => {
    routed = on
      ? sup.route({ rxSubmitAndPoll: hook(true), txSubmitAndPoll: hook(false) }, { field: 'held', into: held, keys: MAX_QUEUES })
      : (sup.route({}), false);
  };

  /** Entry i of the route's record, believed only as far as its ring goes. */
  const heldAt = (i: number): number => Math.min(held.get(i), ringOf[i]!);

  /**
   * Make spare hold the `due` buffers the caller is owed by a death (see the header): late
   * originals in it beyond the due first pay the advance back (freed); what is still missing is
   * replaced by fresh buffers, added to the advance.
   * Decision (the design does not say): a replacement is as large as the largest of the caller's
   * buffers seen in spare at a death that needed replacements (this one's among them), the
   * driver's rxBufSize until one was seen. The shadow does not see the buffers that did not come
   * back (knowing each one's size would take work on every routed call), and a caller's pool is
   * usually of one size, which this gives it back exactly; with several sizes, none of its frames
   * is too large for a replacement. At most MAX_BUF: a faulty driver's huge buffer among those
   * that come back does not make every replacement that large.
   */
  const settle = (due: number): void => {
    const surplus = Math.min(advance, Math.max(0, spare.length - due));
    for (let i = 0; i < surplus; i++) spare.pop()!.drop();
    advance -= surplus;
    const short = due - spare.length;
    if (short <= 0) return;
    const n = spare.length;
    if (n > 0) {
      const ext = new DataView(new ArrayBuffer(n * 8));
      spare.extents(0, n, ext, 0); // each buffer's address and size, in one kernel call
      for (let i = 0; i < n; i++) seenSize = Math.max(seenSize, Math.min(ext.getUint32(i * 8 + 4, true), MAX_BUF));
    }
    spare = roomy(spare, short);
    for (let i = 0; i < short; i++) spare.push(sys.alloc.bytes(seenSize > 0 ? seenSize : rxBufSize));
    replaced += short;
    advance += short;
  };

  /**
   * The driver died: restart it (replaying interrupt mode), take back what the dead instance held,
   * make it what the caller is due, and re-post its RX buffers (steps 1–3). `failed`: the call
   * that met the death, whose NetIo is looked for among what came back (null: none, or its NetIo
   * never reached the driver). Returns that NetIo put back as the call brought it, or null if it
   * did not come back (its buffers are then among those replaced).
   */
  const revive = (failed: FailedCall | null): RRef<NetIo> | null => {
    const t0 = sys.now();
    let io: RRef<NetIo> | null = null;
    restart();
    for (const v of sup.recallNow(spare)) {
      if (failed !== null && io === null && v.addr === failed.addr && sup.typeOf(v) === 'NetIo') io = v as RRef<NetIo>;
      else takeLoose(v);
    }
    const restored = io !== null ? restore(io, failed!) : { taken: 0, collectTaken: 0 };
    // The failed call's share of the due, and of it what goes on its queue's ring again: a NetIo
    // that did not come back is replaced whole, and its free buffers are posted as the call asked.
    const callDue = failed === null ? 0 : io === null ? failed.pkts + failed.collect : (failed.rx ? restored.taken : failed.pkts) + restored.collectTaken;
    const callPosts = failed?.rx !== true ? 0 : io === null ? failed.pkts : restored.taken;
    let rxHeld = 0;
    let txHeld = 0;
    for (let q = 0; q < MAX_QUEUES; q++) {
      rxHeld += heldAt(RX_ROW * MAX_QUEUES + q);
      txHeld += heldAt(TX_ROW * MAX_QUEUES + q);
    }
    const rxDue = rxHeld + (failed?.rx === true ? callDue : 0);
    settle(rxHeld + txHeld + callDue);
    // What each queue had posted; the record is the dead instance's, so it starts again from 0.
    const back = spare.length;
    const wants: number[] = [];
    let rx = 0;
    for (let q = 0; q < MAX_QUEUES; q++) {
      const want = Math.min(heldAt(RX_ROW * MAX_QUEUES + q) + (failed?.q === q ? callPosts : 0), back - rx);
      wants.push(want);
      rx += want;
      held.set(RX_ROW * MAX_QUEUES + q, 0);
      held.set(TX_ROW * MAX_QUEUES + q, 0);
    }
    const rxLost = Math.min(rxDue, back);
    rxBuffersLost += rxLost;
    txFramesLost += back - rxLost;
    for (let attempt = 0; ; attempt++) {
      try {
        for (let q = 0; q < MAX_QUEUES; q++) if (wants[q]! > 0) repost(q, wants[q]!);
        break;
      } catch (e) {
        // The new instance died too: what it held of the re-posts comes back (or is replaced, should
        // it too be slow to come), and they start over.
        if (!died(e) || attempt >= MAX_RETRIES) throw e;
        restart();
        for (const v of sup.recallNow(spare)) takeLoose(v);
        settle(back);
      }
    }
    owe();
    closeAdvance();
    lastRestartMs = sys.now() - t0; // a call that met the death then counts to its reissue's answer (submit)
    return io;
  };

  /** Everything in spare, owed to the caller (routes off until it is paid). */
  const owe = (): void => {
    owed = roomy(owed, spare.length);
    owed.moveFrom(spare, spare.length);
    if (routed && owed.length > 0) setRoutes(false);
  };

  /**
   * Close an open advance once every dead instance's memory is reclaimed (Supervisor.recall
   * resolves then): originals that have not come back by then never will (a faulty driver freed
   * them), and an advance left open for them would free a later death's surplus, the caller's
   * (see the header). What that recall brings, late originals, pays the advance back, and
   * anything beyond is the caller's (owed, counted lost as a surplus at a death is). A death since
   * the recall began may have originals yet to come: the recall is made again (by its revive, if
   * that is still to run: what came is left in spare for it).
   */
  const closeAdvance = (): void => {
    if (closing || advance === 0) return;
    closing = true;
    const restarts = sup.restarts();
    sys.detach(
      sup.recall().then((late) => {
        closing = false;
        for (const v of late) takeLoose(v);
        if (sup.diedAt() >= 0) return;
        settle(0);
        txFramesLost += spare.length;
        owe();
        if (sup.restarts() === restarts) advance = 0;
        else closeAdvance();
      }),
    );
  };

  /**
   * The driver died with `failed`'s NetIo in it: revive it, and give the call's NetIo back as the
   * call brought it — or, if the dead driver did not give it back, a fresh one of its capacities,
   * its buffers replaced (revive) — with how many buffers of its pkts are lost to the caller.
   */
  const recoverCall = (failed: FailedCall): { io: RRef<NetIo>; lost: number } => {
    const io = revive(failed);
    if (io === null) return { io: freshIo(failed), lost: failed.pkts };
    return { io, lost: failed.rx ? 0 : failed.pkts };
  };

  /**
   * A NetIo of `failed`'s capacities, for one the dead driver did not give back. An RX one has a
   * collectInfo with room for its collect (NetIo.collectInfo), so the reissued call reports what
   * the NIC read of the frames it collects: a caller that balances by the NIC's hash (maglev)
   * would drop them otherwise.
   * Decision (the design does not say): every fresh RX NetIo gets one, whether the call's had one
   * or not — a routed call's hook is told only its deques' lengths, so the shadow cannot tell; a
   * caller that did not ask ignores it (the driver fills it, 8 bytes a frame).
   */
  const freshIo = (failed: FailedCall): RRef<NetIo> => newNetIo(sys, failed.pktsCap, failed.collectCap, failed.rx);

  /** What recovery needs to know of `io` as a call of the shadow's own brings it (each read is a kernel call). */
  const failedOf = (rx: boolean, q: number, io: RRef<NetIo>): FailedCall => {
    const pk = io.pkts;
    const co = io.collect;
    return { rx, q, addr: io.addr, pkts: pk?.length ?? 0, collect: co?.length ?? 0, pktsCap: pk?.capacity ?? 1, collectCap: co?.capacity ?? 1 };
  };

  /**
   * Put the failed call's NetIo `io` back as the call brought it; what the dead driver had added
   * to collect or (a faulty one) to pkts, and a TX call's frames, go to spare. Returns how many
   * buffers of pkts it had taken, and (a faulty driver) of the caller's collect entries: those it
   * removed, or all of a deque field it set to null — which gets an empty deque again, and a
   * collectLens set to null new lengths, as does a TX call's pktLens (an RX call's, which it may
   * lack, stays as it is).
   */
  const restore = (io: RRef<NetIo>, failed: FailedCall): { taken: number; collectTaken: number } => {
    const pk = io.pkts as Deque | null;
    const co = io.collect as Deque | null;
    const taken = pk === null ? failed.pkts : Math.max(0, failed.pkts - pk.length);
    const collectTaken = co === null ? failed.collect : Math.max(0, failed.collect - co.length);
    if (pk !== null) {
      // Added to pkts, they are of what the record says it held (due, in revive): left there, the
      // caller got them back in the NetIo and their replacements too. Which ones go does not matter.
      const added = pk.length - failed.pkts;
      if (added > 0 && failed.rx) {
        spare = roomy(spare, added);
        spare.moveFrom(pk, added);
      }
      if (!failed.rx) spill(pk);
    }
    if (co !== null && co.length > failed.collect) {
      const extra = co.length - failed.collect;
      // The caller's entries go round to the back, in order; the driver's are then at the front.
      for (let i = 0; i < failed.collect; i++) co.push(co.pop()!);
      spare = roomy(spare, extra);
      spare.moveFrom(co, extra);
    }
    // A deque field the driver set to null (its buffers counted above) is refilled, empty: the
    // caller gets back a well-formed NetIo, not one it must check for holes after every call.
    // Its capacity is what its lengths array gives, which the driver left (else what the call knew).
    if (pk === null) io.pkts = sys.alloc.deque<Buf>(Math.max(1, io.pktLens === null ? failed.pktsCap : io.pktLens.byteLength >>> 2));
    if (co === null) io.collect = sys.alloc.deque<Buf>(Math.max(1, io.collectLens === null ? failed.collectCap : io.collectLens.byteLength >>> 2));
    if (io.collectLens === null) io.collectLens = sys.alloc.array('u32', io.collect!.capacity);
    if (io.pktLens === null && !failed.rx) io.pktLens = sys.alloc.array('u32', io.pkts!.capacity);
    return { taken, collectTaken };
  };

  /** Hand owed buffers back in io.collect, as room allows (length 0: no frame); routes on once all are back. */
  const pay = (io: RRef<NetIo>): void => {
    const co = io.collect as Deque | null;
    const cl = io.collectLens;
    if (co !== null && cl !== null) {
      const n = co.length;
      // Room is what both collect and its lengths can hold: a caller's malformed NetIo (lengths
      // shorter than collect: the driver refused it) would otherwise have the fill below throw,
      // and the shadow, which nothing restarts, die of a caller's mistake.
      const room = Math.min(co.capacity, cl.byteLength >>> 2) - n;
      const added = room > 0 ? co.moveFrom(owed, room) : 0;
      if (added > 0) {
        cl.fill(0, n * 4, added * 4);
        io.count = io.count + added;
      }
    }
    if (!routed && owed.length === 0) setRoutes(true);
  };

  /**
   * A submit on the driver, with recovery: `io` entrusted and moved in; on the driver's death,
   * revive it and reissue on the NetIo put back (or a fresh one, its buffers replaced). `pktsLost`:
   * what earlier attempts of this call lost; `t0` when its recovery began (-1: none yet).
   */
  const submit = (rx: boolean, q: number, io: RRef<NetIo>, pktsLost = 0, t0 = -1): RRef<NetIo> => {
    for (let attempt = 0; ; attempt++) {
      const failed = failedOf(rx, q, io);
      sup.entrust(io);
      try {
        const r = rx ? drv.rxSubmitAndPoll(q, io) : drv.txSubmitAndPoll(q, io);
        if (t0 >= 0) {
          r.pktsLost = pktsLost;
          lastRestartMs = sys.now() - t0;
        }
        if (queueOk(q)) held.set((rx ? RX_ROW : TX_ROW) * MAX_QUEUES + q, r.held);
        pay(r);
        return r;
      } catch (e) {
        if (!died(e) || attempt >= MAX_RETRIES) throw e;
        if (t0 < 0) t0 = stallStart(sys.rpcErrorKind(e) !== 'callee-dead');
        if (io.valid) {
          revive(null); // it never reached the driver (dead at the call): reissue it as it is
          continue;
        }
        const back = recoverCall(failed);
        pktsLost += back.lost;
        io = back.io;
      }
    }
  };

  /**
   * A routed submit failed (its instance is dead): recover as an own call would, from where the
   * kernel says the call's NetIo was and what it held, and answer with the reissued call.
   */
  function hook(rx: boolean) {
    return (_e: unknown, call: RoutedCall<Net>): RRef<NetIo> => {
      // A routed call goes only to a live instance: it died during this call (a 'callee-dead'
      // here is an instance killed while the call was in it).
      const t0 = stallStart(true);
      const q = call.args[0] as number;
      const pkts = call.lengths[PKTS_FIELD] ?? 0;
      const collect = call.lengths[COLLECT_FIELD] ?? 0;
      const back = recoverCall({ rx, q, addr: call.addr, pkts, collect, pktsCap: Math.max(1, pkts), collectCap: Math.max(1, collect) });
      return submit(rx, q, back.io, back.lost, t0);
    };
  }

  setRoutes(true);

  return {
    rxSubmitAndPoll: (q: number, io: RRef<NetIo>) => submit(true, q, io),
    txSubmitAndPoll: (q: number, io: RRef<NetIo>) => submit(false, q, io),
    outstanding: () => plain((d) => d.outstanding()) + owed.length,
    drain(io: RRef<NetIo>) {
      const co = io.collect;
      if (co !== null && co.capacity - co.length < plain((d) => d.outstanding()) + owed.length) {
        io.status = NET_ENOSPC;
        io.count = 0;
        return io;
      }
      const r = drainAll(io);
      // A drain the driver refused (status < 0) moved nothing: the record stands. Cleared, it
      // would say 0 while the driver holds them, and at its death they would count as a surplus,
      // freed against an open advance: the caller short of them.
      if (r.status >= 0) for (let i = 0; i < 2 * MAX_QUEUES; i++) held.set(i, 0);
      pay(r);
      return r;
    },
    stats(out: RRef<NetStats>) {
      const r = plain((d) => d.stats(out.valid ? out : sys.alloc.struct<NetStats>('NetStats')));
      r.restarts = sup.restarts();
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
      // The wait spans time in which another call may meet the death and revive the driver: the
      // wait's instance is dead then, but the current one is not, and reviving again would kill
      // it with every buffer it holds (counted lost).
      const restarts = sup.restarts();
      try {
        return await drv.waitRx(timeoutMs);
      } catch (e) {
        if (!died(e)) throw e;
        if (sup.restarts() === restarts) revive(null);
        return 1; // poll after a restart
      }
    },
  };

  /**
   * drain on the driver, with recovery: everything the dead driver held comes back owed (the new
   * instance holds nothing to drain), and the NetIo put back, or a fresh one.
   */
  function drainAll(io: RRef<NetIo>): RRef<NetIo> {
    let cur = io;
    for (let attempt = 0; ; attempt++) {
      const failed = failedOf(true, -1, cur);
      sup.entrust(cur);
      try {
        return drv.drain(cur);
      } catch (e) {
        if (!died(e) || attempt >= MAX_RETRIES) throw e;
        if (cur.valid) revive(null);
        else cur = recoverCall(failed).io;
      }
    }
  }
}
