/**
 * wc [-l] [-w] [-c] [FILE...]: count lines, words and bytes of each FILE (or stdin, also as
 * `-`), printed in that order followed by the name; a total line when there are several files.
 * Options select columns; without options all three are printed.
 */
import { O_RDONLY, type Program } from '../../interfaces/rv6.js';
import { getopt, program, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';
import { Counter } from './count.js';

const USAGE = 'wc [-l] [-w] [-c] [FILE...]';

type Column = 'lines' | 'words' | 'bytes';

export function init(sys: Sys): Program {
  return program(sys, 'wc', async (u) => {
    const o = getopt(u.args.slice(1), 'lwc');
    if (typeof o === 'string') return u.usage(USAGE, o);
    const chosen = ([['l', 'lines'], ['w', 'words'], ['c', 'bytes']] as const).filter(([f]) => o.opts.has(f)).map(([, c]) => c);
    const columns: Column[] = chosen.length > 0 ? chosen : ['lines', 'words', 'bytes'];
    const files = o.operands.length > 0 ? o.operands : ['-'];
    const total = new Counter();
    let status = 0;
    for (const path of files) {
      const c = await countFile(u, path);
      if (typeof c === 'number') {
        status = await u.fail(path, c);
        continue;
      }
      await u.print(row(columns, c, path === '-' && o.operands.length === 0 ? '' : path));
      for (const col of columns) total[col] += c[col];
    }
    if (files.length > 1) await u.print(row(columns, total, 'total'));
    return status;
  });
}

function row(columns: Column[], c: Counter, name: string): string {
  return columns.map((col) => String(c[col])).join(' ') + (name === '' ? '' : ` ${name}`) + '\n';
}

async function countFile(u: Ulib, path: string): Promise<Counter | number> {
  const fd = path === '-' ? 0 : await u.rv6.open(path, O_RDONLY);
  if (fd < 0) return fd;
  const c = new Counter();
  let result: Counter | number = c;
  for (;;) {
    const r = await u.read(fd);
    if (typeof r === 'number') {
      result = r;
      break;
    }
    if (r.length === 0) break;
    c.add(r);
  }
  if (fd !== 0) await u.close(fd);
  return result;
}
