/**
 * The shell's parser (pure, no authority): source text → a list of and-or lists of pipelines.
 *
 * Grammar (a POSIX sh subset):
 *   script    := sep* [ and_or ((';' | '&' | '\n') '\n'* and_or)* [';' | '&'] ] '\n'*
 *   and_or    := pipeline (('&&' | '||') '\n'* pipeline)*
 *   pipeline  := command ('|' '\n'* command)*
 *   command   := (word | redirect)+  |  '(' script ')' redirect*
 *   redirect  := [fd] ('<' | '>' | '>>') word  |  [fd] '>&' fd        (fd: 0, 1 or 2)
 * Words: unquoted characters; '...' (literal); "..." (a backslash escapes \ " $ and newline only,
 * `$?` expands); a backslash outside quotes makes the next character literal, and a backslash-
 * newline is removed (line continuation). `$?` is the only expansion (the last status); any other
 * `$` is literal. A word is never split or globbed. `#` at the start of a word starts a comment.
 *
 * A group `( ... )` runs in a subshell, as xv6's sh and POSIX sh run it: the executor runs its
 * text with `sh -c` (so `cd` or `exit` inside it does not reach the shell around it, and `$?`
 * starts at 0 there); its text is checked here, with the rest.
 *
 * Errors are values: `incomplete` says more input could complete the text (an open quote, a
 * trailing `|`, `&&`, `||` or backslash), so an interactive shell reads a continuation line.
 * A backslash-newline that ends the text is such a trailing backslash: the shell reads input a
 * line at a time, newline included, and the continuation is the next line.
 */

/** A piece of a word: literal text or the `$?` expansion. */
export type WordPart = { kind: 'lit'; text: string } | { kind: 'status' };
/** A word: its parts, concatenated when expanded (an empty list is the empty word ''). */
export type Word = WordPart[];

export interface Redirect {
  /** The fd redirected (0, 1 or 2). */
  fd: number;
  /** read: `<`; write: `>`; append: `>>`; dup: `>&` (the target names an fd). */
  kind: 'read' | 'write' | 'append' | 'dup';
  target: Word;
}

export interface Command {
  words: Word[];
  redirects: Redirect[];
  /** A group `( ... )`: the source text between its parentheses (its words are then empty). */
  group?: string;
}

export interface Pipeline {
  commands: Command[];
}

export interface AndOr {
  first: Pipeline;
  rest: { op: '&&' | '||'; pipeline: Pipeline }[];
}

export interface ListItem {
  andOr: AndOr;
  background: boolean;
}

export type ParseResult =
  | { ok: true; items: ListItem[] }
  | { ok: false; incomplete: boolean; message: string };

type Op = '|' | '||' | '&' | '&&' | ';' | '<' | '>' | '>>' | '>&' | '(' | ')' | '\n';
type Token =
  | { t: 'word'; word: Word }
  /** `at`: where the operator starts in the source (a group's text is cut out between its parentheses). */
  | { t: 'op'; op: Op; fd: number | null; at: number }
  | { t: 'eof' };

class ParseError {
  constructor(readonly message: string, readonly incomplete: boolean) {}
}

/** Expand a word with `status` as `$?`. */
export function expandWord(word: Word, status: number): string {
  let s = '';
  for (const p of word) s += p.kind === 'lit' ? p.text : String(status);
  return s;
}

const OPERATOR_CHARS = '|&;<>()';

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '\\' && src[i + 1] === '\n') {
      continued(src, i);
      i += 2;
      continue;
    }
    if (c === '#') {
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    if (c === '\n') {
      tokens.push({ t: 'op', op: '\n', fd: null, at: i });
      i++;
      continue;
    }
    if (OPERATOR_CHARS.includes(c)) {
      const op = operatorAt(src, i);
      tokens.push({ t: 'op', op, fd: null, at: i });
      i += op.length;
      continue;
    }
    i = readWord(src, i, tokens);
  }
  tokens.push({ t: 'eof' });
  return tokens;
}

/** The operator at `i` (the longest match; src[i] is one of OPERATOR_CHARS). */
function operatorAt(src: string, i: number): Op {
  const two = src.slice(i, i + 2);
  return (['||', '&&', '>>', '>&'] as const).find((o) => o === two) ?? (src[i] as Op);
}

/** A backslash at `i`: refused as incomplete when nothing follows it but (at most) a newline. */
function continued(src: string, i: number): void {
  if (i + 1 >= src.length || (src[i + 1] === '\n' && i + 2 >= src.length)) {
    throw new ParseError('unexpected end of input after \\', true);
  }
}

