/**
 * Directories (xv6 fs.c's directory half): a directory is a file of fixed-size entries
 * (inum, name[DIRSIZ]); inum 0 marks a free slot.
 *
 * Invariants:
 *  - callers hold the directory's lock; dirlink/dirunlink run inside a transaction;
 *  - a name is at most DIRSIZ bytes (14 xv6, 28 large) and never empty, "." or ".." except the
 *    two entries mkdir writes; names compare bytewise as xv6's strncmp over DIRSIZ;
 *  - entries are read a whole block at a time; a hole, an entry whose inode number is out of
 *    range, a used entry whose name is empty or holds '/' (listing it would hand out a name no
 *    path reaches) and a size that is not a multiple of the entry size are reported as EUCLEAN.
 */
import { corrupt, fsErr } from './errors.js';
import { decodeName, direntInum, direntNameEquals, encodeDirent, nameBytes, T_DIR } from './format.js';
import type { Inode, InodeLayer } from './inode.js';

export interface DirEntry {
  name: string;
  inum: number;
  /** Byte offset of the entry in the directory. */
  off: number;
}

/**
 * Call `fn(raw, entryOffsetInRaw, dirOffset)` for every entry slot of locked dir `dp` from byte
 * offset `start` (a multiple of the entry size); stop when it returns true.
 */
async function scan(il: InodeLayer, dp: Inode, fn: (raw: Uint8Array, o: number, dirOff: number) => boolean, start = 0): Promise<void> {
  const g = il.g;
  if (dp.type !== T_DIR) throw fsErr('ENOTDIR', `inode ${dp.inum} is not a directory`);
  if (dp.size % g.direntSize !== 0) throw corrupt(`directory ${dp.inum}: size ${dp.size} is not a multiple of ${g.direntSize}`);
  const raw = new Uint8Array(g.bsize);
  for (let off = start - (start % g.bsize); off < dp.size; off += g.bsize) {
    // Directories are written in order and never have holes: a hole is damage (and a damaged,
    // huge size would otherwise be scanned as zeros for ever).
    if ((await il.bmap(dp, off / g.bsize, false)) === 0) throw corrupt(`directory ${dp.inum}: hole at byte ${off} below its size ${dp.size}`);
    const n = await il.readi(dp, raw, 0, off, Math.min(g.bsize, dp.size - off));
    for (let o = off < start ? start - off : 0; o + g.direntSize <= n; o += g.direntSize) {
      if (fn(raw, o, off + o)) return;
    }
  }
}

/** The name of the used entry at `o` of `raw` (of dir `dp`); EUCLEAN if no path could name it. */
function entryName(il: InodeLayer, dp: Inode, raw: Uint8Array, o: number, dirOff: number): string {
  const name = decodeName(il.g, raw, o);
  if (name.length === 0 || name.includes('/')) throw corrupt(`directory ${dp.inum}: entry at ${dirOff} has a bad name '${name}'`);
  return name;
}

/** Look `name` up in locked dir `dp`: its inode number and entry offset, or null. */
export async function dirlookup(il: InodeLayer, dp: Inode, name: string | Uint8Array): Promise<DirEntry | null> {
  const g = il.g;
  const nb = typeof name === 'string' ? nameBytes(name) : name;
  let found: DirEntry | null = null;
  await scan(il, dp, (raw, o, dirOff) => {
    const inum = direntInum(g, raw, o);
    if (inum === 0 || !direntNameEquals(g, raw, o, nb)) return false;
    found = { name: decodeName(g, raw, o), inum, off: dirOff };
    return true;
  });
  if (found) {
    const f = found as DirEntry;
    if (f.inum >= il.sb.ninodes) throw corrupt(`directory ${dp.inum}: entry '${f.name}' has inode number ${f.inum} >= ninodes ${il.sb.ninodes}`);
  }
  return found;
}

/** `name`'s bytes; ENAMETOOLONG if it is longer than a directory entry holds (path walks and checkName). */
export function refuseLongName(il: InodeLayer, name: string): Uint8Array {
  const nb = nameBytes(name);
  if (nb.length > il.g.dirsiz) throw fsErr('ENAMETOOLONG', `name '${name}' longer than ${il.g.dirsiz} bytes`);
  return nb;
}

