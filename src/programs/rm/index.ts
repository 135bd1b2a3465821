/**
 * rm [-r] FILE...: remove each name (all are tried; exit status 1 if any failed). Without -r a
 * directory is refused (`Is a directory`: use rmdir, or rm -r). With -r (or -R) a directory is
 * removed with everything in it, depth first; what cannot be removed is reported by its path and
 * the rest goes on. As coreutils, rm -r refuses '.', '..' and '/' (a path ending in them).
 */
import { ERRNO, T_DIR, type Program } from '../../interfaces/rv6.js';
import { basename, getopt, joinPath, program, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

const USAGE = 'rm [-r] FILE...';

export function init(sys: Sys): Program {
  return program(sys, 'rm', async (u) => {
    const o = getopt(u.args.slice(1), 'rR');
    if (typeof o === 'string') return u.usage(USAGE, o);
    if (o.operands.length === 0) return u.usage(USAGE);
    const recursive = o.opts.has('r') || o.opts.has('R');
    let status = 0;
    for (const path of o.operands) if (!(await remove(u, path, recursive))) status = 1;
    return status;
  });
}

/** Remove `path` (a directory only if `recursive`, with what it holds); reports its own failures. */
async function remove(u: Ulib, path: string, recursive: boolean): Promise<boolean> {
  const st = await u.stat(path);
  if (typeof st === 'number') return report(u, path, st);
  if (st.type !== T_DIR) {
    const r = await u.rv6.unlink(path);
    return r < 0 ? report(u, path, r) : true;
  }
  if (!recursive) return report(u, path, -ERRNO.EISDIR);
  const last = basename(path);
  if (last === '.' || last === '..' || last === '/') {
    await u.error(`refusing to remove '.', '..' or '/': skipping '${path}'`);
    return false;
  }
  const entries = await u.readdir(path);
  if (typeof entries === 'number') return report(u, path, entries);
  let all = true;
  for (const e of entries) {
    if (e.name !== '.' && e.name !== '..' && !(await remove(u, joinPath(path, e.name), true))) all = false;
  }
  if (!all) return false; // what is left was reported; the directory is not empty
  const r = await u.rv6.rmdir(path);
  return r < 0 ? report(u, path, r) : true;
}

async function report(u: Ulib, path: string, err: number): Promise<false> {
  await u.fail(path, err);
  return false;
}
