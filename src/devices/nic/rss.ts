/**
 * Receive-side scaling for the NIC model: the 82599's Toeplitz hash over IPv4 source/destination
 * addresses and TCP/UDP ports, with the well-known default key, so flows spread over RX queues
 * the way they do on the real part.
 *
 * Invariants: hashing never allocates (the hash is the XOR of 12 lookups in a table built once,
 * one 256-entry row per input byte); a frame that is not IPv4 (or too short to parse) hashes to 0
 * with RSS type 0, like hardware with no matching hash function.
 */
import {
  PTYPE_IPV4, PTYPE_TCP, PTYPE_UDP, RSS_TYPE_IPV4, RSS_TYPE_TCP_IPV4, RSS_TYPE_UDP_IPV4,
} from './regs.js';

/** Microsoft's RSS verification key, the 82599 driver's default. */
const KEY = [
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
  0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
  0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];
/** Input bytes hashed: src IP (4), dst IP (4), src port (2), dst port (2). */
const INPUT_BYTES = 12;

/** The 32 key bits starting at bit `bit` (bit 0 = MSB of key byte 0). */
function keyWindow(bit: number): number {
  let v = 0;
  for (let i = 0; i < 32; i++) {
    const b = bit + i;
    v = (v << 1) | ((KEY[b >>> 3]! >>> (7 - (b & 7))) & 1);
  }
  return v >>> 0;
}

/** TABLE[pos * 256 + byte]: the hash contribution of `byte` at input position `pos`. */
const TABLE = new Uint32Array(INPUT_BYTES * 256);
for (let pos = 0; pos < INPUT_BYTES; pos++) {
  for (let bit = 0; bit < 8; bit++) {
    const k = keyWindow(pos * 8 + bit);
    const mask = 0x80 >>> bit;
    for (let v = 0; v < 256; v++) if (v & mask) TABLE[pos * 256 + v]! ^= k;
  }
}

/** Toeplitz hash of IPv4 addresses (network order, as 32-bit numbers) and optional ports. */
export function toeplitz(srcIp: number, dstIp: number, srcPort: number, dstPort: number, withPorts: boolean): number {
  let h = TABLE[0 * 256 + (srcIp >>> 24)]! ^ TABLE[1 * 256 + ((srcIp >>> 16) & 255)]!
    ^ TABLE[2 * 256 + ((srcIp >>> 8) & 255)]! ^ TABLE[3 * 256 + (srcIp & 255)]!
    ^ TABLE[4 * 256 + (dstIp >>> 24)]! ^ TABLE[5 * 256 + ((dstIp >>> 16) & 255)]!
    ^ TABLE[6 * 256 + ((dstIp >>> 8) & 255)]! ^ TABLE[7 * 256 + (dstIp & 255)]!;
  if (withPorts) {
    h ^= TABLE[8 * 256 + (srcPort >>> 8)]! ^ TABLE[9 * 256 + (srcPort & 255)]!
      ^ TABLE[10 * 256 + (dstPort >>> 8)]! ^ TABLE[11 * 256 + (dstPort & 255)]!;
  }
  return h >>> 0;
}

/**
 * Classifies the frame at `b[off..off+len)` and returns its RSS hash; the write-back dword 0
 * (RSS type | packet type) is left in `out[0]` so the caller needs no object per frame.
 */
export function classify(b: Uint8Array, off: number, len: number, out: Int32Array): number {
  out[0] = 0;
  if (len < 34 || b[off + 12] !== 0x08 || b[off + 13] !== 0x00) return 0;
  const vihl = b[off + 14]!;
  const ihl = (vihl & 15) * 4;
  if (vihl >>> 4 !== 4 || ihl < 20 || len < 14 + ihl) return 0;
  const src = ((b[off + 26]! << 24) | (b[off + 27]! << 16) | (b[off + 28]! << 8) | b[off + 29]!) >>> 0;
  const dst = ((b[off + 30]! << 24) | (b[off + 31]! << 16) | (b[off + 32]! << 8) | b[off + 33]!) >>> 0;
  const proto = b[off + 23]!;
  const fragmented = ((b[off + 20]! & 0x3f) | b[off + 21]!) !== 0; // MF flag or fragment offset
  const l4 = off + 14 + ihl;
  if (!fragmented && (proto === 6 || proto === 17) && len >= 14 + ihl + 4) {
    out[0] = proto === 6 ? RSS_TYPE_TCP_IPV4 | PTYPE_IPV4 | PTYPE_TCP : RSS_TYPE_UDP_IPV4 | PTYPE_IPV4 | PTYPE_UDP;
    return toeplitz(src, dst, (b[l4]! << 8) | b[l4 + 1]!, (b[l4 + 2]! << 8) | b[l4 + 3]!, true);
  }
  out[0] = RSS_TYPE_IPV4 | PTYPE_IPV4;
  return toeplitz(src, dst, 0, 0, false);
}
