/** ln TARGET LINK | ln TARGET... DIR: make hard links (into DIR under the targets' base names). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

const USAGE = 'ln TARGET LINK | ln TARGET... DIR';

export function init(sys: Sys): Program {
  return program(sys, 'ln', async (u) => {
    const operands = u.args.slice(1);
    if (operands.length < 2) return u.usage(USAGE);
    const pairs = await u.targets(operands);
    if (typeof pairs === 'number') return u.fail(operands[operands.length - 1]!, pairs);
    let status = 0;
    for (const [target, link] of pairs) {
      const r = await u.rv6.link(target, link);
      if (r < 0) status = await u.fail(link, r);
    }
    return status;
  });
}
