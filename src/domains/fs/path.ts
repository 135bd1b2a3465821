/**
 * Path names (xv6 fs.c's namex): walking from the root ("/...") or a starting directory one
 * element at a time.
 *
 * Semantics follow xv6: repeated slashes are one separator (skipelem), "." and ".." are ordinary
 * directory entries. Three deliberate differences: an element longer than DIRSIZ is refused with
 * ENAMETOOLONG instead of being silently truncated; a trailing slash says the last element is a
 * directory (POSIX path resolution; xv6 ignores it, so `rm f/` removed a file and `> f/` made
 * one): the operations check `dirOnly` (fs.ts), as namex cannot, since whether an element that is
 * missing may be made a directory depends on the operation; and a starting directory that was
 * removed while still in use (a process's current directory: rmdir of it is allowed, as on Linux)
 * has nothing left in it but itself and its parent: "." names it (without a lookup), ".." its
 * parent, any other name ENOENT, and nothing can be made in it.
 *
 * Invariants: at most one inode is locked at a time while walking (the current directory is
 * unlocked before the next is locked), so a corrupted loop ("a" -> itself) cannot deadlock; the
 * walk visits each element of the path once, so it always terminates; references are released on
 * every error path.
 */
import { dirlookup, refuseLongName } from './dir.js';
import { corrupt, fsErr } from './errors.js';
import { nameBytes, ROOTINO, T_DIR } from './format.js';
import type { Inode, InodeLayer } from './inode.js';

/** Max bytes of a whole path. */
export const MAXPATH = 4096;

/**
 * xv6 skipelem: the next element of `path` and the rest (leading slashes of the rest skipped),
 * or null when no element is left.  skipelem("a/bb/c") = {name "a", rest "bb/c"};
 * skipelem("///a//bb") = {name "a", rest "bb"}; skipelem("a") = {name "a", rest ""};
 * skipelem("") = skipelem("////") = null.
 */
export function skipelem(path: string): { name: string; rest: string } | null {
  let i = 0;
  while (path[i] === '/') i++;
  if (i >= path.length) return null;
  const s = i;
  while (i < path.length && path[i] !== '/') i++;
  const name = path.slice(s, i);
  while (path[i] === '/') i++;
  return { name, rest: path.slice(i) };
}

/**
 * Whether `path` ends in a slash after a last element ("f/", "a/b//"; not "/" or ""): POSIX
 * resolves such a path only to a directory, or to a missing name that mkdir or rename of a
 * directory is about to make one.
 */
export function dirOnly(path: string): boolean {
  let end = path.length;
  while (end > 0 && path[end - 1] === '/') end--;
  return end > 0 && end < path.length;
}

/**
 * Resolve `path`. With parent=false returns the final inode (referenced, unlocked). With
 * parent=true returns the parent directory of the final element (referenced, unlocked) and the
 * element's name (its length not checked: refuseLongName, dir.ts), or `null` name when the path has no
 * final element (e.g. "/"). `viaEntry`: the inode returned was reached through a directory entry
 * (not the root or the starting directory itself), so a link count of 0 means corruption.
 */
export async function namex(il: InodeLayer, path: string, parent: boolean, cwd: Inode | null): Promise<{ ip: Inode; name: string | null; viaEntry: boolean }> {
  if (path.length === 0) throw fsErr('ENOENT', 'empty path');
  if (path.length > MAXPATH) throw fsErr('ENAMETOOLONG', `path longer than ${MAXPATH}`);
  let ip = path[0] === '/' || !cwd ? il.iget(ROOTINO) : il.idup(cwd);
  let p = path;
  let viaEntry = false;
  for (;;) {
    const e = skipelem(p);
    if (!e) break;
    p = e.rest;
    const last = parent && p === '';
    let nb: Uint8Array;
    try {
      // The last element of a parent walk is the caller's to check (refuseLongName), as Linux
      // checks it in the final lookup, which unlink, rmdir and rename make after EROFS.
      nb = last ? nameBytes(e.name) : refuseLongName(il, e.name);
    } catch (err) {
      await il.iput(ip);
      throw err;
    }
    await il.ilockOrRelease(ip);
    if (viaEntry && ip.nlink < 1) {
      const err = il.unlinkedEntry(ip, `'${path}'`);
      await il.iunlockput(ip);
      throw err;
    }
    if (ip.type !== T_DIR) {
      await il.iunlockput(ip);
      throw fsErr('ENOTDIR', `'${e.name}': a component of the path is not a directory`);
    }
    if (ip.nlink < 1) {
      // The starting directory, removed while in use (see the header).
      if ((parent && p === '') || (e.name !== '.' && e.name !== '..')) {
        await il.iunlockput(ip);
        throw fsErr('ENOENT', `'${e.name}': its directory was removed`);
      }
      if (e.name === '.') {
        il.iunlock(ip);
        continue;
      }
    }
    if (last) {
      il.iunlock(ip);
      return { ip, name: e.name, viaEntry };
    }
    let next;
    try {
      next = await dirlookup(il, ip, nb);
    } catch (err) {
      await il.iunlockput(ip);
      throw err;
    }
    if (!next) {
      await il.iunlockput(ip);
      throw fsErr('ENOENT', `'${e.name}' not found`);
    }
    if (next.inum === 0) {
      await il.iunlockput(ip);
      throw corrupt(`directory entry '${e.name}' has inode 0`);
    }
    let nip: Inode;
    try {
      nip = il.iget(next.inum);
    } catch (err) {
      await il.iunlockput(ip);
      throw err;
    }
    await il.iunlockput(ip);
    ip = nip;
    viaEntry = true;
  }
  return { ip, name: parent ? null : '', viaEntry };
}
