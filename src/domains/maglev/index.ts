/**
 * maglev: a Maglev load balancer (maglev.ts) as a domain on a `Net` import. For every received
 * IPv4 frame it looks the 5-tuple up (flow cache, then the 65,537-entry table) and forwards the
 * frame to the chosen backend: destination MAC 02:00:00:00:<id, 16 bits little-endian>, source MAC
 * the NIC's own. Non-IPv4 frames are dropped.
 *
 * Config (sys.config): backends (default 16), flowSlots (flow-cache slots, power of two, default
 * 2^21: 1M flows at load factor 1/2), plus the app engine's pool / bufSize / txFrameSize.
 * Invariant: a flow keeps its backend while that backend lives (the flow cache pins it).
 */
import type { Net, NetApp } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import { makeApp, MAX_BATCH } from '../../runtime/netapp.js';
import { Maglev, DEFAULT_FLOW_SLOTS, flowHash } from './maglev.js';

/** Bytes of the Ethernet + IPv4 + UDP/TCP-ports header the balancer reads. */
const HEADER_BYTES = 38;

export function init(sys: Sys, net: Net): NetApp {
  const n = typeof sys.config.backends === 'number' ? sys.config.backends : 16;
  const slots = typeof sys.config.flowSlots === 'number' ? sys.config.flowSlots : DEFAULT_FLOW_SLOTS;
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(`10.2.${i >>> 8}.${i & 255}:80`);
  const mg = new Maglev(names, { flowSlots: slots });
  // A batch is handled in two passes (AppHooks.prepare, then process) over a local copy of every
  // frame's header (the engine copies the batch's headers out and the MACs back in one call
  // each): the first pass hashes each flow and touches its cache line, so the batch's cache
  // misses overlap; the second looks the flows up and rewrites the MACs in the copy.
  const hashes = new DataView(new ArrayBuffer(MAX_BATCH * 4));
  /** What the touches read: kept in a closure variable, so the loads are not optimised away. */
  let touched = 0;
  const isIpv4 = (h: DataView, o: number): boolean => h.getUint16(o + 12, true) === 0x0008 && (h.getUint8(o + 14) & 0xf0) === 0x40;
  const prepare = (h: DataView, o: number, len: number, i: number): void => {
    if (len < HEADER_BYTES || !isIpv4(h, o)) return;
    const ports = h.getUint32(o + 34, true);
    const fh = flowHash(h.getUint32(o + 26, true), h.getUint32(o + 30, true), ports & 0xffff, ports >>> 16, h.getUint8(o + 23));
    hashes.setUint32(i * 4, fh, true);
    touched = (touched + mg.touch(fh)) | 0;
  };
  const process = (h: DataView, o: number, len: number, i: number): number => {
    if (len < HEADER_BYTES || !isIpv4(h, o)) return 0;
    const ports = h.getUint32(o + 34, true);
    const id = mg.lookupHashed(hashes.getUint32(i * 4, true), h.getUint32(o + 26, true), h.getUint32(o + 30, true), ports & 0xffff, ports >>> 16, h.getUint8(o + 23));
    // destination <- 02:00:00:00:<id>, source <- our destination (the NIC's own)
    const d0 = h.getUint16(o, true);
    const d1 = h.getUint32(o + 2, true);
    h.setUint32(o, 0x00000002, true);
    h.setUint32(o + 4, (id & 0xffff) | (d0 << 16), true);
    h.setUint32(o + 8, d1, true);
    return len;
  };
  return makeApp(sys, net, { headerBytes: HEADER_BYTES, rewriteBytes: 12, process, prepare, flows: () => mg.cachedFlows });
}
