/**
 * mkfs: make an rv6 file-system image (either variant) on the host, writing the image directly
 * with node:fs (or into any ImageIO, e.g. a RAM disk), using the same format code as the fs.
 *
 * Layout: block 0 boot, 1 superblock, log (xv6: 30 blocks; large: 1024), inode blocks, bitmap,
 * data. Region sizes follow xv6's mkfs for the xv6 variant (ninodes/IPB + 1 inode blocks,
 * size/BPB + 1 bitmap blocks), exact ceilings for the large variant.
 *
 * Contents: inode 1 is the root directory ("." and ".." both 1); each `addDirs` path that is a
 * file is copied into the root under its base name, and each one that is a directory has its
 * contents copied into the root, recursively. Inodes are allocated sequentially from 1 and data
 * blocks sequentially from the first data block; a file's data blocks are contiguous, its
 * indirect blocks follow them. Directory link counts follow xv6's kernel: 1 + subdirectories.
 *
 * Invariants: only metadata and file data are written; on a path the file is recreated sparse
 * (truncate), so a 16 GiB image costs a few hundred KiB of writes; an ImageIO target has its
 * metadata regions zeroed where not already zero.
 */
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import {
  bitmapBlocks, encodeDinode, encodeDirent, encodeSuperblock, geometryOf, ioffset, iblock, nameBytes, naddrs,
  ROOTINO, T_DIR, T_FILE, validateSuperblock, type Dinode, type Geometry, type Superblock, type Variant,
} from '../domains/fs/format.js';
import { HostBytes } from './bytes.js';
import type { ImageIO } from './fs-image.js';
import { hostReason } from './host-files.js';

export interface MkfsOptions {
  sizeBytes?: number;
  blocks?: number;
  variant: Variant;
  inodes?: number;
  nlog?: number;
  addDirs?: string[];
  onProgress?: (done: number, total: number) => void;
}

export interface MkfsResult {
  variant: Variant;
  bsize: number;
  size: number;
  ninodes: number;
  nlog: number;
  datastart: number;
  usedBlocks: number;
  usedInodes: number;
}

interface HostNode {
  name: string;
  path: string;
  dir: boolean;
  size: number;
  children: HostNode[];
}

/** `op(p)`, its host error said as mkfs's (a dangling symbolic link, an unreadable directory). */
function hostCall<T>(p: string, op: (p: string) => T): T {
  try {
    return op(p);
  } catch (e) {
    throw new Error(`mkfs: ${p}: ${hostReason(e, { ENOENT: 'no such file (a symbolic link to nothing?)' })}`);
  }
}

function scanHost(p: string, name: string, g: Geometry): HostNode {
  const st = hostCall(p, (q) => nfs.statSync(q));
  if (nameBytes(name).length > g.dirsiz) throw new Error(`mkfs: name '${name}' longer than ${g.dirsiz} bytes (${p})`);
  if (st.isDirectory()) {
    const children = hostCall(p, (q) => nfs.readdirSync(q)).sort().map((n) => scanHost(npath.join(p, n), n, g));
    return { name, path: p, dir: true, size: 0, children };
  }
  if (!st.isFile()) throw new Error(`mkfs: ${p} is neither a file nor a directory`);
  if (st.size > g.maxFileSize) throw new Error(`mkfs: ${p} (${st.size} bytes) exceeds the maximum file size ${g.maxFileSize}`);
  return { name, path: p, dir: false, size: st.size, children: [] };
}

/** Default geometry parameters for an image of `size` blocks. */
export function mkfsParams(g: Geometry, size: number, inodes?: number, nlog?: number): Superblock & { ninodeblocks: number; nbitmap: number } {
  const ninodes = inodes ?? (g.variant === 'xv6' ? 200 : Math.max(64, Math.min(1 << 22, Math.floor(size / 16))));
  const log = nlog ?? (g.variant === 'xv6' ? 30 : size >= 16384 ? 1024 : 130);
  for (const [what, n] of [['inodes', ninodes], ['nlog', log]] as const) {
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`mkfs: ${what} ${n} must be a whole number of at least 1`);
  }
  const ninodeblocks = g.variant === 'xv6' ? Math.floor(ninodes / g.ipb) + 1 : Math.ceil(ninodes / g.ipb);
  const nbitmap = g.variant === 'xv6' ? Math.floor(size / g.bpb) + 1 : bitmapBlocks(g, size);
  const logstart = 2;
  const inodestart = logstart + log;
  const bmapstart = inodestart + ninodeblocks;
  const nmeta = bmapstart + nbitmap;
  if (nmeta + 1 > size) throw new Error(`mkfs: image of ${size} blocks too small for ${nmeta} metadata blocks`);
  const sb = { magic: g.magic, size, nblocks: size - nmeta, ninodes, nlog: log, logstart, inodestart, bmapstart };
  // What mount will check, checked before anything is written: a log too small for one operation
  // (or a count that is no count) made an image that every mount refused.
  try {
    validateSuperblock(g, sb, size);
  } catch (e) {
    // The check's message without its EUCLEAN prefix: nothing on disk is corrupt yet.
    throw new Error(`mkfs: ${(e as Error).message.replace(/^EUCLEAN: /, '')}`);
  }
  return { ...sb, ninodeblocks, nbitmap };
}

