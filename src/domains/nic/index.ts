/**
 * nic: the 82599-style NIC driver domain (issue 5). Glue between the `Net` interface and the
 * driver logic in core.ts (createNicCore), on the device capability `sys.device` (BAR0, wake, interrupts).
 *
 * Configuration (sys.config): rxRing / txRing (descriptors, multiple of 8; default 1024),
 * rxBufSize (default 2048), queues (default 1), promiscuous (default false), interrupts (start in
 * interrupt mode; default false = poll mode).
 *
 * Invariants:
 *  - zero copy: descriptors point at the caller's buffers (their addresses); frames are never
 *    copied, and no handle is minted per buffer: the buffers a ring holds live in a driver-owned
 *    RRefDeque and move to and from a NetIo's deques in bulk (io.ts);
 *  - every NetIo moved in is returned, on error paths too (status < 0, nothing taken); an
 *    exception escaping here is a panic and the shadow (nic_shadow) takes over;
 *  - every call reports in io.held what the driver holds afterwards on the queue and direction
 *    it named (drain: on every queue), read from the rings' own records — what the NIC shadow's
 *    route records for it without running (a crash's recovery reads it) — and stamps
 *    io.restarts (this instance's Sys.restarts) and io.pktsLost (0: nothing of the call died), so
 *    that a call routed past the shadow reports what one through it would;
 *  - init resets the device and programs fresh rings, so a restarted instance starts from a clean
 *    NIC whatever the dead one left behind.
 */
import { NET_EINVAL, NET_ENOSPC, type Net, type NetIo, type NetLink, type NetStats } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRef, RRefArray, RRefDeque } from '../../runtime/types.js';
import { createNicCore, DEFAULT_RING_SIZE, emptyStats } from './core.js';
import { dequeQueue } from './io.js';

