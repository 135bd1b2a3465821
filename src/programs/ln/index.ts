/** ln TARGET LINK | ln TARGET... DIR: make hard links (into DIR under the targets' base names). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

const USAGE = 'ln TARGET LINK | ln TARGET... DIR';

export function init(sys: Sys): Program {
  return program(sys, 'ln', (u) =>
    u.eachTarget(USAGE, async (target, link) => {
      const r = await u.rv6.link(target, link);
      return r < 0 ? u.fail(link, r) : 0;
    }),
  );
}
