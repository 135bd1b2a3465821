/**
 * The shell and the programs fed random command lines (a property): pipelines and lists of the
 * file programs over a small name space — files, directories, missing names, '.', '..', '/' —
 * with quoting, redirections in and out (some to directories or missing names), and stray
 * operators that make syntax errors. Every line must come back to the prompt, no program may
 * crash (a crash is a bug: bad arguments are errors with a message), and the shell, the core and
 * the fs domain must live on. (Commands that read the console when given no file — cat, wc, grep —
 * always get one, or the line would wait for typed input.) With programs in the kernel thread,
 * and, fewer runs (each program starts a thread), on worker threads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fcParams } from '../fs/helpers.js';
import { withSession } from './session.js';

// (Not /bin: a line that moves it away leaves the shell without its programs, as it would on Unix.)
const NAMES = ['a', 'b', 'c', 'f', 'g', 'a/f', 'b/c', 'a/b/f', 'nope', '.', '..', '/', 'README', '/dev'];
const name = fc.constantFrom(...NAMES);
const word = fc.oneof(fc.constantFrom('x', 'hello world', '7', '$?', '-n', '-c', '*', ''), name);
/** A word as the shell reads it: bare (if it needs no quoting), or in double or single quotes. */
const quoted = (w: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.tuple(w, fc.constantFrom('bare', '"', "'")).map(([s, q]) => (q === 'bare' && /^[\w./$?*-]+$/.test(s) ? s : q === "'" ? `'${s}'` : `"${s.replace(/[$"\\`]/g, '\\$&')}"`));
const names = (min: number, max: number): fc.Arbitrary<string> => fc.array(quoted(name), { minLength: min, maxLength: max }).map((a) => a.join(' '));

const command: fc.Arbitrary<string> = fc.oneof(
  fc.array(quoted(word), { maxLength: 3 }).map((a) => ['echo', ...a].join(' ')),
  names(0, 3).map((a) => `ls ${a}`),
  names(1, 2).map((a) => `cat ${a}`),
  names(1, 2).map((a) => `wc ${a}`),
  fc.tuple(fc.constantFrom('-c', '-v', '-n', '-i', ''), quoted(fc.constantFrom('x', 'a.', '^l', 'e$', '[0-9]')), names(1, 2)).map(([o, p, a]) => `grep ${o} ${p} ${a}`),
  fc.tuple(fc.constantFrom('mkdir', 'mkdir -p', 'rmdir', 'rm', 'rm -r'), names(1, 3)).map(([c, a]) => `${c} ${a}`),
  fc.tuple(fc.constantFrom('ln', 'mv', 'cp'), names(2, 3)).map(([c, a]) => `${c} ${a}`),
  fc.constantFrom('pwd', 'uptime', 'ps', 'true', 'false'),
  names(0, 1).map((a) => `cd ${a}`),
);
// (`cat f >> f`, `cat x f > f`, `grep e x f > f` would grow f for ever: cat and grep refuse them, as GNU's do.)
const redirect = fc.tuple(fc.constantFrom('>', '>>', '<'), quoted(name)).map(([r, n]) => ` ${r} ${n}`);
const withRedirects = fc.tuple(command, fc.array(redirect, { maxLength: 2 })).map(([c, r]) => c + r.join(''));
const pipeline = fc.array(withRedirects, { minLength: 1, maxLength: 3 }).map((cs) => cs.join(' | '));
/** A list of pipelines; sometimes a stray operator in front or in the middle (a syntax error, never a continuation). */
const line: fc.Arbitrary<string> = fc
  .tuple(fc.array(pipeline, { minLength: 1, maxLength: 3 }), fc.array(fc.constantFrom('; ', ' && ', ' || '), { minLength: 2, maxLength: 2 }), fc.constantFrom('', '', '', '| ', '; ', '> '))
  .map(([ps, ops, junk]) => junk + ps.map((p, i) => (i === 0 ? p : ops[(i - 1) % ops.length]! + p)).join(''));

for (const [placement, runs] of [['thread', 40], ['worker', 5]] as const) test(`property: random command lines (pipes, lists, redirections, quoting, syntax errors) never crash a program or the shell (programs on ${placement === 'thread' ? 'the kernel thread' : 'worker threads'})`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(line, { minLength: 3, maxLength: 12 }), async (lines) => {
      await withSession(async (s) => {
        await s.run('mkdir a b a/b; echo one > f; echo line 2 > g; echo deep > a/b/f');
        for (const l of lines) {
          const out = await s.run(l, 10_000);
          assert.ok(!/crashed/.test(out), `${JSON.stringify(l)} crashed a program:\n${out}\n${s.logs.join('\n')}`);
        }
        assert.equal(await s.run('cd /; echo alive'), 'alive\n', 'the shell lives on');
        assert.ok(!s.logs.some((l) => /crashed/.test(l)), `a program crashed:\n${s.logs.join('\n')}`);
      }, undefined, placement);
    }),
    fcParams(runs),
  );
});
