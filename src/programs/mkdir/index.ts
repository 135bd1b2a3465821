/** mkdir DIR...: create each directory (all are tried; exit status 1 if any failed). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'mkdir', async (u) => {
    if (u.args.length < 2) return u.usage('mkdir DIR...');
    return u.forEach(u.args.slice(1), (dir) => u.rv6.mkdir(dir));
  });
}
