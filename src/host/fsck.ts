/**
 * fsck: check an rv6 image (either variant) offline, reading it synchronously.
 *
 * Checks: the superblock (same validation as mount), the log header, every inode's type, size
 * and block tree (addresses inside the data area, no block referenced twice, no block beyond the
 * size; holes in the xv6 variant are warnings), directory structure from the root ("." and ".."
 * first and right, entries name allocated inodes, names well-formed (not empty, no '/') and
 * unique, no directory reachable twice), link counts (xv6 convention: a directory's nlink is 1 +
 * its subdirectories), unreachable inodes (an unreachable inode with nlink 0 is an orphan:
 * warning), and the bitmap against reachable blocks in both directions.
 *
 * A committed but not yet installed log (the fs installs lazily, and a power cut or a killed
 * `redleaf boot` leaves one) is not damage: the next mount replays it. So, like e2fsck with a
 * journal, fsck checks the image *as recovery will leave it*: reads of a block the log names
 * return the newest logged copy (entries in log order, the last one wins, as in Log.recover),
 * without writing anything; the pending recovery is a warning. A header naming a block outside
 * [inodestart, size) is an error and is not applied.
 *
 * Invariants: never throws on a corrupted image (only on I/O failure of the host), never loops:
 * every block and directory is visited at most once; never writes the image.
 */
import {
  decodeDinode, decodeLogHeader, decodeName, direntInum, geometryOf, LARGE, LARGE_MAGIC, ROOTINO, T_DEVICE, T_DIR, T_FILE, T_FREE, validateSuperblock,
  XV6, XV6_MAGIC, decodeSuperblock, hex, type Dinode, type Geometry, type Layout, type Superblock,
} from '../domains/fs/format.js';
import { HostBytes } from './bytes.js';
import { FileBlockDevice, type ImageIO } from './fs-image.js';

export interface FsckStats {
  variant?: string;
  blocks: number;
  dataBlocks: number;
  usedBlocks: number;
  freeBlocks: number;
  inodes: number;
  usedInodes: number;
  files: number;
  dirs: number;
  devices: number;
}

export interface FsckResult {
  ok: boolean;
  errors: string[];
  warnings: string[];
  stats: FsckStats;
}

const MAX_MSGS = 200;

export function fsck(target: string | ImageIO): FsckResult {
  if (typeof target === 'string') {
    const dev = new FileBlockDevice(target, 512, true);
    try {
      return fsckIO(dev);
    } finally {
      dev.close();
    }
  }
  return fsckIO(target);
}

