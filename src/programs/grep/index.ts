/**
 * grep [-v] [-c] [-n] [-i] PATTERN [FILE...]: print the lines that match PATTERN (see match.ts
 * for the pattern language), read from the FILEs or stdin. With several files each line is
 * prefixed by `file:`. -v selects the lines that do not match, -c prints only the count, -n
 * prefixes line numbers, -i ignores case. Exit status: 0 if a line was selected, 1 if none, 2 on
 * an error (as grep). As GNU grep, an input that is stdout's own file is refused unless -c
 * (Ulib.outputFile, sameFile): its selected lines would be read back and selected again.
 */
import { O_RDONLY, type Program } from '../../interfaces/rv6.js';
import { getopt, program, type Stat, type Ulib } from '../../runtime/ulib/index.js';
import type { Sys } from '../../runtime/sys.js';
import { compile, matches, type Pattern } from './match.js';

const USAGE = 'grep [-v] [-c] [-n] [-i] PATTERN [FILE...]';
const STATUS_ERROR = 2;

interface Flags {
  invert: boolean;
  count: boolean;
  number: boolean;
  ignoreCase: boolean;
  prefix: boolean;
  /** The file stdout writes to, to refuse as an input (null with -c, which writes only at the end). */
  output: Stat | null;
}

export function init(sys: Sys): Program {
  return program(sys, 'grep', async (u) => {
    const o = getopt(u.args.slice(1), 'vcni');
    if (typeof o === 'string') return u.usage(USAGE, o);
    const [source, ...files] = o.operands;
    if (source === undefined) return u.usage(USAGE);
    const ignoreCase = o.opts.has('i');
    const pattern = compile(ignoreCase ? source.toLowerCase() : source);
    if (typeof pattern === 'string') {
      await u.error(`${JSON.stringify(source)}: ${pattern}`);
      return STATUS_ERROR;
    }
    const inputs = files.length > 0 ? files : ['-'];
    const count = o.opts.has('c');
    const output = count ? null : await u.outputFile();
    const flags: Flags = { invert: o.opts.has('v'), count, number: o.opts.has('n'), ignoreCase, prefix: inputs.length > 1, output };
    let selected = false;
    let failed = false;
    for (const path of inputs) {
      const r = await grepFile(u, pattern, path, flags);
      if (r < 0) failed = true;
      else if (r > 0) selected = true;
    }
    return failed ? STATUS_ERROR : selected ? 0 : 1;
  });
}

/** Selected lines of one file, or -1 after reporting an error. */
async function grepFile(u: Ulib, pattern: Pattern, path: string, f: Flags): Promise<number> {
  const fd = path === '-' ? 0 : await u.rv6.open(path, O_RDONLY);
  if (fd < 0) {
    await u.warn(path, fd);
    return -1;
  }
  const name = path === '-' ? '(standard input)' : path;
  if (f.output !== null && (await u.sameFile(fd, f.output))) {
    if (fd !== 0) await u.close(fd);
    await u.error(`${name}: input file is also the output`);
    return -1;
  }
  let count = 0;
  let lineNo = 0;
  let result = 0;
  for (;;) {
    const line = await u.readLine(fd);
    if (line === null) break;
    if (typeof line === 'number') {
      await u.warn(path, line);
      result = -1;
      break;
    }
    lineNo++;
    if (matches(pattern, f.ignoreCase ? line.toLowerCase() : line) === f.invert) continue;
    count++;
    if (!f.count) await u.print(`${f.prefix ? name + ':' : ''}${f.number ? lineNo + ':' : ''}${line}\n`);
  }
  if (fd !== 0) await u.close(fd);
  if (f.count) await u.print(`${f.prefix ? name + ':' : ''}${count}\n`);
  return result < 0 ? result : count;
}
