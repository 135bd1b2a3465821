/**
 * rv6 processes through the core: spawn/wait/exit statuses (return, exit(), kill, crash,
 * deadline), wait for any or a specific child, ECHILD/ESRCH/EINVAL/EPERM, ENOEXEC for files that
 * are not programs (text, an artifact signed by another key, a domain that is not a Program),
 * orphans reparented to init, exec keeping pid/fds/cwd, sleep/uptime, procs/kdomains/kcrash, and
 * that every ended program's domain is dead with its exchange-heap memory reclaimed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArtifact, signManifest } from '../../src/kernel/artifact.js';
import { artifactPath } from '../../src/kernel/paths.js';
import {
  O_CREATE, O_RDONLY, O_RDWR, PGID_INHERIT, PGID_NEW, SEEK_SET, STATUS_CRASHED, STATUS_KILLED,
} from '../../src/interfaces/rv6.js';
import { child, ERRNO, expectResults, PROBE_ARTIFACT, rv6Image, withRv6, type Rv6Test } from './helpers.js';

const E = (name: keyof typeof ERRNO): number => -ERRNO[name];
const spawn = (label: string, ...cmds: unknown[][]): unknown[] => [`${label}=spawn`, 'rv6_probe', child(...cmds), 0, 1, 2, PGID_INHERIT];

/** The probe's artifact signed by a key the kernel does not trust. */
function foreignSigned(): string {
  const a = parseArtifact(readFileSync(PROBE_ARTIFACT, 'utf8'), 'probe');
  const { privateKey } = generateKeyPairSync('ed25519');
  return JSON.stringify({ manifest: signManifest(a.manifest, privateKey), code: a.code });
}

/** Every program domain that ran is dead and holds no exchange-heap memory. */
function assertProgramsReclaimed(t: Rv6Test, pids: number[]): void {
  for (const pid of pids) {
    const doms = t.kernel.list().filter((d) => d.name === `rv6_probe.${pid}` || d.name.startsWith(`rv6_probe.${pid}.`));
    assert.ok(doms.length > 0, `no domain for pid ${pid}`);
    for (const d of doms) {
      assert.equal(d.state, 'dead', `${d.name} should be dead`);
      assert.equal(d.heapBytes, 0, `${d.name} holds ${d.heapBytes} heap bytes`);
      assert.equal(d.heapSlots, 0, `${d.name} holds ${d.heapSlots} heap slots`);
    }
  }
}

