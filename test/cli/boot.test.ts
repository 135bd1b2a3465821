/**
 * `redleaf boot` and its images, run as child processes on the built CLI: a scripted session on
 * piped stdin (echo, a pipe, ls, a file written with > and read back, the exit status becoming
 * the process's), a terminal session through a pseudo-terminal (util-linux script(1)): typed
 * lines, history recall, Ctrl-C, Ctrl-D, the terminal restored afterwards; the default image made
 * on first run, stale programs reinstalled, SIGTERM shutting down cleanly; `mkfs --programs`;
 * installSystem's idempotence on a RAM disk; and the kernel monitor (`redleaf monitor`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import { FileSystem } from '../../src/domains/fs/fs.js';
import { hostAlloc } from '../../src/host/bytes.js';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { installSystem, type BuiltProgram } from '../../src/host/image.js';
import { programsDir } from '../../src/kernel/paths.js';
import { mkfs } from '../../src/host/mkfs.js';
import { CLI as cli, ROOT as root, runCli, tmpdirFor, type CliRun as Run } from './run-cli.js';

const run = runCli;
const tmpdir = (t: { after(fn: () => void): void }): string => tmpdirFor(t, 'redleaf-boot-');

/** A bootable image (the built programs in /bin) in `dir`. */
function bootableImage(dir: string): string {
  const img = npath.join(dir, 'rv6.img');
  const r = run(['mkfs', img, '--variant', 'xv6', '--size', '8M', '--programs']);
  assert.equal(r.status, 0, r.stderr);
  return img;
}

