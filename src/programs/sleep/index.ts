/** sleep SECONDS: pause (fractions allowed: `sleep 0.25`). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'sleep', async (u) => {
    const arg = u.args[1];
    if (arg === undefined || u.args.length > 2) return u.usage('sleep SECONDS');
    if (!/^([0-9]+\.?[0-9]*|\.[0-9]+)$/.test(arg)) return u.usage('sleep SECONDS', `invalid time interval '${arg}'`);
    const r = await u.rv6.sleep(Number(arg) * 1000);
    return r < 0 ? u.fail('sleep', r) : 0;
  });
}
