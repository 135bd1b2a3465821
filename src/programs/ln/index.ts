/** ln TARGET LINK | ln TARGET... DIR: make hard links (into DIR under the targets' base names). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

const USAGE = 'ln TARGET LINK | ln TARGET... DIR';

export function init(sys: Sys): Program {
  return program(sys, 'ln', (u) =>
    u.eachTarget(USAGE, async (target, link) => {
      const r = await u.rv6.link(target, link);
      if (r >= 0) return 0;
      // link() fails alike for a missing target and a missing directory of the link: name the one at fault.
      const st = await u.stat(target);
      return typeof st === 'number' ? u.fail(target, st) : u.fail(link, r);
    }),
  );
}
