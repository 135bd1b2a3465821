/**
 * droppernet (test domain): a faulty `Net` whose first instance, on its first RX call, takes
 * TAKEN free buffers from the call's pkts into a deque of its own, frees the NetIo (and so the
 * rest of its buffers) and panics; later instances take nothing and answer at once. Behind the
 * NIC shadow it shows that a NetIo the dead driver did not give back has replaced only the buffers
 * that did not come back (test/net/held.test.ts).
 */
import type { Net, NetIo, NetLink, NetStats } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRef, RRefArray, RRefDeque } from '../../../src/runtime/types.js';

const TAKEN = 3;

export function init(sys: Sys): Net {
  const answer = (io: RRef<NetIo>): RRef<NetIo> => {
    io.status = 0;
    io.count = 0;
    io.held = 0;
    io.restarts = sys.restarts;
    io.pktsLost = 0;
    return io;
  };
  return {
    rxSubmitAndPoll(_q: number, io: RRef<NetIo>) {
      if (sys.restarts > 0) return answer(io);
      const mine = sys.alloc.deque<RRefArray>(TAKEN);
      mine.moveFrom(io.pkts as RRefDeque<RRefArray>, TAKEN);
      io.drop();
      return sys.panic('droppernet: freed the NetIo, kept some of its buffers');
    },
    txSubmitAndPoll: (_q: number, io: RRef<NetIo>) => answer(io),
    outstanding: () => 0,
    drain: (io: RRef<NetIo>) => answer(io),
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