export function init(sys: Sys): Net {
  const dev = sys.device;
  if (!dev) return sys.panic('nic: loaded without a device');
  const cfg = sys.config;
  const num = (k: string, d: number): number => (typeof cfg[k] === 'number' ? (cfg[k] as number) : d);
  const core = createNicCore({
    bar0: dev.bar0,
    wake: dev.wake,
    alloc: (n, a) => sys.alloc.bytes(n, a),
    // Each ring keeps its buffers in a deque of the driver's own: buffers move between it and a
    // NetIo's deques in bulk, with no handle per buffer.
    queue: (n) => {
      const q = dequeQueue();
      q.bind(sys.alloc.deque<RRefArray>(n), null);
      return q;
    },
    now: () => sys.now(),
    queues: num('queues', 1),
    rxRingSize: num('rxRing', DEFAULT_RING_SIZE),
    txRingSize: num('txRing', DEFAULT_RING_SIZE),
    rxBufSize: num('rxBufSize', 2048),
    promiscuous: cfg.promiscuous === true,
  });
  core.init();
  const inQ = dequeQueue();
  const outQ = dequeQueue();
  /** A local copy of an RX call's NetIo.collectInfo, which the core writes into (one write out per call). */
  let infoBytes = new Uint8Array(0);
  let infoV = new DataView(infoBytes.buffer);
  const st = emptyStats();
  let irqMode = false;
  let pendingIrq = 0;
  let waiter: ((mask: number) => void) | null = null;
  let waitTimer = 0;

  dev.onInterrupt((bits) => {
    pendingIrq |= core.onInterrupt(bits);
    if (waiter !== null && pendingIrq !== 0) {
      const w = waiter;
      waiter = null;
      sys.clearTimeout(waitTimer);
      const m = pendingIrq;
      pendingIrq = 0;
      w(m);
    }
  });

  const setMode = (on: boolean): void => {
    irqMode = on;
    if (on) core.enableInterrupts();
    else core.disableInterrupts();
  };
  if (cfg.interrupts === true) setMode(true);

  const restarts = sys.restarts;
  const queueOk = (q: number): boolean => q >= 0 && q < core.queues && Number.isInteger(q);
  /** NetIo.held: buffers held for queue q in one direction (0 for a queue the device lacks). */
  const heldOn = (q: number, rx: boolean): number => (!queueOk(q) ? 0 : rx ? core.rxPosted(q) : core.txInflight(q));
  /** A malformed NetIo or bad queue: nothing taken, nothing collected. */
  const refuse = (io: RRef<NetIo>, q: number, rx: boolean): false => {
    io.status = NET_EINVAL;
    io.count = 0;
    stamp(io, heldOn(q, rx));
    return false;
  };
  /** held, and the stamps every answer carries (see the invariants). */
  const stamp = (io: RRef<NetIo>, held: number): void => {
    io.held = held;
    io.restarts = restarts;
    io.pktsLost = 0;
  };
  /**
   * Bind the views on io's deques; false (status NET_EINVAL set) if io is malformed or q is bad.
   * `rx`: pkts are free buffers whose lengths mean nothing, so pktLens is not even read (every
   * field read mints a handle: a kernel call).
   */
  const open = (io: RRef<NetIo>, q: number, rx: boolean): boolean => {
    const pk = io.pkts;
    const pl = rx ? null : io.pktLens;
    const co = io.collect;
    const cl = io.collectLens;
    if (pk === null || (!rx && pl === null) || co === null || cl === null || !queueOk(q)) return refuse(io, q, rx);
    if (!inQ.bindInput(pk as RRefDeque<RRefArray>, pl) || !outQ.bind(co as RRefDeque<RRefArray>, cl)) return refuse(io, q, rx);
    io.status = 0;
    return true;
  };
  /**
   * Whether an RX call's collectInfo has room for its collect's capacity (outQ bound): then the
   * local copy the core writes into grows to that, once.
   */
  const infoFits = (ci: RRefArray<number>): boolean => {
    const need = outQ.capacity * 8;
    if (ci.byteLength < need) return false;
    if (infoBytes.length < need) {
      infoBytes = new Uint8Array(need);
      infoV = new DataView(infoBytes.buffer);
    }
    return true;
  };
  /** Lengths back, count and held: what every call that got past open reports. */
  const close = (io: RRef<NetIo>, before: number, held: number): void => {
    io.count = outQ.length - before;
    stamp(io, held);
    inQ.finish();
    outQ.finish();
  };

  return {
    rxSubmitAndPoll(q: number, io: RRef<NetIo>) {
      if (!open(io, q, true)) return io;
      const ci = io.collectInfo;
      if (ci !== null && !infoFits(ci)) {
        inQ.finish();
        outQ.finish();
        refuse(io, q, true);
        return io;
      }
      const before = outQ.length;
      core.rxSubmitAndPoll(q, inQ, outQ, ci === null ? null : infoV);
      const got = outQ.length - before;
      if (ci !== null && got > 0) ci.write(before * 8, infoBytes, before * 8, got * 8);
      close(io, before, core.rxPosted(q));
      return io;
    },
    txSubmitAndPoll(q: number, io: RRef<NetIo>) {
      if (!open(io, q, false)) return io;
      const before = outQ.length;
      core.txSubmitAndPoll(q, inQ, outQ);
      close(io, before, core.txInflight(q));
      return io;
    },
    outstanding() {
      return core.outstanding();
    },
    drain(io: RRef<NetIo>) {
      if (!open(io, 0, true)) {
        stamp(io, core.outstanding());
        return io;
      }
      const before = outQ.length;
      if (outQ.capacity - outQ.length < core.outstanding()) {
        io.status = NET_ENOSPC;
      } else {
        core.reset(outQ);
        if (irqMode) core.enableInterrupts();
      }
      close(io, before, core.outstanding());
      return io;
    },
    stats(out: RRef<NetStats>) {
      core.readStats(st);
      out.rxPackets = st.rxPackets;
      out.rxBytes = st.rxBytes;
      out.txPackets = st.txPackets;
      out.txBytes = st.txBytes;
      out.rxMissed = st.rxMissed;
      out.rxErrors = st.rxErrors;
      out.rxRefused = st.rxRefused;
      out.txRefused = st.txRefused;
      return out;
    },
    link(out: RRef<NetLink>) {
      out.up = core.linkUp();
      out.speedMbps = 10000;
      out.mac = [...core.mac] as unknown as NetLink['mac'];
      out.queues = core.queues;
      out.rxRingSize = core.rxRingSize;
      out.txRingSize = core.txRingSize;
      out.rxBufSize = core.rxBufSize;
      out.interrupts = irqMode ? 1 : 0;
      out.rxInfo = 1;
      return out;
    },
    setInterrupts(on: boolean) {
      setMode(on);
      return 0;
    },
    waitRx(timeoutMs: number) {
      if (pendingIrq !== 0 || !irqMode) {
        const m = pendingIrq !== 0 ? pendingIrq : (1 << core.queues) - 1;
        pendingIrq = 0;
        return Promise.resolve(m);
      }
      if (waiter !== null) waiter(0);
      return new Promise<number>((resolve) => {
        waiter = resolve;
        waitTimer = sys.setTimeout(() => {
          if (waiter === resolve) {
            waiter = null;
            resolve(0);
          }
        }, timeoutMs);
      });
    },
  };
}
