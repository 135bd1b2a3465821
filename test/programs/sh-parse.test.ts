/**
 * The shell's parser: the grammar in examples (groups included), quoting round trips (any string survives single
 * quotes, double quotes and backslashes), an unparse → parse round trip over random scripts, and
 * that arbitrary input parses or fails with a message, never a throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { expandWord, parse, type AndOr, type Command, type ListItem, type Pipeline, type Redirect, type Word } from '../../src/programs/sh/parse.js';

function items(src: string): ListItem[] {
  const r = parse(src);
  if (!r.ok) assert.fail(`parse of ${JSON.stringify(src)} failed: ${r.message}`);
  return r.items;
}

/** The words of each command of a one-item script, expanded with `status` as $?. */
function argvs(src: string, status = 0): string[][] {
  const its = items(src);
  assert.equal(its.length, 1, `one list item in ${JSON.stringify(src)}`);
  assert.equal(its[0]!.andOr.rest.length, 0);
  return its[0]!.andOr.first.commands.map((c) => c.words.map((w) => expandWord(w, status)));
}

function fails(src: string, incomplete: boolean, message?: RegExp): void {
  const r = parse(src);
  assert.equal(r.ok, false, `${JSON.stringify(src)} should not parse`);
  if (r.ok) return;
  assert.equal(r.incomplete, incomplete, `incomplete for ${JSON.stringify(src)} (${r.message})`);
  if (message) assert.match(r.message, message);
}

test('words: spaces, tabs, quotes, backslashes, comments', () => {
  assert.deepEqual(argvs('echo  a\tb   c'), [['echo', 'a', 'b', 'c']]);
  assert.deepEqual(argvs(`echo 'a b' "c d" e\\ f`), [['echo', 'a b', 'c d', 'e f']]);
  assert.deepEqual(argvs(`echo 'it''s' "say \\"hi\\"" a"b"'c'd`), [['echo', 'its', 'say "hi"', 'abcd']]);
  assert.deepEqual(argvs(`echo '' ""`), [['echo', '', '']]);
  assert.deepEqual(argvs(`echo "a\\b" 'a\\b' a\\\\b`), [['echo', 'a\\b', 'a\\b', 'a\\b']]);
  assert.deepEqual(argvs('echo a # a comment | not a pipe'), [['echo', 'a']]);
  assert.deepEqual(argvs('echo a#b'), [['echo', 'a#b']]);
  assert.deepEqual(argvs("echo '|' \\; '&&' \">\""), [['echo', '|', ';', '&&', '>']]);
  assert.deepEqual(argvs('echo a\\\nb'), [['echo', 'ab']], 'backslash-newline is a line continuation');
  assert.deepEqual(argvs("echo 'a\nb'"), [['echo', 'a\nb']]);
});

test('$? expands (unquoted and in double quotes), not in single quotes; other $ is literal', () => {
  assert.deepEqual(argvs(`echo $? "x$?y" '$?' \\$? $HOME $`, 7), [['echo', '7', 'x7y', '$?', '$?', '$HOME', '$']]);
  assert.deepEqual(argvs('echo "\\$?"', 3), [['echo', '$?']]);
});

test('pipelines, lists, and-or, background', () => {
  const its = items('a | b | c; d && e || f & g\nh');
  assert.equal(its.length, 4);
  assert.equal(its[0]!.andOr.first.commands.length, 3);
  assert.equal(its[0]!.background, false);
  assert.deepEqual(its[1]!.andOr.rest.map((r) => r.op), ['&&', '||']);
  assert.equal(its[1]!.background, true);
  assert.equal(its[2]!.background, false);
  assert.equal(its[3]!.background, false);
  assert.equal(items('a &').length, 1);
  assert.equal(items('a &')[0]!.background, true);
  assert.equal(items('a;').length, 1);
  assert.deepEqual(items('\n\n  # only a comment\n'), []);
  assert.deepEqual(items(''), []);
  // A newline after an operator continues the list.
  assert.equal(items('a |\n b &&\n\n c')[0]!.andOr.rest.length, 1);
});

test('groups: ( list ) is one command of a pipeline, its text kept for the subshell; redirections after it', () => {
  const its = items('(echo a; cd /b && ls) | wc -l > n; ( (x) )');
  assert.equal(its.length, 2);
  const [g, w] = its[0]!.andOr.first.commands;
  assert.deepEqual([g!.group, g!.words, g!.redirects], ['echo a; cd /b && ls', [], []]);
  assert.deepEqual(w!.words.map((x) => expandWord(x, 0)), ['wc', '-l']);
  assert.equal(its[1]!.andOr.first.commands[0]!.group, ' (x) ', 'nested: the inner group stays text');
  const r = items('(a\nb) 2>&1 >> log &')[0]!;
  assert.equal(r.background, true);
  assert.deepEqual(r.andOr.first.commands[0]!.group, 'a\nb');
  assert.deepEqual(r.andOr.first.commands[0]!.redirects.map((x) => x.kind), ['dup', 'append']);
  assert.deepEqual(argvs("echo '(' \\) \"()\""), [['echo', '(', ')', '()']], 'quoted parentheses are words');
  fails('(echo a', true, /unterminated '\('/);
  fails('(echo a |', true);
  fails('(', true);
  fails('()', false, /unexpected '\)'/);
  fails('(a) b', false, /unexpected word/);
  fails('a )', false, /unexpected '\)'/);
  fails('echo a(b', false, /unexpected '\('/);
  fails('(a; (b)', true);
});

