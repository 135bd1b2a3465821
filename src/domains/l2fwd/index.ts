/**
 * l2fwd: RedLeaf's layer-2 forwarder as a domain on a `Net` import: every received frame has its
 * destination and source MAC addresses swapped and is sent back out (a runt shorter than an
 * Ethernet header is dropped). Config (sys.config): pool
 * (buffers, default 2048), bufSize (default 2048), txFrameSize (tx mode, default 60).
 * The app engine (netapp.ts) hands it a local copy of every frame's first 12 bytes and writes
 * them back to the whole batch at once; swapMacs (on a buffer handle) is the same swap for
 * code that holds frames one by one (the host driver path of the benchmark).
 */
import type { Net, NetApp } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRefArray } from '../../runtime/types.js';
import { makeApp } from '../../runtime/netapp.js';

/** Destination MAC, source MAC, ethertype. */
const ETH_HEADER = 14;

/** Bytes 0..11 (destination then source MAC) as little-endian words w0 w1 w2 = d0-d3 d4 d5 s0 s1 s2-s5: word k of the swap takes (lo >>> 16) | (hi << 16). */
const half = (lo: number, hi: number): number => (lo >>> 16) | (hi << 16);

/**
 * The app's per-frame hook: swap the MACs of the frame whose first 12 bytes are at `o` of `v`,
 * send it with its length. The words of `half` are written out and the hook is handed to the
 * engine itself: every call in domain code pays the deadline tick the build puts at its entry
 * (~0.75 ns), and five calls a frame (hook, swap, three halves) measured ~3.5 ns a frame in a
 * micro-benchmark of the same code with and without ticks (the domain path takes ~160 ns).
 */
function swapFrame(v: DataView, o: number, len: number): number {
  // A frame shorter than an Ethernet header has no two MACs: swapping them would send the stale
  // bytes past its end (a previous frame's, in the same buffer) as its destination.
  if (len < ETH_HEADER) return 0;
  const w0 = v.getUint32(o, true);
  const w1 = v.getUint32(o + 4, true);
  const w2 = v.getUint32(o + 8, true);
  v.setUint32(o, (w1 >>> 16) | (w2 << 16), true); // s0 s1 s2 s3
  v.setUint32(o + 4, (w2 >>> 16) | (w0 << 16), true); // s4 s5 d0 d1
  v.setUint32(o + 8, (w0 >>> 16) | (w1 << 16), true); // d2 d3 d4 d5
  return len;
}

/** Swap the MACs of frame `b` in place (three word reads and writes: each is a checked call). */
export function swapMacs(b: RRefArray<number>, len: number): number {
  const w0 = b.getU32(0);
  const w1 = b.getU32(4);
  const w2 = b.getU32(8);
  b.setU32(0, half(w1, w2));
  b.setU32(4, half(w2, w0));
  b.setU32(8, half(w0, w1));
  return len;
}

export function init(sys: Sys, net: Net): NetApp {
  return makeApp(sys, net, {
    headerBytes: 12,
    rewriteBytes: 12,
    process: swapFrame,
  });
}
