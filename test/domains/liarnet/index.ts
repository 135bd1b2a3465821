/**
 * liarnet (test domain): a faulty `Net` that takes no buffer and answers every call at once, but
 * claims in NetIo.held to hold a million buffers. Behind the NIC shadow it shows that the shadow
 * does not take a driver's word for more than the driver can hold (test/net/held.test.ts).
 */
import type { Net, NetIo, NetLink, NetStats } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRef } from '../../../src/runtime/types.js';

const CLAIM = 1_000_000;

export function init(_sys: Sys): Net {
  const answer = (io: RRef<NetIo>): RRef<NetIo> => {
    io.status = 0;
    io.count = 0;
    io.held = CLAIM;
    return io;
  };
  return {
    rxSubmitAndPoll: (_q: number, io: RRef<NetIo>) => answer(io),
    txSubmitAndPoll: (_q: number, io: RRef<NetIo>) => answer(io),
    outstanding: () => 0,
    drain(io: RRef<NetIo>) {
      answer(io).held = 0;
      return io;
    },
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
