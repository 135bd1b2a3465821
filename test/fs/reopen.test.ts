/**
 * Opening an inode by number (FileSystem.openInode, Rv6Fs.reopen): what a client recovering from
 * a crash of the fs domain reopens its files with. The number must name the file the client had
 * open, or a free inode, whatever the crash undid: an inode freed by the open transaction group is
 * not given out again before that group commits (Log.mayReuseInode).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { O_CREATE, O_RDONLY, O_RDWR, O_WRONLY, type FileSystem, type FsFile } from '../../src/domains/fs/fs.js';
import { assertClean, assertCleanSynced, cutPoints, cutsOf, expectCode, fcParams, mountRam, PowerCutDevice, ramFs } from './helpers.js';

const enc = new TextEncoder();
const text = (s: string): Uint8Array => enc.encode(s);

test('openInode opens a file by its number, one with no links left too; closing that one frees it', async () => {
  const { dev, fs } = await ramFs('xv6', 4 << 20);
  const f = await fs.open('/a', O_CREATE | O_RDWR);
  await fs.write(f, 0, text('by number'));
  const ino = f.inum;
  await fs.close(f);

  const g = await fs.openInode(ino, O_RDONLY);
  const buf = new Uint8Array(20);
  assert.equal(await fs.read(g, 0, buf), 9);
  assert.equal(new TextDecoder().decode(buf.subarray(0, 9)), 'by number');
  assert.equal(g.writable, false);

  await fs.unlink('/a');
  const h = await fs.openInode(ino, O_RDWR); // no links, but g still holds it
  assert.equal((await fs.fstat(h)).nlink, 0);
  assert.equal(await fs.write(h, 9, text('!')), 1);
  await fs.close(g);
  await fs.close(h); // the last reference: the inode is freed now
  await expectCode(fs.openInode(ino, O_RDONLY), 'ENOENT');
  await assertCleanSynced(fs, dev);
});

test('openInode refuses bad numbers and flags, a free inode, and a directory for writing', async () => {
  const { dev, fs } = await ramFs('xv6', 4 << 20);
  await fs.mkdir('/d');
  const d = (await fs.stat('/d')).ino;
  for (const bad of [0, -1, 1.5, fs.sb.ninodes, Number.NaN]) await expectCode(fs.openInode(bad, O_RDONLY), 'EINVAL');
  await expectCode(fs.openInode(1, 3), 'EINVAL');
  await expectCode(fs.openInode(1, O_RDONLY | O_CREATE), 'EINVAL');
  await expectCode(fs.openInode(d, O_WRONLY), 'EISDIR');
  await expectCode(fs.openInode(fs.sb.ninodes - 1, O_RDONLY), 'ENOENT');
  const dir = await fs.openInode(d, O_RDONLY);
  assert.equal((await fs.fstat(dir)).type, 1);
  await fs.close(dir);
  await assertCleanSynced(fs, dev); // no reference leaked by the refusals
});

test('an inode freed by the open group is not given out again before it commits, so after a crash a number names its old file or a free inode', async () => {
  const { dev, fs } = await ramFs('xv6', 4 << 20);
  const old = await fs.open('/old', O_CREATE | O_RDWR);
  await fs.write(old, 0, text('old file'));
  const oldIno = old.inum;
  await fs.close(old);

  // Hold the group open (as another system call in progress would), so the two below share it.
  await fs.log.beginOp();
  await fs.unlink('/old'); // frees oldIno in the open group
  const made = await fs.open('/new', O_CREATE | O_RDWR); // allocated in the same group
  assert.notEqual(made.inum, oldIno, 'the number freed by the open group is not reused in it');
  const crashed = dev.clone(); // a power cut now: nothing of the group is durable

  const after = await mountRam(crashed);
  await expectCode(after.openInode(made.inum, O_RDWR), 'ENOENT');
  const back = await after.openInode(oldIno, O_RDONLY);
  const buf = new Uint8Array(8);
  assert.equal(await after.read(back, 0, buf), 8);
  assert.equal(new TextDecoder().decode(buf), 'old file');
  await after.close(back);
  await assertCleanSynced(after, crashed);

  // Once the group has committed the number is free for good and may be given out again.
  await fs.log.endOp();
  await fs.close(made);
  const again = await fs.open('/again', O_CREATE | O_RDWR);
  assert.equal(again.inum, oldIno, 'the lowest free number, now that its free is durable');
  await fs.close(again);
  await assertCleanSynced(fs, dev);
});

/**
 * A workload of rounds whose ops run concurrently (so that their transactions share groups), each
 * after `delay` stat calls (so that any op may come after any other inside a group): `create`
 * makes a file holding its own unique text and keeps it open; `unlink` removes the name of the
 * oldest file held that still has one; `close` closes the oldest file held, freeing its inode if
 * it has no name left (a `create` in the same group would want that inode next).
 */