test('exit statuses: return, exit(), kill, crash, clamping; wait any / specific; errors', async () => {
  const image = rv6Image({
    'bin/notprog': 'just some text\n',
    'bin/badsig': foreignSigned(),
    'bin/callee': readFileSync(artifactPath('dom_c')),
  });
  await withRv6(async (t) => {
    const status = await t.runInit([
      spawn('c1', ['echo', 'child says hi'], ['return', 3]),
      ['w1=wait', '$c1'],
      spawn('c2', ['exit', 42], ['echo', 'not reached']),
      ['w2=wait', -1],
      spawn('c3', ['crash']),
      ['w3=wait', '$c3'],
      spawn('c4', ['hang']),
      ['k4=kill', '$c4'],
      ['k4again=kill', '$c4'],
      ['w4=wait', '$c4'],
      spawn('c5', ['return', 300]),
      ['w5=wait', '$c5'],
      spawn('c6', ['return', -5]),
      ['w6=wait', '$c6'],
      spawn('c7', ['me=getpid'], ['kill', '$me'], ['echo', 'not reached either']),
      ['w7=wait', '$c7'],
      ['none=wait', -1],
      ['self=wait', 1],
      ['bad=wait', -2],
      ['ks=kill', 9999],
      ['k0=kill', 0],
      ['e1=spawn', 'nope', child(), 0, 1, 2, PGID_INHERIT],
      ['e2=spawn', 'rv6_probe', child(), 99, 1, 2, PGID_INHERIT],
      ['e3=spawn', '/bin/notprog', child(), 0, 1, 2, PGID_INHERIT],
      ['e4=spawn', 'badsig', child(), 0, 1, 2, PGID_INHERIT],
      ['e5=spawn', 'callee', child(), 0, 1, 2, PGID_INHERIT],
      ['e6=spawn', '/bin', child(), 0, 1, 2, PGID_INHERIT],
      ['e7=spawn', 'rv6_probe', child(), 0, 1, 2, 12345],
      ['e8=spawn', 'rv6_probe', child(), 0, 1, 2, -7],
      ['e9=spawn', '', child(), 0, 1, 2, PGID_INHERIT],
      ['e10=spawn', 'rv6_probe', ['x'.repeat(70_000)], 0, 1, 2, PGID_INHERIT],
    ]);
    assert.equal(status, 0);
    const pid = (l: string): number => t.r(l);
    expectResults(t, {
      w1: { pid: pid('c1'), status: 3 }, w2: { pid: pid('c2'), status: 42 }, w3: { pid: pid('c3'), status: STATUS_CRASHED },
      k4: 0, k4again: 0, w4: { pid: pid('c4'), status: STATUS_KILLED }, w5: { status: 255 }, w6: { status: 0 },
      none: { pid: E('ECHILD') }, self: { pid: E('ECHILD') }, bad: { pid: E('EINVAL') }, ks: E('ESRCH'), k0: E('EINVAL'),
      e1: E('ENOENT'), e2: E('EBADF'), e3: E('ENOEXEC'), e4: E('ENOEXEC'), e5: E('ENOEXEC'), e6: E('EACCES'), e7: E('EPERM'),
      e8: E('EINVAL'), e9: E('ENOENT'), e10: E('E2BIG'),
    });
    assert.equal(t.r('echo', pid('c1')), 'child says hi');
    assert.ok(!t.out.includes('not reached'), 'a process that exited or killed itself ran on');
    assert.deepEqual(t.r('w7'), { pid: pid('c7'), status: STATUS_KILLED });
    assert.ok(t.logs.some((l) => /cannot run \/bin\/badsig: .*does not trust/.test(l)), t.logs.join('\n'));
    assert.ok(t.logs.some((l) => /cannot run \/bin\/callee: .*not a program/.test(l)), t.logs.join('\n'));
    assert.ok(t.logs.some((l) => /cannot run \/bin\/notprog: .*not a domain artifact/.test(l)), t.logs.join('\n'));
    assertProgramsReclaimed(t, ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'].map(pid));
  }, image);
});

test('a program over its deadline crashes (STATUS_CRASHED); the core and init carry on', async () => {
  await withRv6(async (t) => {
    await t.runInit([spawn('c', ['spin']), ['w=wait', '$c'], ['echo', 'after']]);
    expectResults(t, { w: { pid: t.r('c'), status: STATUS_CRASHED }, echo: 'after' });
    assert.equal(t.domain(`rv6_probe.${t.r('c')}`)?.deathCause, 'deadline');
  });
});

test('killing processes blocked in calls holding buffers reclaims everything (read, pipe write, wait, sleep)', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['p=pipe'],
      spawn('reader', ['read', 0, 100]), // blocks on the console
      ['wr=spawn', 'rv6_probe', child(['writen', 1, 10_000]), 0, '$p.wfd', 2, PGID_INHERIT], // blocks: pipe full
      spawn('waiter', spawn('inner', ['hang']), ['wait', -1]),
      spawn('sleeper', ['sleep', 60_000]),
      ['sleep', 100],
      ['ps=procs'],
      ['k1=kill', '$reader'],
      ['k2=kill', '$wr'],
      ['k3=kill', '$waiter'],
      ['k4=kill', '$sleeper'],
      ['w1=wait', '$reader'],
      ['w2=wait', '$wr'],
      ['w3=wait', '$waiter'],
      ['w4=wait', '$sleeper'],
      ['drain=read', '$p.rfd', 5000],
      // the waiter's child was reparented to init: end it too
      ['orphans=procs'],
    ]);
    for (const [w, who] of [['w1', 'reader'], ['w2', 'wr'], ['w3', 'waiter'], ['w4', 'sleeper']] as const) {
      assert.deepEqual(t.r(w), { pid: t.r(who), status: STATUS_KILLED });
    }
    const ps: string = t.r('ps');
    for (const who of ['reader', 'wr', 'waiter', 'sleeper']) assert.match(ps, new RegExp(`^${t.r(who)} 1 1 sleep rv6_probe$`, 'm'));
    assert.equal(t.r('drain').n, 4096, 'the killed writer filled the pipe before it blocked');
    const inner = Number(/^(\d+) 1 1 \S+ rv6_probe$/m.exec(t.r('orphans').split('\n').filter((l: string) => !l.startsWith('1 '))[1] ?? '')?.[1]);
    assert.ok(inner > 0, `the orphan is init's child now:\n${t.r('orphans')}`);
    assertProgramsReclaimed(t, ['reader', 'wr', 'waiter', 'sleeper'].map((w) => t.r(w)));
    // init ended: the orphan it never waited for is ended by shutdown at stop()
  });
});

