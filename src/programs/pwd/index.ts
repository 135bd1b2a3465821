/** pwd: print the absolute path of the current directory (getcwd), which a spawned program shares with its parent. */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'pwd', async (u) => {
    const usageError = await u.noOperands('pwd');
    if (usageError !== null) return usageError;
    await u.print(`${await u.rv6.getcwd()}\n`);
    return 0;
  });
}
