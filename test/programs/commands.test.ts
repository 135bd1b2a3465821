/**
 * Every user program end to end, run from the shell on rv6 (RAM disk, booted through init): the
 * common forms of each, their error messages (`prog: subject: message`) and exit statuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { programsImage, withSession, type Session } from './session.js';

const PROGRAMS = ['benchfs', 'cat', 'cp', 'crash', 'domains', 'echo', 'grep', 'init', 'kill', 'ln', 'ls', 'mkdir', 'mv', 'ps', 'pwd', 'rm', 'rmdir', 'sh', 'sleep', 'uptime', 'wc'];

/** `ls` lines as [name, type, inode, size]. */
function lsRows(out: string): [string, number, number, number][] {
  return out.trimEnd().split('\n').map((line) => {
    const m = /^(.+?) +(\d+) (\d+) (\d+)$/.exec(line);
    assert.ok(m, `an ls line: ${JSON.stringify(line)}`);
    return [m[1]!, Number(m[2]), Number(m[3]), Number(m[4])];
  });
}

async function expectStatus(s: Session, line: string, out: string | RegExp, status: number): Promise<void> {
  const r = await s.status(line);
  if (typeof out === 'string') assert.equal(r.out, out, line);
  else assert.match(r.out, out, line);
  assert.equal(r.status, status, `status of ${line}`);
}

const NUMBERED = Array.from({ length: 3000 }, (_, i) => `line ${i + 1}\n`).join('');

test('init made /dev/console; ls lists directories, files and errors like xv6', async () => {
  await withSession(async (s) => {
    const root = lsRows(await s.run('ls'));
    assert.deepEqual(root.map((r) => r[0]), ['.', '..', 'bin', 'notes', 'dev']);
    const row = (name: string) => root.find((r) => r[0] === name)!;
    assert.equal(row('.')[2], 1, 'the root directory is inode 1');
    assert.equal(row('bin')[1], 1, 'a directory is type 1');
    assert.deepEqual([row('notes')[1], row('notes')[3]], [2, 6], 'a file is type 2, with its size');
    assert.equal(await s.run('ls /'), await s.run('ls .'));
    const dev = lsRows(await s.run('ls /dev'));
    assert.deepEqual(dev.find((r) => r[0] === 'console')?.[1], 3, 'init created the console device');
    assert.deepEqual(lsRows(await s.run('ls bin')).map((r) => r[0]).filter((n) => n !== '.' && n !== '..').sort(), PROGRAMS);
    const one = await s.run('ls notes');
    assert.match(one, /^notes {10}2 \d+ 6\n$/, 'a file: one line, the name padded to 14');
    await expectStatus(s, 'ls nosuch notes', /^ls: nosuch: No such file or directory\nnotes +2 \d+ 6\n$/, 1);
  }, programsImage({ files: { notes: 'hello\n' } }));
});

test('echo, cat, wc', async () => {
  const image = programsImage({ files: { a: 'alpha\nbeta gamma\n', b: 'one two\tthree\n\nfour', n: NUMBERED } });
  await withSession(async (s) => {
    assert.equal(await s.run('echo'), '\n');
    assert.equal(await s.run('echo -n no newline; echo'), 'no newline\n');
    assert.equal(await s.run('echo a   b'), 'a b\n');
    assert.equal(await s.run('cat a'), 'alpha\nbeta gamma\n');
    assert.equal(await s.run('cat a b'), 'alpha\nbeta gamma\none two\tthree\n\nfour');
    assert.equal(await s.run('echo; cat a | cat - b'), '\nalpha\nbeta gamma\none two\tthree\n\nfour');
    assert.equal(await s.run('cat < a'), 'alpha\nbeta gamma\n');
    // An error does not stop cat: the other files are copied (stdout to `out`, the error to the console).
    await expectStatus(s, 'cat a nosuch b > out; cat out', 'cat: nosuch: No such file or directory\nalpha\nbeta gamma\none two\tthree\n\nfour', 0);
    await expectStatus(s, 'cat nosuch', 'cat: nosuch: No such file or directory\n', 1);
    assert.equal(await s.run('cat n | wc'), `3000 6000 ${NUMBERED.length}\n`, 'many blocks through a pipe');
    assert.equal(await s.run('wc a b'), '2 3 17 a\n2 4 19 b\n4 7 36 total\n');
    assert.equal(await s.run('wc -l a'), '2 a\n');
    assert.equal(await s.run('wc -w -c a'), '3 17 a\n');
    assert.equal(await s.run('wc -lc < b'), '2 19\n');
    await expectStatus(s, 'wc -x a', "wc: unknown option '-x'\nusage: wc [-l] [-w] [-c] [FILE...]\n", 2);
    await expectStatus(s, 'cat /', 'cat: /: Is a directory\n', 1);
    // A writer whose reader is gone ends silently (as by SIGPIPE), with print or with copyFd.
    await expectStatus(s, 'cat n | sh -c "exit 0"', '', 0);
    await expectStatus(s, 'grep line n | sh -c "exit 0"', '', 0);
    await expectStatus(s, 'wc nosuch a', 'wc: nosuch: No such file or directory\n2 3 17 a\n2 3 17 total\n', 1);
  }, image);
});

