/**
 * A tiny faithful port of xv6-riscv's mkfs/mkfs.c (FSSIZE 2000, NINODES 200, LOGSIZE 30), used
 * only by tests to check that rv6 mounts images made the xv6 way: same allocation order (inodes
 * sequentially from 1, data blocks from the first data block, root dir "." ".." then each file's
 * dirent appended to the root followed by its data via iappend), same root-size rounding.
 */
const BSIZE = 1024, NDIRECT = 12, NINDIRECT = BSIZE / 4, MAXFILE = NDIRECT + NINDIRECT;
const IPB = BSIZE / 64, DIRSIZ = 14, LOGSIZE = 30;

export function xv6Mkfs(files: Array<{ name: string; data: Uint8Array }>, FSSIZE = 2000, NINODES = 200): Uint8Array {
  const img = new Uint8Array(FSSIZE * BSIZE);
  const dv = new DataView(img.buffer);
  const nbitmap = Math.floor(FSSIZE / (BSIZE * 8)) + 1;
  const ninodeblocks = Math.floor(NINODES / IPB) + 1;
  const nlog = LOGSIZE;
  const nmeta = 2 + nlog + ninodeblocks + nbitmap;
  const nblocks = FSSIZE - nmeta;
  const sb = { size: FSSIZE, nblocks, ninodes: NINODES, nlog, logstart: 2, inodestart: 2 + nlog, bmapstart: 2 + nlog + ninodeblocks };
  [0x10203040, sb.size, sb.nblocks, sb.ninodes, sb.nlog, sb.logstart, sb.inodestart, sb.bmapstart].forEach((v, i) => dv.setUint32(BSIZE + i * 4, v, true));
  let freeinode = 1;
  let freeblock = nmeta;
  const ioff = (inum: number): number => (Math.floor(inum / IPB) + sb.inodestart) * BSIZE + (inum % IPB) * 64;
  const getAddr = (inum: number, i: number): number => dv.getUint32(ioff(inum) + 12 + i * 4, true);
  const setAddr = (inum: number, i: number, v: number): void => dv.setUint32(ioff(inum) + 12 + i * 4, v, true);
  const ialloc = (type: number): number => {
    const inum = freeinode++;
    dv.setInt16(ioff(inum), type, true);
    dv.setInt16(ioff(inum) + 6, 1, true);
    dv.setUint32(ioff(inum) + 8, 0, true);
    return inum;
  };
  const iappend = (inum: number, p: Uint8Array): void => {
    let off = dv.getUint32(ioff(inum) + 8, true);
    let n = p.length, pi = 0;
    while (n > 0) {
      const fbn = Math.floor(off / BSIZE);
      if (fbn >= MAXFILE) throw new Error('file too big');
      let x: number;
      if (fbn < NDIRECT) {
        if (getAddr(inum, fbn) === 0) setAddr(inum, fbn, freeblock++);
        x = getAddr(inum, fbn);
      } else {
        if (getAddr(inum, NDIRECT) === 0) setAddr(inum, NDIRECT, freeblock++);
        const ind = getAddr(inum, NDIRECT) * BSIZE + (fbn - NDIRECT) * 4;
        if (dv.getUint32(ind, true) === 0) dv.setUint32(ind, freeblock++, true);
        x = dv.getUint32(ind, true);
      }
      const n1 = Math.min(n, (fbn + 1) * BSIZE - off);
      img.set(p.subarray(pi, pi + n1), x * BSIZE + off - fbn * BSIZE);
      n -= n1; off += n1; pi += n1;
    }
    dv.setUint32(ioff(inum) + 8, off, true);
  };
  const dirent = (inum: number, name: string): Uint8Array => {
    const d = new Uint8Array(16);
    d[0] = inum & 0xff; d[1] = inum >> 8;
    d.set(new TextEncoder().encode(name).subarray(0, DIRSIZ), 2);
    return d;
  };
  const rootino = ialloc(1);
  iappend(rootino, dirent(rootino, '.'));
  iappend(rootino, dirent(rootino, '..'));
  for (const f of files) {
    const inum = ialloc(2);
    iappend(rootino, dirent(inum, f.name));
    for (let o = 0; o < f.data.length; o += BSIZE) iappend(inum, f.data.subarray(o, Math.min(f.data.length, o + BSIZE)));
  }
  let off = dv.getUint32(ioff(rootino) + 8, true);
  off = (Math.floor(off / BSIZE) + 1) * BSIZE;
  dv.setUint32(ioff(rootino) + 8, off, true);
  // balloc(freeblock)
  for (let i = 0; i < freeblock; i++) img[sb.bmapstart * BSIZE + (i >> 3)]! |= 1 << (i % 8);
  return img;
}

/** An independent minimal xv6-format reader: file contents by absolute path. */
export function xv6ReadFile(img: Uint8Array, path: string): Uint8Array {
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  if (dv.getUint32(BSIZE, true) !== 0x10203040) throw new Error('not xv6');
  const inodestart = dv.getUint32(BSIZE + 24, true);
  const ioff = (inum: number): number => (Math.floor(inum / IPB) + inodestart) * BSIZE + (inum % IPB) * 64;
  const read = (inum: number): Uint8Array => {
    const size = dv.getUint32(ioff(inum) + 8, true);
    const out = new Uint8Array(size);
    for (let o = 0; o < size; o += BSIZE) {
      const fbn = o / BSIZE;
      const a = fbn < NDIRECT ? dv.getUint32(ioff(inum) + 12 + fbn * 4, true)
        : dv.getUint32(dv.getUint32(ioff(inum) + 12 + NDIRECT * 4, true) * BSIZE + (fbn - NDIRECT) * 4, true);
      out.set(img.subarray(a * BSIZE, a * BSIZE + Math.min(BSIZE, size - o)), o);
    }
    return out;
  };
  let inum = 1;
  for (const name of path.split('/').filter(Boolean)) {
    const d = read(inum);
    let next = 0;
    for (let o = 0; o < d.length; o += 16) {
      const e = d[o]! | (d[o + 1]! << 8);
      let end = o + 2;
      while (end < o + 16 && d[end] !== 0) end++;
      if (e && new TextDecoder().decode(d.subarray(o + 2, end)) === name) next = e;
    }
    if (!next) throw new Error(`xv6ReadFile: ${name} not found`);
    inum = next;
  }
  return read(inum);
}