test('orphans are reparented to init, which can wait for them', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      spawn('a', spawn('b', ['sleep', 150], ['return', 5]), ['return', 1]),
      ['wa=wait', '$a'],
      ['ps=procs'],
      ['wb=wait', -1],
      ['none=wait', -1],
    ]);
    const b = t.r('b', t.r('a'));
    assert.deepEqual(t.r('wa'), { pid: t.r('a'), status: 1 });
    assert.match(t.r('ps'), new RegExp(`^${b} 1 1 sleep rv6_probe$`, 'm'));
    assert.deepEqual(t.r('wb'), { pid: b, status: 5 });
    assert.deepEqual(t.r('none'), { pid: E('ECHILD'), status: 0 });
  });
});

test('wait for a specific child, for any, and a wait that can no longer be satisfied', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      spawn('a', ['sleep', 100], ['return', 1]),
      spawn('b', ['return', 2]),
      ['wb=wait', '$b'],
      ['wa=wait', -1],
      spawn('c', ['sleep', 50], ['return', 3]),
      ['bg', ['wc=wait', '$c']],
      ['wany=wait', -1],
      ['sleep', 20],
    ]);
    assert.deepEqual(t.r('wb'), { pid: t.r('b'), status: 2 });
    assert.deepEqual(t.r('wa'), { pid: t.r('a'), status: 1 });
    // The first wait made (the specific one, in the background) reaps c; the other has no child left.
    assert.deepEqual(t.r('wc'), { pid: t.r('c'), status: 3 });
    assert.deepEqual(t.r('wany'), { pid: E('ECHILD'), status: 0 });
  });
});

test('exec keeps pid, descriptors and cwd; a failed exec returns to the caller; the old domain is reclaimed', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['mkdir', '/d'],
      spawn(
        'c',
        ['f=open', '/d/out', O_CREATE | O_RDWR],
        ['chdir', '/d'],
        ['bad=exec', 'nope', child()],
        ['echo', 'still here'],
        ['exec', 'rv6_probe', child(['getpid'], ['write', 3, 'after exec'], ['cwd=getcwd'], ['return', 9])],
        ['echo', 'not reached'],
      ),
      ['w=wait', '$c'],
      ['f=open', '/d/out', O_RDONLY],
      ['content=read', '$f', 100],
    ]);
    const c = t.r('c');
    expectResults(t, { bad: E('ENOENT'), echo: 'still here', f: 3 }, c);
    const lines = t.lines().filter((l) => l.pid === c);
    assert.equal(lines.find((l) => l.op === 'getpid')?.r, c);
    assert.equal(lines.find((l) => l.op === 'cwd')?.r, '/d');
    assert.ok(!t.out.includes('not reached'));
    assert.deepEqual(t.r('w'), { pid: c, status: 9 });
    assert.deepEqual(t.r('content'), { n: 10, text: 'after exec' });
    assertProgramsReclaimed(t, [c]);
    assert.ok(t.domain(`rv6_probe.${c}.1`), 'the exec-ed image is its own domain');
  });
});