/** Read the word starting at `start` into `tokens`; returns the index after it. */
function readWord(src: string, start: number, tokens: Token[]): number {
  const parts: Word = [];
  let lit = '';
  const flush = (): void => {
    if (lit !== '') parts.push({ kind: 'lit', text: lit });
    lit = '';
  };
  let i = start;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || OPERATOR_CHARS.includes(c)) break;
    if (c === '\\') {
      continued(src, i);
      if (src[i + 1] !== '\n') lit += src[i + 1];
      i += 2;
    } else if (c === "'") {
      const end = src.indexOf("'", i + 1);
      if (end < 0) throw new ParseError("unterminated '", true);
      lit += src.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new ParseError('unterminated "', true);
        const d = src[i]!;
        if (d === '"') break;
        if (d === '\\' && i + 1 < n && '\\"$\n'.includes(src[i + 1]!)) {
          if (src[i + 1] !== '\n') lit += src[i + 1];
          i += 2;
        } else if (d === '$' && src[i + 1] === '?') {
          flush();
          parts.push({ kind: 'status' });
          i += 2;
        } else {
          lit += d;
          i++;
        }
      }
      i++;
    } else if (c === '$' && src[i + 1] === '?') {
      flush();
      parts.push({ kind: 'status' });
      i += 2;
    } else {
      lit += c;
      i++;
    }
  }
  flush();
  // An unquoted number right before < or > names the fd it redirects.
  const raw = src.slice(start, i);
  if (/^[0-9]+$/.test(raw) && (src[i] === '<' || src[i] === '>')) {
    const fd = Number(raw);
    if (fd > 2) throw new ParseError(`cannot redirect fd ${raw} (only 0, 1 and 2)`, false);
    const op = operatorAt(src, i);
    tokens.push({ t: 'op', op, fd, at: i });
    return i + op.length;
  }
  tokens.push({ t: 'word', word: parts });
  return i;
}

function describe(tok: Token): string {
  if (tok.t === 'eof') return 'end of input';
  if (tok.t === 'word') return 'word';
  return tok.op === '\n' ? "'newline'" : `'${tok.op}'`;
}

class Parser {
  private pos = 0;
  constructor(private readonly src: string, private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private isOp(...ops: Op[]): boolean {
    const t = this.peek();
    return t.t === 'op' && ops.includes(t.op);
  }

  private skipNewlines(): void {
    while (this.isOp('\n')) this.pos++;
  }

  private unexpected(): ParseError {
    const t = this.peek();
    return new ParseError(`syntax error near unexpected ${describe(t)}`, t.t === 'eof');
  }

  /** The whole input, or (`inGroup`) a group's list, which ends at its `)`. */
  script(inGroup = false): ListItem[] {
    const items: ListItem[] = [];
    const ended = (): boolean => this.peek().t === 'eof' || (inGroup && this.isOp(')'));
    this.skipNewlines();
    while (!ended()) {
      const andOr = this.andOr();
      let background = false;
      if (this.isOp('&', ';')) {
        background = (this.peek() as { op: Op }).op === '&';
        this.pos++;
      } else if (!this.isOp('\n') && !ended()) {
        throw this.unexpected();
      }
      items.push({ andOr, background });
      this.skipNewlines();
    }
    return items;
  }

  private andOr(): AndOr {
    const first = this.pipeline();
    const rest: AndOr['rest'] = [];
    while (this.isOp('&&', '||')) {
      const op = (this.peek() as { op: '&&' | '||' }).op;
      this.pos++;
      this.skipNewlines();
      rest.push({ op, pipeline: this.pipeline() });
    }
    return { first, rest };
  }

  private pipeline(): Pipeline {
    const commands = [this.command()];
    while (this.isOp('|')) {
      this.pos++;
      this.skipNewlines();
      commands.push(this.command());
    }
    return { commands };
  }

  private command(): Command {
    if (this.isOp('(')) return this.group();
    const words: Word[] = [];
    const redirects: Redirect[] = [];
    for (;;) {
      const t = this.peek();
      if (t.t === 'word') {
        words.push(t.word);
        this.pos++;
      } else if (!this.redirect(redirects)) {
        break;
      }
    }
    if (words.length === 0 && redirects.length === 0) throw this.unexpected();
    return { words, redirects };
  }

  /** `( script ) redirect*`: its text is what lies between the parentheses. */
  private group(): Command {
    const open = this.peek() as { at: number };
    this.pos++;
    if (this.script(true).length === 0) throw this.unexpected(); // `()`, or `(` with nothing yet
    const close = this.peek();
    if (close.t !== 'op' || close.op !== ')') throw new ParseError("syntax error: unterminated '('", true);
    this.pos++;
    const redirects: Redirect[] = [];
    while (this.redirect(redirects));
    if (this.peek().t === 'word') throw this.unexpected(); // `(a) b`
    return { words: [], redirects, group: this.src.slice(open.at + 1, close.at) };
  }

  /** A redirection at the current token onto `into`; false (nothing consumed) if there is none. */
  private redirect(into: Redirect[]): boolean {
    const t = this.peek();
    if (t.t !== 'op' || !(t.op === '<' || t.op === '>' || t.op === '>>' || t.op === '>&')) return false;
    this.pos++;
    const target = this.peek();
    // A missing target is an error even at the end of input: no continuation line is read.
    if (target.t !== 'word') throw new ParseError(`syntax error near unexpected ${describe(target)}`, false);
    this.pos++;
    const kind = t.op === '<' ? 'read' : t.op === '>' ? 'write' : t.op === '>>' ? 'append' : 'dup';
    into.push({ fd: t.fd ?? (t.op === '<' ? 0 : 1), kind, target: target.word });
    return true;
  }
}

/** Parse `src` (one or more lines of shell input). */
export function parse(src: string): ParseResult {
  try {
    return { ok: true, items: new Parser(src, tokenize(src)).script() };
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, incomplete: e.incomplete, message: e.message };
    throw e;
  }
}