test('cat and grep refuse an input that is their own output file (as GNU), which would never end', async () => {
  await withSession(async (s) => {
    await s.run('echo one > f; echo two > g');
    await expectStatus(s, 'cat f >> f', 'cat: f: input file is output file\n', 1);
    await expectStatus(s, 'cat g f g >> f', 'cat: f: input file is output file\n', 1);
    assert.equal(await s.run('cat f'), 'one\ntwo\ntwo\n', 'the other inputs were copied');
    await expectStatus(s, 'cat < g >> g', 'cat: -: input file is output file\n', 1);
    await expectStatus(s, 'cat g f > f', 'cat: f: input file is output file\n', 1);
    assert.equal(await s.run('cat f'), 'two\n');
    // Truncated first, f is empty when cat opens it, but still its output: another writer could
    // refill it while cat reads (`cat f >> f | pwd > f` grew f for ever), so refused all the same.
    await expectStatus(s, 'cat f > f', 'cat: f: input file is output file\n', 1);
    assert.equal(await s.run('wc -c f'), '0 f\n');
    await expectStatus(s, 'echo one > f; cat f >> f | pwd > f', 'cat: f: input file is output file\n', 0); // a pipeline's status is its last command's
    assert.equal(await s.run('cat f'), '/\n', 'only pwd wrote');
    // Another name of the same file is the same file; a copy is not.
    await expectStatus(s, 'ln g h; cat h >> g', 'cat: h: input file is output file\n', 1);
    await expectStatus(s, 'cp g c; cat c >> g', '', 0);
    assert.equal(await s.run('cat g'), 'two\ntwo\n');
    await expectStatus(s, 'echo one > f; grep o g f > f', 'grep: f: input file is also the output\n', 2);
    assert.equal(await s.run('cat f'), 'g:two\ng:two\n');
    await expectStatus(s, 'grep -n o < g >> g', 'grep: (standard input): input file is also the output\n', 2);
    await expectStatus(s, 'grep -c o g >> g', '', 0);
    assert.equal(await s.run('cat g'), 'two\ntwo\n2\n', 'with -c the count is written after the reading');
  });
});

test('grep: substrings, the regex subset, -v -c -n -i, several files, statuses', async () => {
  const image = programsImage({ files: { f: 'apple\nbanana\ncherry\nApricot\n', g: 'grape\npineapple\n' } });
  await withSession(async (s) => {
    await expectStatus(s, 'grep an f', 'banana\n', 0);
    await expectStatus(s, 'grep zzz f', '', 1);
    assert.equal(await s.run('grep ^a f'), 'apple\n');
    assert.equal(await s.run('grep e$ f g'), 'f:apple\ng:grape\ng:pineapple\n');
    assert.equal(await s.run('grep "b.n.*a" f'), 'banana\n');
    assert.equal(await s.run('grep -v a f'), 'cherry\nApricot\n');
    assert.equal(await s.run('grep -c p f g'), 'f:2\ng:2\n');
    assert.equal(await s.run('grep -n -i ap f'), '1:apple\n4:Apricot\n');
    assert.equal(await s.run('cat f | grep -c r'), '2\n');
    await expectStatus(s, 'grep a nosuch f', /^grep: nosuch: No such file or directory\n(f:.*\n)+$/, 2);
    await expectStatus(s, 'grep', 'usage: grep [-v] [-c] [-n] [-i] PATTERN [FILE...]\n', 2);
    await expectStatus(s, 'grep "a\\\\" f', 'grep: "a\\\\": trailing backslash\n', 2);
  }, image);
});