/** A whole output line `text`, possibly after shell prompts ("$ ": the shell prompts on any input). */
const line = (text: string): RegExp => new RegExp(`^(?:\\$ )*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm');

const show = (r: Run): string => `status ${r.status} signal ${r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

test('boot: a scripted session on piped stdin; exit status becomes the exit code; the image stays clean', (t) => {
  const img = bootableImage(tmpdir(t));
  const script = [
    'echo hello world',
    'echo one two three | wc',
    'ls /',
    'echo written through rv6 > /note.txt',
    'cat /note.txt',
    'exit 7',
  ].join('\n') + '\n';
  const r = run(['boot', '--disk', img], { input: script });
  assert.equal(r.status, 7, show(r));
  assert.match(r.stdout, line('hello world'), show(r));
  assert.match(r.stdout, /^(?:\$ )*\s*1\s+3\s+14\b/m, `wc of "one two three\\n"\n${show(r)}`);
  for (const name of ['bin', 'dev']) assert.match(r.stdout, new RegExp(`\\b${name}\\b`), `ls / lists ${name}\n${show(r)}`);
  assert.match(r.stdout, line('written through rv6'), show(r));
  const f = run(['fsck', img]);
  assert.equal(f.status, 0, `the image is clean after the session (synced and unmounted)\n${f.stdout}${f.stderr}`);
  const back = run(['cp', `${img}:/note.txt`, npath.join(npath.dirname(img), 'note.txt')]);
  assert.equal(back.status, 0, back.stderr);
  assert.equal(nfs.readFileSync(npath.join(npath.dirname(img), 'note.txt'), 'utf8'), 'written through rv6\n');
});

test('boot: crash nvme — with the block shadow the shell carries on and the restart is counted; without it, EIO', (t) => {
  const img = bootableImage(tmpdir(t));
  const session = 'crash nvme\nls /\ndomains\nexit 0\n';
  const r = run(['boot', '--disk', img], { input: session });
  assert.equal(r.status, 0, show(r));
  assert.match(r.stdout, /^(?:\$ )*\bbin\s+1\b/m, `ls / after the crash\n${show(r)}`);
  assert.match(r.stdout, /^nvme\s+live\s+thread\s+\d+\s+1\s+1\b/m, `nvme: 1 fault, 1 restart\n${show(r)}`);
  assert.match(r.stderr, /domain nvme died \(panic\)/, show(r));
  const bare = run(['boot', '--disk', img, '--no-shadow'], { input: session });
  assert.match(bare.stdout, /ls: Input\/output error/, show(bare));
});

test('boot: crash nvme_shadow kills the shadow itself (nothing shadows it): EIO, and the shell carries on', (t) => {
  const img = bootableImage(tmpdir(t));
  const r = run(['boot', '--disk', img], { input: 'crash nvme_shadow\nls /\necho gone too\nexit 3\n' });
  assert.equal(r.status, 3, `the shell's own exit still works\n${show(r)}`);
  assert.match(r.stderr, /domain nvme_shadow died \(panic\): injected fault/, show(r));
  // Programs live on the disk: loading each one fails now.
  assert.match(r.stdout, /sh: ls: Input\/output error/, show(r));
  assert.match(r.stdout, /sh: echo: Input\/output error/, show(r));
});

test('boot: crash rv6 (the core itself) ends the session with a failure, and no noise from its leftovers', (t) => {
  const img = bootableImage(tmpdir(t));
  const r = run(['boot', '--disk', img], { input: 'crash rv6\nls\n', timeoutMs: 30_000 });
  assert.equal(r.status, 1, show(r));
  assert.match(r.stderr, /domain rv6 died \(panic\)/, show(r));
  assert.match(r.stderr, /the session ended without init's status/, show(r));
  assert.doesNotMatch(r.stderr, /unhandled rejection/, show(r));
});

test('boot --programs worker: programs run on worker threads; a bad placement is refused', (t) => {
  const img = bootableImage(tmpdir(t));
  const r = run(['boot', '--disk', img, '--programs', 'worker'], { input: 'echo on a worker\ndomains\nexit 0\n' });
  assert.equal(r.status, 0, show(r));
  assert.match(r.stdout, line('on a worker'), show(r));
  assert.match(r.stdout, /^sh\.2 +live +worker /m, show(r));
  const bad = run(['boot', '--disk', img, '--programs', 'gpu']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--programs.*gpu.*thread, worker/, show(bad));
});

test('boot: kill 1 ends init, hence the session, with status 137, and says who killed it', (t) => {
  const img = bootableImage(tmpdir(t));
  const r = run(['boot', '--disk', img], { input: 'kill 1\necho never\n', timeoutMs: 30_000 });
  assert.equal(r.status, 137, show(r));
  assert.match(r.stderr, /init \(pid 1\) killed by pid \d+: the system has no init now and ends/, show(r));
  assert.doesNotMatch(r.stdout, /never/);
});

test('boot: end of piped input ends the shell, and init with it', (t) => {
  const img = bootableImage(tmpdir(t));
  const r = run(['boot', '--disk', img], { input: 'echo bye\n' });
  assert.equal(r.status, 0, show(r));
  assert.match(r.stdout, line('bye'), show(r));
  // Even when a program reading the console took the end of the input first: the shell's next
  // read ends too (a hang-up, not a Ctrl-D that the first reader would have used up).
  const after = run(['boot', '--disk', img], { input: 'cat\nread by cat\n', timeoutMs: 30_000 });
  assert.equal(after.status, 0, show(after));
  assert.match(after.stdout, line('read by cat'), show(after));
});

test('boot: first run creates the default image ($REDLEAF_IMAGE); stale programs are reinstalled', (t) => {
  const d = tmpdir(t);
  const img = npath.join(d, 'sub', 'dir', 'rv6.img');
  const env = { REDLEAF_IMAGE: img };
  // Run from another directory: the kernel trusts the installation's build key wherever it runs.
  const first = run(['boot'], { input: 'cat /README\nls /bin\nexit 0\n', env, cwd: d });
  assert.equal(first.status, 0, show(first));
  assert.match(first.stderr, /creating the default rv6 image .*rv6\.img/, show(first));
  assert.ok(nfs.existsSync(img), 'the default image exists');
  assert.match(first.stdout, /Welcome to rv6/, show(first));
  for (const p of nfs.readdirSync(programsDir).filter((n) => n.endsWith('.rldom'))) {
    assert.match(first.stdout, new RegExp(`\\b${p.replace('.rldom', '')}\\b`), `ls /bin lists ${p}\n${show(first)}`);
  }
  assert.deepEqual(nfs.readdirSync(npath.dirname(img)), ['rv6.img'], 'no temporary file left beside the image');

  // A rebuild changes a program: /bin/ls in the image no longer matches the build's.
  const stale = npath.join(d, 'stale');
  nfs.writeFileSync(stale, '{"manifest": "an older build"}');
  assert.equal(run(['cp', stale, `${img}:/bin/ls`]).status, 0);
  const second = run(['boot'], { input: 'ls /\nexit 0\n', env });
  assert.equal(second.status, 0, show(second));
  assert.match(second.stderr, /installed 1 program in \/bin that differed from the build: ls$/m, show(second));
  assert.match(second.stdout, /\bREADME\b/, `ls works again\n${show(second)}`);
  const third = run(['boot'], { input: 'exit 0\n', env });
  assert.equal(third.status, 0, show(third));
  assert.doesNotMatch(third.stderr, /installed|creating/, 'an up-to-date image is left alone');
});

test('boot: a missing --disk image is a clear error; --help has examples', (t) => {
  const d = tmpdir(t);
  const r = run(['boot', '--disk', npath.join(d, 'absent.img')], { input: '' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /absent\.img does not exist \(make one with: redleaf mkfs .* --programs/);
  assert.equal(nfs.existsSync(npath.join(d, 'absent.img')), false);
  const h = run(['boot', '--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /--disk <image>/);
  assert.match(h.stdout, /Examples:/);
  assert.match(h.stdout, /crash nvme/);
  // --programs worker's cost per command as recorded (README, bench/RESULTS.md: 16-53 ms, a
  // pipeline ~75), not the 0.1-0.3 s it said before the kernel kept threads started ahead of time.
  assert.match(h.stdout.replace(/\s+/g, ' '), /worker \(a worker thread each: preemptible, tens of ms more per command\)/);
});

/** A piped `redleaf boot` on a fresh bootable image, once its shell has answered. */
async function bootedSession(t: { after(fn: () => void): void }): Promise<{ img: string; child: ChildProcess; out: Collected }> {
  const img = bootableImage(tmpdir(t));
  const child = spawn(process.execPath, [cli, 'boot', '--disk', img], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => void child.kill('SIGKILL'));
  const out = collect(child);
  child.stdin!.write('echo up\n');
  await out.expect(line('up'), 60_000);
  return { img, child, out };
}

test('boot: SIGTERM shuts rv6 down cleanly (exit 143, image clean)', async (t) => {
  const { img, child, out } = await bootedSession(t);
  child.kill('SIGTERM');
  const [code] = await exited(child);
  assert.equal(code, 143, out.text());
  assert.match(out.errText(), /SIGTERM: shutting down/);
  const f = run(['fsck', img]);
  assert.equal(f.status, 0, f.stdout + f.stderr);
});

test('boot: the reader of its output going away ends the session cleanly (exit 141, image clean)', async (t) => {
  const { img, child, out } = await bootedSession(t);
  child.stdout!.destroy();
  child.stdin!.write('cat /README\n');
  const [code] = await exited(child);
  assert.equal(code, 141, out.errText());
  assert.match(out.errText(), /output closed: shutting down/);
  const f = run(['fsck', img]);
  assert.equal(f.status, 0, f.stdout + f.stderr);
});

test('boot: a terminal session through a pseudo-terminal (line, history, Ctrl-C, Ctrl-D)', async (t) => {
  const probe = spawnSync('script', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    assert.fail('this test drives a pseudo-terminal with util-linux script(1), which is missing: install bsdutils (apt-get install bsdutils)');
  }
  const img = bootableImage(tmpdir(t));
  // After the session, report whether the terminal is back in canonical mode.
  const inner = `${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} boot --disk ${JSON.stringify(img)}; rc=$?; ` +
    'stty -a | tr " ;" "\\n\\n" | grep -x -e icanon -e -icanon -e echo -e -echo; exit $rc';
  const child = spawn('script', ['-qfec', inner, '/dev/null'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  // script runs the session in its own process group: kill the whole group if the test fails.
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch { /* already gone */ }
  });
  const out = collect(child);
  const type = (keys: string): void => void child.stdin!.write(keys);
  const prompt = /\$ (?:\x1b\[\d*G)?$/; // a redrawn prompt ends with a cursor move to its end
  await out.expect(prompt, 60_000);
  type('echo typed-line\r');
  await out.expect(/\ntyped-line\r*\n/, 20_000);
  await out.expect(prompt, 20_000);
  type('\x1b[A'); // up arrow: the last line comes back
  await out.expect(/echo typed-line/, 20_000);
  type('\r');
  await out.expect(/\ntyped-line\r*\n/, 20_000);
  await out.expect(prompt, 20_000);

  type('sleep 100\r');
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  type('\x03'); // Ctrl-C
  await out.expect(/\^C/, 20_000);
  type('echo still-here\r');
  await out.expect(/\nstill-here\r*\n/, 20_000);
  assert.ok(Date.now() - t0 < 30_000, 'sleep 100 was interrupted');
  type('half-typed\x03'); // Ctrl-C at the prompt: the line is dropped, the prompt comes back
  await out.expect(/half-typed\^C\r*\n/, 20_000);
  await out.expect(prompt, 20_000);
  type('echo fresh\r');
  await out.expect(/\nfresh\r*\n/, 20_000);

  type('cat\r');
  await new Promise((r) => setTimeout(r, 500));
  type('through-cat\r');
  await out.expect(/through-cat\r*\n(.|\r|\n)*through-cat\r*\n/, 20_000); // typed (echoed), then cat's copy
  type('\x04'); // Ctrl-D: end of file for cat
  await out.expect(prompt, 20_000);
  type('echo after-cat\r');
  await out.expect(/\nafter-cat\r*\n/, 20_000);

  type('exit 5\r');
  const [code] = await exited(child);
  assert.equal(code, 5, out.text());
  assert.match(out.text(), /^icanon\r?$/m, `terminal back in canonical mode\n${out.text()}`);
  assert.match(out.text(), /^echo\r?$/m, `terminal echo back on\n${out.text()}`);
});

test('mkfs --programs: /bin holds the build\'s program files byte for byte, /dev/console exists; fsck clean', (t) => {
  const d = tmpdir(t);
  const img = bootableImage(d);
  const f = run(['fsck', img]);
  assert.equal(f.status, 0, f.stdout + f.stderr);
  assert.match(f.stdout, /1 devices/);
  for (const name of ['init', 'sh']) {
    const dst = npath.join(d, name);
    assert.equal(run(['cp', `${img}:/bin/${name}`, dst]).status, 0);
    assert.ok(nfs.readFileSync(dst).equals(nfs.readFileSync(npath.join(programsDir, `${name}.rldom`))), `/bin/${name} is the build's file`);
  }
  const small = run(['mkfs', npath.join(d, 'tiny.img'), '--variant', 'xv6', '--size', '64K', '--programs']);
  assert.notEqual(small.status, 0);
  assert.match(small.stderr, /image full while installing \/bin\//);
  assert.equal(nfs.existsSync(npath.join(d, 'tiny.img')), false, 'no half-made image left');
});

test('installSystem: writes what differs, then nothing; leaves the user\'s /bin files alone', async () => {
  const dev = new RamBlockDevice(2 << 20);
  mkfs(dev, { sizeBytes: 2 << 20, variant: 'xv6' });
  const enc = new TextEncoder();
  const progs = (v: string): BuiltProgram[] => ['a', 'b', 'c'].map((name) => ({ name, bytes: enc.encode(`${name} ${v} `.repeat(700)) }));
  const fs = await FileSystem.mount(dev, { alloc: hostAlloc });
  const progress: number[] = [];
  const r1 = await installSystem(fs, progs('v1'), (done) => progress.push(done));
  assert.deepEqual(r1, { written: ['a', 'b', 'c'], madeConsole: true, newInodes: 6 });
  assert.equal(progress.at(-1), progs('v1').reduce((s, p) => s + p.bytes.length, 0));
  await fs.writeFile('/bin/mine', enc.encode('user file'));
  assert.deepEqual(await installSystem(fs, progs('v1')), { written: [], madeConsole: false, newInodes: 0 });
  const v2 = progs('v1');
  v2[1] = { name: 'b', bytes: enc.encode('b rebuilt') };
  assert.deepEqual(await installSystem(fs, v2), { written: ['b'], madeConsole: false, newInodes: 0 });
  assert.equal(new TextDecoder().decode(await fs.readFile('/bin/b')), 'b rebuilt');
  assert.equal(new TextDecoder().decode(await fs.readFile('/bin/mine')), 'user file');
  const con = await fs.stat('/dev/console');
  assert.equal(con.major, 1);
  await fs.unmount();
});

test('monitor: crash a domain, the shadowed caller carries on, the restart is counted', () => {
  const r = run(['monitor'], { input: 'crash dom_c\ncall 10\ndomains\nexit\n' });
  assert.equal(r.status, 0, show(r));
  assert.match(r.stdout, /dom_d: RpcError/);
  assert.match(r.stdout, /dom_d_shadowed: 10 calls/);
  assert.match(r.stdout, /^\d+\s+dom_c\s+live\s+\d+\s+1\s+1\b/m, 'dom_c: live again, 1 fault, 1 restart');
});

test('monitor: malformed commands are refused with what to write, and nothing is called, crashed or restarted', () => {
  const bad = ['call abc', 'call 0', 'call -5', 'call 1e12', 'call 10 20', 'crash', 'crash dom_c later', 'crash dom_c after', 'crash dom_c after abc', 'crash dom_c after 0', 'crash dom_c after 99999999999999999999', 'restart', 'bogus'];
  const r = run(['monitor'], { input: `${bad.join('\n')}\ndomains\nexit\n` });
  assert.equal(r.status, 0, show(r));
  assert.equal(r.stdout.match(/call: N must be a whole number from 1 to 1000000/g)?.length, 5, r.stdout);
  assert.equal(r.stdout.match(/crash: write "crash NAME" or "crash NAME after N", N a whole number from 1 to 9007199254740991/g)?.length, 5, r.stdout);
  assert.match(r.stdout, /crash: which domain\? \(see "domains"\)/);
  assert.match(r.stdout, /restart: which domain\? \(see "domains"\)/);
  assert.match(r.stdout, /unknown command "bogus"; type "help"/);
  assert.doesNotMatch(r.stdout, /calls in|died|will crash|restarted/);
  for (const name of ['dom_c', 'dom_d', 'shadow_c', 'dom_d_shadowed']) {
    assert.match(r.stdout, new RegExp(`^\\d+\\s+${name}\\s+live\\s+0\\s+0\\s+0\\b`, 'm'), `${name}: live, no calls, no faults, no restarts`);
  }
});

test('monitor: the commands its description in `redleaf --help` names are the monitor\'s own', () => {
  // The description once named "list", a command the monitor does not have (it is "domains").
  const help = run(['--help']);
  assert.equal(help.status, 0, show(help));
  const desc = /^\s+monitor\s+([\s\S]*?)\n\s+net\b/m.exec(help.stdout)?.[1]?.replace(/\s+/g, ' ');
  assert.ok(desc !== undefined, help.stdout);
  const named = /console over the example domains \(commands: (.*)\)$/.exec(desc)?.[1]?.split(/,\s*/);
  assert.ok(named !== undefined && named.length > 0, desc);
  const r = run(['monitor'], { input: `${named.map((c) => (c === 'crash' || c === 'restart' ? `${c} dom_c` : c)).join('\n')}\nexit\n` });
  assert.equal(r.status, 0, show(r));
  assert.doesNotMatch(r.stdout, /unknown command/, `${named.join(', ')}\n${r.stdout}`);
});

// ---- child-process helpers ----

interface Collected {
  text(): string;
  errText(): string;
  /** Resolve when the output since the last match matches `re`. */
  expect(re: RegExp, ms: number): Promise<void>;
}

function collect(child: ChildProcess): Collected {
  let out = '';
  let err = '';
  let from = 0;
  let waiter: (() => void) | null = null;
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; waiter?.(); });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; waiter?.(); });
  return {
    text: () => out,
    errText: () => err,
    expect: (re, ms) => new Promise<void>((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(out.slice(from));
        if (!m) return;
        from += m.index + m[0].length;
        clearTimeout(timer);
        waiter = null;
        resolve();
      };
      const timer = setTimeout(() => {
        waiter = null;
        reject(new Error(`timed out after ${ms} ms waiting for ${re} in:\n${JSON.stringify(out.slice(from))}\n--- stderr\n${err}`));
      }, ms);
      waiter = check;
      check();
    }),
  };
}

function exited(child: ChildProcess): Promise<[number | null, NodeJS.Signals | null]> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve([child.exitCode, child.signalCode]);
  return new Promise((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
}
