/**
 * mv SRC DST | mv SRC... DIR: rename files and directories with rename(2), so each move is atomic
 * (a crash leaves SRC or DST, never neither or both); an existing DST file is replaced, and an
 * empty DST directory by a directory. As coreutils, SRC and DST naming the same file is an error
 * (rename(2) itself would do nothing and succeed).
 */
import type { Program } from '../../interfaces/rv6.js';
import { program, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

const USAGE = 'mv SRC DST | mv SRC... DIR';

export function init(sys: Sys): Program {
  return program(sys, 'mv', (u) => u.eachTarget(USAGE, (src, dst) => move(u, src, dst)));
}

async function move(u: Ulib, src: string, dst: string): Promise<number> {
  const from = await u.stat(src);
  if (typeof from === 'number') return u.fail(src, from);
  const to = await u.stat(dst);
  if (typeof to !== 'number' && to.dev === from.dev && to.ino === from.ino) return u.error(`'${src}' and '${dst}' are the same file`);
  const r = await u.rv6.rename(src, dst);
  return r < 0 ? u.fail(`cannot move '${src}' to '${dst}'`, r) : 0;
}
