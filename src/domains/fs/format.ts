/**
 * The on-disk format: constants, geometry, and encode/decode of the superblock, on-disk inodes
 * (dinodes), directory entries and the log header, for both variants. Pure code, no I/O.
 *
 * Variant `xv6` (exactly xv6-riscv's kernel/fs.h, see shared/specs/xv6-fs.md):
 *   BSIZE 1024; block 0 boot, block 1 superblock (eight u32: magic 0x10203040, size, nblocks,
 *   ninodes, nlog, logstart, inodestart, bmapstart), then log, inode blocks, bitmap, data.
 *   dinode 64 bytes (IPB 16): type i16, major i16, minor i16, nlink i16, size u32, addrs u32[13]
 *   (12 direct + 1 singly indirect of 256 entries). Max file 274,432 bytes.
 *   dirent 16 bytes: inum u16, name[14] (DIRSIZ 14, NUL padded, unterminated at 14).
 *   Log header (block logstart): u32 n, u32 block[n]; n <= LOGSIZE (30, xv6's kernel constant)
 *   and n <= nlog - 1. MAXOPBLOCKS 10.
 *
 * Variant `large` (RedLeaf.ts's own; chosen at mkfs time, never confused with xv6 by its magic):
 *   BSIZE 4096; same region order: block 0 boot, block 1 superblock, log, inodes, bitmap, data.
 *   Superblock (block 1, byte offset 4096; rest of the block zero):
 *     0  u32 magic   = 0x52564C36 (LARGE_MAGIC)
 *     4  u32 version = 1
 *     8  u32 bsize   = 4096
 *     12 u32 ninodes
 *     16 u64 size     (total blocks; < 2^32 because block numbers are u32)
 *     24 u64 nblocks  (data blocks)
 *     32 u32 nlog, 36 u32 logstart, 40 u32 inodestart, 44 u32 bmapstart
 *   dinode 128 bytes (IPB 32): 0 type i16, 2 major i16, 4 minor i16, 6 nlink i16, 8 size u64,
 *     16 addrs u32[27] = 24 direct, [24] singly, [25] doubly, [26] triply indirect (1024 entries
 *     per indirect block), 124 u32 reserved (0). Max file (24+2^10+2^20+2^30)·4096 ≈ 4 TiB; images
 *     up to 2^32 blocks = 16 TiB. Holes (block number 0 below size) are allowed and read as zeros.
 *   dirent 32 bytes: inum u32, name[28] (DIRSIZ 28, same padding rule as xv6).
 *   Log header: u32 n, u32 block[n], n <= 1023 and n <= nlog - 1. MAXOPBLOCKS 64.
 *   Bitmap: one bit per block, BPB = 4096·8 = 32768, bit set = in use (as xv6).
 *
 * Both variants: inode 0 is never used, root is inode 1, block number 0 means "not allocated",
 * all integers little-endian, inode types 0 free, 1 dir, 2 file, 3 device.
 *
 * Invariants kept here: decode never trusts the disk; validateSuperblock checks every region
 * lies inside the image, regions are ordered and disjoint, and the sizes are self-consistent,
 * and throws EUCLEAN ("superblock: ...") otherwise.
 */
import type { DmaBytes } from '../../runtime/types.js';
import { corrupt } from './errors.js';

export type Variant = 'xv6' | 'large';

export const XV6_MAGIC = 0x10203040;
export const LARGE_MAGIC = 0x52564c36;
export const LARGE_VERSION = 1;

export const T_FREE = 0;
export const T_DIR = 1;
export const T_FILE = 2;
export const T_DEVICE = 3;

export const ROOTINO = 1;
/** Max link count (nlink is an i16 on disk). */
export const NLINK_MAX = 32767;

/** Everything that differs between the variants. */
export interface Geometry {
  readonly variant: Variant;
  readonly magic: number;
  readonly bsize: number;
  /** Byte offset of the superblock in the image (block 1). */
  readonly sbOffset: number;
  readonly inodeSize: number;
  /** Inodes per block. */
  readonly ipb: number;
  readonly ndirect: number;
  /** Number of indirect levels after the direct blocks (xv6 1; large 3). */
  readonly levels: number;
  /** Block numbers per indirect block. */
  readonly nindirect: number;
  /** Max blocks of one file. */
  readonly maxFileBlocks: number;
  /** Max bytes of one file. */
  readonly maxFileSize: number;
  readonly direntSize: number;
  readonly dirsiz: number;
  /** Largest inode number a dirent can hold. */
  readonly maxInum: number;
  /** Bitmap bits per block. */
  readonly bpb: number;
  /** Max blocks one file-system call may write in the log. */
  readonly maxOpBlocks: number;
  /** Max entries of the log header (also xv6's LOGSIZE for the xv6 variant). */
  readonly logHeaderCap: number;
  /** Holes allowed in files (the xv6 kernel would panic reading one). */
  readonly holes: boolean;
  /** Bytes of the dinode's size field (4 or 8). */
  readonly sizeBytes: number;
}

