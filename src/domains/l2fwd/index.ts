/**
 * l2fwd: RedLeaf's layer-2 forwarder as a domain on a `Net` import: every received frame has its
 * destination and source MAC addresses swapped and is sent back out. Config (sys.config): pool
 * (buffers, default 2048), bufSize (default 2048), txFrameSize (tx mode, default 60).
 */
import type { Net, NetApp } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRefArray } from '../../runtime/types.js';
import { makeApp } from '../../runtime/netapp.js';

/**
 * Swap bytes 0..5 (destination) with 6..11 (source), in place, as three 32-bit words read and
 * written (each DmaBytes access is a checked call: six instead of eight narrower ones).
 */
export function swapMacs(b: RRefArray<number>, len: number): number {
  const w0 = b.getU32(0); // d0 d1 d2 d3
  const w1 = b.getU32(4); // d4 d5 s0 s1
  const w2 = b.getU32(8); // s2 s3 s4 s5
  b.setU32(0, (w1 >>> 16) | (w2 << 16)); // s0 s1 s2 s3
  b.setU32(4, (w2 >>> 16) | (w0 << 16)); // s4 s5 d0 d1
  b.setU32(8, (w0 >>> 16) | (w1 << 16)); // d2 d3 d4 d5
  return len;
}

export function init(sys: Sys, net: Net): NetApp {
  return makeApp(sys, net, { process: swapMacs });
}
