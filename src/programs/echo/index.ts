/** echo [-n] [ARG...]: the arguments separated by spaces, then a newline (not with -n). */
import type { Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'echo', async (u) => {
    const noNewline = u.args[1] === '-n';
    const words = u.args.slice(noNewline ? 2 : 1);
    await u.print(words.join(' ') + (noNewline ? '' : '\n'));
    return 0;
  });
}
