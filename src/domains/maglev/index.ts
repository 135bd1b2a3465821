/**
 * maglev: a Maglev load balancer (maglev.ts) as a domain on a `Net` import. For every received
 * IPv4 frame it looks the 5-tuple up (flow cache, then the 65,537-entry table) and forwards the
 * frame to the chosen backend: destination MAC 02:00:00:00:<id, 16 bits little-endian>, source MAC
 * the NIC's own. Non-IPv4 frames are dropped.
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

export function init(sys: Sys, net: Net): NetApp {
  const n = typeof sys.config.backends === 'number' ? sys.config.backends : 16;
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
 * IPv4), hashes its flow (kept per frame, -1 for a frame to drop) and then touches what every
 * flow's lookup will read (Maglev.touch) in one tight loop, so the batch's cache misses overlap;
 * process looks each flow up (its lines now in the CPU cache) and rewrites the MACs in the copy.
 */
export function balancerHooks(mg: Maglev): Pick<AppHooks, 'prepare' | 'process'> {
  const hashes = new DataView(new ArrayBuffer(MAX_BATCH * 4));
  /** What the touches read: kept in a closure variable, so the loads are not optimised away. */
  let touched = 0;
  const prepare = (h: DataView, lens: DataView, n: number): void => {
    for (let i = 0, o = 0; i < n; i++, o += HEADER_STRIDE) {
      let fh = -1;
      if (lens.getUint32(i * 4, true) >= HEADER_BYTES && h.getUint16(o + 12) === 0x0800 && (h.getUint8(o + 14) & 0xf0) === 0x40) {
        fh = flowHash(h.getUint32(o + 26), h.getUint32(o + 30), h.getUint32(o + 34), h.getUint8(o + 23));
      }
      hashes.setInt32(i * 4, fh, true);
    }
    touched = (touched + mg.touch(hashes, n)) | 0;
  };
  const process = (h: DataView, o: number, len: number, i: number): number => {
    const fh = hashes.getInt32(i * 4, true);
    if (fh < 0) return 0;
    const id = mg.lookupHashed(fh, h.getUint32(o + 26), h.getUint32(o + 30), h.getUint32(o + 34), h.getUint8(o + 23));
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
