/**
 * cp SRC DST | cp SRC... DIR: copy files (DST is created or truncated). Directories are not
 * copied (`Is a directory`). The bytes go from the read IoBuf straight to write, no copy.
 */
import { ERRNO, O_CREATE, O_RDONLY, O_TRUNC, O_WRONLY, T_DIR, type Program } from '../../interfaces/rv6.js';
import { program, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

const USAGE = 'cp SRC DST | cp SRC... DIR';

export function init(sys: Sys): Program {
  return program(sys, 'cp', (u) =>
    u.eachTarget(USAGE, async (src, dst) => {
      const srcFd = await u.rv6.open(src, O_RDONLY);
      if (srcFd < 0) return u.fail(src, srcFd);
      const status = await copyOpen(u, srcFd, src, dst);
      await u.close(srcFd);
      return status;
    }),
  );
}

/** Copy the open file `srcFd` (named src) to dst; the status. */
async function copyOpen(u: Ulib, srcFd: number, src: string, dst: string): Promise<number> {
  const from = await u.fstat(srcFd);
  if (typeof from === 'number') return u.fail(src, from);
  if (from.type === T_DIR) return u.fail(src, -ERRNO.EISDIR);
  const to = await u.stat(dst);
  if (typeof to !== 'number' && to.dev === from.dev && to.ino === from.ino) return u.error(`'${src}' and '${dst}' are the same file`);
  const dstFd = await u.rv6.open(dst, O_WRONLY | O_CREATE | O_TRUNC);
  if (dstFd < 0) return u.fail(dst, dstFd);
  const r = await u.copyFd(srcFd, dstFd);
  await u.close(dstFd);
  if (r.side === 'read') return u.fail(src, r.err);
  if (r.side === 'write') return u.fail(dst, r.err);
  return 0;
}
