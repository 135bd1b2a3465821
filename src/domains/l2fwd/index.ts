/**
 * l2fwd: RedLeaf's layer-2 forwarder as a domain on a `Net` import: every received frame has its
 * destination and source MAC addresses swapped and is sent back out. Config (sys.config): pool
 * (buffers, default 2048), bufSize (default 2048), txFrameSize (tx mode, default 60).
 */
import type { Net, NetApp } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRefArray } from '../../runtime/types.js';
import { makeApp } from '../../runtime/netapp.js';

/** Swap bytes 0..5 (destination) with 6..11 (source), in place. */
export function swapMacs(b: RRefArray<number>, len: number): number {
  const d0 = b.getU32(0);
  const d1 = b.getU16(4);
  const s0 = b.getU16(6);
  const s1 = b.getU32(8);
  b.setU16(0, s0);
  b.setU32(2, s1);
  b.setU32(6, d0);
  b.setU16(10, d1);
  return len;
}

export function init(sys: Sys, net: Net): NetApp {
  return makeApp(sys, net, { process: swapMacs });
}
