/**
 * Recovery of a crashed fs domain (src/domains/rv6/fsclient.ts, ProgramLoader.restartFs): the
 * core restarts it once the dead instance's block I/O has landed, the new instance replays the
 * log, and the system carries on as after a power cut of the file system alone. Files open before
 * the crash are reopened by inode number before any other call goes through, whatever happened to
 * their names (renamed, unlinked); paths work at once (relative ones too), the call that met the
 * crash answers EIO unless it is a path lookup (made again); what returned
 * before the crash is on disk, and the image is fsck-clean after the session. An fs that keeps
 * crashing is given up on: every call answers EIO, and the system stays up. A property: files held
 * open across the crash, renamed or unlinked at random before it, read back what was written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ERRNO, O_CREATE, O_RDONLY, O_RDWR, SEEK_SET } from '../../src/interfaces/rv6.js';
import { expectResults, withImageFile, withRv6, type Cmd } from './helpers.js';
import { assertClean } from '../fs/helpers.js';

const EIO = -ERRNO.EIO;

test('after a crash of the fs domain: open files are reopened and go on, paths work (relative ones too), what was written is there', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['mkdir', '/d'],
      ['chdir', '/d'],
      ['f=open', 'kept', O_CREATE | O_RDWR],
      ['w1=write', '$f', 'written before the crash'],
      ['k=kcrash', 'fs', 0],
      ['w2=write', '$f', 'meets the crash'],
      ['w3=write', '$f', 'after the restart'],
      ['c=close', '$f'],
      ['rel=open', 'kept', O_RDONLY], // relative to /d, a directory of the dead instance
      ['rr=read', '$rel', 100],
      ['abs=stat', '/d/kept'],
      ['cd=chdir', '..'],
      ['g=open', 'd/kept', O_RDONLY],
      ['r=read', '$g', 100],
      ['cwd=getcwd'],
      ['n=open', '/new', O_CREATE | O_RDWR],
      ['wn=write', '$n', 'on the new instance'],
      ['d=kdomains'],
    ]);
    expectResults(t, {
      w1: 24,
      k: 0,
      w2: EIO,
      w3: 17, // a file of the dead instance, reopened: at the core's offset, 24
      c: 0,
      rr: { n: 41, text: 'written before the crashafter the restart' },
      abs: { err: 0, size: 41 },
      cd: 0,
      r: { n: 41, text: 'written before the crashafter the restart' },
      cwd: '/',
      wn: 19,
    });
    assert.ok(t.r('rel') > 0 && t.r('g') > 0 && t.r('n') > 0);
    assert.match(t.r('d'), /^fs +live +thread +\d+ +1 +1 /m, 'the fs domain faulted once and was restarted once');
    // kept, the current directory /d, and the console's device node (fds 0-2)
    assert.ok(t.logs.some((l) => /fs domain restarted and its log replayed; 3 open files reopened$/.test(l)), t.logs.join('\n'));
  });
});

test('open files are found by inode, not by name: one renamed before the crash, one unlinked before it, one unlinked after it', async () => {
  await withImageFile(async (file) => {
    await withRv6(async (t) => {
      await t.runInit([
        ['m=open', '/moved', O_CREATE | O_RDWR],
        ['wm=write', '$m', 'renamed'],
        ['l=link', '/moved', '/there'],
        ['um=unlink', '/moved'],
        ['g=open', '/gone', O_CREATE | O_RDWR],
        ['wg=write', '$g', 'no name'],
        ['ug=unlink', '/gone'],
        ['y=open', '/y', O_CREATE | O_RDWR],
        ['wy=write', '$y', 'old'],
        ['k=kcrash', 'fs', 0],
        ['s=stat', '/'], // meets the crash; made again on the new instance
        ['wm2=write', '$m', ' file'],
        ['r=open', '/there', O_RDONLY],
        ['rr=read', '$r', 20],
        ['wg2=write', '$g', ' left'],
        ['lg=lseek', '$g', 0, SEEK_SET],
        ['rg=read', '$g', 20],
        ['fg=fstat', '$g'],
        ['uy=unlink', '/y'],
        ['h=open', '/y', O_CREATE | O_RDWR], // a new file: the old /y is still open, so its inode is not free
        ['wh=write', '$h', 'a new file'],
        ['ly=lseek', '$y', 0, SEEK_SET],
        ['ry=read', '$y', 10],
        ['lh=lseek', '$h', 0, SEEK_SET],
        ['rh=read', '$h', 20],
        ['cm=close', '$m'],
        ['cg=close', '$g'],
        ['cy=close', '$y'],
        ['ch=close', '$h'],
        ['after=stat', '/gone'],
      ]);
      expectResults(t, {
        um: 0, ug: 0, k: 0, s: { err: 0 },
        wm2: 5, rr: { n: 12, text: 'renamed file' },
        wg2: 5, rg: { n: 12, text: 'no name left' }, fg: { err: 0, nlink: 0, size: 12 },
        uy: 0, wh: 10, ry: { n: 3, text: 'old' }, rh: { n: 10, text: 'a new file' },
        cm: 0, cg: 0, cy: 0, ch: 0, after: { err: -ERRNO.ENOENT },
      });
      assert.notEqual(t.r('fg').ino, 0);
    }, { file });
    assertClean(file, false, 'the unlinked files were freed at their close, no orphan is left');
  });
});

test('the path lookup that meets the crash is made again on the new instance', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['f=open', '/x', O_CREATE | O_RDWR],
      ['w=write', '$f', 'x'],
      ['k=kcrash', 'fs', 0],
      ['s=stat', '/x'],
      ['o=open', '/x', O_RDONLY],
      ['r=read', '$o', 10],
    ]);
    expectResults(t, { k: 0, s: { err: 0, size: 1 }, r: { n: 1, text: 'x' } });
  });
});

test('an fs domain that keeps crashing is given up on: EIO from then on, and the system stays up', async () => {
  await withRv6(async (t) => {
    const crashes: Cmd[] = [];
    for (let i = 0; i < 4; i++) crashes.push([`k${i}=kcrash`, 'fs', 0], [`s${i}=stat`, '/']);
    await t.runInit([...crashes, ['after=stat', '/'], ['p=getpid']]);
    expectResults(t, { s0: { err: 0 }, s1: { err: 0 }, s2: { err: 0 }, s3: { err: EIO }, after: { err: EIO }, p: 1 });
    assert.ok(t.logs.some((l) => /4th failure within 10 s: file-system calls return EIO/.test(l)), t.logs.join('\n'));
  });
});

test('fs crashes at many points of a write workload on the NVMe stack: what returned is on disk, the image stays fsck-clean', async () => {
  // Six files written after the fault is armed: about three fs calls each, so each point is met.
  for (const at of [0, 1, 2, 4, 7, 11, 15]) {
    await withImageFile(async (file) => {
      const files = ['/a', '/b', '/c', '/d', '/e', '/f', '/g', '/z'];
      const last = files.length - 1;
      const size = (i: number): number => 20_000 + i;
      const returned: number[] = [];
      await withRv6(async (t) => {
        const cmds: Cmd[] = [];
        files.forEach((p, i) => {
          if (i === 1) cmds.push(['k=kcrash', 'fs', at]);
          if (i === last) cmds.push(['sync=stat', '/']); // the recovery is over by now
          cmds.push([`f${i}=open`, p, O_CREATE | O_RDWR], [`w${i}=writen`, `$f${i}`, size(i), String(i)], [`c${i}=close`, `$f${i}`]);
        });
        await t.runInit(cmds);
        assert.equal(t.domain('fs')?.restarts, 1, `crash ${at} calls in: the fs domain was restarted once`);
        files.forEach((_, i) => returned.push(t.r(`w${i}`)));
      }, { file });
      assert.equal(returned[0], size(0), 'the write before the crash was armed returned in full');
      assert.equal(returned[last], size(last), `the last write, after the restart, returned in full (crash ${at}: ${JSON.stringify(returned)})`);
      assertClean(file, true, `crash ${at} calls in`);
      await withRv6(async (t) => {
        await t.runInit(files.map((p, i): Cmd => [`s${i}=stat`, p]));
        files.forEach((p, i) => {
          const st = t.r(`s${i}`);
          if (returned[i] === size(i)) assert.equal(st.size, size(i), `crash ${at}: ${p}, whose write returned, is on disk in full`);
          else assert.ok(st.err < 0 || st.size <= size(i), `crash ${at}: ${p} (write answered ${returned[i]}) is at most what was written`);
        });
      }, { file });
    });
  }
});

/**
 * One step of the reopen property's workload on file i (0..2, each opened once at the start and
 * held to the end): append a text, rename it (a link to a new name and an unlink of the old one),
 * or unlink its name (it stays open, with no name left; later steps on its name skip).
 */