/**
 * Blocks a file of `bytes` bytes takes when written whole (no holes): its data blocks and the
 * indirect blocks that map them (a level-l tree over c data blocks has ceil(c / nindirect) blocks
 * at its lowest level, and so on up to its root).
 */
export function fileBlocks(g: Geometry, bytes: number): number {
  const data = Math.ceil(bytes / g.bsize);
  let total = data;
  let rem = data - Math.min(data, g.ndirect);
  let span = 1;
  for (let l = 1; l <= g.levels && rem > 0; l++) {
    span *= g.nindirect;
    const c = Math.min(rem, span);
    for (let k = 0, n = c; k < l; k++) {
      n = Math.ceil(n / g.nindirect);
      total += n;
    }
    rem -= c;
  }
  return total;
}

export function mkfs(target: string | ImageIO, opts: MkfsOptions): MkfsResult {
  const g = geometryOf(opts.variant);
  const bs = g.bsize;
  const size = opts.blocks ?? Math.floor((opts.sizeBytes ?? 0) / bs);
  if (!Number.isInteger(size) || size <= 0) throw new Error('mkfs: give sizeBytes or blocks');
  if (size > 0xffffffff) throw new Error('mkfs: more than 2^32 blocks');
  const p = mkfsParams(g, size, opts.inodes, opts.nlog);
  const ninodes = p.ninodes;
  const datastart = size - p.nblocks;

  // Host tree.
  const top: HostNode[] = [];
  for (const d of opts.addDirs ?? []) {
    const n = scanHost(d, npath.basename(d), g);
    if (n.dir) top.push(...n.children);
    else top.push(n);
  }
  let totalBytes = 0;
  const sum = (n: HostNode): void => { totalBytes += n.size; n.children.forEach(sum); };
  top.forEach(sum);

  // Target.
  let io: ImageIO;
  let fd = -1;
  const fresh = typeof target === 'string';
  if (typeof target === 'string') {
    fd = nfs.openSync(target, 'w+');
    nfs.ftruncateSync(fd, size * bs);
    io = {
      sizeBytes: size * bs,
      readAt: (pos, len) => { const b = new Uint8Array(len); nfs.readSync(fd, b, 0, len, pos); return b; },
      writeAt: (pos, data) => { let d = 0; while (d < data.length) d += nfs.writeSync(fd, data, d, data.length - d, pos + d); },
    };
  } else {
    io = target;
    if (io.sizeBytes < size * bs) throw new Error(`mkfs: target of ${io.sizeBytes} bytes smaller than ${size * bs}`);
  }
  try {
    if (!fresh) {
      // Zero boot block .. bitmap where not already zero.
      const CH = 1 << 20;
      for (let pos = 0; pos < datastart * bs; pos += CH) {
        const len = Math.min(CH, datastart * bs - pos);
        const cur = io.readAt(pos, len);
        if (cur.some((v) => v !== 0)) io.writeAt(pos, new Uint8Array(len));
      }
    }

    let freeblock = datastart;
    let freeinode = ROOTINO;
    const dinodes = new Map<number, Dinode>();
    let done = 0;
    const report = (): void => opts.onProgress?.(done, totalBytes);

    const span = [1];
    for (let l = 1; l <= g.levels; l++) span.push(span[l - 1]! * g.nindirect);

    const ialloc = (type: number): number => {
      if (freeinode >= ninodes) throw new Error(`mkfs: out of inodes (${ninodes})`);
      const inum = freeinode++;
      dinodes.set(inum, { type, major: 0, minor: 0, nlink: 1, size: 0, addrs: new Array(naddrs(g)).fill(0) });
      return inum;
    };

    // Build the indirect tree of `level` covering `count` data blocks from `first`; returns its block.
    const makeTree = (level: number, first: number, count: number): number => {
      const blk = freeblock++;
      if (blk >= size) throw new Error('mkfs: image full');
      const b = new HostBytes(bs);
      const per = span[level - 1]!;
      for (let i = 0; i * per < count; i++) {
        const c = Math.min(per, count - i * per);
        b.setU32(i * 4, level === 1 ? first + i : makeTree(level - 1, first + i * per, c));
      }
      io.writeAt(blk * bs, b.u8);
      return blk;
    };

    const placeData = (inum: number, nbytes: number): number => {
      const di = dinodes.get(inum)!;
      const n = Math.ceil(nbytes / bs);
      const first = freeblock;
      if (first + n > size) throw new Error(`mkfs: image full (${nbytes} more bytes)`);
      freeblock += n;
      let rem = n, fbn = 0;
      for (let i = 0; i < g.ndirect && rem > 0; i++, rem--, fbn++) di.addrs[i] = first + fbn;
      for (let l = 1; l <= g.levels && rem > 0; l++) {
        const c = Math.min(rem, span[l]!);
        di.addrs[g.ndirect + l - 1] = makeTree(l, first + fbn, c);
        rem -= c;
        fbn += c;
      }
      di.size = nbytes;
      return first;
    };

    const writeBytes = (inum: number, data: Uint8Array): void => {
      const first = placeData(inum, data.length);
      const padded = new Uint8Array(Math.ceil(data.length / bs) * bs);
      padded.set(data);
      if (padded.length) io.writeAt(first * bs, padded);
    };

    const copyFile = (inum: number, hostPath: string, nbytes: number): void => {
      const first = placeData(inum, nbytes);
      const CH = 1 << 20;
      const buf = new Uint8Array(CH);
      const hfd = nfs.openSync(hostPath, 'r');
      try {
        for (let pos = 0; pos < nbytes; pos += CH) {
          const len = Math.min(CH, nbytes - pos);
          let got = 0;
          while (got < len) {
            const r = nfs.readSync(hfd, buf, got, len - got, pos + got);
            if (r <= 0) throw new Error(`mkfs: ${hostPath} shrank while copying`);
            got += r;
          }
          const wlen = Math.ceil(len / bs) * bs;
          buf.fill(0, len, wlen);
          io.writeAt(first * bs + pos, buf.subarray(0, wlen));
          done += len;
          report();
        }
      } finally {
        nfs.closeSync(hfd);
      }
    };

    const addDir = (inum: number, parent: number, children: HostNode[]): void => {
      const ents: Array<[string, number]> = [['.', inum], ['..', parent]];
      const seen = new Set<string>();
      for (const c of children) {
        if (seen.has(c.name)) throw new Error(`mkfs: duplicate name '${c.name}'`);
        seen.add(c.name);
        const ci = ialloc(c.dir ? T_DIR : T_FILE);
        ents.push([c.name, ci]);
        if (c.dir) {
          dinodes.get(inum)!.nlink++;
          addDir(ci, inum, c.children);
        } else copyFile(ci, c.path, c.size);
      }
      const raw = new Uint8Array(ents.length * g.direntSize);
      ents.forEach(([n, i], k) => encodeDirent(g, i, nameBytes(n), raw, k * g.direntSize));
      writeBytes(inum, raw);
    };

    const root = ialloc(T_DIR);
    addDir(root, root, top);
    report();

    // Inode blocks.
    const byBlock = new Map<number, number[]>();
    for (const inum of dinodes.keys()) {
      const b = iblock(g, p, inum);
      if (!byBlock.has(b)) byBlock.set(b, []);
      byBlock.get(b)!.push(inum);
    }
    for (const [b, inums] of byBlock) {
      const buf = new HostBytes(io.readAt(b * bs, bs));
      for (const i of inums) encodeDinode(g, dinodes.get(i)!, buf, ioffset(g, i));
      io.writeAt(b * bs, buf.u8);
    }
    // Bitmap: blocks [0, freeblock) in use.
    for (let bi = 0; bi * g.bpb < freeblock; bi++) {
      const buf = new Uint8Array(bs);
      const lo = bi * g.bpb, hi = Math.min(freeblock, lo + g.bpb);
      for (let x = lo; x < hi; x++) buf[(x - lo) >> 3]! |= 1 << ((x - lo) & 7);
      io.writeAt((p.bmapstart + bi) * bs, buf);
    }
    // Superblock last.
    const sbb = new HostBytes(bs);
    encodeSuperblock(g, p, sbb, 0);
    io.writeAt(g.sbOffset, sbb.u8);
    return {
      variant: g.variant, bsize: bs, size, ninodes, nlog: p.nlog, datastart, usedBlocks: freeblock, usedInodes: freeinode - 1,
    };
  } finally {
    if (fd >= 0) nfs.closeSync(fd);
  }
}