function mkGeometry(variant: Variant): Geometry {
  if (variant === 'xv6') {
    const bsize = 1024, ndirect = 12, nind = bsize / 4;
    const maxFileBlocks = ndirect + nind;
    return {
      variant, magic: XV6_MAGIC, bsize, sbOffset: bsize, inodeSize: 64, ipb: bsize / 64,
      ndirect, levels: 1, nindirect: nind, maxFileBlocks, maxFileSize: maxFileBlocks * bsize,
      direntSize: 16, dirsiz: 14, maxInum: 0xffff, bpb: bsize * 8, maxOpBlocks: 10,
      logHeaderCap: 30, holes: false, sizeBytes: 4,
    };
  }
  const bsize = 4096, ndirect = 24, nind = bsize / 4;
  const maxFileBlocks = ndirect + nind + nind * nind + nind * nind * nind;
  return {
    variant, magic: LARGE_MAGIC, bsize, sbOffset: bsize, inodeSize: 128, ipb: bsize / 128,
    ndirect, levels: 3, nindirect: nind, maxFileBlocks, maxFileSize: maxFileBlocks * bsize,
    direntSize: 32, dirsiz: 28, maxInum: 0xffffffff, bpb: bsize * 8, maxOpBlocks: 64,
    logHeaderCap: (bsize - 4) / 4, holes: true, sizeBytes: 8,
  };
}

export const XV6: Geometry = mkGeometry('xv6');
export const LARGE: Geometry = mkGeometry('large');

export function geometryOf(variant: Variant): Geometry {
  return variant === 'xv6' ? XV6 : LARGE;
}

/** Number of addrs slots in a dinode. */
export function naddrs(g: Geometry): number {
  return g.ndirect + g.levels;
}

// ---------------------------------------------------------------------------------------------
// Superblock

export interface Superblock {
  magic: number;
  size: number;
  nblocks: number;
  ninodes: number;
  nlog: number;
  logstart: number;
  inodestart: number;
  bmapstart: number;
}

export function hex(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0');
}

/** Encode `sb` at `off` of `buf` (the superblock block; caller zeroes the rest). */
export function encodeSuperblock(g: Geometry, sb: Superblock, buf: DmaBytes, off = 0): void {
  if (g.variant === 'xv6') {
    const f = [sb.magic, sb.size, sb.nblocks, sb.ninodes, sb.nlog, sb.logstart, sb.inodestart, sb.bmapstart];
    for (let i = 0; i < 8; i++) buf.setU32(off + i * 4, f[i]!);
    return;
  }
  buf.setU32(off + 0, sb.magic);
  buf.setU32(off + 4, LARGE_VERSION);
  buf.setU32(off + 8, g.bsize);
  buf.setU32(off + 12, sb.ninodes);
  buf.setU64(off + 16, sb.size);
  buf.setU64(off + 24, sb.nblocks);
  buf.setU32(off + 32, sb.nlog);
  buf.setU32(off + 36, sb.logstart);
  buf.setU32(off + 40, sb.inodestart);
  buf.setU32(off + 44, sb.bmapstart);
}

/** Decode a superblock for variant `g` (no validation: see validateSuperblock). */
export function decodeSuperblock(g: Geometry, buf: DmaBytes, off = 0): Superblock {
  if (g.variant === 'xv6') {
    return {
      magic: buf.getU32(off), size: buf.getU32(off + 4), nblocks: buf.getU32(off + 8),
      ninodes: buf.getU32(off + 12), nlog: buf.getU32(off + 16), logstart: buf.getU32(off + 20),
      inodestart: buf.getU32(off + 24), bmapstart: buf.getU32(off + 28),
    };
  }
  return {
    magic: buf.getU32(off), size: buf.getU64(off + 16), nblocks: buf.getU64(off + 24),
    ninodes: buf.getU32(off + 12), nlog: buf.getU32(off + 32), logstart: buf.getU32(off + 36),
    inodestart: buf.getU32(off + 40), bmapstart: buf.getU32(off + 44),
  };
}

/** Derived layout of a validated superblock. */
export interface Layout {
  readonly ninodeblocks: number;
  readonly nbitmap: number;
  /** First data block: size - nblocks (>= bmapstart + nbitmap; xv6's nmeta). */
  readonly datastart: number;
  /** Usable log entries: min(nlog - 1, logHeaderCap). */
  readonly logCap: number;
}

/** A committed log entry: the block `home` whose newest committed copy is in log block `slot`. */
export interface LogEntry {
  readonly home: number;
  readonly slot: number;
}

