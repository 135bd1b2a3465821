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

export function init(sys: Sys, net: Net): NetApp {
  const n = typeof sys.config.backends === 'number' ? sys.config.backends : 16;
  const slots = typeof sys.config.flowSlots === 'number' ? sys.config.flowSlots : DEFAULT_FLOW_SLOTS;
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(`10.2.${i >>> 8}.${i & 255}:80`);
  const mg = new Maglev(names, { flowSlots: slots });
  const process = (b: RRefArray<number>, len: number): number => {
    if (len < 38 || b.getU16(12) !== 0x0008 || (b.getU8(14) & 0xf0) !== 0x40) return 0;
    const ports = b.getU32(34);
    const id = mg.lookup(b.getU32(26), b.getU32(30), ports & 0xffff, ports >>> 16, b.getU8(23));
    // source MAC <- our destination (the NIC's own), destination <- the backend's
    b.setU32(6, b.getU32(0));
    b.setU16(10, b.getU16(4));
    b.setU32(0, 0x00000002);
    b.setU16(4, id);
    return len;
  };
  return makeApp(sys, net, { process, flows: () => mg.cachedFlows });
}
