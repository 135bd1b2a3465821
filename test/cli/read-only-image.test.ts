/**
 * An image the user may only read (mode 0444, the CLI run without root's permission overrides),
 * left with a committed, uninstalled log, as a power cut or a killed `redleaf boot` leaves it:
 * the commands that only read it (cp out, inspect, fsck) work and see the files as recovery
 * leaves them, `disk info` boots the controller on it and reports a write-protected namespace,
 * and the commands that write it (cp in, boot) are refused with a message saying why and what
 * to do; `boot --membdev`, which keeps no change, boots it in memory, and `boot --read-only`
 * boots it as it is, mounted read-only. Not a byte of the image changes, whichever ran — nor when
 * the image is writable and only read (reading never installs the log).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import { FileSystem } from '../../src/domains/fs/fs.js';
import { hostAlloc } from '../../src/host/bytes.js';
import { FileBlockDevice } from '../../src/host/fs-image.js';
import { builtPrograms, installSystem } from '../../src/host/image.js';
import { mkfs } from '../../src/host/mkfs.js';
import { programArtifactPath } from '../../src/kernel/paths.js';
import { runCli, tmpdirFor } from './run-cli.js';

const digest = (path: string): string => createHash('sha256').update(nfs.readFileSync(path)).digest('hex');

/**
 * Make `img` with what `setup` puts there (default: /bin/ls, the built program) and files
 * /last0..lastN, the last of them created by a transaction that is committed but not installed
 * (its directory entry is only in the log), and abandon the mount as a crash would. The last
 * file's name and contents.
 */
async function pendingImage(img: string, setup = async (fs: FileSystem): Promise<void> => {
  await fs.mkdir('/bin');
  await fs.writeFile('/bin/ls', nfs.readFileSync(programArtifactPath('ls')));
}): Promise<{ path: string; text: string }> {
  mkfs(img, { variant: 'xv6', sizeBytes: 4 << 20 });
  const dev = new FileBlockDevice(img, 512);
  const fs = await FileSystem.mount(dev, { alloc: hostAlloc });
  await setup(fs);
  let last = { path: '', text: '' };
  // Each file is one commit; stop at one that did not end in an installation.
  for (let i = 0; i < 20 && (i === 0 || fs.log.uninstalled === 0); i++) {
    last = { path: `/last${i}`, text: `written by transaction ${i}\n` };
    await fs.writeFile(last.path, new TextEncoder().encode(last.text));
  }
  assert.ok(fs.log.uninstalled > 0, 'the last commit is not installed');
  dev.close(); // no unmount: the log stays as it is
  return last;
}

