/**
 * rv6 file system calls through the core, run by the rv6_probe program as init: open flags
 * (create, truncate, append, read/write modes, exclusive), read/write/lseek/fstat/stat/getdents,
 * dup sharing offsets, links, directories, current directory, device nodes, and every errno path
 * (bad fd, missing path, name too long, not a directory, not empty, EEXIST, EISDIR, ESPIPE,
 * EINVAL for bad sizes and flags, EMFILE, ENXIO).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEV_CONSOLE, O_APPEND, O_CREATE, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, SEEK_CUR, SEEK_END, SEEK_SET, T_DEVICE, T_DIR, T_FILE,
} from '../../src/interfaces/rv6.js';
import { ERRNO, expectResults, withImageFile, withRv6 } from './helpers.js';
import { assertClean } from '../fs/helpers.js';

const E = (name: keyof typeof ERRNO): number => -ERRNO[name];

test('open modes, read/write, lseek, fstat, truncate, append, exclusive', async () => {
  await withRv6(async (t) => {
    const status = await t.runInit([
      ['a=open', '/f', O_CREATE | O_RDWR],
      ['w1=write', '$a', 'hello world'],
      ['cur=lseek', '$a', 0, SEEK_CUR],
      ['set=lseek', '$a', 0, SEEK_SET],
      ['r1=read', '$a', 5],
      ['end=lseek', '$a', -5, SEEK_END],
      ['r2=read', '$a', 100],
      ['r3=read', '$a', 100],
      ['neg=lseek', '$a', -1, SEEK_SET],
      ['badwhence=lseek', '$a', 0, 7],
      ['frac=lseek', '$a', 0.5, SEEK_SET],
      ['st=fstat', '$a'],
      ['c1=close', '$a'],
      ['c2=close', '$a'],
      ['b=open', '/f', O_WRONLY | O_TRUNC],
      ['sttrunc=fstat', '$b'],
      ['w2=write', '$b', 'abc'],
      ['rwo=read', '$b', 3],
      ['close', '$b'],
      ['c=open', '/f', O_WRONLY | O_APPEND],
      ['w3=write', '$c', 'def'],
      ['cur2=lseek', '$c', 0, SEEK_CUR],
      ['lseek', '$c', 0, SEEK_SET],
      ['w4=write', '$c', 'ghi'],
      ['cur3=lseek', '$c', 0, SEEK_CUR],
      ['close', '$c'],
      ['d=open', '/f', O_RDONLY],
      ['all=readall', '$d'],
      ['wro=write', '$d', 'x'],
      ['excl=open', '/f', O_CREATE | O_EXCL | O_WRONLY],
      ['exclnew=open', '/g', O_CREATE | O_EXCL | O_WRONLY],
      ['missing=open', '/nope', O_RDONLY],
      ['empty=open', '', O_RDONLY],
      ['badflags=open', '/f', 0x8000],
      ['bothmodes=open', '/f', O_WRONLY | O_RDWR],
      ['toolong=open', '/abcdefghijklmnopq', O_CREATE | O_RDWR],
      ['notdir=open', '/f/x', O_RDONLY],
      ['bigoff=lseek', '$d', 1000, SEEK_SET],
      ['eof=read', '$d', 10],
    ]);
    assert.equal(status, 0);
    expectResults(t, {
      a: 3, w1: 11, cur: 11, set: 0, r1: { n: 5, text: 'hello' }, end: 6, r2: { n: 5, text: 'world' }, r3: { n: 0, text: '' },
      neg: E('EINVAL'), badwhence: E('EINVAL'), frac: E('EINVAL'),
      st: { err: 0, type: T_FILE, nlink: 1, size: 11 }, c1: 0, c2: E('EBADF'),
      b: 3, sttrunc: { type: T_FILE, size: 0 }, w2: 3, rwo: { n: E('EBADF') },
      w3: 3, cur2: 6, w4: 3, cur3: 9, all: { n: 9, text: 'abcdefghi' }, wro: E('EBADF'),
      excl: E('EEXIST'), exclnew: 4, missing: E('ENOENT'), empty: E('ENOENT'), badflags: E('EINVAL'), bothmodes: E('EINVAL'),
      toolong: E('ENAMETOOLONG'), notdir: E('ENOTDIR'), bigoff: 1000, eof: { n: 0 },
    });
  });
});

test('bad descriptors and bad sizes', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['f=open', '/f', O_CREATE | O_RDWR],
      ['write', '$f', 'abcdef'],
      ['rbad=read', 99, 1],
      ['rneg=read', -1, 1],
      ['rfrac=read', 1.5, 1],
      ['wbad=write', 64, 'x'],
      ['cbad=close', 99],
      ['fbad=fstat', 99],
      ['lbad=lseek', 99, 0, SEEK_SET],
      ['dbad=dup', 99],
      ['gbad=getdents', 99],
      ['big=read', '$f', 10, 4],
      ['neg=read', '$f', -1, 4],
      ['nobuf=read', '$f', 1, -1],
      ['wlong=write', '$f', 'abc', 10],
      ['wneg=write', '$f', 'abc', -1],
      ['wfrac=write', '$f', 'abc', 1.5],
      ['rzero=read', '$f', 0],
      ['wzero=write', '$f', '', 0],
    ]);
    expectResults(t, {
      rbad: { n: E('EBADF') }, rneg: { n: E('EBADF') }, rfrac: { n: E('EBADF') }, wbad: E('EBADF'), cbad: E('EBADF'),
      fbad: { err: E('EBADF') }, lbad: E('EBADF'), dbad: E('EBADF'), gbad: { n: E('EBADF') },
      big: { n: E('EINVAL') }, neg: { n: E('EINVAL') }, nobuf: { n: E('EINVAL') },
      wlong: E('EINVAL'), wneg: E('EINVAL'), wfrac: E('EINVAL'), rzero: { n: 0 }, wzero: 0,
    });
  });
});

test('dup shares the offset; descriptors are the lowest free; EMFILE', async () => {
  await withRv6(async (t) => {
    const dups = Array.from({ length: 62 }, (_, i) => [`x${i}=dup`, 0]);
    await t.runInit([
      ['f=open', '/f', O_CREATE | O_RDWR],
      ['write', '$f', 'abcdefghi'],
      ['lseek', '$f', 0, SEEK_SET],
      ['g=dup', '$f'],
      ['r1=read', '$f', 3],
      ['r2=read', '$g', 3],
      ['pos=lseek', '$f', 0, SEEK_CUR],
      ['cf=close', '$f'],
      ['r3=read', '$g', 3],
      ['low=open', '/f', O_RDONLY],
      ...dups,
    ]);
    expectResults(t, { f: 3, g: 4, r1: { text: 'abc' }, r2: { text: 'def' }, pos: 6, cf: 0, r3: { text: 'ghi' }, low: 3 });
    // fds 0-4 are taken (console x3, low, g): dups fill 5..63, then EMFILE.
    assert.equal(t.r('x0'), 5);
    assert.equal(t.r('x58'), 63);
    assert.equal(t.r('x59'), E('EMFILE'));
    assert.equal(t.r('x61'), E('EMFILE'));
  });
});

test('directories: mkdir, rmdir, getdents, chdir, getcwd, EISDIR, ENOTEMPTY, ENOTDIR', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['m1=mkdir', '/d'],
      ['m2=mkdir', '/d'],
      ['m3=mkdir', '/nope/x'],
      ['f=open', '/d/file', O_CREATE | O_WRONLY],
      ['close', '$f'],
      ['m4=mkdir', '/d/file/x'],
      ['wdir=open', '/d', O_WRONLY],
      ['rwdir=open', '/d', O_RDWR],
      ['trdir=open', '/d', O_RDONLY | O_TRUNC],
      ['dd=open', '/d', O_RDONLY],
      ['rdir=read', '$dd', 10],
      ['ents=getdents', '$dd'],
      ['after=getdents', '$dd', '$ents.off'],
      ['gfile=getdents', 0],
      ['ls=ls', '/'],
      ['close', '$dd'],
      ['rm1=rmdir', '/d'],
      ['rm2=rmdir', '/d/file'],
      ['rm3=rmdir', '/nope'],
      ['ul1=unlink', '/d'],
      ['cd1=chdir', '/d'],
      ['cwd1=getcwd'],
      ['strel=stat', 'file'],
      ['cd2=chdir', '..'],
      ['cwd2=getcwd'],
      ['cd3=chdir', 'd/../d/./'],
      ['cwd3=getcwd'],
      ['cd4=chdir', '/d/file'],
      ['cd5=chdir', '/nope'],
      ['cd6=chdir', ''],
      ['ul2=unlink', 'file'],
      ['cd7=chdir', '/'],
      ['rm4=rmdir', '/d'],
      ['rmroot=rmdir', '/'],
      ['stroot=stat', '/'],
      ['crroot=open', '/', O_CREATE | O_WRONLY],
      ['exroot=open', '/', O_CREATE | O_EXCL | O_WRONLY],
    ]);
    expectResults(t, {
      m1: 0, m2: E('EEXIST'), m3: E('ENOENT'), m4: E('ENOTDIR'), wdir: E('EISDIR'), rwdir: E('EISDIR'), trdir: E('EISDIR'),
      rdir: { n: E('EISDIR') }, ents: { names: ['.', '..', 'file'] }, after: { n: 0 }, gfile: { n: E('ENOTDIR') },
      rm1: E('ENOTEMPTY'), rm2: E('ENOTDIR'), rm3: E('ENOENT'), ul1: E('EISDIR'),
      cd1: 0, cwd1: '/d', strel: { err: 0, type: T_FILE }, cd2: 0, cwd2: '/', cd3: 0, cwd3: '/d',
      cd4: E('ENOTDIR'), cd5: E('ENOENT'), cd6: E('ENOENT'), ul2: 0, cd7: 0, rm4: 0, rmroot: E('EBUSY'),
      stroot: { err: 0, type: T_DIR, ino: 1 }, crroot: E('EISDIR'), exroot: E('EEXIST'),
    });
    assert.deepEqual([...t.r('ls')].sort(), ['.', '..', 'bin', 'd', 'dev'].sort());
  });
});

test('rmdir of the current directory: it lists empty, nothing can be made in it, "." and ".." still work', async () => {
  await withImageFile(async (file) => {
    await withRv6(async (t) => {
      await t.runInit([
        ['mkdir', '/d'],
        ['cd=chdir', '/d'],
        ['rm=rmdir', '/d'],
        ['dot=stat', '.'],
        ['ls=ls', '.'],
        ['cr=open', 'f', O_CREATE | O_RDWR],
        ['mk=mkdir', 'e'],
        ['cwd=getcwd'],
        ['up=chdir', '..'],
        ['cwd2=getcwd'],
        ['back=stat', '/d'],
      ]);
      expectResults(t, {
        cd: 0, rm: 0, dot: { err: 0, type: T_DIR, nlink: 0 }, ls: [], cr: E('ENOENT'), mk: E('ENOENT'),
        cwd: '/d', up: 0, cwd2: '/', back: { err: E('ENOENT') },
      });
    }, { file });
    assertClean(file, false, 'the removed directory was freed when it stopped being the current one');
  });
});

test('links, unlink of an open file, stat', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['f=open', '/f', O_CREATE | O_RDWR],
      ['write', '$f', 'data'],
      ['l1=link', '/f', '/g'],
      ['sg=stat', '/g'],
      ['l2=link', '/f', '/g'],
      ['l3=link', '/nope', '/h'],
      ['l4=link', '/dev', '/dev2'],
      ['l5=link', '/f', ''],
      ['u1=unlink', '/f'],
      ['u2=unlink', '/f'],
      ['u3=unlink', ''],
      ['sf=fstat', '$f'],
      ['lseek', '$f', 0, SEEK_SET],
      ['still=read', '$f', 10],
      ['u4=unlink', '/g'],
      ['gone=stat', '/g'],
      ['se=stat', ''],
    ]);
    expectResults(t, {
      l1: 0, sg: { type: T_FILE, nlink: 2, size: 4 }, l2: E('EEXIST'), l3: E('ENOENT'), l4: E('EPERM'), l5: E('ENOENT'),
      u1: 0, u2: E('ENOENT'), u3: E('ENOENT'), sf: { nlink: 1 }, still: { n: 4, text: 'data' }, u4: 0,
      gone: { err: E('ENOENT') }, se: { err: E('ENOENT') },
    });
  });
});

test('rename: files and directories, replacing, errnos; an open file keeps working; current directories below a moved one keep their getcwd', async () => {
  await withImageFile(async (file) => {
    await withRv6(async (t) => {
      await t.runInit([
        ['mkdir', '/m'],
        ['mkdir', '/m/sub'],
        ['f=open', '/m/sub/f', O_CREATE | O_RDWR],
        ['write', '$f', 'data'],
        ['cd=chdir', '/m/sub'],
        ['r1=rename', '/m', '/n'],
        ['cwd1=getcwd'],
        ['r2=rename', 'f', 'g'],
        ['sg=stat', '/n/sub/g'],
        ['write', '$f', '+more'],
        ['lseek', '$f', 0, SEEK_SET],
        ['still=read', '$f', 20],
        ['r3=rename', '..', '/x'],
        ['r4=rename', '/n', '/n/sub/in'],
        ['r5=rename', '/n/sub', '/n'],
        ['mkdir', '/e'],
        ['r6=rename', 'g', '/e'],
        ['r7=rename', '/e', 'g'],
        ['r8=rename', 'nope', 'h'],
        ['r9=rename', 'g', ''],
        ['r10=rename', '', 'h'],
        ['r11=rename', 'g', '/nodir/h'],
        ['h=open', '/h', O_CREATE | O_WRONLY],
        ['write', '$h', 'other'],
        ['close', '$h'],
        ['r12=rename', '/h', 'g'],
        ['sg2=stat', 'g'],
        ['gone=stat', '/h'],
        ['r13=rename', '/e', '/n/sub'],
        ['cwd2=getcwd'],
        ['chdir', '/'],
        ['r14=rename', '/n', '/m'],
        ['ls=ls', '/m'],
        ['close', '$f'],
      ]);
      expectResults(t, {
        cd: 0, r1: 0, cwd1: '/n/sub', r2: 0, sg: { err: 0, type: T_FILE, size: 4 }, still: { n: 9, text: 'data+more' },
        r3: E('EBUSY'), r4: E('EINVAL'), r5: E('ENOTEMPTY'), r6: E('EISDIR'), r7: E('ENOTDIR'), r8: E('ENOENT'),
        r9: E('ENOENT'), r10: E('ENOENT'), r11: E('ENOENT'), r12: 0, sg2: { err: 0, type: T_FILE, size: 5 }, gone: { err: E('ENOENT') },
        r13: E('ENOTEMPTY'), cwd2: '/n/sub', r14: 0, ls: ['.', '..', 'sub'],
      });
    }, { file });
    assertClean(file, false, 'after the renames (the replaced file freed at its last close)');
  });
});

test('device nodes: the console major opens the console, others are ENXIO; ESPIPE on the console', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['n1=mknod', '/dev/other', 7, 3],
      ['n2=mknod', '/dev/console', DEV_CONSOLE, 0],
      ['n3=mknod', '/dev/bad', -1, 0],
      ['n4=mknod', '/dev/bad', 1, 0x10000],
      ['n5=mknod', '/dev/bad', 1.5, 0],
      ['o1=open', '/dev/other', O_RDWR],
      ['so=stat', '/dev/other'],
      ['sc=fstat', 1],
      ['sk=lseek', 1, 0, SEEK_SET],
      ['c2=open', '/dev/console', O_WRONLY],
      ['w=write', '$c2', 'through a second console fd\n'],
    ]);
    expectResults(t, {
      n1: 0, n2: E('EEXIST'), n3: E('EINVAL'), n4: E('EINVAL'), n5: E('EINVAL'), o1: E('ENXIO'),
      so: { type: T_DEVICE, major: 7, minor: 3 }, sc: { err: 0, type: T_DEVICE, major: DEV_CONSOLE }, sk: E('ESPIPE'),
      c2: 3, w: 28,
    });
    assert.match(t.out, /through a second console fd\n/);
  });
});

test('close while a write of the same file is in flight: the write completes, then the file is closed (and, unlinked, freed)', async () => {
  await withImageFile(async (file) => {
    await withRv6(async (t) => {
      await t.runInit([
        ['k=open', '/kept', O_CREATE | O_RDWR],
        ['bg', ['wk=writen', '$k', 200_000]],
        ['ck=close', '$k'],
        ['o=open', '/orphan', O_CREATE | O_RDWR],
        ['u=unlink', '/orphan'],
        ['bg', ['wo=writen', '$o', 200_000]],
        ['co=close', '$o'],
        ['sleep', 2000], // the writes in the background finish meanwhile
        ['s=stat', '/kept'],
      ]);
      expectResults(t, { ck: 0, wk: 200_000, u: 0, co: 0, wo: 200_000, s: { err: 0, size: 200_000 } });
    }, { file });
    assertClean(file, false, 'the unlinked file was freed once the write had ended');
  });
});