function fsckIO(io: ImageIO): FsckResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  let nerr = 0;
  const err = (m: string): void => { nerr++; if (errors.length < MAX_MSGS) errors.push(m); };
  const warn = (m: string): void => { if (warnings.length < MAX_MSGS) warnings.push(m); };
  const stats: FsckStats = { blocks: 0, dataBlocks: 0, usedBlocks: 0, freeBlocks: 0, inodes: 0, usedInodes: 0, files: 0, dirs: 0, devices: 0 };
  const done = (): FsckResult => {
    if (nerr > errors.length) errors.push(`... and ${nerr - errors.length} more errors`);
    return { ok: nerr === 0, errors, warnings, stats };
  };

  if (io.sizeBytes < 8192) {
    err(`image too small (${io.sizeBytes} bytes)`);
    return done();
  }
  const head = new HostBytes(io.readAt(0, 8192));
  let g: Geometry;
  if (head.getU32(XV6.sbOffset) === XV6_MAGIC) g = XV6;
  else if (head.getU32(LARGE.sbOffset) === LARGE_MAGIC) g = LARGE;
  else {
    err(`superblock: bad magic ${hex(head.getU32(XV6.sbOffset))}`);
    return done();
  }
  g = geometryOf(g.variant);
  stats.variant = g.variant;
  const bs = g.bsize;
  const sb: Superblock = decodeSuperblock(g, head, g.sbOffset);
  let layout: Layout;
  try {
    layout = validateSuperblock(g, sb, Math.floor(io.sizeBytes / bs), head, g.sbOffset);
  } catch (e) {
    err((e as Error).message);
    return done();
  }
  const size = sb.size;
  const ds = layout.datastart;
  stats.blocks = size;
  stats.dataBlocks = size - ds;
  stats.inodes = sb.ninodes;

  // Log: home block -> the log slot holding its newest committed copy.
  const lh = new HostBytes(io.readAt(sb.logstart * bs, bs));
  const ln = lh.getU32(0);
  const { entries, problems } = decodeLogHeader(sb, layout, lh);
  for (const p of problems) err(p);
  const logged = new Map<number, number>();
  for (const { home, slot } of entries) logged.set(home, slot); // in log order: the last copy wins
  if (ln > 0 && ln <= layout.logCap) {
    warn(`log holds ${ln} committed block writes (${logged.size} blocks), not yet installed: checked as the next mount's recovery will leave the image`);
  }
  const img = logged.size === 0 ? io : recovered(io, bs, logged);
  const readBlock = (b: number): HostBytes => new HostBytes(img.readAt(b * bs, bs));

  // Inodes.
  const itab = new HostBytes(img.readAt(sb.inodestart * bs, layout.ninodeblocks * bs));
  const din: (Dinode | null)[] = new Array(sb.ninodes).fill(null);
  for (let i = 0; i < sb.ninodes; i++) {
    const d = decodeDinode(g, itab, i * g.inodeSize);
    if (d.type === T_FREE) continue;
    if (i === 0) { warn(`inode 0 is not free (type ${d.type})`); continue; }
    if (d.type < 0 || d.type > T_DEVICE) { err(`inode ${i}: bad type ${d.type}`); continue; }
    din[i] = d;
  }

  const owner = new Int32Array(size);
  const span = [1];
  for (let l = 1; l <= g.levels; l++) span.push(span[l - 1]! * g.nindirect);
  const levelBase = [0, g.ndirect];
  for (let l = 2; l <= g.levels; l++) levelBase.push(levelBase[l - 1]! + span[l - 1]!);
  const dirBlocks = new Map<number, Map<number, number>>();

  for (let i = 1; i < sb.ninodes; i++) {
    const d = din[i];
    if (!d) continue;
    stats.usedInodes++;
    if (d.type === T_FILE) stats.files++;
    else if (d.type === T_DIR) stats.dirs++;
    else stats.devices++;
    if (d.nlink < 0) err(`inode ${i}: negative link count ${d.nlink}`);
    if (d.size > g.maxFileSize) { err(`inode ${i}: size ${d.size} exceeds the maximum ${g.maxFileSize}`); continue; }
    const nb = Math.ceil(d.size / bs);
    const isDir = d.type === T_DIR;
    // A directory's blocks by file block number (sparse: a damaged size may be huge).
    const map: Map<number, number> | null = isDir ? new Map() : null;
    let present = 0;
    const claim = (a: number, what: string): boolean => {
      if (a < ds || a >= size) { err(`inode ${i}: ${what}: block address ${a} outside the data area [${ds}, ${size})`); return false; }
      if (owner[a] !== 0) { err(`inode ${i}: ${what}: block ${a} already used by inode ${owner[a]} (referenced twice)`); return false; }
      owner[a] = i;
      return true;
    };
    const data = (a: number, fbn: number): void => {
      if (!claim(a, `file block ${fbn}`)) return;
      if (fbn >= nb) err(`inode ${i}: file block ${fbn} (block ${a}) beyond size ${d.size}`);
      else { present++; map?.set(fbn, a); }
    };
    const walk = (a: number, level: number, base: number): void => {
      if (!claim(a, `indirect block (level ${level}) for file block ${base}`)) return;
      if (base >= nb) err(`inode ${i}: indirect block ${a} covers only file blocks beyond size ${d.size}`);
      const blk = readBlock(a);
      for (let k = 0; k < g.nindirect; k++) {
        const c = blk.getU32(k * 4);
        if (c === 0) continue;
        const fb = base + k * span[level - 1]!;
        if (level === 1) data(c, fb);
        else walk(c, level - 1, fb);
      }
    };
    for (let k = 0; k < g.ndirect; k++) if (d.addrs[k]) data(d.addrs[k]!, k);
    for (let l = 1; l <= g.levels; l++) {
      const a = d.addrs[g.ndirect + l - 1]!;
      if (a) walk(a, l, levelBase[l]!);
    }
    if (present < nb) {
      if (isDir) err(`directory ${i}: ${nb - present} holes below its size`);
      else if (!g.holes) warn(`inode ${i}: ${nb - present} holes below size ${d.size} (xv6 cannot read them)`);
    }
    if (map) dirBlocks.set(i, map);
  }

  // Directory tree.
  const refs = new Int32Array(sb.ninodes);
  const reached = new Uint8Array(sb.ninodes);
  const root = din[ROOTINO];
  if (!root || root.type !== T_DIR) err(`root inode ${ROOTINO} is not a directory`);
  else {
    refs[ROOTINO] = 1; // xv6: the root's own link
    reached[ROOTINO] = 1;
    const queue: Array<[number, number]> = [[ROOTINO, ROOTINO]];
    while (queue.length) {
      const [dn, parent] = queue.shift()!;
      const d = din[dn]!;
      const map = dirBlocks.get(dn);
      if (!map) continue;
      if (d.size % g.direntSize !== 0) err(`directory ${dn}: size ${d.size} not a multiple of ${g.direntSize}`);
      const nent = Math.floor(d.size / g.direntSize);
      if (nent < 2) err(`directory ${dn}: size ${d.size} leaves no room for '.' and '..'`);
      const epb = bs / g.direntSize;
      const names = new Set<string>();
      // Only the blocks present (holes are reported above), so a huge size costs nothing.
      for (const [fbn, blk] of [...map].sort((x, y) => x[0] - y[0])) {
        for (let e = fbn * epb; e < Math.min(nent, (fbn + 1) * epb); e++) {
          const raw = img.readAt(blk * bs + (e % epb) * g.direntSize, g.direntSize);
          const inum = direntInum(g, raw, 0);
          const name = decodeName(g, raw, 0);
          if (e === 0 && (name !== '.' || inum !== dn)) err(`directory ${dn}: first entry is '${name}' -> ${inum}, expected '.' -> ${dn}`);
          if (e === 1 && (name !== '..' || inum !== parent)) err(`directory ${dn}: second entry is '${name}' -> ${inum}, expected '..' -> ${parent}`);
          if (inum === 0) continue;
          if (name.length === 0) { err(`directory ${dn}: entry ${e} has an empty name`); continue; }
          if (name.includes('/')) err(`directory ${dn}: entry ${e} has a name with '/' ('${name}')`);
          if (names.has(name)) err(`directory ${dn}: duplicate name '${name}'`);
          names.add(name);
          if (inum >= sb.ninodes) { err(`directory ${dn}: entry '${name}' has inode number ${inum} >= ninodes ${sb.ninodes}`); continue; }
          const t = din[inum];
          if (!t) { err(`directory ${dn}: entry '${name}' points to free inode ${inum}`); continue; }
          if (name === '.') { if (inum !== dn) err(`directory ${dn}: '.' points to ${inum}`); continue; }
          if (name === '..') {
            if (inum !== parent) err(`directory ${dn}: '..' points to ${inum}, expected ${parent}`);
            if (inum !== dn) refs[inum]!++;
            continue;
          }
          refs[inum]!++;
          if (t.type === T_DIR) {
            if (reached[inum]) { err(`directory ${inum} ('${name}' in ${dn}) reachable twice (directory hard link or loop)`); continue; }
            queue.push([inum, dn]);
          }
          reached[inum] = 1;
        }
      }
    }
  }
  for (let i = 1; i < sb.ninodes; i++) {
    const d = din[i];
    if (!d) continue;
    if (!reached[i]) {
      if (d.nlink === 0) warn(`inode ${i}: orphan (allocated, nlink 0, in no directory)`);
      else err(`inode ${i}: allocated (nlink ${d.nlink}) but in no directory`);
      continue;
    }
    if (d.nlink !== refs[i]) err(`inode ${i}: link count ${d.nlink}, but ${refs[i]} references`);
  }

  // Bitmap.
  let badMeta = 0;
  for (let bi = 0; bi < layout.nbitmap; bi++) {
    const bm = img.readAt((sb.bmapstart + bi) * bs, bs);
    const lo = bi * g.bpb, hi = Math.min(size, lo + g.bpb);
    for (let x = lo; x < hi; x++) {
      const used = (bm[(x - lo) >> 3]! >> ((x - lo) & 7)) & 1;
      if (x < ds) {
        if (!used) badMeta++;
        continue;
      }
      if (used) stats.usedBlocks++;
      if (used && owner[x] === 0) err(`block ${x}: marked in use in the bitmap but not referenced`);
      else if (!used && owner[x] !== 0) err(`block ${x}: used by inode ${owner[x]} but free in the bitmap`);
    }
  }
  if (badMeta) err(`${badMeta} metadata blocks below ${ds} marked free in the bitmap`);
  stats.freeBlocks = stats.dataBlocks - stats.usedBlocks;
  return done();
}

/** Reads of `io` with the blocks in `logged` (home -> log block) replaced by their logged copies. */
function recovered(io: ImageIO, bs: number, logged: ReadonlyMap<number, number>): Pick<ImageIO, 'readAt'> {
  return {
    readAt(pos: number, len: number): Uint8Array {
      const out = io.readAt(pos, len).slice(); // never write into what the image handed out
      for (let b = Math.floor(pos / bs); b * bs < pos + len; b++) {
        const slot = logged.get(b);
        if (slot === undefined) continue;
        // The overlap of block b with [pos, pos + len).
        const from = Math.max(pos, b * bs);
        const to = Math.min(pos + len, (b + 1) * bs);
        out.set(io.readAt(slot * bs + (from - b * bs), to - from), from - pos);
      }
      return out;
    },
  };
}
