/**
 * maglev: a Maglev load balancer (maglev.ts) as a domain on a `Net` import. For every received
 * IPv4 frame it looks the 5-tuple up (flow cache, then the 65,537-entry table) and forwards the
 * frame to the chosen backend: destination MAC 02:00:00:00:<id, 16 bits little-endian>, source MAC
 * the NIC's own. Non-IPv4 frames are dropped, and so are malformed ones (IHL < 5, a header longer
 * than the frame) and frames shorter than the header it reads (38 bytes; none is, on the wire).
 * The ports are part of the flow only where they are the flow's and in the header copy: TCP and
 * UDP, not a fragment, no IP options. Every other frame is hashed by its
 * 3-tuple (addresses, protocol; ports 0), as the NIC's RSS does and as Maglev handles fragments:
 * a later fragment carries payload where the first one carries the ports, and so do other
 * protocols (ICMP's checksum), so reading them as ports sent one datagram's fragments, or one
 * ping's packets, to different backends.
 *
 * Config (sys.config): backends (default 16), flowSlots (flow-cache slots and seen bits per epoch,
 * power of two, default 2^21: 1M flows at load factor 1/2), plus the app engine's pool / bufSize /
 * txFrameSize. Invariant: a flow keeps its backend while that backend lives (connection tracking:
 * maglev.ts).
 */
import { NET_EINVAL, type Net, type NetApp } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import { makeApp, MAX_BATCH, type AppHooks } from '../../runtime/netapp.js';
import { Maglev, DEFAULT_FLOW_SLOTS, flowHash } from './maglev.js';

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
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(`10.2.${i >>> 8}.${i & 255}:80`);
  const mg = new Maglev(names, { flowSlots: slots });
  // The control plane (NetApp.backends): balance over the first n configured backends.
  const backends = (k: number): number => {
    if (!Number.isInteger(k) || k < 1 || k > names.length) return NET_EINVAL;
    mg.setBackends(names.slice(0, k));
    return k;
  };
  return makeApp(sys, net, { headerBytes: HEADER_STRIDE, rewriteBytes: 12, ...balancerHooks(mg), flows: () => mg.trackedFlows, backends });
}

/**
 * The balancer's per-batch hooks over `mg` (see AppHooks). A batch is handled in two passes over
 * the engine's local copy of every frame's header: prepare checks each frame once (long enough,
 * well-formed IPv4), hashes its flow (kept per frame, -1 for a frame to drop) and then touches what every
 * flow's lookup will read (Maglev.touch) in one tight loop, so the batch's cache misses overlap;
 * process looks each flow up (its lines now in the CPU cache) and rewrites the MACs in the copy.
 */
export function balancerHooks(mg: Maglev): Pick<AppHooks, 'prepare' | 'process'> {
  const hashes = new DataView(new ArrayBuffer(MAX_BATCH * 4));
  /** Per frame, the ports its flowHash took (0 for a 3-tuple flow): its lookup's flowCheck must take the same. */
  const portsOf = new DataView(new ArrayBuffer(MAX_BATCH * 4));
  /** What the touches read: kept in a closure variable, so the loads are not optimised away. */
  let touched = 0;
  const prepare = (h: DataView, lens: DataView, n: number): void => {
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
          portsOf.setUint32(i * 4, ports, true);
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
    const id = mg.lookupHashed(fh, h.getUint32(o + 26), h.getUint32(o + 30), portsOf.getUint32(i * 4, true), h.getUint8(o + 23));
    // destination <- 02:00:00:00:<id>, source <- our destination (the NIC's own)
    const d0 = h.getUint16(o, true);
    const d1 = h.getUint32(o + 2, true);
    h.setUint32(o, 0x00000002, true);
    h.setUint32(o + 4, (id & 0xffff) | (d0 << 16), true);
    h.setUint32(o + 8, d1, true);
    return len;
  };
  return { prepare, process };
}