/**
 * Decode and check the log header block `hdr` (shared by mount-time recovery and fsck): the
 * entries in log order, and a message per problem — a count beyond the log's capacity (no entries
 * then), or an entry naming a block outside [inodestart, size) (left out of `entries`).
 */
export function decodeLogHeader(sb: Superblock, layout: Layout, hdr: DmaBytes): { entries: LogEntry[]; problems: string[] } {
  const n = hdr.getU32(0);
  const entries: LogEntry[] = [];
  if (n > layout.logCap) return { entries, problems: [`log header: n=${n} exceeds the log capacity ${layout.logCap}`] };
  const problems: string[] = [];
  for (let i = 0; i < n; i++) {
    const home = hdr.getU32(4 + 4 * i);
    if (home < sb.inodestart || home >= sb.size) problems.push(`log header: entry ${i} names block ${home}, outside [${sb.inodestart}, ${sb.size})`);
    else entries.push({ home, slot: sb.logstart + 1 + i });
  }
  return { entries, problems };
}

/** Blocks the bitmap needs for `size` blocks. */
export function bitmapBlocks(g: Geometry, size: number): number {
  return Math.ceil(size / g.bpb);
}

export function inodeBlocks(g: Geometry, ninodes: number): number {
  return Math.ceil(ninodes / g.ipb);
}

/**
 * Check a superblock read from disk against the image size (in fs blocks) and return its layout.
 * Throws EUCLEAN "superblock: ..." naming the first problem found.
 */
export function validateSuperblock(g: Geometry, sb: Superblock, imageBlocks: number, extra?: DmaBytes, extraOff = 0): Layout {
  const bad = (m: string): never => { throw corrupt(`superblock: ${m}`); };
  if (sb.magic !== g.magic) bad(`bad magic ${hex(sb.magic)} (expected ${hex(g.magic)})`);
  if (g.variant === 'large' && extra) {
    const ver = extra.getU32(extraOff + 4), bs = extra.getU32(extraOff + 8);
    if (ver !== LARGE_VERSION) bad(`unsupported version ${ver}`);
    if (bs !== g.bsize) bad(`block size ${bs} (expected ${g.bsize})`);
  }
  const isInt = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
  for (const k of ['size', 'nblocks', 'ninodes', 'nlog', 'logstart', 'inodestart', 'bmapstart'] as const) {
    if (!isInt(sb[k])) bad(`${k} ${sb[k]} is not a valid count`);
  }
  if (sb.size > 0xffffffff) bad(`size ${sb.size} blocks exceeds 2^32`);
  if (sb.size > imageBlocks) bad(`size ${sb.size} blocks beyond image size ${imageBlocks} blocks`);
  if (sb.size < 4) bad(`size ${sb.size} blocks too small`);
  if (sb.ninodes < 2) bad(`ninodes ${sb.ninodes} < 2 (no root inode)`);
  if (sb.ninodes - 1 > g.maxInum) bad(`ninodes ${sb.ninodes} exceeds the dirent inode-number range`);
  if (sb.nlog < 2) bad(`nlog ${sb.nlog} < 2 (no room for header and one block)`);
  if (sb.logstart < 2) bad(`logstart ${sb.logstart} overlaps boot/superblock`);
  if (sb.logstart + sb.nlog > sb.size) bad(`log [${sb.logstart}, +${sb.nlog}) beyond image size ${sb.size}`);
  if (sb.inodestart < sb.logstart + sb.nlog) bad(`inodestart ${sb.inodestart} overlaps the log`);
  if (sb.inodestart >= sb.size) bad(`inodestart ${sb.inodestart} beyond image size ${sb.size}`);
  const ninodeblocks = inodeBlocks(g, sb.ninodes);
  if (sb.bmapstart < sb.inodestart + ninodeblocks) bad(`bmapstart ${sb.bmapstart} overlaps the inode blocks (${sb.inodestart} + ${ninodeblocks})`);
  if (sb.bmapstart >= sb.size) bad(`bmapstart ${sb.bmapstart} beyond image size ${sb.size}`);
  const nbitmap = bitmapBlocks(g, sb.size);
  const bmapend = sb.bmapstart + nbitmap;
  if (bmapend > sb.size) bad(`bitmap (${nbitmap} blocks from ${sb.bmapstart}) beyond image size ${sb.size}`);
  if (sb.nblocks > sb.size - bmapend) bad(`nblocks ${sb.nblocks} exceeds the ${sb.size - bmapend} blocks after the bitmap`);
  if (sb.nblocks < 1) bad('nblocks is 0 (no data blocks)');
  // xv6's mkfs: nmeta = size - nblocks; data blocks are the last nblocks blocks of the image.
  const datastart = sb.size - sb.nblocks;
  const logCap = Math.min(sb.nlog - 1, g.logHeaderCap);
  if (logCap < g.maxOpBlocks) bad(`log of ${sb.nlog} blocks too small for one operation (${g.maxOpBlocks} blocks)`);
  return { ninodeblocks, nbitmap, datastart, logCap };
}

