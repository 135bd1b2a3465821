/** domains: the kernel's domains (name, state, calls, faults, restarts, heap bytes and slots). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'domains', async (u) => {
    const usageError = await u.noOperands('domains');
    if (usageError !== null) return usageError;
    await u.printTable(await u.rv6.kdomains());
    return 0;
  });
}