test('mkdir, rmdir, rm with several arguments and their errors', async () => {
  await withSession(async (s) => {
    await expectStatus(s, 'mkdir d1 d2 d3', '', 0);
    await expectStatus(s, 'mkdir d1 d4', 'mkdir: d1: File exists\n', 1);
    assert.deepEqual(lsRows(await s.run('ls')).filter((r) => r[0].startsWith('d') && r[0] !== 'dev').map((r) => [r[0], r[1]]), [['d1', 1], ['d2', 1], ['d3', 1], ['d4', 1]]);
    await expectStatus(s, 'echo x > d1/f; rmdir d1 d2', 'rmdir: d1: Directory not empty\n', 1);
    await expectStatus(s, 'rmdir d2', 'rmdir: d2: No such file or directory\n', 1);
    await expectStatus(s, 'rm d1/f d1 nosuch d3', 'rm: d1: Is a directory\nrm: nosuch: No such file or directory\nrm: d3: Is a directory\n', 1);
    await expectStatus(s, 'rmdir d1 d3 d4', '', 0);
    await expectStatus(s, 'echo > a; echo > b; rm a b; cat a', 'cat: a: No such file or directory\n', 1);
    await expectStatus(s, 'mkdir', 'usage: mkdir [-p] DIR...\n', 2);
    await expectStatus(s, 'mkdir -x y', "mkdir: unknown option '-x'\nusage: mkdir [-p] DIR...\n", 2);
    // mkdir -p: the missing directories along the path; existing ones are no error; a file in the way is.
    await expectStatus(s, 'mkdir -p p/q//r/ p/q /p2/./s; ls p/q/r /p2/s | wc -l', '4\n', 0);
    await expectStatus(s, 'echo > pf; mkdir -p pf/x p/q/r', 'mkdir: pf/x: Not a directory\n', 1);
    await expectStatus(s, "mkdir -p '' p", 'mkdir: : No such file or directory\n', 1);
    await expectStatus(s, 'rm', 'usage: rm [-r] FILE...\n', 2);
    await expectStatus(s, 'rm -x a', "rm: unknown option '-x'\nusage: rm [-r] FILE...\n", 2);
    // rm -r: a tree, depth first; files and missing names as without -r; '.', '..', '/' refused.
    await expectStatus(s, 'mkdir t t/u t/u/v; echo 1 > t/f; echo 2 > t/u/v/g; ln t/f keep; echo 3 > lone', '', 0);
    await expectStatus(s, 'rm -r t lone nosuch', 'rm: nosuch: No such file or directory\n', 1);
    await expectStatus(s, 'ls t lone; cat keep', 'ls: t: No such file or directory\nls: lone: No such file or directory\n1\n', 0);
    await expectStatus(s, 'mkdir w; cd w; rm -r . ..; cd ..; rm -R w/ /', "rm: refusing to remove '.', '..' or '/': skipping '.'\nrm: refusing to remove '.', '..' or '/': skipping '..'\nrm: refusing to remove '.', '..' or '/': skipping '/'\n", 1);
    await expectStatus(s, 'ls w', 'ls: w: No such file or directory\n', 1);
  });
});

test('ln, mv, cp: files, into directories, and their errors', async () => {
  const image = programsImage({ files: { n: NUMBERED, a: 'A\n', b: 'B\n' } });
  await withSession(async (s) => {
    // ln: a second name for the same inode.
    await expectStatus(s, 'ln a a2', '', 0);
    const rows = lsRows(await s.run('ls a a2'));
    assert.equal(rows[0]![2], rows[1]![2], 'same inode');
    await expectStatus(s, 'ln a a2', 'ln: a2: File exists\n', 1);
    await expectStatus(s, 'mkdir d; ln a b d; cat d/a d/b', 'A\nB\n', 0);
    await expectStatus(s, 'ln a b notadir', 'ln: notadir: Not a directory\n', 1);
    await expectStatus(s, 'ln nosuch x', 'ln: nosuch: No such file or directory\n', 1);
    await expectStatus(s, 'ln a nodir/x', 'ln: nodir/x: No such file or directory\n', 1);
    // mv: renames, replaces, moves into a directory, moves directories; refuses the same file and
    // a directory into itself.
    await expectStatus(s, 'mv a2 a3; cat a3; cat a2', 'A\ncat: a2: No such file or directory\n', 1);
    await expectStatus(s, 'echo old > t; mv a3 t; cat t', 'A\n', 0);
    await expectStatus(s, 'mkdir e; mv t b e; cat e/t e/b; ls t', 'A\nB\nls: t: No such file or directory\n', 1);
    await expectStatus(s, 'mv e/t e/t', "mv: 'e/t' and 'e/t' are the same file\n", 1);
    await expectStatus(s, 'mv d e; cat e/d/a; ls d', 'A\nls: d: No such file or directory\n', 1);
    await expectStatus(s, 'mv e e/d', "mv: cannot move 'e' to 'e/d/e': Invalid argument\n", 1);
    await expectStatus(s, 'cd e/d; mv /e /e2; pwd; cat a; cd /', '/e2/d\nA\n', 0);
    await expectStatus(s, 'mkdir full; echo > full/x; mv e2 full/x', "mv: cannot move 'e2' to 'full/x': Not a directory\n", 1);
    await expectStatus(s, 'mv nosuch x', 'mv: nosuch: No such file or directory\n', 1);
    // cp: a multi-block file, byte for byte; into a directory; errors.
    await expectStatus(s, 'cp n n2; wc n2; grep -n "^line 2999$" n2', `3000 6000 ${NUMBERED.length} n2\n2999:line 2999\n`, 0);
    const [orig, copy] = lsRows(await s.run('ls n n2'));
    assert.notEqual(orig![2], copy![2], 'a copy is a new inode');
    await expectStatus(s, 'echo longer than before > c; echo short > c2; cp c2 c; cat c', 'short\n', 0);
    await expectStatus(s, 'mkdir f; cp c c2 f; cat f/c f/c2', 'short\nshort\n', 0);
    await expectStatus(s, 'cp c c', "cp: 'c' and 'c' are the same file\n", 1);
    await expectStatus(s, 'cp f g', 'cp: f: Is a directory\n', 1);
    await expectStatus(s, 'cp nosuch c2 f', 'cp: nosuch: No such file or directory\n', 1);
    await expectStatus(s, 'cp c', 'usage: cp SRC DST | cp SRC... DIR\n', 2);
  }, image);
});