type Op = ['create' | 'unlink' | 'close', number];

interface Held {
  ino: number;
  text: string;
  /** Device writes done when its open returned, and when its close began (the client held it between). */
  openedAt: number;
  closingAt: number;
}

async function runRounds(fs: FileSystem, dev: PowerCutDevice, rounds: Op[][]): Promise<Held[]> {
  const files: Held[] = [];
  const open: { held: Held; f: FsFile; name: string | null }[] = [];
  let made = 0;
  const run = async ([kind, delay]: Op): Promise<void> => {
    for (let i = 0; i < delay; i++) await fs.stat('/');
    if (kind === 'create') {
      const name = `/f${String(made).padStart(3, '0')}`;
      const text = `text of ${name}`;
      made++;
      const f = await fs.open(name, O_CREATE | O_RDWR);
      const held: Held = { ino: f.inum, text, openedAt: dev.writes, closingAt: Infinity };
      files.push(held);
      await fs.write(f, 0, enc.encode(text));
      open.push({ held, f, name }); // only now: a client does not close a file under its own write
    } else if (kind === 'unlink') {
      const named = open.find((o) => o.name !== null);
      if (named === undefined) return;
      const name = named.name!;
      named.name = null;
      await fs.unlink(name);
    } else {
      const victim = open.shift();
      if (victim === undefined) return;
      victim.held.closingAt = dev.writes;
      await fs.close(victim.f);
    }
  };
  for (const round of rounds) await Promise.all(round.map(run));
  return files;
}

test('property: after a power cut at any write, an inode number a client held open names its own file or a free inode, never another file', async () => {
  const opArb = fc.tuple(fc.constantFrom<Op[0]>('create', 'create', 'unlink', 'close'), fc.nat(3));
  const roundArb = fc.array(opArb, { minLength: 1, maxLength: 4 });
  await fc.assert(
    fc.asyncProperty(fc.array(roundArb, { minLength: 3, maxLength: 14 }), cutPoints(6), async (rounds, points) => {
      const { dev: base, fs: first } = await ramFs('xv6', 2 << 20);
      await first.unmount();
      const reference = new PowerCutDevice(base.clone());
      const ref = await mountRam(reference);
      await runRounds(ref, reference, rounds);
      for (const k of cutsOf(points, reference.writes)) {
        const img = base.clone();
        const dev = new PowerCutDevice(img, k);
        const files = await runRounds(await mountRam(dev), dev, rounds);
        const after = await mountRam(img);
        for (const h of files.filter((x) => x.openedAt <= k && x.closingAt > k)) {
          let got: string;
          try {
            const f = await after.openInode(h.ino, O_RDONLY);
            const buf = new Uint8Array(64);
            got = new TextDecoder().decode(buf.subarray(0, await after.read(f, 0, buf)));
            await after.close(f);
          } catch (e) {
            if ((e as { code?: string }).code === 'ENOENT') continue; // its creation had not committed
            throw e;
          }
          assert.ok(h.text.startsWith(got), `cut at write ${k}: inode ${h.ino}, held as "${h.text}", holds "${got}"`);
        }
        assertClean(img);
      }
    }),
    fcParams(300),
  );
});
