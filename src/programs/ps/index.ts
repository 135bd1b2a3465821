/** ps: the process table (a header, then `pid ppid pgid state name` per process). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'ps', async (u) => {
    const usageError = await u.noOperands('ps');
    if (usageError !== null) return usageError;
    await u.printTable(await u.rv6.procs());
    return 0;
  });
}
