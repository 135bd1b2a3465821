/**
 * rm FILE...: remove each name (all are tried; exit status 1 if any failed). Directories are
 * refused (`Is a directory`): use rmdir.
 */
import { ERRNO, T_DIR, type Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'rm', async (u) => {
    if (u.args.length < 2) return u.usage('rm FILE...');
    return u.forEach(u.args.slice(1), async (path) => {
      const st = await u.stat(path);
      if (typeof st === 'number') return st;
      if (st.type === T_DIR) return -ERRNO.EISDIR;
      return u.rv6.unlink(path);
    });
  });
}
