/** wc's counter: examples, and that counts match a reference and do not depend on chunking. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Counter } from '../../src/programs/wc/count.js';

function count(chunks: Uint8Array[]): [number, number, number] {
  const c = new Counter();
  for (const ch of chunks) c.add(ch);
  return [c.lines, c.words, c.bytes];
}
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

test('lines, words, bytes', () => {
  assert.deepEqual(count([enc('hello world\nfoo\n')]), [2, 3, 16]);
  assert.deepEqual(count([enc('')]), [0, 0, 0]);
  assert.deepEqual(count([enc('no newline')]), [0, 2, 10]);
  assert.deepEqual(count([enc('  a\t\tb \r\n\v c\f')]), [1, 3, 13]);
  assert.deepEqual(count([enc('wo'), enc('rd')]), [0, 1, 4], 'a word cut between chunks counts once');
  assert.deepEqual(count([enc('é')]), [0, 1, 2], 'bytes, not characters');
});

test('property: counts equal the reference on any chunking', () => {
  const text = fc.string({ unit: fc.constantFrom('a', 'b', ' ', '\n', '\t', '\r', 'é'), maxLength: 60 });
  fc.assert(fc.property(text, fc.array(fc.nat(60), { maxLength: 5 }), (s, cuts) => {
    const bytes = enc(s);
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const chunks: Uint8Array[] = [];
    let prev = 0;
    for (const p of [...points, bytes.length]) {
      chunks.push(bytes.subarray(prev, p));
      prev = p;
    }
    const words = s.split(/[ \n\t\r\v\f]+/).filter((w) => w !== '').length;
    assert.deepEqual(count(chunks), [s.split('\n').length - 1, words, bytes.length]);
  }));
});