test('cat, ls, rmdir, ln, mv, cp take no options: `--` ends them (POSIX guideline 10), and an unknown one is a usage error', async () => {
  await withSession(async (s) => {
    // Names that look like options, reached after `--` (before, `--` itself was taken for a file).
    await expectStatus(s, 'echo x > ./-n; mkdir ./-d; cat -- -n; ls -- -d | wc -l', 'x\n2\n', 0);
    await expectStatus(s, 'ln -- -n -l; mv -- -l -m; cp -- -m -c; cat -- -c -m; ls -- -l', 'x\nx\nls: -l: No such file or directory\n', 1);
    await expectStatus(s, 'rmdir -- -d; ls -- -d', 'ls: -d: No such file or directory\n', 1);
    // An option none of them has is refused with the synopsis, not taken for a file.
    await expectStatus(s, 'cat -n', "cat: unknown option '-n'\nusage: cat [FILE...]\n", 2);
    await expectStatus(s, 'ls -l', "ls: unknown option '-l'\nusage: ls [PATH...]\n", 2);
    await expectStatus(s, 'rmdir -p x', "rmdir: unknown option '-p'\nusage: rmdir DIR...\n", 2);
    await expectStatus(s, 'mv -f -c x', "mv: unknown option '-f'\nusage: mv SRC DST | mv SRC... DIR\n", 2);
    // `-` alone is an operand: cat's stdin.
    await expectStatus(s, 'echo in | cat -', 'in\n', 0);
  });
});

test('sleep, uptime, kill, ps', async () => {
  await withSession(async (s) => {
    const up = (text: string): number => Number(/\((\d+) ms\)/.exec(text)![1]);
    const t0 = up(await s.run('uptime'));
    assert.match(await s.run('uptime'), /^up 0:00:\d\d\.\d{3} \(\d+ ms\)\n$/);
    await expectStatus(s, 'sleep 0.25', '', 0);
    assert.ok(up(await s.run('uptime')) - t0 >= 250, 'sleep 0.25 takes at least 250 ms');
    await expectStatus(s, 'sleep x', "sleep: invalid time interval 'x'\nusage: sleep SECONDS\n", 2);
    await expectStatus(s, 'sleep', 'usage: sleep SECONDS\n', 2);
    // The programs that take no arguments refuse them (Ulib.noOperands) rather than ignore them.
    await expectStatus(s, 'uptime x', "uptime: extra operand 'x'\nusage: uptime\n", 2);
    await expectStatus(s, 'uptime -p', "uptime: unknown option '-p'\nusage: uptime\n", 2);
    await expectStatus(s, 'ps -e', "ps: unknown option '-e'\nusage: ps\n", 2);
    await expectStatus(s, 'ps 1', "ps: extra operand '1'\nusage: ps\n", 2);
    await expectStatus(s, 'domains -- x', "domains: extra operand 'x'\nusage: domains\n", 2);
    assert.match(await s.run('uptime --'), /^up 0:00:\d\d\.\d{3} \(\d+ ms\)\n$/, '`--` alone is no operand');
    const ps = await s.run('ps');
    assert.match(ps, /^PID PPID PGID STATE NAME\n1 0 1 \w+ init\n2 1 2 \w+ sh\n(\d+) 2 \1 \w+ ps\n$/);
    await expectStatus(s, 'kill 999', 'kill: 999: No such process\n', 1);
    await expectStatus(s, 'kill x', 'kill: x: not a process id\nusage: kill PID...\n', 2);
    const pid = /\[(\d+)\]/.exec(await s.run('sleep 60 &'))![1];
    await expectStatus(s, `kill ${pid}; wait`, '', 0);
    assert.doesNotMatch(await s.run('ps'), / sleep\n/, 'the killed sleep was reaped');
  });
});

