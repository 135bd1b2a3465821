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
import { makeApp } from '../../runtime/netapp.js';
import { Maglev, DEFAULT_FLOW_SLOTS } from './maglev.js';

/** Bytes of the Ethernet + IPv4 + UDP/TCP-ports header the balancer reads. */
const HEADER_BYTES = 38;

export function init(sys: Sys, net: Net): NetApp {
  const n = typeof sys.config.backends === 'number' ? sys.config.backends : 16;
  const slots = typeof sys.config.flowSlots === 'number' ? sys.config.flowSlots : DEFAULT_FLOW_SLOTS;
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(`10.2.${i >>> 8}.${i & 255}:80`);
  const mg = new Maglev(names, { flowSlots: slots });
  // The header is copied out with one read and the MACs rewritten with three word stores: every
  // DmaBytes access is a checked kernel call (four per frame instead of twelve narrower ones).
  const hdr = new Uint8Array(HEADER_BYTES);
  const h = new DataView(hdr.buffer);
  const process = (b: RRefArray<number>, len: number): number => {
    if (len < HEADER_BYTES) return 0;
    b.read(0, hdr, 0, HEADER_BYTES);
    if (h.getUint16(12, true) !== 0x0008 || (h.getUint8(14) & 0xf0) !== 0x40) return 0;
    const ports = h.getUint32(34, true);
    const id = mg.lookup(h.getUint32(26, true), h.getUint32(30, true), ports & 0xffff, ports >>> 16, h.getUint8(23));
    // destination <- 02:00:00:00:<id>, source <- our destination (the NIC's own)
    b.setU32(0, 0x00000002);
    b.setU32(4, (id & 0xffff) | (h.getUint16(0, true) << 16));
    b.setU32(8, h.getUint32(2, true));
    return len;
  };
  return makeApp(sys, net, { process, flows: () => mg.cachedFlows });
}