test('sleep, uptime, getpid, process groups and tcsetpgrp arguments', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['u1=uptime'],
      ['s=sleep', 60],
      ['u2=uptime'],
      ['s0=sleep', 0],
      ['sneg=sleep', -1],
      ['g1=spawn', 'rv6_probe', child(['sleep', 200]), 0, 1, 2, PGID_NEW],
      ['g2=spawn', 'rv6_probe', child(['sleep', 200]), 0, 1, 2, '$g1'],
      ['ps=procs'],
      ['t1=tcsetpgrp', '$g1'],
      ['t2=tcsetpgrp', 4242],
      ['t3=tcsetpgrp', -3],
      ['t4=tcsetpgrp', 0],
      ['t5=tcsetpgrp', 1],
      ['wait', -1],
      ['wait', -1],
      // A group lives until its last member is reaped (as on Unix): joining a group whose only
      // member has exited but is still a zombie works; once it is reaped, the group is gone.
      ['z=spawn', 'rv6_probe', child(['return', 0]), 0, 1, 2, PGID_NEW],
      ['sleep', 100],
      ['j1=spawn', 'rv6_probe', child(['return', 0]), 0, 1, 2, '$z'],
      ['wait', -1],
      ['wait', -1],
      ['j2=spawn', 'rv6_probe', child(['return', 0]), 0, 1, 2, '$z'],
    ]);
    expectResults(t, { s: 0, s0: 0, sneg: E('EINVAL'), t1: 0, t2: E('EPERM'), t3: E('EINVAL'), t4: 0, t5: 0, j2: E('EPERM') });
    assert.ok(t.r('j1') > 0, `spawn into a zombie's group: ${t.r('j1')}`);
    assert.ok(t.r('u2') - t.r('u1') >= 55, `slept ${t.r('u2') - t.r('u1')} ms`);
    const g1 = t.r('g1');
    assert.match(t.r('ps'), /^PID PPID PGID STATE NAME$/m);
    assert.match(t.r('ps'), /^1 0 1 run rv6_probe$/m);
    assert.match(t.r('ps'), new RegExp(`^${g1} 1 ${g1} sleep rv6_probe$`, 'm'));
    assert.match(t.r('ps'), new RegExp(`^${t.r('g2')} 1 ${g1} sleep rv6_probe$`, 'm'));
  });
});

test('kdomains lists the kernel domains; kcrash injects a fault (the fs then answers EIO)', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['d=kdomains'],
      ['kbad=kcrash', 'nosuchdomain', 0],
      ['kneg=kcrash', 'membdev', -1],
      ['k=kcrash', 'membdev', 0],
      ['f=open', '/newfile', O_CREATE | O_RDWR],
      ['s=stat', '/bin/rv6_probe'],
    ]);
    const d: string = t.r('d');
    assert.match(d, /^NAME +STATE +PLACE +CALLS +FAULTS +RESTARTS +HEAP +SLOTS$/m);
    for (const name of ['membdev', 'fs', 'rv6', 'rv6_probe.1']) assert.match(d, new RegExp(`^${name.replace('.', '\\.')} +live `, 'm'));
    expectResults(t, { kbad: E('ENOENT'), kneg: E('EINVAL'), k: 0, f: E('EIO') });
    assert.equal(t.domain('membdev')?.state, 'dead');
    assert.equal(t.domain('fs')?.state, 'live', 'the fs survives its device crashing');
  });
});

test('the first command of a probe can be a bad read buffer: the core answers EINVAL, not a crash', async () => {
  await withRv6(async (t) => {
    await t.runInit([['r=read', 0, 5, 2], ['seek=lseek', 0, 0, SEEK_SET]]);
    expectResults(t, { r: { n: E('EINVAL') }, seek: E('ESPIPE') });
    assert.equal(t.domain('rv6')?.state, 'live');
  });
});

