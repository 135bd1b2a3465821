/**
 * Path names and directory entries for user programs (pure, no authority).
 *
 * Directory entries are what Rv6.getdents writes: `<inum> <name>\0` in UTF-8, whole entries only.
 */

/** The last component of `path` ("a/b/" → "b", "/" → "/"). */
export function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === '') return path === '' ? '' : '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** `dir` and `name` joined with exactly one '/' between them. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

export interface Dirent {
  inum: number;
  name: string;
}

/**
 * The entries in `text` (a decoded getdents chunk), or null when it is not a sequence of
 * `<inum> <name>\0` entries (the name is everything after the first space, and is not empty).
 */
export function parseDirents(text: string): Dirent[] | null {
  const out: Dirent[] = [];
  if (text === '') return out;
  if (!text.endsWith('\0')) return null;
  for (const entry of text.slice(0, -1).split('\0')) {
    const sp = entry.indexOf(' ');
    if (sp <= 0 || sp === entry.length - 1) return null;
    const digits = entry.slice(0, sp);
    if (!/^[0-9]+$/.test(digits)) return null;
    out.push({ inum: Number(digits), name: entry.slice(sp + 1) });
  }
  return out;
}
