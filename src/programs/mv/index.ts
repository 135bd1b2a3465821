/**
 * mv SRC DST | mv SRC... DIR: rename files, as a hard link to the new name and an unlink of the
 * old one (an existing DST file is replaced). Directories cannot be moved (the file system does
 * not link directories).
 */
import { T_DIR, ERRNO, type Program } from '../../interfaces/rv6.js';
import { program, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

const USAGE = 'mv SRC DST | mv SRC... DIR';

export function init(sys: Sys): Program {
  return program(sys, 'mv', (u) => u.eachTarget(USAGE, (src, dst) => move(u, src, dst)));
}

async function move(u: Ulib, src: string, dst: string): Promise<number> {
  const from = await u.stat(src);
  if (typeof from === 'number') return u.fail(src, from);
  if (from.type === T_DIR) return u.fail(src, -ERRNO.EISDIR);
  const to = await u.stat(dst);
  if (typeof to !== 'number') {
    if (to.dev === from.dev && to.ino === from.ino) return u.error(`'${src}' and '${dst}' are the same file`);
    if (to.type === T_DIR) return u.fail(dst, -ERRNO.EISDIR);
    const r = await u.rv6.unlink(dst);
    if (r < 0) return u.fail(dst, r);
  }
  const linked = await u.rv6.link(src, dst);
  if (linked < 0) return u.fail(dst, linked);
  const unlinked = await u.rv6.unlink(src);
  return unlinked < 0 ? u.fail(src, unlinked) : 0;
}