test('domains and crash', async () => {
  await withSession(async (s) => {
    const table = await s.run('domains');
    assert.match(table, /^NAME +STATE +PLACE +CALLS +FAULTS +RESTARTS +HEAP +SLOTS\n/);
    for (const d of ['membdev', 'fs', 'rv6', 'init.1', 'sh.2']) assert.match(table, new RegExp(`\\n${d.replace('.', '\\.')} +live `), d);
    await expectStatus(s, 'crash nosuch', 'crash: nosuch: no such kernel domain\n', 1);
    // A program's domain is called once, for its main: a fault armed there would never fire.
    await expectStatus(s, 'crash sh.2', "crash: sh.2 is a program's domain: a fault fires on a call into a domain, and a program is only called for its main (end its process with kill)\n", 1);
    await expectStatus(s, 'crash init.1 5', "crash: init.1 is a program's domain: a fault fires on a call into a domain, and a program is only called for its main (end its process with kill)\n", 1);
    await expectStatus(s, 'crash fs 1000000000', 'crash: fault armed in fs (after 1000000000 calls)\n', 0);
    await expectStatus(s, 'crash', 'usage: crash NAME [AFTER_CALLS]\n', 2);
    await expectStatus(s, 'crash fs x', 'crash: x: not a number of calls\nusage: crash NAME [AFTER_CALLS]\n', 2);
  });
});

test('crash fs: the next command runs on the restarted fs domain; a file written before is there', async () => {
  await withSession(async (s) => {
    await expectStatus(s, 'mkdir d; cd d; echo kept > f', '', 0);
    await expectStatus(s, 'crash fs', 'crash: fault armed in fs (at its next call)\n', 0);
    await expectStatus(s, 'cat f', 'kept\n', 0); // met the crash: the lookups are made again
    await expectStatus(s, 'pwd', '/d\n', 0);
    assert.match(await s.run('ls'), /^f +2 \d+ 5$/m, 'a relative path from a directory of the dead instance');
    assert.match(await s.run('domains'), /\nfs +live +thread +\d+ +1 +1 /, 'the fs domain faulted once and was restarted once');
    assert.ok(s.logs.some((l) => /fs domain restarted and its log replayed/.test(l)), s.logs.join('\n'));
  });
});

test('benchfs: one JSON line of results, readable lines on stderr, nothing left behind', async () => {
  await withSession(async (s) => {
    const out = await s.run('benchfs -s 1M -n 50 2> log');
    const r = JSON.parse(out) as Record<string, number>;
    assert.deepEqual(Object.keys(r), ['seqwrite_mbps', 'seqread_mbps', 'create_per_s', 'delete_per_s']);
    for (const [k, v] of Object.entries(r)) assert.ok(Number.isFinite(v) && v > 0, `${k} = ${v}`);
    const log = await s.run('cat log');
    assert.match(log, /sequential write 1048576 bytes in 4096-byte writes: .* MiB\/s\n.*sequential read 1048576 bytes.*\n.*create 50 files of 128 bytes.*\/s\n.*delete 50 files.*\/s\n/);
    assert.doesNotMatch(await s.run('ls'), /benchfs/);
    await expectStatus(s, 'benchfs -s x', "benchfs: bad size 'x'\nusage: benchfs [-s SIZE] [-n FILES] [DIR]\n", 2);
  }, programsImage({ variant: 'large', sizeBytes: 16 << 20 }));
});

test('benchfs on the xv6 variant: a size beyond its largest file fails cleanly', async () => {
  await withSession(async (s) => {
    await expectStatus(s, 'benchfs -s 1M -n 5', /^benchfs: write \.\/benchfs\.dat: File too large\n$/, 1);
    assert.doesNotMatch(await s.run('ls'), /benchfs/);
  });
});
