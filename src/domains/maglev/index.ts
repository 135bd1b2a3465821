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
import type { RRefArray } from '../../runtime/types.js';
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
  // A batch is handled in two passes (AppHooks.prepare, then process): the first copies every
  // frame's header out (one read; every DmaBytes access is a checked kernel call), hashes its flow
  // and touches the flow's cache line, so the batch's cache misses overlap; the second looks the
  // flows up and rewrites the MACs with three word stores (four accesses per frame in all).
  const hdrs = new Uint8Array(MAX_BATCH * HEADER_BYTES);
  const h = new DataView(hdrs.buffer);
  const hashes = new DataView(new ArrayBuffer(MAX_BATCH * 4));
  /** What the touches read: kept in a closure variable, so the loads are not optimised away. */
  let touched = 0;
  const isIpv4 = (o: number): boolean => h.getUint16(o + 12, true) === 0x0008 && (h.getUint8(o + 14) & 0xf0) === 0x40;
  const prepare = (b: RRefArray<number>, len: number, i: number): void => {
    if (len < HEADER_BYTES) return;
    const o = i * HEADER_BYTES;
    b.read(0, hdrs, o, HEADER_BYTES);
    if (!isIpv4(o)) return;
    const ports = h.getUint32(o + 34, true);
    const fh = flowHash(h.getUint32(o + 26, true), h.getUint32(o + 30, true), ports & 0xffff, ports >>> 16, h.getUint8(o + 23));
    hashes.setUint32(i * 4, fh, true);
    touched = (touched + mg.touch(fh)) | 0;
  };
  const process = (b: RRefArray<number>, len: number, i: number): number => {
    const o = i * HEADER_BYTES;
    if (len < HEADER_BYTES || !isIpv4(o)) return 0;
    const ports = h.getUint32(o + 34, true);
    const id = mg.lookupHashed(hashes.getUint32(i * 4, true), h.getUint32(o + 26, true), h.getUint32(o + 30, true), ports & 0xffff, ports >>> 16, h.getUint8(o + 23));
    // destination <- 02:00:00:00:<id>, source <- our destination (the NIC's own)
    b.setU32(0, 0x00000002);
    b.setU32(4, (id & 0xffff) | (h.getUint16(o, true) << 16));
    b.setU32(8, h.getUint32(o + 2, true));
    return len;
  };
  return makeApp(sys, net, { process, prepare, flows: () => mg.cachedFlows });
}
