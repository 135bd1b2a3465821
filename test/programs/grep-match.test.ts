/**
 * grep's matcher: examples of each construct, and agreement with JavaScript's RegExp on every
 * pattern of the subset (atoms, stars, anchors, escapes) over random lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compile, matches, type Pattern } from '../../src/programs/grep/match.js';

function pat(source: string): Pattern {
  const p = compile(source);
  if (typeof p === 'string') assert.fail(`compile ${source}: ${p}`);
  return p;
}
const m = (source: string, text: string): boolean => matches(pat(source), text);

test('literals, dot, star, anchors, escapes', () => {
  assert.ok(m('ell', 'hello'));
  assert.ok(!m('elk', 'hello'));
  assert.ok(m('h.l', 'xhelp'));
  assert.ok(m('ab*c', 'ac') && m('ab*c', 'abbbc') && !m('ab*c', 'abd'));
  assert.ok(m('^he', 'hello') && !m('^el', 'hello'));
  assert.ok(m('lo$', 'hello') && !m('ll$', 'hello'));
  assert.ok(m('^$', '') && !m('^$', 'x'));
  assert.ok(m('', 'anything') && m('^', 'x') && m('$', 'x'));
  assert.ok(m('.*', ''));
  assert.ok(m('a\\.b', 'a.b') && !m('a\\.b', 'axb'));
  assert.ok(m('\\*', 'a*b') && !m('\\*', 'ab'));
  assert.ok(m('x\\$', 'x$y') && !m('x\\$', 'x'));
  assert.ok(m('*a', 'x*a') && !m('*a', 'xa'), 'a leading * is literal');
  assert.ok(m('a^b', 'a^b') && m('a$b', 'a$b'), '^ and $ inside stand for themselves');
  assert.ok(m('\\\\$', 'a\\'), 'an escaped backslash before $ leaves $ an anchor');
  assert.equal(compile('ab\\'), 'trailing backslash');
});

test('property: the subset agrees with RegExp', () => {
  const atom = fc.constantFrom('a', 'b', '.', '\\.', '\\*');
  const piece = fc.tuple(atom, fc.boolean()).map(([a, star]) => a + (star ? '*' : ''));
  const patternArb = fc.tuple(fc.boolean(), fc.array(piece, { maxLength: 5 }), fc.boolean()).map(([s, ps, e]) => `${s ? '^' : ''}${ps.join('')}${e ? '$' : ''}`);
  const line = fc.string({ unit: fc.constantFrom('a', 'b', '.', '*', 'c'), maxLength: 12 });
  fc.assert(fc.property(patternArb, line, (p, text) => {
    assert.equal(m(p, text), new RegExp(p).test(text), `pattern ${p} on ${JSON.stringify(text)}`);
  }), { numRuns: 3000 });
});
