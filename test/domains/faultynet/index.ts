/**
 * faultynet (test domain): a faulty `Net` for the NIC shadow's tests (test/net/held.test.ts), its
 * fault chosen by sys.config.fault:
 *  - 'liar': takes no buffer and answers every call at once, but claims in NetIo.held to hold a
 *    million buffers (and reports no rings in link): the shadow does not take a driver's word for
 *    more than its rings can hold;
 *  - 'dropper': its first instance, on its first call (RX or TX), takes TAKEN buffers from the
 *    call's pkts into a deque of its own, frees the NetIo (and so the rest of its buffers) and
 *    panics; later instances take nothing and answer at once: a NetIo the dead driver did not
 *    give back has replaced only the buffers that did not come back;
 *  - 'holder': an honest driver in miniature: it keeps every free RX buffer it is given in a ring
 *    of RING buffers of its own, reports them in held and outstanding() (and RING in link), gives
 *    them back on drain (refused, NET_EINVAL, on a NetIo without collect), and never fails of itself (the tests crash it, behind a device slow to
 *    confirm its stop);
 *  - 'overfiller': a holder whose first instance, on its second RX call, takes one buffer from the
 *    call's pkts, moves OVERFILL filled buffers of its ring into collect (more than it took), frees
 *    the NetIo with them and panics;
 *  - 'stuffer': a holder whose first instance, on its second RX call, takes nothing, moves STUFF
 *    buffers of its ring into the call's pkts (the NetIo kept) and panics;
 *  - 'thief': a holder whose first instance, on its second RX call, takes nothing, frees the
 *    first of the caller's collect entries (the NetIo kept) and panics;
 *  - 'nuller': a holder whose first instance, on its second RX call, takes nothing, sets the
 *    call's collect to null (freeing the caller's entries with it; the NetIo kept) and panics,
 *    and on a TX call sets its pktLens to null (the frames kept in pkts) and panics;
 *  - 'relapser': a holder whose every restarted instance panics on its first RX call (the
 *    shadow's re-post), holding what it took of it: a driver no restart brings back.
 */
import { NET_EINVAL, type Net, type NetIo, type NetLink, type NetStats } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRef, RRefArray, RRefDeque } from '../../../src/runtime/types.js';

type Deque = RRefDeque<RRefArray>;

const CLAIM = 1_000_000;
const TAKEN = 3;
const RING = 64;
const OVERFILL = 3;
const STUFF = 2;
const FRAME = 60;

/** The faults (see the header); all but the first two hold buffers in a ring, as a driver does. */
const FAULTS = ['liar', 'dropper', 'holder', 'overfiller', 'stuffer', 'thief', 'nuller', 'relapser'] as const;
/** A fault's name (what the tests pass in config). */
export type Fault = (typeof FAULTS)[number];

export function init(sys: Sys): Net {
  const fault = FAULTS.find((f) => f === sys.config.fault);
  if (fault === undefined) return sys.panic(`faultynet: config fault ${String(sys.config.fault)} must be one of ${FAULTS.map((f) => `'${f}'`).join(', ')}`);
  const holds = fault !== 'liar' && fault !== 'dropper';
  const ring = sys.alloc.deque<RRefArray>(RING);
  let rxCalls = 0;
  const answer = (io: RRef<NetIo>, held = fault === 'liar' ? CLAIM : 0): RRef<NetIo> => {
    io.status = 0;
    io.count = 0;
    io.held = held;
    io.restarts = sys.restarts;
    io.pktsLost = 0;
    return io;
  };
  /** The overfiller's fault: more filled buffers into collect than it took, then the NetIo freed. */
  const overfill = (io: RRef<NetIo>): never => {
    ring.moveFrom(io.pkts as Deque, 1);
    const co = io.collect as Deque;
    const n = co.length;
    co.moveFrom(ring, OVERFILL);
    for (let i = n; i < n + OVERFILL; i++) io.collectLens!.setU32(i * 4, FRAME);
    io.drop();
    return sys.panic('faultynet: moved more buffers into collect than it took, freed the NetIo');
  };
  /** The dropper's fault: TAKEN of the call's pkts kept, the NetIo freed with the rest. */
  const drop = (io: RRef<NetIo>): never => {
    const mine = sys.alloc.deque<RRefArray>(TAKEN);
    mine.moveFrom(io.pkts as Deque, TAKEN);
    io.drop();
    return sys.panic('faultynet: freed the NetIo, kept some of its buffers');
  };
  return {
    rxSubmitAndPoll(_q: number, io: RRef<NetIo>) {
      rxCalls++;
      if (holds) {
        if (fault === 'relapser' && sys.restarts > 0 && rxCalls === 1) {
          ring.moveFrom(io.pkts as Deque, RING);
          return sys.panic('faultynet: relapsed on its first call');
        }
        // The first instance's second RX call: where overfiller, stuffer and thief fail.
        if (sys.restarts === 0 && rxCalls === 2) {
          if (fault === 'overfiller') return overfill(io);
          if (fault === 'stuffer') {
            (io.pkts as Deque).moveFrom(ring, STUFF);
            return sys.panic('faultynet: moved buffers of its ring into pkts');
          }
          if (fault === 'thief') {
            (io.collect as Deque).pop()!.drop();
            return sys.panic('faultynet: freed one of the caller\'s collect entries');
          }
          if (fault === 'nuller') {
            io.collect = null;
            return sys.panic('faultynet: set the call\'s collect to null');
          }
        }
        const pk = io.pkts as Deque;
        ring.moveFrom(pk, Math.min(pk.length, RING - ring.length));
        return answer(io, ring.length);
      }
      return fault === 'dropper' && sys.restarts === 0 ? drop(io) : answer(io);
    },
    txSubmitAndPoll(_q: number, io: RRef<NetIo>) {
      if (fault === 'nuller' && sys.restarts === 0) {
        io.pktLens = null;
        return sys.panic('faultynet: set the TX call\'s pktLens to null');
      }
      return fault === 'dropper' && sys.restarts === 0 ? drop(io) : answer(io);
    },
    outstanding: () => ring.length,
    drain(io: RRef<NetIo>) {
      const co = io.collect as Deque | null;
      if (co === null) {
        answer(io, ring.length);
        io.status = NET_EINVAL;
        return io;
      }
      const n = co.length;
      const moved = co.moveFrom(ring, Math.min(ring.length, co.capacity - n));
      io.collectLens!.fill(0, n * 4, moved * 4);
      answer(io, ring.length);
      io.count = moved;
      return io;
    },
    stats: (out: RRef<NetStats>) => out,
    link(out: RRef<NetLink>) {
      out.up = true;
      out.queues = 1;
      out.rxBufSize = 2048;
      if (holds) {
        out.rxRingSize = RING;
        out.txRingSize = RING;
      }
      return out;
    },
    setInterrupts: () => 0,
    waitRx: () => Promise.resolve(0),
  };
}
