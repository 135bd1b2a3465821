/**
 * rv6 pipes through the core, between processes: a bounded buffer (a writer blocks when it is
 * full), partial reads, EOF once every write end is closed (dup'ed ones too, and those of a killed
 * process), EPIPE without readers (also in the middle of a blocked write), writes that never
 * interleave, ESPIPE/EBADF/ENOTDIR on pipe descriptors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PGID_INHERIT, SEEK_SET, STATUS_KILLED } from '../../src/interfaces/rv6.js';
import { child, ERRNO, expectResults, withRv6 } from './helpers.js';

const E = (name: keyof typeof ERRNO): number => -ERRNO[name];
/** Spawn a probe with these stdin/stdout; it prints its results to fd 2 (the console). */
const spawnWith = (label: string, stdin: unknown, stdout: unknown, ...cmds: unknown[][]): unknown[] =>
  [`${label}=spawn`, 'rv6_probe', child(['out', 2], ...cmds), stdin, stdout, 2, PGID_INHERIT];

test('a producer and a consumer move 10000 bytes through the 4 KiB pipe', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['p=pipe'],
      spawnWith('wr', 0, '$p.wfd', ['w=writen', 1, 10_000, 'y']),
      spawnWith('rd', '$p.rfd', 1, ['all=readall', 0]),
      ['close', '$p.wfd'],
      ['close', '$p.rfd'],
      ['w1=wait', '$wr'],
      ['w2=wait', '$rd'],
    ]);
    expectResults(t, { p: { err: 0, rfd: 3, wfd: 4 }, w1: { status: 0 }, w2: { status: 0 } });
    assert.equal(t.r('w', t.r('wr')), 10_000);
    assert.deepEqual(t.r('all', t.r('rd')), { n: 10_000, text: 'y'.repeat(10_000) });
  });
});

test('partial reads, EOF after the last write end (a dup too), EPIPE, ESPIPE, EBADF, fstat', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['p=pipe'],
      ['w=write', '$p.wfd', 'abc'],
      ['st=fstat', '$p.rfd'],
      ['sk=lseek', '$p.rfd', 0, SEEK_SET],
      ['rw=read', '$p.wfd', 1],
      ['wr=write', '$p.rfd', 'x'],
      ['gd=getdents', '$p.rfd'],
      ['r1=read', '$p.rfd', 2],
      ['d=dup', '$p.wfd'],
      ['close', '$p.wfd'],
      ['r2=read', '$p.rfd', 10],
      ['w2=write', '$d', 'de'],
      ['close', '$d'],
      ['r3=read', '$p.rfd', 10],
      ['r4=read', '$p.rfd', 10],
      ['q=pipe'],
      ['close', '$q.rfd'],
      ['ep=write', '$q.wfd', 'x'],
    ]);
    expectResults(t, {
      w: 3, st: { err: 0, type: 0, dev: 0, size: 3 }, sk: E('ESPIPE'), rw: { n: E('EBADF') }, wr: E('EBADF'), gd: { n: E('ENOTDIR') },
      r1: { n: 2, text: 'ab' }, r2: { n: 1, text: 'c' }, w2: 2, r3: { n: 2, text: 'de' }, r4: { n: 0 }, ep: E('EPIPE'),
    });
  });
});

test('a blocked writer gets the bytes it put in when the reader goes, then EPIPE', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['p=pipe'],
      spawnWith('wr', 0, '$p.wfd', ['w1=writen', 1, 10_000], ['w2=writen', 1, 1]),
      ['close', '$p.wfd'],
      ['sleep', 100],
      ['ps=procs'],
      ['r=read', '$p.rfd', 10],
      ['sleep', 50],
      ['close', '$p.rfd'],
      ['w=wait', '$wr'],
    ]);
    const wr = t.r('wr');
    assert.match(t.r('ps'), new RegExp(`^${wr} 1 1 sleep rv6_probe$`, 'm'), 'the writer blocks on the full pipe');
    assert.equal(t.r('r').n, 10);
    assert.equal(t.r('w1', wr), 4096 + 10, 'the buffer, plus the room the read made');
    assert.equal(t.r('w2', wr), E('EPIPE'));
    assert.deepEqual(t.r('w'), { pid: wr, status: 0 });
  });
});

test('ending a process closes its pipe ends: EPIPE for a blocked writer, EOF for a blocked reader', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['p=pipe'],
      spawnWith('sink', '$p.rfd', 1, ['hang']),
      spawnWith('wr', 0, '$p.wfd', ['w1=writen', 1, 10_000], ['w2=writen', 1, 1]),
      ['close', '$p.rfd'],
      ['close', '$p.wfd'],
      ['q=pipe'],
      spawnWith('src', 0, '$q.wfd', ['hang']),
      spawnWith('rd', '$q.rfd', 1, ['r=read', 0, 10]),
      ['close', '$q.rfd'],
      ['close', '$q.wfd'],
      ['sleep', 100],
      ['kill', '$sink'],
      ['kill', '$src'],
      ['wait', '$sink'],
      ['wait', '$src'],
      ['ww=wait', '$wr'],
      ['wrd=wait', '$rd'],
    ]);
    assert.equal(t.r('w1', t.r('wr')), 4096);
    assert.equal(t.r('w2', t.r('wr')), E('EPIPE'));
    assert.deepEqual(t.r('r', t.r('rd')), { n: 0, text: '' });
    expectResults(t, { ww: { status: 0 }, wrd: { status: 0 } });
    assert.notEqual(t.r('ww').status, STATUS_KILLED);
  });
});

test('concurrent writers: every write arrives whole, never interleaved with another', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['p=pipe'],
      spawnWith('a', 0, '$p.wfd', ['writen', 1, 5000, 'a']),
      spawnWith('b', 0, '$p.wfd', ['writen', 1, 5000, 'b']),
      spawnWith('c', 0, '$p.wfd', ['writen', 1, 5000, 'c']),
      ['close', '$p.wfd'],
      ['all=readall', '$p.rfd'],
      ['wait', -1],
      ['wait', -1],
      ['wait', -1],
    ]);
    const text: string = t.r('all').text;
    assert.equal(text.length, 15_000);
    const runs = text.match(/(.)\1*/g)!;
    assert.deepEqual(runs.map((r) => r.length), [5000, 5000, 5000], `runs: ${runs.map((r) => `${r[0]}x${r.length}`).join(' ')}`);
    assert.deepEqual(runs.map((r) => r[0]).sort(), ['a', 'b', 'c']);
  });
});