/** Check a name for a directory entry; returns its bytes. */
export function checkName(il: InodeLayer, name: string): Uint8Array {
  const nb = refuseLongName(il, name);
  if (nb.length === 0) throw fsErr('ENOENT', 'empty name');
  if (nb.includes(0) || name.includes('/')) throw fsErr('EINVAL', `bad name '${name}'`);
  return nb;
}

/** Add entry (name, inum) to locked dir `dp` (in a transaction). EEXIST if present. */
export async function dirlink(il: InodeLayer, dp: Inode, name: string, inum: number): Promise<void> {
  const g = il.g;
  const nb = checkName(il, name);
  if (await dirlookup(il, dp, nb)) throw fsErr('EEXIST', `'${name}' exists`);
  let slot = -1;
  await scan(il, dp, (raw, o, dirOff) => {
    if (direntInum(g, raw, o) !== 0) return false;
    slot = dirOff;
    return true;
  });
  const off = slot >= 0 ? slot : dp.size;
  if (off + g.direntSize > g.maxFileSize) throw fsErr('ENOSPC', `directory ${dp.inum} is full`);
  const ent = new Uint8Array(g.direntSize);
  encodeDirent(g, inum, nb, ent, 0);
  const n = await il.writei(dp, ent, 0, off, g.direntSize);
  if (n !== g.direntSize) throw fsErr('ENOSPC', `directory ${dp.inum}: no space for entry '${name}'`);
}

/** Clear the entry at `off` of locked dir `dp` (in a transaction). */
export async function dirunlink(il: InodeLayer, dp: Inode, off: number): Promise<void> {
  await dirset(il, dp, off, null);
}

/**
 * Rewrite the entry at `off` of locked dir `dp` (in a transaction) in place: to (name, inum), or
 * cleared (null). rename points an existing name at another inode this way, so that the name is
 * never missing, even between two transactions.
 */
export async function dirset(il: InodeLayer, dp: Inode, off: number, entry: { name: string; inum: number } | null): Promise<void> {
  const g = il.g;
  const ent = new Uint8Array(g.direntSize);
  if (entry !== null) encodeDirent(g, entry.inum, nameBytes(entry.name), ent, 0);
  const n = await il.writei(dp, ent, 0, off, ent.length);
  if (n !== ent.length) throw fsErr('EIO', `directory ${dp.inum}: cannot ${entry === null ? 'clear' : 'rewrite'} the entry at ${off}`);
}

/** Does locked dir `dp` hold only "." and ".."? (xv6: every entry after the first two is free.) */
export async function isdirempty(il: InodeLayer, dp: Inode): Promise<boolean> {
  const g = il.g;
  let empty = true;
  await scan(il, dp, (raw, o, dirOff) => {
    if (dirOff < 2 * g.direntSize) return false;
    if (direntInum(g, raw, o) !== 0) { empty = false; return true; }
    return false;
  });
  return empty;
}

/** All used entries of locked dir `dp`, in order. */
export async function dirlist(il: InodeLayer, dp: Inode): Promise<DirEntry[]> {
  const g = il.g;
  const out: DirEntry[] = [];
  await scan(il, dp, (raw, o, dirOff) => {
    const inum = direntInum(g, raw, o);
    if (inum !== 0) out.push({ name: entryName(il, dp, raw, o, dirOff), inum, off: dirOff });
    return false;
  });
  return out;
}

/**
 * Visit the used entries of locked dir `dp` from byte offset `start` in order until `visit`
 * refuses one (returns false). Returns the offset to continue from: that of the refused entry,
 * or the end of the directory. `start` is rounded up to a whole entry.
 */
export async function dirwalk(il: InodeLayer, dp: Inode, start: number, visit: (e: DirEntry) => boolean): Promise<number> {
  const g = il.g;
  const from = Math.ceil(start / g.direntSize) * g.direntSize;
  let next = Math.max(from, dp.size);
  await scan(il, dp, (raw, o, dirOff) => {
    const inum = direntInum(g, raw, o);
    if (inum === 0 || visit({ name: entryName(il, dp, raw, o, dirOff), inum, off: dirOff })) return false;
    next = dirOff;
    return true;
  }, from);
  return next;
}
