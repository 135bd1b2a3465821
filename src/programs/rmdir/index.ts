/** rmdir DIR...: remove each empty directory (all are tried; exit status 1 if any failed). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'rmdir', async (u) => {
    const dirs = await u.operands('rmdir DIR...');
    if (typeof dirs === 'number') return dirs;
    if (dirs.length === 0) return u.usage('rmdir DIR...');
    return u.forEach(dirs, (dir) => u.rv6.rmdir(dir));
  });
}
