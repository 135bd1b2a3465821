/**
 * ls [PATH...]: list files (xv6's ls). For a directory, one line per entry; for anything else,
 * one line for it: name (padded to 14), type (1 directory, 2 file, 3 device), inode number and
 * size in bytes. Without arguments, lists the current directory.
 */
import { T_DIR, type Program } from '../../interfaces/rv6.js';
import { joinPath, program, type Stat, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';

/** xv6's DIRSIZ: names are padded to it so the columns line up. */
const NAME_WIDTH = 14;

export function init(sys: Sys): Program {
  return program(sys, 'ls', async (u) => {
    const operands = await u.operands('ls [PATH...]');
    if (typeof operands === 'number') return operands;
    const paths = operands.length > 0 ? operands : ['.'];
    let status = 0;
    for (const path of paths) {
      const r = await list(u, path);
      if (r !== 0) status = 1;
    }
    return status;
  });
}

function line(name: string, st: Stat): string {
  return `${name.padEnd(NAME_WIDTH)} ${st.type} ${st.ino} ${st.size}\n`;
}

async function list(u: Ulib, path: string): Promise<number> {
  const st = await u.stat(path);
  if (typeof st === 'number') return u.fail(path, st);
  if (st.type !== T_DIR) {
    await u.print(line(path, st));
    return 0;
  }
  const entries = await u.readdir(path);
  if (typeof entries === 'number') return u.fail(path, entries);
  let status = 0;
  for (const e of entries) {
    const est = await u.stat(joinPath(path, e.name));
    if (typeof est === 'number') status = await u.fail(joinPath(path, e.name), est);
    else await u.print(line(e.name, est));
  }
  return status;
}
