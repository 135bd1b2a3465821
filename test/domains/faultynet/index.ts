/**
 * faultynet (test domain): a faulty `Net` for the NIC shadow's tests (test/net/held.test.ts), its
 * fault chosen by sys.config.fault:
 *  - 'liar': takes no buffer and answers every call at once, but claims in NetIo.held to hold a
 *    million buffers: the shadow does not take a driver's word for more than it can hold;
 *  - 'dropper': its first instance, on its first RX call, takes TAKEN free buffers from the call's
 *    pkts into a deque of its own, frees the NetIo (and so the rest of its buffers) and panics;
 *    later instances take nothing and answer at once: a NetIo the dead driver did not give back
 *    has replaced only the buffers that did not come back.
 */
import type { Net, NetIo, NetLink, NetStats } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRef, RRefArray, RRefDeque } from '../../../src/runtime/types.js';

const CLAIM = 1_000_000;
const TAKEN = 3;

export function init(sys: Sys): Net {
  const fault = sys.config.fault;
  if (fault !== 'liar' && fault !== 'dropper') return sys.panic(`faultynet: config fault ${String(fault)} must be 'liar' or 'dropper'`);
  const answer = (io: RRef<NetIo>, held = fault === 'liar' ? CLAIM : 0): RRef<NetIo> => {
    io.status = 0;
    io.count = 0;
    io.held = held;
    io.restarts = sys.restarts;
    io.pktsLost = 0;
    return io;
  };
  return {
    rxSubmitAndPoll(_q: number, io: RRef<NetIo>) {
      if (fault === 'liar' || sys.restarts > 0) return answer(io);
      const mine = sys.alloc.deque<RRefArray>(TAKEN);
      mine.moveFrom(io.pkts as RRefDeque<RRefArray>, TAKEN);
      io.drop();
      return sys.panic('faultynet: freed the NetIo, kept some of its buffers');
    },
    txSubmitAndPoll: (_q: number, io: RRef<NetIo>) => answer(io),
    outstanding: () => 0,
    drain: (io: RRef<NetIo>) => answer(io, 0),
    stats: (out: RRef<NetStats>) => out,
    link(out: RRef<NetLink>) {
      out.up = true;
      out.queues = 1;
      out.rxBufSize = 2048;
      return out;
    },
    setInterrupts: () => 0,
    waitRx: () => Promise.resolve(0),
  };
}
