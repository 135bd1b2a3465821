/**
 * chdir racing rename, on the core's FileSyscalls with a stand-in fs whose open and fstat answer
 * when the test says: a rename that ends while chdir is opening or checking the directory is
 * reflected in the new current directory's path (getcwd), as if it had come just before or after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T_DIR, type Program } from '../../src/interfaces/rv6.js';
import type { Ctx } from '../../src/domains/rv6/ctx.js';
import { DirRef } from '../../src/domains/rv6/file.js';
import type { FsClient } from '../../src/domains/rv6/fsclient.js';
import { Image, Proc, ProcTable } from '../../src/domains/rv6/proc.js';
import { FileSyscalls } from '../../src/domains/rv6/sysfile.js';
import { turn } from '../kernel/helpers.js';

/** A process in /a, its FileSyscalls, and the fs calls it waits on (`open`, `typeOf`: resolve them to answer). */
function setup(): { img: Image; files: FileSyscalls; answer: Record<'open' | 'typeOf', () => void> } {
  const answer = { open: () => {}, typeOf: () => {} };
  const gate = <T>(which: 'open' | 'typeOf', v: T): Promise<T> => new Promise((resolve) => (answer[which] = () => resolve(v)));
  const fs = {
    open: () => gate('open', 7),
    typeOf: () => gate('typeOf', { err: 0, type: T_DIR, size: 0, major: 0 }),
    rename: async () => 0,
    close: async () => 0,
  };
  const procs = new ProcTable();
  const p = new Proc(procs.allocPid(), 0, 1, 'p', new DirRef(5, '/a'));
  procs.add(p);
  const img = new Image(p, 'p.1', {} as Program);
  p.image = img;
  const files = new FileSyscalls({ procs, fs: fs as unknown as FsClient } as unknown as Ctx);
  return { img, files, answer };
}

for (const { when, from, to, cwd } of [
  { when: 'open', from: '/a/sub', to: '/a/s2', cwd: '/a/s2' },
  { when: 'typeOf', from: '/a', to: '/b', cwd: '/b/sub' },
] as const) {
  test(`chdir: a rename of ${from} ending during its ${when} gives the new path`, async () => {
    const { img, files, answer } = setup();
    const cd = files.chdir(img, 'sub');
    await turn();
    if (when === 'typeOf') {
      answer.open();
      await turn();
    }
    assert.equal(await files.rename(img, from, to), 0);
    answer.open();
    await turn();
    answer.typeOf();
    assert.equal(await cd, 0);
    assert.equal(await files.getcwd(img), cwd);
  });
}
