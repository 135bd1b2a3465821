/**
 * Argument handling for user programs (pure, no authority): the Rv6 argv string and a small
 * getopt.
 *
 * Invariants: joinArgv(splitArgv(s)) === s for every string; splitArgv(joinArgv(a)) deep-equals
 * `a` for every non-empty array of strings without NUL characters.
 */

/** The Rv6 argv string (arguments separated by NUL, argv[0] first) as an array. */
export function splitArgv(argv: string): string[] {
  return argv.split('\0');
}

/** An argument array as the Rv6 argv string. Refuses NUL inside an argument (it would split). */
export function joinArgv(args: readonly string[]): string {
  for (const a of args) {
    if (a.includes('\0')) throw new RangeError(`argument ${JSON.stringify(a)} contains a NUL character`);
  }
  return args.join('\0');
}

export interface Options {
  /** Each option seen: `true` for a flag, its value for an option that takes one (last wins). */
  opts: Map<string, string | true>;
  /** The arguments after the options. */
  operands: string[];
}

/**
 * POSIX-style option parsing of `args` (without argv[0]). `spec` lists the option letters; a
 * letter followed by ':' takes a value (`-s 4M` or `-s4M`). Flags may be grouped (`-lw`).
 * Options end at the first operand, at `--` (consumed) or at a lone `-` (an operand: stdin).
 * Returns the options, or a message naming the bad option.
 */
export function getopt(args: readonly string[], spec: string): Options | string {
  const opts = new Map<string, string | true>();
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (a.length < 2 || a[0] !== '-') break;
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      const at = spec.indexOf(c);
      if (c === ':' || at < 0) return `unknown option '-${c}'`;
      if (spec[at + 1] !== ':') {
        opts.set(c, true);
        continue;
      }
      const value = j + 1 < a.length ? a.slice(j + 1) : args[++i];
      if (value === undefined) return `option '-${c}' needs a value`;
      opts.set(c, value);
      break;
    }
  }
  return { opts, operands: args.slice(i) };
}
