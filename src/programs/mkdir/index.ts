/**
 * mkdir [-p] DIR...: create each directory (all are tried; exit status 1 if any failed). With -p,
 * the missing directories along each path are made too, and one that exists already is no error
 * (a name in the way that is not a directory is: Not a directory).
 */
import { ERRNO, T_DIR, type Program } from '../../interfaces/rv6.js';
import { getopt, program, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

const USAGE = 'mkdir [-p] DIR...';

export function init(sys: Sys): Program {
  return program(sys, 'mkdir', async (u) => {
    const o = getopt(u.args.slice(1), 'p');
    if (typeof o === 'string') return u.usage(USAGE, o);
    if (o.operands.length === 0) return u.usage(USAGE);
    return u.forEach(o.operands, (dir) => (o.opts.has('p') ? mkdirParents(u, dir) : u.rv6.mkdir(dir)));
  });
}

/** mkdir -p of `path`: 0, or the -errno of the first step that failed. */
async function mkdirParents(u: Ulib, path: string): Promise<number> {
  if (path === '') return -ERRNO.ENOENT; // it has no part to make, and names nothing (as mkdir(2))
  const parts = path.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const part = parts[i - 1];
    if (part === '' || part === '.' || part === '..') continue; // the root, '//', '.', '..': there already
    const prefix = parts.slice(0, i).join('/');
    const r = await u.rv6.mkdir(prefix);
    if (r === -ERRNO.EEXIST) {
      const st = await u.stat(prefix);
      if (typeof st === 'number') return st;
      if (st.type !== T_DIR) return -ERRNO.ENOTDIR;
    } else if (r < 0) return r;
  }
  return 0;
}