test('an image the user may only read, with a pending log: cp out, inspect and fsck read it as recovered; disk info says read-only; cp in and boot are refused; no byte changes', async (t) => {
  const d = tmpdirFor(t, 'redleaf-ro-');
  const img = npath.join(d, 'ro.img');
  const last = await pendingImage(img);
  nfs.chmodSync(img, 0o444);
  const before = digest(img);
  const ro = { unprivileged: true };

  const out = npath.join(d, 'out.txt');
  const cpOut = runCli(['cp', `${img}:${last.path}`, out], ro);
  assert.equal(cpOut.status, 0, cpOut.stdout + cpOut.stderr);
  assert.equal(nfs.readFileSync(out, 'utf8'), last.text, 'the file only the log names is there');

  const inspect = runCli(['inspect', `${img}:/bin/ls`], ro);
  assert.equal(inspect.status, 0, inspect.stdout + inspect.stderr);
  assert.match(inspect.stdout, /ls/);

  const fsck = runCli(['fsck', img], ro);
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
  assert.match(fsck.stdout, /not yet installed/);

  // The controller opens the image read-only and presents a write-protected namespace.
  const info = runCli(['disk', 'info', img], ro);
  assert.equal(info.status, 0, info.stdout + info.stderr);
  assert.match(info.stdout, /blocks: +8192\n/);
  assert.match(info.stdout, /access: +read-only \(the namespace is write protected\)/);

  const src = npath.join(d, 'in.txt');
  nfs.writeFileSync(src, 'new\n');
  const cpIn = runCli(['cp', src, `${img}:/in.txt`], ro);
  assert.equal(cpIn.status, 1, cpIn.stdout + cpIn.stderr);
  assert.match(cpIn.stderr, /cp: cannot write to image .*ro\.img \(EACCES\): you do not have write permission on it, and cp writes to the image; make it writable \(chmod u\+w .*ro\.img\) or work on a writable copy/);
  const boot = runCli(['boot', '--disk', img], ro);
  assert.equal(boot.status, 1, boot.stdout + boot.stderr);
  assert.match(boot.stderr, /boot: cannot write to image .*ro\.img \(EACCES\).*or boot it without writing to it: --read-only \(or --membdev/);
  // boot --membdev does not write the image, whose changes it does not keep: it boots, with the
  // programs installed and the log replayed in the RAM disk's copy (it once installed them into
  // the file first, and so was refused here too).
  const membdev = runCli(['boot', '--disk', img, '--membdev'], { ...ro, input: `cat ${last.path}\necho x > /new\nexit 7\n` });
  assert.equal(membdev.status, 7, membdev.stdout + membdev.stderr);
  assert.match(membdev.stdout, new RegExp(`^(?:\\$ )*${last.text.trim()}$`, 'm'));
  assert.match(membdev.stderr, /ro\.img \(its copy in memory\): installed \d+ programs in \/bin/);

  assert.equal(digest(img), before, 'the image is byte for byte as it was');

  // Writable now: reading it still writes nothing (the log waits for a command that writes).
  nfs.chmodSync(img, 0o644);
  assert.equal(runCli(['cp', `${img}:${last.path}`, out]).status, 0);
  assert.equal(digest(img), before);
  // And one that writes installs the log, keeping the file it named.
  assert.equal(runCli(['cp', src, `${img}:/in.txt`]).status, 0);
  assert.notEqual(digest(img), before);
  const again = runCli(['cp', `${img}:${last.path}`, out]);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(nfs.readFileSync(out, 'utf8'), last.text);
});

test('boot --read-only: an image the user may only read, with a pending log and an out-of-date /bin, boots as it is; changes fail with EROFS; no byte changes', async (t) => {
  const d = tmpdirFor(t, 'redleaf-ro-boot-');
  const img = npath.join(d, 'ro.img');
  const readme = 'read me, do not write me\n';
  const last = await pendingImage(img, async (fs) => {
    await installSystem(fs, builtPrograms());
    await fs.writeFile('/README', new TextEncoder().encode(readme));
    await fs.writeFile('/bin/wc', new TextEncoder().encode('an older build\n')); // stale
    await fs.unlink('/bin/grep'); // missing
  });
  nfs.chmodSync(img, 0o444);
  const before = digest(img);

  const input = `cat README\ncat ${last.path}\necho x > /new\nmkdir /dir\nrm ${last.path}\nls /new\ncat ${last.path}\nwc README\ngrep me README\nexit 5\n`;
  const r = runCli(['boot', '--disk', img, '--read-only'], { unprivileged: true, input });
  assert.equal(r.status, 5, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^(?:\\$ )*${readme.trim()}$`, 'm'), 'cat README works');
  // The file only the log names is there (the log applied in memory), before and after the rm.
  assert.equal(r.stdout.split('\n').filter((l) => l.endsWith(last.text.trim())).length, 2, r.stdout);
  assert.match(r.stdout, /\/new: Read-only file system/, 'echo x > /new is refused, saying why');
  assert.match(r.stdout, /\/dir: Read-only file system/);
  assert.match(r.stdout, new RegExp(`${last.path}: Read-only file system`));
  assert.match(r.stdout, /ls: \/new: No such file or directory/);
  // The image's /bin as it is: its wc is not an artifact, it has no grep (as the notice says).
  assert.match(r.stdout, /sh: wc: Exec format error/);
  assert.match(r.stdout, /sh: grep: command not found/);
  assert.match(r.stderr, /\[fs\] mount: the device is write protected: mounted read-only/);
  assert.match(r.stderr, /\[fs\] mount: recovered \d+ blocks from the log \(in memory only: the log stays on the device\)/);
  assert.match(r.stderr, /--read-only installs nothing, and the image's \/bin is not the build's: programs 1 missing \(grep: "command not found"\); 1 differing from the build \(wc:/);
  assert.equal(digest(img), before, 'the image is byte for byte as it was');

  assert.match(runCli(['boot', '--help']).stdout, /--read-only +mount the image read-only, writing nothing to it/);
  const both = runCli(['boot', '--disk', img, '--read-only', '--membdev']);
  assert.equal(both.status, 1);
  assert.match(both.stderr, /'--read-only' cannot be used with option '--membdev'/);
});

test('boot --read-only refuses, writing nothing: without --disk when there is no default image (it creates none), and an image with no /dev/console (init would have no console)', async (t) => {
  const d = tmpdirFor(t, 'redleaf-ro-refused-');
  // The default image: .redleaf/rv6.img in the working directory ($REDLEAF_IMAGE empty), then $REDLEAF_IMAGE.
  const noDefault = runCli(['boot', '--read-only'], { cwd: d, env: { REDLEAF_IMAGE: '' } });
  assert.equal(noDefault.status, 1, noDefault.stdout + noDefault.stderr);
  assert.match(noDefault.stderr, /boot --read-only: the default image .*\.redleaf\/rv6\.img does not exist, and --read-only creates nothing \(boot once without it to create the image\)/);
  const named = npath.join(d, 'default.img');
  const noNamed = runCli(['boot', '--read-only'], { cwd: d, env: { REDLEAF_IMAGE: named } });
  assert.equal(noNamed.status, 1, noNamed.stdout + noNamed.stderr);
  assert.match(noNamed.stderr, /the default image .*default\.img does not exist, and --read-only creates nothing/);
  assert.deepEqual(nfs.readdirSync(d), [], 'no image (nor .redleaf) was made');

  const img = npath.join(d, 'nocons.img');
  await pendingImage(img, async (fs) => {
    await installSystem(fs, builtPrograms());
    await fs.unlink('/dev/console');
  });
  nfs.chmodSync(img, 0o444);
  const before = digest(img);
  const r = runCli(['boot', '--disk', img, '--read-only'], { unprivileged: true, input: 'exit 3\n' });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /boot --read-only: .*nocons\.img has no console device \/dev\/console, which --read-only does not make.*boot once without --read-only to make it \(or use --membdev/);
  assert.doesNotMatch(r.stderr, /init started/, 'refused before booting');
  assert.equal(digest(img), before, 'the image is byte for byte as it was');
});
