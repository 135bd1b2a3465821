/**
 * The rv6 console through the core: canonical input (whole lines, partial reads, text typed
 * ahead), Ctrl-D (end of file for the pending or the next read), a hang-up (end of file for
 * every read after what was typed), Ctrl-C (ends the foreground
 * process group with STATUS_INTERRUPTED, never init, discards typed-ahead input), tcsetpgrp, a read
 * by a group other than the foreground one (EIO, the line left for the foreground).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRNO, PGID_FOREGROUND, PGID_INHERIT, PGID_NEW, STATUS_INTERRUPTED } from '../../src/interfaces/rv6.js';
import { child, expectResults, withRv6 } from './helpers.js';

test('typed-ahead lines, partial reads, Ctrl-D makes a partial line readable then reads 0', async () => {
  await withRv6(async (t) => {
    const c = t.sys.core;
    c.consoleInput('hello\nab');
    c.consoleInput('c\nde');
    c.consoleEof();
    c.consoleInput('after\n');
    c.consoleInput('héllo wörld\n');
    await t.runInit([
      ['r1=read', 0, 2],
      ['r2=read', 0, 100],
      ['r3=read', 0, 100],
      ['r4=read', 0, 100],
      ['r5=read', 0, 100],
      ['r6=read', 0, 100],
      ['r7=read', 0, 100],
    ]);
    expectResults(t, {
      r1: { n: 2, text: 'he' }, r2: { n: 4, text: 'llo\n' }, r3: { n: 4, text: 'abc\n' }, r4: { n: 2, text: 'de' },
      r5: { n: 0, text: '' }, r6: { n: 6, text: 'after\n' }, r7: { n: 14, text: 'héllo wörld\n' },
    });
  });
});

test('a read blocks until a whole line is typed; Ctrl-D ends a blocked read', async () => {
  await withRv6(async (t) => {
    await t.startInit([['echo', 'ready'], ['r1=read', 0, 100], ['echo', 'ready2'], ['r2=read', 0, 100], ['return', 4]]);
    await t.waitLine('echo');
    t.sys.core.consoleInput('no newline yet');
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!t.lines().some((l) => l.op === 'r1'), 'read returned before the line was complete');
    t.sys.core.consoleInput('... now\n');
    assert.deepEqual(await t.waitLine('r1'), { n: 22, text: 'no newline yet... now\n' });
    await t.until((tt) => tt.lines().some((l) => l.r === 'ready2'), 'ready2');
    await new Promise((r) => setTimeout(r, 20));
    t.sys.core.consoleEof();
    assert.deepEqual(await t.waitLine('r2'), { n: 0, text: '' });
    assert.equal(await t.sys.core.waitInit(), 4);
  });
});

test('a hang-up: what was typed is read, then every read returns 0, a blocked one at once', async () => {
  await withRv6(async (t) => {
    const c = t.sys.core;
    c.consoleInput('line\npartial');
    c.consoleHangup();
    c.consoleInput('nothing arrives after a hang-up\n');
    await t.runInit([['r1=read', 0, 100], ['r2=read', 0, 100], ['r3=read', 0, 100], ['r4=read', 0, 100]]);
    expectResults(t, { r1: { n: 5, text: 'line\n' }, r2: { n: 7, text: 'partial' }, r3: { n: 0, text: '' }, r4: { n: 0, text: '' } });
  });
  await withRv6(async (t) => {
    await t.startInit([['echo', 'ready'], ['r1=read', 0, 100], ['r2=read', 0, 100], ['return', 5]]);
    await t.waitLine('echo');
    await new Promise((r) => setTimeout(r, 20));
    t.sys.core.consoleHangup();
    assert.deepEqual(await t.waitLine('r1'), { n: 0, text: '' });
    assert.deepEqual(await t.waitLine('r2'), { n: 0, text: '' });
    assert.equal(await t.sys.core.waitInit(), 5);
  });
});

test('Ctrl-C ends the foreground group (STATUS_INTERRUPTED), never init, and drops typed-ahead input', async () => {
  await withRv6(async (t) => {
    await t.startInit([
      // PGID_FOREGROUND: a's read, which may come before init's next call, is a foreground one.
      ['a=spawn', 'rv6_probe', child(['read', 0, 10]), 0, 1, 2, PGID_FOREGROUND],
      ['b=spawn', 'rv6_probe', child(['hang']), 0, 1, 2, '$a'],
      ['bystander=spawn', 'rv6_probe', child(['sleep', 400], ['return', 6]), 0, 1, 2, PGID_NEW],
      ['fg=tcsetpgrp', '$a'],
      ['wa=wait', '$a'],
      ['wb=wait', '$b'],
      ['fg1=tcsetpgrp', 1],
      ['c=spawn', 'rv6_probe', child(['hang']), 0, 1, 2, PGID_INHERIT],
      ['echo', 'init is foreground'],
      ['wc=wait', '$c'],
      ['wbys=wait', '$bystander'],
      ['r=read', 0, 100],
      ['return', 0],
    ]);
    await t.waitLine('fg');
    t.sys.core.consoleInterrupt();
    await t.waitLine('wb');
    await t.waitLine('echo');
    t.sys.core.consoleInput('typed ahead\n');
    t.sys.core.consoleInterrupt();
    await t.waitLine('wc');
    t.sys.core.consoleInput('fresh\n');
    assert.equal(await t.sys.core.waitInit(), 0);
    expectResults(t, {
      wa: { pid: t.r('a'), status: STATUS_INTERRUPTED }, wb: { pid: t.r('b'), status: STATUS_INTERRUPTED },
      wc: { pid: t.r('c'), status: STATUS_INTERRUPTED }, wbys: { status: 6 }, r: { text: 'fresh\n' },
    });
  });
});

test('a read of the console by a group other than the foreground one fails with EIO and leaves the line', async () => {
  await withRv6(async (t) => {
    t.sys.core.consoleInput('for init\n');
    await t.runInit([
      ['bg=spawn', 'rv6_probe', child(['bgr=read', 0, 100]), 0, 1, 2, PGID_NEW],
      ['wbg=wait', '$bg'],
      ['r=read', 0, 100],
    ]);
    expectResults(t, { bgr: { n: -ERRNO.EIO } }, t.r('bg'));
    expectResults(t, { r: { n: 9, text: 'for init\n' } });
  });
});

test('tcsetpgrp(0): no foreground group, Ctrl-C ends nobody', async () => {
  await withRv6(async (t) => {
    await t.startInit([
      ['a=spawn', 'rv6_probe', child(['sleep', 150], ['return', 2]), 0, 1, 2, PGID_INHERIT],
      ['fg=tcsetpgrp', 0],
      ['wa=wait', '$a'],
    ]);
    await t.waitLine('fg');
    t.sys.core.consoleInterrupt();
    assert.equal(await t.sys.core.waitInit(), 0);
    expectResults(t, { wa: { status: 2 } });
  });
});
