/**
 * A path that ends in '/' names a directory (POSIX path resolution), where xv6 ignored the slash:
 * `> f/` made a file named f, `rm f/` removed one, `mv f g/` renamed a file to g. Every path
 * operation on a non-directory through such a path is refused with Linux's errno (ENOTDIR; open
 * with O_CREAT: EISDIR; a missing name made by anything but mkdir: ENOENT), directories are
 * unaffected, and nothing on the image changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirOnly } from '../../src/domains/fs/path.js';
import { O_CREATE, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from '../../src/domains/fs/fs.js';
import { ramFs, assertCleanSynced, expectCode, pattern } from './helpers.js';

test('dirOnly: a slash after the last element, not the root alone', () => {
  for (const p of ['f/', 'a/b/', 'a//', '/d///', './']) assert.equal(dirOnly(p), true, p);
  for (const p of ['', '/', '///', 'f', '/a/b', 'a//b']) assert.equal(dirOnly(p), false, p);
});

test("a non-directory named with a trailing '/' is refused; directories work as before", async () => {
  const { dev, fs } = await ramFs('xv6', 400 * 1024);
  await fs.mkdir('/d');
  await fs.writeFile('/f', pattern(10, 1));
  await fs.mknod('/c', 1, 0);

  await expectCode(fs.stat('/f/'), 'ENOTDIR');
  await expectCode(fs.stat('/c/'), 'ENOTDIR');
  await expectCode(fs.open('/f/', O_RDONLY), 'ENOTDIR');
  await expectCode(fs.open('/f//', O_WRONLY | O_TRUNC), 'ENOTDIR');
  await expectCode(fs.readFile('/f/'), 'ENOTDIR');
  await expectCode(fs.truncate('/f/', 0), 'ENOTDIR');
  await expectCode(fs.open('/f/', O_CREATE | O_RDWR), 'EISDIR');
  await expectCode(fs.open('/f/', O_CREATE | O_EXCL | O_RDWR), 'EISDIR');
  await expectCode(fs.open('/new/', O_CREATE | O_RDWR), 'EISDIR');
  await expectCode(fs.open('/nodir/new/', O_CREATE | O_RDWR), 'ENOENT');
  await expectCode(fs.mknod('/new/', 1, 0), 'ENOENT');
  await expectCode(fs.mknod('/f/', 1, 0), 'EEXIST');
  await expectCode(fs.unlink('/f/'), 'ENOTDIR');
  await expectCode(fs.unlink('/c/'), 'ENOTDIR');
  await expectCode(fs.unlink('/d/'), 'EISDIR');
  await expectCode(fs.rmdir('/f/'), 'ENOTDIR');
  await expectCode(fs.link('/f/', '/g'), 'ENOTDIR');
  await expectCode(fs.link('/f', '/g/'), 'ENOENT');
  await expectCode(fs.link('/f', '/c/'), 'EEXIST');
  await expectCode(fs.rename('/f/', '/g'), 'ENOTDIR');
  await expectCode(fs.rename('/f', '/g/'), 'ENOTDIR');
  await expectCode(fs.rename('/f', '/c/'), 'ENOTDIR');
  await expectCode(fs.rename('/f/', '/f'), 'ENOTDIR'); // even two names of one file
  await expectCode(fs.rename('/f', '/f/'), 'ENOTDIR');
  await fs.rename('/f', '/f'); // without a slash: nothing to do

  // Nothing changed: f is still the file it was, and no g appeared.
  assert.deepEqual(await fs.readFile('/f'), pattern(10, 1));
  assert.deepEqual((await fs.readdir('/')).map((e) => e.name).sort(), ['.', '..', 'c', 'd', 'f']);

  // Directories named with a trailing slash are what they were.
  assert.equal((await fs.stat('/d/')).type, 1);
  await fs.mkdir('/e/');
  await fs.rename('/e/', '/e2//');
  await fs.writeFile('/d/x', pattern(1, 1));
  assert.deepEqual(await fs.readFile('/d//x'), pattern(1, 1));
  await fs.unlink('/d/x');
  await fs.rmdir('/d/');
  await fs.rmdir('/e2/');
  await assertCleanSynced(fs, dev, false);
});
