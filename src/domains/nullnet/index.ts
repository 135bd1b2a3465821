/**
 * nullnet: the `Net` interface with no device behind it (RedLeaf's nullnet), to measure what the
 * interface and one crossing cost without a NIC. RX hands every free buffer straight back as if a
 * frame of `frameSize` bytes (sys.config, default 64) had arrived in it (contents untouched); TX
 * completes every frame at once. Buffers come back in the order they went in; nothing is held
 * (NetIo.held is always 0). Every answer carries the stamps the NIC driver's do (NetIo.restarts:
 * this instance's Sys.restarts; pktsLost 0, as nothing of a call ever dies here), so a caller
 * reads the same contract on every Net, whatever the NetIo carried in.
 * Buffers pass from pkts to collect with one bulk RRefDeque.moveFrom (no handle per buffer).
 * Lengths are copied in and out of the NetIo's length arrays with one read/write per call (every
 * RRef access is a checked kernel call), through a local scratch array written with a DataView;
 * the RX lengths (all frameSize) are written once, when their array grows.
 */
import { NET_EINVAL, type Net, type NetIo, type NetLink, type NetStats } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRef } from '../../runtime/types.js';

export function init(sys: Sys): Net {
  /** As a u32 length array reports it (what the byte counters sum). */
  const frameSize = (typeof sys.config.frameSize === 'number' ? sys.config.frameSize : 64) >>> 0;
  let rxPackets = 0;
  let txPackets = 0;
  let rxBytes = 0;
  let txBytes = 0;
  let scratch = new Uint8Array(0);
  let sv = new DataView(scratch.buffer);
  /** RX lengths: frameSize in every entry, written when it grows, not per call. */
  let rxLens = new Uint8Array(0);

  const restarts = sys.restarts;
  /** What every answer reports besides its result: nothing held, and the stamps (see the header). */
  const stamp = (io: RRef<NetIo>): void => {
    io.held = 0;
    io.restarts = restarts;
    io.pktsLost = 0;
  };
  const refuse = (io: RRef<NetIo>): RRef<NetIo> => {
    io.status = NET_EINVAL;
    io.count = 0;
    return io;
  };
  /** Move up to room-many buffers from pkts to collect; RX gives them frameSize, TX keeps theirs. */
  const pass = (io: RRef<NetIo>, q: number, rx: boolean): RRef<NetIo> => {
    const pk = io.pkts;
    // RX free buffers carry no lengths: pktLens is not read (each field read is a kernel call).
    const pl = rx ? null : io.pktLens;
    const co = io.collect;
    const cl = io.collectLens;
    stamp(io);
    if (pk === null || co === null || cl === null || q !== 0 || (!rx && pl === null)) return refuse(io);
    const cap = co.capacity;
    const n = pk.length;
    if (cl.byteLength < cap * 4 || (pl !== null && pl.byteLength < n * 4)) return refuse(io);
    io.status = 0;
    const c0 = co.length;
    const moving = Math.min(n, cap - c0);
    if (scratch.length < 4 * n) {
      scratch = new Uint8Array(4 * n);
      sv = new DataView(scratch.buffer);
    }
    if (rx && rxLens.length < 4 * n) {
      rxLens = new Uint8Array(4 * n);
      const v = new DataView(rxLens.buffer);
      for (let i = 0; i < n; i++) v.setUint32(4 * i, frameSize, true);
    }
    if (pl !== null && n > 0) pl.read(0, scratch, 0, 4 * n);
    co.moveFrom(pk, moving);
    let bytes = 0;
    if (rx) {
      bytes = moving * frameSize;
    } else {
      for (let i = 0; i < moving; i++) bytes += sv.getUint32(4 * i, true);
    }
    if (moving > 0) cl.write(4 * c0, rx ? rxLens : scratch, 0, 4 * moving);
    // TX frames left behind keep the lens convention (front at index 0).
    if (pl !== null && moving > 0 && moving < n) pl.write(0, scratch, 4 * moving, 4 * (n - moving));
    io.count = moving;
    if (rx) {
      rxPackets += moving;
      rxBytes += bytes;
    } else {
      txPackets += moving;
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
      stamp(io);
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
      out.rxInfo = 0; // no NIC read the frames: collectInfo is left as it is
      return out;
    },
    setInterrupts: () => 0,
    waitRx: () => Promise.resolve(1),
  };
}