test('many short processes: all reaped and reclaimed, the core keeps no link per dead process', async () => {
  await withRv6(async (t) => {
    const n = 150;
    const cmds: unknown[][] = [];
    for (let i = 0; i < n; i++) cmds.push(spawn(`c${i}`, ['return', i]), [`w${i}=wait`, `$c${i}`]);
    await t.runInit([...cmds, ['ps=procs']]);
    for (let i = 0; i < n; i += 37) assert.deepEqual(t.r(`w${i}`), { pid: t.r(`c${i}`), status: i });
    assert.equal(t.r('ps'), 'PID PPID PGID STATE NAME\n1 0 1 run rv6_probe\n');
    assertProgramsReclaimed(t, Array.from({ length: n }, (_, i) => t.r(`c${i}`)));
    const inbound = t.kernel.get('rv6')!.inbound.length;
    assert.ok(inbound < 64, `the core still has ${inbound} inbound links`);
  });
});

test('a crashed fs domain that cannot be restarted (its block device died too): file calls answer EIO, the core and its processes live on', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['f=open', '/bin/rv6_probe', O_RDONLY],
      ['km=kcrash', 'membdev', 0],
      ['w=open', '/w', O_CREATE | O_RDWR], // its commit meets the dead block device
      ['k=kcrash', 'fs', 0],
      ['r=read', '$f', 10],
      ['o=open', '/x', O_CREATE | O_RDWR],
      ['s=stat', '/'],
      ['sp=spawn', 'rv6_probe', child(), 0, 1, 2, PGID_INHERIT],
      ['c=close', '$f'],
      ['echo', 'alive'],
    ]);
    expectResults(t, { km: 0, k: 0, r: { n: E('EIO') }, o: E('EIO'), s: { err: E('EIO') }, sp: E('EIO'), c: 0, echo: 'alive' });
    assert.equal(t.domain('membdev')?.state, 'dead');
    assert.equal(t.domain('fs')?.state, 'dead', 'its restart failed: the instance that died is the last');
    assert.equal(t.domain('rv6')?.state, 'live');
    assert.ok(t.logs.some((l) => /fs domain could not be restarted: .*membdev.* file-system calls return EIO/.test(l)), t.logs.join('\n'));
  });
});

test('spawn: fds 0-2 are the chosen descriptors (redirection, shared offset), no other fd is inherited; cwd is', async () => {
  await withRv6(async (t) => {
    await t.runInit([
      ['mkdir', '/d'],
      ['chdir', '/d'],
      ['o=open', 'out', O_CREATE | O_RDWR],
      ['write', '$o', 'abc\n'],
      ['c=spawn', 'rv6_probe', child(['s3=fstat', 3], ['s1=fstat', 1], ['cwd=getcwd'], ['echo', 'to the file']), 0, '$o', 2, PGID_INHERIT],
      ['w=wait', '$c'],
      ['write', '$o', 'xyz\n'],
      ['lseek', '$o', 0, SEEK_SET],
      ['all=readall', '$o'],
    ]);
    const c = t.r('c');
    assert.deepEqual(t.r('w'), { pid: c, status: 0 });
    const lines: string[] = t.r('all').text.split('\n');
    assert.equal(lines[0], 'abc');
    assert.equal(lines.at(-2), 'xyz', 'the parent wrote after the child: one shared offset');
    const childLines = lines.slice(1, -2).map((l) => JSON.parse(l) as { op: string; r: any });
    const of = (op: string): any => childLines.find((l) => l.op === op)?.r;
    assert.equal(of('s3').err, E('EBADF'), 'fd 3 is not inherited');
    assert.equal(of('s1').err, 0);
    assert.equal(of('cwd'), '/d');
    assert.equal(of('echo'), 'to the file');
    assert.deepEqual(t.lines().filter((l) => l.pid === c), [], 'the child wrote to its redirected stdout, not the console');
  });
});