// ---------------------------------------------------------------------------------------------
// Inodes

export interface Dinode {
  type: number;
  major: number;
  minor: number;
  nlink: number;
  size: number;
  addrs: number[];
}

/** Block holding inode `inum`. */
export function iblock(g: Geometry, sb: Superblock, inum: number): number {
  return Math.floor(inum / g.ipb) + sb.inodestart;
}

/** Byte offset of inode `inum` within its block. */
export function ioffset(g: Geometry, inum: number): number {
  return (inum % g.ipb) * g.inodeSize;
}

export function decodeDinode(g: Geometry, buf: DmaBytes, off: number): Dinode {
  const s16 = (v: number): number => (v << 16) >> 16;
  const type = s16(buf.getU16(off));
  const major = s16(buf.getU16(off + 2));
  const minor = s16(buf.getU16(off + 4));
  const nlink = s16(buf.getU16(off + 6));
  const size = g.sizeBytes === 4 ? buf.getU32(off + 8) : buf.getU64(off + 8);
  const a0 = off + (g.sizeBytes === 4 ? 12 : 16);
  const n = naddrs(g);
  const addrs = new Array<number>(n);
  for (let i = 0; i < n; i++) addrs[i] = buf.getU32(a0 + i * 4);
  return { type, major, minor, nlink, size, addrs };
}

/**
 * A dinode is encoded in this scratch and copied into the buffer with one call: it is written on
 * every file write (iupdate), and each accessor call on an exchange-heap buffer is checked.
 */
const dinodeView = new DataView(new ArrayBuffer(128));
const dinodeBytes = new Uint8Array(dinodeView.buffer);

/** Encode the whole dinode (every byte of its inodeSize) at `off` of `buf`. */
export function encodeDinode(g: Geometry, d: Dinode, buf: DmaBytes, off: number): void {
  const v = dinodeView;
  v.setUint16(0, d.type & 0xffff, true);
  v.setUint16(2, d.major & 0xffff, true);
  v.setUint16(4, d.minor & 0xffff, true);
  v.setUint16(6, d.nlink & 0xffff, true);
  if (g.sizeBytes === 4) v.setUint32(8, d.size, true);
  else {
    v.setUint32(8, d.size % 0x1_0000_0000, true);
    v.setUint32(12, Math.floor(d.size / 0x1_0000_0000), true);
  }
  const a0 = g.sizeBytes === 4 ? 12 : 16;
  const n = naddrs(g);
  for (let i = 0; i < n; i++) v.setUint32(a0 + i * 4, d.addrs[i] ?? 0, true);
  if (g.variant === 'large') v.setUint32(124, 0, true);
  buf.write(off, dinodeBytes, 0, g.inodeSize);
}

// ---------------------------------------------------------------------------------------------
// Directory entries

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

/** A name as on-disk bytes (UTF-8). */
export function nameBytes(name: string): Uint8Array {
  return enc.encode(name);
}

/** Decode the name field of a dirent held in `raw` at `off` (stops at NUL or DIRSIZ). */
export function decodeName(g: Geometry, raw: Uint8Array, off: number): string {
  const start = off + (g.direntSize - g.dirsiz);
  let end = start;
  while (end < start + g.dirsiz && raw[end] !== 0) end++;
  return dec.decode(raw.subarray(start, end));
}

export function direntInum(g: Geometry, raw: Uint8Array, off: number): number {
  if (g.direntSize === 16) return raw[off]! | (raw[off + 1]! << 8);
  return (raw[off]! | (raw[off + 1]! << 8) | (raw[off + 2]! << 16) | (raw[off + 3]! << 24)) >>> 0;
}

/** Encode a dirent (inum, name bytes <= dirsiz) into `raw` at `off`. */
export function encodeDirent(g: Geometry, inum: number, name: Uint8Array, raw: Uint8Array, off: number): void {
  raw.fill(0, off, off + g.direntSize);
  raw[off] = inum & 0xff;
  raw[off + 1] = (inum >>> 8) & 0xff;
  if (g.direntSize === 32) {
    raw[off + 2] = (inum >>> 16) & 0xff;
    raw[off + 3] = (inum >>> 24) & 0xff;
  }
  raw.set(name.subarray(0, g.dirsiz), off + (g.direntSize - g.dirsiz));
}

/** Does the dirent at `off` carry exactly `name` (xv6 strncmp over DIRSIZ)? */
export function direntNameEquals(g: Geometry, raw: Uint8Array, off: number, name: Uint8Array): boolean {
  const start = off + (g.direntSize - g.dirsiz);
  const n = name.length;
  for (let i = 0; i < n; i++) if (raw[start + i] !== name[i]) return false;
  return n === g.dirsiz || raw[start + n] === 0;
}
