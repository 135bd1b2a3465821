/**
 * maglev: a Maglev load balancer (maglev.ts) as a domain on a `Net` import. For every received
 * IPv4 frame it looks the flow up (flow cache, then the 65,537-entry table) and forwards the
 * frame to the chosen backend: destination MAC 02:00:00:00:<id, 16 bits little-endian>, source MAC
 * the NIC's own. Non-IPv4 frames are dropped, and so are malformed ones (IHL < 5, a header longer
 * than the frame).
 *
 * A flow is its 5-tuple for TCP and UDP, and its 3-tuple (addresses, protocol) otherwise, as the
 * NIC's RSS hashes it and as Maglev handles fragments: a later fragment carries payload where the
 * first one carries the ports, and so do other protocols (ICMP's checksum), so reading them as
 * ports sent one datagram's fragments, or one ping's packets, to different backends. Where the
 * flow's hash comes from (maglev.ts: a flow's key):
 *  - the NIC (the default, on a Net whose link reports NetLink.rxInfo: the NIC driver). The NIC
 *    hashed the frame as it received it — its RSS hash and type, in the RX write-back
 *    (NetIo.collectInfo), as a DPDK app takes mbuf.hash.rss — so the balancer reads no byte of
 *    the frame: it writes the 12 bytes of MAC addresses and nothing else. A frame the NIC did not
 *    hash as IPv4 is dropped.
 *  - the frame itself (config rxHash 'software', or a Net that reports nothing, as nullnet): its
 *    first 38 bytes are copied out and hashed (flowHash). Frames shorter than that are dropped
 *    (none is, on the wire), and the ports count only without IP options (they lie past the copy).
 *
 * Config (sys.config): backends (default 16), flowSlots (flow-cache slots and seen bits per epoch,
 * power of two, default 2^21: 1M flows at load factor 1/2), rxHash ('nic', the default, or
 * 'software'), plus the app engine's pool / bufSize / txFrameSize. Invariant: a flow keeps its
 * backend while that backend lives (connection tracking: maglev.ts).
 */
import { NET_EINVAL, NET_RSS_TYPE_MASK, type Net, type NetApp } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import { makeApp, MAX_BATCH, type AppHooks } from '../../runtime/netapp.js';
import { Maglev, DEFAULT_FLOW_SLOTS, flowHash, flowKey } from './maglev.js';

/** Bytes of the Ethernet + IPv4 + UDP/TCP-ports header the balancer reads. */
const HEADER_BYTES = 38;
/**
 * Bytes of every frame the engine copies out for the hooks (frame i's copy at i * HEADER_STRIDE):
 * the header rounded up to whole words, which the kernel copies a word at a time (the two bytes
 * past the ports are never read; a frame shorter than the header is dropped by its length).
 */
export const HEADER_STRIDE = 40;

/**
 * Backends the domain balances over, at most: a frame names its backend in 16 bits of the
 * destination MAC, so backend 65,536 would be sent to backend 0.
 */
export const MAX_APP_BACKENDS = 1 << 16;

export function init(sys: Sys, net: Net): NetApp {
  const n = typeof sys.config.backends === 'number' ? sys.config.backends : 16;
  if (!Number.isInteger(n) || n < 1 || n > MAX_APP_BACKENDS) return sys.panic(`maglev: backends ${n} must be a whole number in 1..${MAX_APP_BACKENDS} (a frame names its backend in 16 bits)`);
  const slots = typeof sys.config.flowSlots === 'number' ? sys.config.flowSlots : DEFAULT_FLOW_SLOTS;
  const rxHash = sys.config.rxHash ?? 'nic';
  if (rxHash !== 'nic' && rxHash !== 'software') return sys.panic(`maglev: rxHash ${String(rxHash)} must be 'nic' or 'software'`);
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(`10.2.${i >>> 8}.${i & 255}:80`);
  const mg = new Maglev(names, { flowSlots: slots });
  // The control plane (NetApp.backends): balance over the first n configured backends.
  const backends = (k: number): number => {
    if (!Number.isInteger(k) || k < 1 || k > names.length) return NET_EINVAL;
    mg.setBackends(names.slice(0, k));
    return k;
  };
  return makeApp(sys, net, {
    headerBytes: HEADER_STRIDE,
    rewriteBytes: MAC_BYTES,
    ...(rxHash === 'nic' ? { rxInfo: { headerBytes: 0 } } : {}),
    ...balancerHooks(mg),
    flows: () => mg.trackedFlows,
    backends,
  });
}

