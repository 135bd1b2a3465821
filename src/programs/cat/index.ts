/**
 * cat [FILE...]: copy each FILE (or stdin, also as `-`) to stdout, byte for byte. As GNU cat, an
 * input that is stdout's own file is refused (Ulib.outputFile, sameFile).
 */
import { O_RDONLY, type Program } from '../../interfaces/rv6.js';
import { program } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys): Program {
  return program(sys, 'cat', async (u) => {
    const operands = await u.operands('cat [FILE...]');
    if (typeof operands === 'number') return operands;
    const files = operands.length > 0 ? operands : ['-'];
    const out = await u.outputFile();
    let status = 0;
    for (const path of files) {
      const fd = path === '-' ? 0 : await u.rv6.open(path, O_RDONLY);
      if (fd < 0) {
        status = await u.fail(path, fd);
        continue;
      }
      if (out !== null && (await u.sameFile(fd, out))) {
        if (fd !== 0) await u.close(fd);
        status = await u.error(`${path}: input file is output file`);
        continue;
      }
      const r = await u.copyFd(fd, 1);
      if (fd !== 0) await u.close(fd);
      if (r.side === 'write') return u.outputFailed(r.err);
      if (r.side === 'read') status = await u.fail(path, r.err);
    }
    return status;
  });
}
