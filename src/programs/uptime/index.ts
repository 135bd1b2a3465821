/** uptime: time since boot, as `up 1:02:03.456 (3723456 ms)` (hours:minutes:seconds). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'uptime', async (u) => {
    const usageError = await u.noOperands('uptime');
    if (usageError !== null) return usageError;
    const ms = Math.floor(u.rv6.uptime());
    const h = Math.floor(ms / 3_600_000);
    const m = Math.floor(ms / 60_000) % 60;
    const s = ((ms % 60_000) / 1000).toFixed(3).padStart(6, '0');
    await u.print(`up ${h}:${String(m).padStart(2, '0')}:${s} (${ms} ms)\n`);
    return 0;
  });
}