test('redirections: <, >, >>, fd numbers, >&, and a command of redirections only', () => {
  const c = items('sort < in > out 2>> err 2>&1')[0]!.andOr.first.commands[0]!;
  assert.deepEqual(c.words.map((w) => expandWord(w, 0)), ['sort']);
  assert.deepEqual(
    c.redirects.map((r) => [r.fd, r.kind, expandWord(r.target, 0)]),
    [[0, 'read', 'in'], [1, 'write', 'out'], [2, 'append', 'err'], [2, 'dup', '1']],
  );
  const only = items('> f')[0]!.andOr.first.commands[0]!;
  assert.equal(only.words.length, 0);
  assert.equal(only.redirects.length, 1);
  // A quoted number is a word, not an fd.
  const q = items("echo '2'>f")[0]!.andOr.first.commands[0]!;
  assert.deepEqual(q.words.map((w) => expandWord(w, 0)), ['echo', '2']);
  assert.equal(q.redirects[0]!.fd, 1);
  assert.deepEqual(argvs('echo 2 >f'), [['echo', '2']]);
});

test('errors: incomplete input asks for more; the rest are syntax errors with the token', () => {
  fails("echo 'abc", true, /unterminated '/);
  fails('echo "abc', true, /unterminated "/);
  fails('echo \\', true);
  // The shell parses what it has read, each line with its newline: a backslash-newline at the end
  // continues on the next line (it ran `echo a` at once, and the next line as a command of its own).
  fails('echo a\\\n', true, /after \\/);
  fails('echo a \\\n', true, /after \\/);
  fails('echo a | \\\n', true);
  assert.deepEqual(argvs('echo a\\\nb\n'), [['echo', 'ab']]);
  assert.deepEqual(argvs('echo a \\\nb\n'), [['echo', 'a', 'b']]);
  fails('a |', true);
  fails('a &&', true);
  fails('a ||\n', true);
  fails('| a', false, /unexpected '\|'/);
  fails('a ;; b', false, /unexpected ';'/);
  fails('; a', false);
  fails('a && && b', false);
  fails('a >', false, /unexpected end of input/);
  fails('a > | b', false, /unexpected '\|'/);
  fails('a & & b', false);
  fails('a 3> f', false, /fd 3/);
});

// ---- property tests ---------------------------------------------------------------------------

const anyText = fc.string({ unit: 'grapheme', maxLength: 20 });

test('property: any string survives single quoting', () => {
  const sq = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
  fc.assert(fc.property(fc.array(anyText, { minLength: 1, maxLength: 5 }), (words) => {
    assert.deepEqual(argvs(words.map(sq).join(' ')), [words]);
  }));
});

test('property: any string survives double quoting (escaping \\ " $)', () => {
  const dq = (s: string): string => `"${s.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
  fc.assert(fc.property(fc.array(anyText, { minLength: 1, maxLength: 5 }), (words) => {
    assert.deepEqual(argvs(words.map(dq).join(' ')), [words]);
  }));
});

test('property: any string without newlines survives backslash-escaping every character', () => {
  const bs = (s: string): string => (s === '' ? "''" : [...s].map((c) => `\\${c}`).join(''));
  fc.assert(fc.property(fc.array(anyText.map((s) => s.replace(/\n/g, '')), { minLength: 1, maxLength: 5 }), (words) => {
    assert.deepEqual(argvs(words.map(bs).join(' ')), [words]);
  }));
});

// Random scripts, printed back to source (with quoting), parse to the same tree.

const lit = (text: string): Word => (text === '' ? [] : [{ kind: 'lit', text }]);
const wordArb: fc.Arbitrary<Word> = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9._\/-]{1,6}$/).map(lit) },
  { weight: 2, arbitrary: anyText.map(lit) },
  { weight: 1, arbitrary: fc.constant<Word>([{ kind: 'status' }]) },
  { weight: 1, arbitrary: fc.tuple(fc.stringMatching(/^[a-z]{1,3}$/), fc.stringMatching(/^[a-z]{1,3}$/)).map(([a, b]): Word => [{ kind: 'lit', text: a }, { kind: 'status' }, { kind: 'lit', text: b }]) },
);
const redirectArb: fc.Arbitrary<Redirect> = fc.oneof(
  fc.record({ fd: fc.constantFrom(0, 1, 2), kind: fc.constantFrom('read' as const, 'write' as const, 'append' as const), target: wordArb }),
  fc.record({ fd: fc.constantFrom(1, 2), kind: fc.constant('dup' as const), target: fc.constantFrom('0', '1', '2').map(lit) }),
);
const simpleCommandArb: fc.Arbitrary<Command> = fc
  .record({ words: fc.array(wordArb, { maxLength: 4 }), redirects: fc.array(redirectArb, { maxLength: 2 }) })
  .filter((c) => c.words.length + c.redirects.length > 0);
/** A group's text: pipelines of simple commands as unparse prints them, joined by separators. */
const groupTextArb: fc.Arbitrary<string> = fc
  .array(fc.array(simpleCommandArb, { minLength: 1, maxLength: 2 }).map((p) => p.map(unparseCommand).join(' | ')), { minLength: 1, maxLength: 3 })
  .chain((ps) =>
    fc
      .array(fc.constantFrom(' ; ', ' & ', ' && ', ' || ', '\n'), { minLength: ps.length - 1, maxLength: ps.length - 1 })
      .map((seps) => ps.map((p, i) => (i === 0 ? '' : seps[i - 1]) + p).join('')),
  );
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: simpleCommandArb },
  { weight: 1, arbitrary: fc.record({ words: fc.constant<Word[]>([]), redirects: fc.array(redirectArb, { maxLength: 2 }), group: groupTextArb }) },
);
const pipelineArb: fc.Arbitrary<Pipeline> = fc.array(commandArb, { minLength: 1, maxLength: 3 }).map((commands) => ({ commands }));
const andOrArb: fc.Arbitrary<AndOr> = fc.record({
  first: pipelineArb,
  rest: fc.array(fc.record({ op: fc.constantFrom('&&' as const, '||' as const), pipeline: pipelineArb }), { maxLength: 2 }),
});
const scriptArb = fc.array(fc.record({ andOr: andOrArb, background: fc.boolean() }), { maxLength: 4 });

/** Source text for a word: literal runs single-quoted, $? bare. */
function unparseWord(w: Word): string {
  if (w.length === 0) return "''";
  return w.map((p) => (p.kind === 'status' ? '$?' : `'${p.text.replaceAll("'", `'\\''`)}'`)).join('');
}
function unparseCommand(c: Command): string {
  const redir = (r: Redirect): string => `${r.fd}${{ read: '<', write: '>', append: '>>', dup: '>&' }[r.kind]}${unparseWord(r.target)}`;
  return [...(c.group !== undefined ? [`(${c.group})`] : []), ...c.words.map(unparseWord), ...c.redirects.map(redir)].join(' ');
}
function unparse(script: ListItem[]): string {
  return script
    .map((it) => {
      const p = (pl: Pipeline): string => pl.commands.map(unparseCommand).join(' | ');
      const text = [p(it.andOr.first), ...it.andOr.rest.map((r) => `${r.op} ${p(r.pipeline)}`)].join(' ');
      return text + (it.background ? ' &' : ' ;');
    })
    .join('\n');
}
/** Adjacent literal parts merge when printed and parsed again: compare words normalized. */
function normalize(script: ListItem[]): ListItem[] {
  const word = (w: Word): Word => {
    const out: Word = [];
    for (const p of w) {
      const prev = out[out.length - 1];
      if (p.kind === 'lit' && p.text === '') continue;
      if (p.kind === 'lit' && prev?.kind === 'lit') out[out.length - 1] = { kind: 'lit', text: prev.text + p.text };
      else out.push(p);
    }
    return out;
  };
  const command = (c: Command): Command => ({ ...c, words: c.words.map(word), redirects: c.redirects.map((r) => ({ ...r, target: word(r.target) })) });
  const pipeline = (p: Pipeline): Pipeline => ({ commands: p.commands.map(command) });
  return script.map((it) => ({
    background: it.background,
    andOr: { first: pipeline(it.andOr.first), rest: it.andOr.rest.map((r) => ({ op: r.op, pipeline: pipeline(r.pipeline) })) },
  }));
}

test('property: unparse → parse gives the same script', () => {
  fc.assert(fc.property(scriptArb, (script) => {
    const src = unparse(script);
    assert.deepEqual(normalize(items(src)), normalize(script), src);
  }), { numRuns: 300 });
});

test('property: any input parses or fails with a message (never throws)', () => {
  const shellish = fc.string({ unit: fc.constantFrom('a', ' ', '|', '&', ';', '<', '>', '(', ')', "'", '"', '\\', '$', '?', '#', '\n', '2'), maxLength: 30 });
  fc.assert(fc.property(fc.oneof(shellish, fc.string()), (src) => {
    const r = parse(src);
    if (!r.ok) assert.ok(r.message.length > 0);
  }), { numRuns: 2000 });
});