type Step = ['write', number, string] | ['rename', number] | ['unlink', number];

test('property: files held open across a crash of the fs domain keep their contents and go on, whatever was renamed or unlinked before it; fsck clean after', async () => {
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constant('write' as const), fc.nat(2), fc.stringMatching(/^[a-z]{1,12}$/)) },
    fc.tuple(fc.constant('rename' as const), fc.nat(2)),
    fc.tuple(fc.constant('unlink' as const), fc.nat(2)),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 10 }), fc.nat(), fc.array(stepArb, { maxLength: 4 }), async (before, at, after) => {
      const crashAt = at % (before.length + 1);
      const steps = [...before.slice(0, crashAt), 'crash' as const, ...before.slice(crashAt), ...after];
      const names = ['/f0', '/f1', '/f2'] as (string | null)[];
      const texts = ['', '', ''];
      let renames = 0;
      const cmds: Cmd[] = names.map((n, i): Cmd => [`fd${i}=open`, n!, O_CREATE | O_RDWR]);
      steps.forEach((s, k) => {
        if (s === 'crash') {
          cmds.push(['k=kcrash', 'fs', 0], ['s=stat', '/']); // the stat meets the crash, and is made again
          return;
        }
        const i = s[1];
        const name = names[i];
        if (s[0] === 'write') {
          cmds.push([`w${k}=write`, `$fd${i}`, s[2]]);
          texts[i] += s[2];
        } else if (name === null) {
          // its name is gone already: nothing to rename or unlink
        } else if (s[0] === 'rename') {
          const to = `/r${renames++}`;
          cmds.push([`l${k}=link`, name, to], [`u${k}=unlink`, name]);
          names[i] = to;
        } else {
          cmds.push([`u${k}=unlink`, name]);
          names[i] = null;
        }
      });
      names.forEach((_, i) => cmds.push([`z${i}=lseek`, `$fd${i}`, 0, SEEK_SET], [`r${i}=read`, `$fd${i}`, 200], [`st${i}=fstat`, `$fd${i}`], [`c${i}=close`, `$fd${i}`]));
      await withImageFile(async (file) => {
        await withRv6(async (t) => {
          await t.runInit(cmds);
          const what = JSON.stringify(steps);
          steps.forEach((s, k) => {
            if (s !== 'crash' && s[0] === 'write') assert.equal(t.r(`w${k}`), s[2].length, `${what}: write ${k}`);
          });
          names.forEach((n, i) => {
            assert.deepEqual(t.r(`r${i}`), { n: texts[i]!.length, text: texts[i] }, `${what}: file ${i} read back through its fd`);
            assert.equal(t.r(`st${i}`).nlink, n === null ? 0 : 1, `${what}: file ${i}'s links`);
            assert.equal(t.r(`c${i}`), 0);
          });
          assert.equal(t.domain('fs')?.restarts, 1, `${what}: the fs domain was restarted once`);
        }, { file });
        assertClean(file, false, 'the files with no name left were freed at their close');
      });
    }),
    { numRuns: 25 },
  );
});
