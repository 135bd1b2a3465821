/**
 * grep's pattern matcher (pure): Kernighan and Pike's regular expression subset, as in xv6's
 * grep, plus backslash escapes.
 *
 *   c     the character c          .    any character
 *   x*    zero or more of atom x   ^    at the start: the start of the line
 *   \c    c literally (\. \* \^ \$ \\)   $    at the end: the end of the line
 *
 * A `*` that does not follow an atom (leading, or after another `*`), and `^`/`$` anywhere
 * else, stand for themselves. For patterns
 * in this subset, `matches` agrees with JavaScript's RegExp `test` (the property tests check it).
 */

interface Atom {
  /** The character to match, or null for `.` (any). */
  ch: string | null;
  star: boolean;
}

export interface Pattern {
  atoms: Atom[];
  anchoredStart: boolean;
  anchoredEnd: boolean;
}

/** Compile `source`, or return a message saying what is wrong with it. */
export function compile(source: string): Pattern | string {
  const atoms: Atom[] = [];
  let i = 0;
  let end = source.length;
  const anchoredStart = source.startsWith('^');
  if (anchoredStart) i = 1;
  const anchoredEnd = end > i && source[end - 1] === '$' && !escapedAt(source, end - 1, i);
  if (anchoredEnd) end--;
  while (i < end) {
    let ch: string | null = source[i]!;
    if (ch === '\\') {
      if (i + 1 >= end) return 'trailing backslash';
      ch = source[i + 1]!;
      i += 2;
    } else {
      if (ch === '.') ch = null;
      i++;
    }
    const star = source[i] === '*' && i < end;
    if (star) i++;
    atoms.push({ ch, star });
  }
  return { atoms, anchoredStart, anchoredEnd };
}

/** Whether the character at `pos` is escaped by an odd run of backslashes after `from`. */
function escapedAt(s: string, pos: number, from: number): boolean {
  let n = 0;
  for (let k = pos - 1; k >= from && s[k] === '\\'; k--) n++;
  return n % 2 === 1;
}

/** Whether `text` contains a match of `p`. */
export function matches(p: Pattern, text: string): boolean {
  if (p.anchoredStart) return matchHere(p, 0, text, 0);
  for (let j = 0; j <= text.length; j++) {
    if (matchHere(p, 0, text, j)) return true;
  }
  return false;
}

function matchHere(p: Pattern, a: number, text: string, j: number): boolean {
  if (a === p.atoms.length) return !p.anchoredEnd || j === text.length;
  const atom = p.atoms[a]!;
  if (atom.star) {
    // Longest first; any length works for a match, so the order only matters for speed.
    let k = j;
    while (k < text.length && (atom.ch === null || text[k] === atom.ch)) k++;
    for (; k >= j; k--) {
      if (matchHere(p, a + 1, text, k)) return true;
    }
    return false;
  }
  if (j < text.length && (atom.ch === null || text[j] === atom.ch)) return matchHere(p, a + 1, text, j + 1);
  return false;
}
