/**
 * crash NAME [AFTER_CALLS]: inject a fault into the kernel domain NAME, at its next call or after
 * AFTER_CALLS more calls (see `domains` for the names and, afterwards, the faults and restarts).
 */
import { ERRNO, type Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

const USAGE = 'crash NAME [AFTER_CALLS]';

export function init(sys: Sys): Program {
  return program(sys, 'crash', async (u) => {
    const [name, after = '0'] = u.args.slice(1);
    if (name === undefined || u.args.length > 3) return u.usage(USAGE);
    if (!/^[0-9]+$/.test(after)) return u.usage(USAGE, `${after}: not a number of calls`);
    const r = await u.rv6.kcrash(name, Number(after));
    if (r === -ERRNO.ENOENT) return u.error(`${name}: no such kernel domain`);
    if (r === -ERRNO.EPERM) return u.error(`${name} is a program's domain: a fault fires on a call into a domain, and a program is only called for its main (end its process with kill)`);
    if (r < 0) return u.fail(name, r);
    await u.print(`crash: fault armed in ${name} (${after === '0' ? 'at its next call' : `after ${after} calls`})\n`);
    return 0;
  });
}
