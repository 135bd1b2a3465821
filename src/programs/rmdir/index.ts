/** rmdir DIR...: remove each empty directory (all are tried; exit status 1 if any failed). */
import type { Program } from '../../interfaces/rv6.js';
import { getopt, program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'rmdir', async (u) => {
    const o = getopt(u.args.slice(1), ''); // no options, but `--` ends them: `rmdir -- -d`
    if (typeof o === 'string') return u.usage('rmdir DIR...', o);
    if (o.operands.length === 0) return u.usage('rmdir DIR...');
    return u.forEach(o.operands, (dir) => u.rv6.rmdir(dir));
  });
}