/** Bytes of a frame the balancer writes: the destination and source MAC addresses. */
const MAC_BYTES = 12;

/**
 * The balancer's per-batch hooks over `mg` (see AppHooks). A batch is handled in two passes:
 * prepare finds each frame's flow key once (kept per frame, -1 for a frame to drop) — from the
 * NIC's RSS hash and type (`info`), or by checking and hashing the engine's copy of its header
 * (long enough, well-formed IPv4) — and then touches what every flow's lookup will read
 * (Maglev.touch) in one tight loop, so the batch's cache misses overlap; process looks each flow
 * up (its lines now in the CPU cache) and writes the MACs into the copy.
 */
export function balancerHooks(mg: Maglev): Pick<AppHooks, 'prepare' | 'process' | 'link'> {
  const hashes = new DataView(new ArrayBuffer(MAX_BATCH * 4));
  /** What the touches read: kept in a closure variable, so the loads are not optimised away. */
  let touched = 0;
  /** The NIC's MAC, the frames' new source, as written: its bytes 0-1 (u16) and 2-5 (u32), little-endian. */
  let src01 = 0x0002;
  let src25 = 0x01000000;
  const link = (mac: readonly number[]): void => {
    src01 = mac[0]! | (mac[1]! << 8);
    src25 = (mac[2]! | (mac[3]! << 8) | (mac[4]! << 16) | (mac[5]! << 24)) >>> 0;
  };
  const prepare = (h: DataView, lens: DataView, n: number, info: DataView | null): void => {
    if (info !== null) {
      for (let i = 0; i < n; i++) {
        const hashed = lens.getUint32(i * 4, true) > 0 && (info.getUint32(i * 8, true) & NET_RSS_TYPE_MASK) !== 0;
        hashes.setInt32(i * 4, hashed ? flowKey(info.getUint32(i * 8 + 4, true)) : -1, true);
      }
      touched = (touched + mg.touch(hashes, n)) | 0;
      return;
    }
    for (let i = 0, o = 0; i < n; i++, o += HEADER_STRIDE) {
      let fh = -1;
      const len = lens.getUint32(i * 4, true);
      if (len >= HEADER_BYTES && h.getUint16(o + 12) === 0x0800) {
        const vihl = h.getUint8(o + 14);
        const ihl = (vihl & 15) * 4;
        if (vihl >>> 4 === 4 && ihl >= 20 && len >= 14 + ihl) {
          const proto = h.getUint8(o + 23);
          // Flags' MF and the fragment offset (bits 13..0 of bytes 20-21): a fragment.
          const ports = ihl === 20 && (proto === 6 || proto === 17) && (h.getUint16(o + 20) & 0x3fff) === 0 ? h.getUint32(o + 34) : 0;
          fh = flowHash(h.getUint32(o + 26), h.getUint32(o + 30), ports, proto);
        }
      }
      hashes.setInt32(i * 4, fh, true);
    }
    touched = (touched + mg.touch(hashes, n)) | 0;
  };
  const process = (h: DataView, o: number, len: number, i: number): number => {
    const fh = hashes.getInt32(i * 4, true);
    if (fh < 0) return 0;
    const id = mg.lookupHashed(fh);
    // destination <- 02:00:00:00:<id>, source <- the NIC's own
    h.setUint32(o, 0x00000002, true);
    h.setUint32(o + 4, (id & 0xffff) | (src01 << 16), true);
    h.setUint32(o + 8, src25, true);
    return len;
  };
  return { prepare, process, link };
}
