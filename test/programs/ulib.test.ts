/** The user library's pure parts: argv, getopt, paths, getdents entries, strerror. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { basename, getopt, joinArgv, joinPath, parseDirents, splitArgv, strerror } from '../../src/runtime/ulib/index.js';
import { ERRNO } from '../../src/interfaces/rv6.js';

test('argv: NUL-separated, round trips', () => {
  assert.deepEqual(splitArgv('echo\0a b\0'), ['echo', 'a b', '']);
  assert.equal(joinArgv(['ls', '-l', '']), 'ls\0-l\0');
  assert.throws(() => joinArgv(['a\0b']), /NUL/);
  fc.assert(fc.property(fc.array(fc.string().map((s) => s.replaceAll('\0', '')), { minLength: 1 }), (args) => {
    assert.deepEqual(splitArgv(joinArgv(args)), args);
  }));
  fc.assert(fc.property(fc.string(), (s) => assert.equal(splitArgv(s).join('\0'), s)));
});

test('getopt: flags, grouped flags, values, --, lone -, errors', () => {
  const ok = (args: string[], spec: string) => {
    const r = getopt(args, spec);
    if (typeof r === 'string') assert.fail(r);
    return { opts: Object.fromEntries(r.opts), operands: r.operands };
  };
  assert.deepEqual(ok(['-lw', 'f'], 'lwc'), { opts: { l: true, w: true }, operands: ['f'] });
  assert.deepEqual(ok(['-s', '4M', '-n10', 'dir'], 's:n:'), { opts: { s: '4M', n: '10' }, operands: ['dir'] });
  assert.deepEqual(ok(['-v', '--', '-x'], 'v'), { opts: { v: true }, operands: ['-x'] });
  assert.deepEqual(ok(['-', '-v'], 'v'), { opts: {}, operands: ['-', '-v'] });
  assert.deepEqual(ok(['a', '-v'], 'v'), { opts: {}, operands: ['a', '-v'] });
  assert.equal(getopt(['-x'], 'v'), "unknown option '-x'");
  assert.equal(getopt(['-s'], 's:'), "option '-s' needs a value");
  assert.equal(getopt(['-:'], 's:'), "unknown option '-:'");
});

test('paths: basename and joinPath', () => {
  assert.equal(basename('a/b/c'), 'c');
  assert.equal(basename('a/b/'), 'b');
  assert.equal(basename('c'), 'c');
  assert.equal(basename('/'), '/');
  assert.equal(joinPath('d', 'f'), 'd/f');
  assert.equal(joinPath('d/', 'f'), 'd/f');
  assert.equal(joinPath('/', 'f'), '/f');
});

test('dirents: parse `<inum> <name>\\0` entries; malformed chunks are refused', () => {
  assert.deepEqual(parseDirents('1 .\x001 ..\x0012 a b\0'), [
    { inum: 1, name: '.' }, { inum: 1, name: '..' }, { inum: 12, name: 'a b' },
  ]);
  assert.deepEqual(parseDirents(''), []);
  for (const bad of ['1 a', 'x a\0', '1\0', ' a\0', '1 \0', '1 a\0\0']) assert.equal(parseDirents(bad), null, JSON.stringify(bad));
  const entry = fc.record({ inum: fc.nat(), name: fc.string({ minLength: 1 }).filter((s) => !s.includes('\0')) }).map((e) => ({ ...e }));
  fc.assert(fc.property(fc.array(entry), (es) => {
    assert.deepEqual(parseDirents(es.map((e) => `${e.inum} ${e.name}\0`).join('')), es);
  }));
});

test('strerror: every errno has its message; negative and positive alike', () => {
  assert.equal(strerror(-ERRNO.ENOENT), 'No such file or directory');
  assert.equal(strerror(ERRNO.ENOTEMPTY), 'Directory not empty');
  assert.equal(strerror(-999), 'Unknown error 999');
  for (const v of Object.values(ERRNO)) assert.doesNotMatch(strerror(-v), /Unknown/);
});
