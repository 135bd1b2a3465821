/**
 * nullnet: the `Net` interface with no device behind it (RedLeaf's nullnet), to measure what the
 * interface and one crossing cost without a NIC. RX hands every free buffer straight back as if a
 * frame of `frameSize` bytes (sys.config, default 64) had arrived in it (contents untouched); TX
 * completes every frame at once. Buffers come back in the order they went in; nothing is held.
 */
import type { Net, NetIo, NetLink, NetStats } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRef } from '../../runtime/types.js';

const EINVAL = -22;

export function init(sys: Sys): Net {
  const frameSize = typeof sys.config.frameSize === 'number' ? sys.config.frameSize : 64;
  let rxPackets = 0;
  let txPackets = 0;
  let rxBytes = 0;
  let txBytes = 0;

  /** Move up to room-many buffers from pkts to collect; RX gives them frameSize, TX keeps theirs. */
  const pass = (io: RRef<NetIo>, q: number, rx: boolean): RRef<NetIo> => {
    const pk = io.pkts;
    const pl = io.pktLens;
    const co = io.collect;
    const cl = io.collectLens;
    io.count = 0;
    if (pk === null || pl === null || co === null || cl === null || q !== 0 || pl.byteLength < pk.capacity * 4 || cl.byteLength < co.capacity * 4) {
      io.status = EINVAL;
      return io;
    }
    io.status = 0;
    const cap = co.capacity;
    let c = co.length;
    let i = 0;
    const n = pk.length;
    let bytes = 0;
    while (i < n && c < cap) {
      const len = rx ? frameSize : pl.getU32(i * 4);
      co.push(pk.pop()!);
      cl.setU32(c * 4, len);
      bytes += len;
      c++;
      i++;
    }
    // TX frames left behind keep the lens convention (front at index 0).
    if (!rx && i > 0) for (let j = i; j < n; j++) pl.setU32((j - i) * 4, pl.getU32(j * 4));
    io.count = i;
    if (rx) {
      rxPackets += i;
      rxBytes += bytes;
    } else {
      txPackets += i;
      txBytes += bytes;
    }
    return io;
  };

  return {
    rxSubmitAndPoll: (q: number, io: RRef<NetIo>) => pass(io, q, true),
    txSubmitAndPoll: (q: number, io: RRef<NetIo>) => pass(io, q, false),
    outstanding: () => 0,
    drain(io: RRef<NetIo>) {
      io.count = 0;
      io.status = 0;
      return io;
    },
    stats(out: RRef<NetStats>) {
      out.rxPackets = rxPackets;
      out.txPackets = txPackets;
      out.rxBytes = rxBytes;
      out.txBytes = txBytes;
      return out;
    },
    link(out: RRef<NetLink>) {
      out.up = true;
      out.speedMbps = 10000;
      out.mac = [2, 0, 0, 0, 0, 1] as unknown as NetLink['mac'];
      out.queues = 1;
      out.rxRingSize = 0;
      out.txRingSize = 0;
      out.rxBufSize = 2048;
      out.interrupts = 0;
      return out;
    },
    setInterrupts: () => 0,
    waitRx: () => Promise.resolve(1),
  };
}
