/**
 * The rv6 core's pure parts, driven directly: the pipe ring buffer (a fast-check property: bytes
 * come out as they went in, whatever the sizes and interleaving, never more than the capacity
 * buffered; cancellation), the console line discipline (lines, partial reads, EOF markers, UTF-8
 * output split across writes), descriptor tables, lexical path resolution, cancellation scopes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ERRNO } from '../../src/interfaces/rv6.js';
import { Pipe, type CopyIn, type CopyOut } from '../../src/domains/rv6/pipe.js';
import { Console } from '../../src/domains/rv6/console.js';
import { CancelScope } from '../../src/domains/rv6/block.js';
import { FdTable, NOFILE, type OpenFile } from '../../src/domains/rv6/file.js';
import { resolvePath } from '../../src/domains/rv6/fsclient.js';

const from = (src: Uint8Array): CopyIn => (ring, ringOff, srcOff, len) => ring.set(src.subarray(srcOff, srcOff + len), ringOff);
const into = (dst: Uint8Array): CopyOut => (buf, bufOff, dstOff, len) => dst.set(buf.subarray(bufOff, bufOff + len), dstOff);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('pipe: bytes come out in order and whole, buffering never exceeds the capacity (property)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 64 }),
      fc.array(fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }),
      fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 20 }),
      async (capacity, writers, readSizes) => {
        const pipe = new Pipe(capacity);
        const scope = new CancelScope();
        let seq = 0;
        const sent: number[][] = [];
        const writing = writers.map(async (sizes) => {
          for (const n of sizes) {
            const chunk = Uint8Array.from({ length: n }, () => seq++ & 0xff);
            sent.push([...chunk]);
            assert.equal(await pipe.write(n, from(chunk), scope), n);
            assert.ok(pipe.buffered <= capacity);
            await turn();
          }
        });
        let closed = false;
        void Promise.all(writing).then(() => {
          pipe.closeWrite();
          closed = true;
        });
        const got: number[] = [];
        for (let i = 0; ; i++) {
          const want = readSizes[i % readSizes.length]!;
          const buf = new Uint8Array(want);
          const n = await pipe.read(want, into(buf), scope);
          assert.ok(n >= 0 && n <= want);
          assert.ok(pipe.buffered <= capacity);
          if (n === 0) break;
          got.push(...buf.subarray(0, n));
        }
        assert.ok(closed, 'EOF only after the last writer closed');
        // Writes are atomic: the stream is some order of the written chunks, each whole.
        const total = sent.reduce((a, c) => a + c.length, 0);
        assert.equal(got.length, total);
        let pos = 0;
        const remaining = [...sent];
        while (pos < got.length) {
          const i = remaining.findIndex((c) => c.every((b, k) => got[pos + k] === b));
          assert.ok(i >= 0, `bytes at ${pos} are not a whole write`);
          pos += remaining[i]!.length;
          remaining.splice(i, 1);
        }
      },
    ),
    { numRuns: 60 },
  );
});

test('pipe: EOF, EPIPE, partial writes when the reader goes, cancellation', async () => {
  const scope = new CancelScope();
  const p = new Pipe(8);
  assert.equal(await p.write(5, from(new Uint8Array([1, 2, 3, 4, 5])), scope), 5);
  const buf = new Uint8Array(10);
  assert.equal(await p.read(10, into(buf), scope), 5);
  const pendingRead = p.read(4, into(buf), scope);
  assert.ok(pendingRead instanceof Promise, 'an empty pipe blocks');
  p.closeWrite();
  assert.equal(await pendingRead, 0);
  assert.equal(await p.read(4, into(buf), scope), 0, 'EOF stays');

  const q = new Pipe(4);
  const w = q.write(10, from(new Uint8Array(10).fill(7)), scope);
  assert.ok(w instanceof Promise);
  assert.equal(q.buffered, 4);
  assert.equal(await q.read(2, into(buf), scope), 2);
  assert.equal(q.buffered, 4, 'the blocked writer refilled the room');
  q.closeRead();
  assert.equal(await w, 6);
  assert.equal(await q.write(1, from(new Uint8Array(1)), scope), -ERRNO.EPIPE);

  const r = new Pipe(4);
  const victim = new CancelScope();
  const blocked = r.read(4, into(buf), victim);
  const blockedWrite = new Pipe(1);
  const bw = blockedWrite.write(3, from(new Uint8Array(3)), victim);
  victim.cancelAll();
  assert.equal(await blocked, -ERRNO.EINTR);
  assert.equal(await bw, -ERRNO.EINTR);
  assert.equal(await r.write(2, from(new Uint8Array([9, 9])), scope), 2);
  assert.equal(await r.read(4, into(buf), scope), 2, 'the cancelled reader took nothing');
  assert.equal(await new Pipe(4).read(2, into(buf), victim).valueOf(), -ERRNO.EINTR, 'a cancelled scope cancels new waits at once');
});

test('console: lines, partial reads, EOF markers, Ctrl-C flush, UTF-8 output across writes', async () => {
  const out: string[] = [];
  const interrupted: number[] = [];
  const sleepsInterrupted: number[] = [];
  const c = new Console((t) => out.push(t), (g) => interrupted.push(g), (g) => sleepsInterrupted.push(g));
  const scope = new CancelScope();
  const read = (n: number): Promise<string | number> => readAs(c, 1, n, scope);
  c.input('ab');
  const pending = read(10);
  await turn();
  c.input('c\nde\nf');
  assert.equal(await pending, 'abc\n');
  assert.equal(await read(1), 'd');
  assert.equal(await read(10), 'e\n');
  c.eof();
  assert.equal(await read(10), 'f');
  assert.equal(await read(10), 0);
  c.input('x\n');
  c.interrupt();
  assert.deepEqual(interrupted, [1]);
  assert.deepEqual(sleepsInterrupted, [], 'a foreground group: it is ended, no sleep interrupted');
  c.setForeground(0, 1);
  c.interrupt();
  assert.deepEqual(interrupted, [1], 'no foreground group: nobody to end');
  assert.deepEqual(sleepsInterrupted, [1], 'no foreground group: the input group\'s sleeps are interrupted');
  c.input('y\n');
  assert.equal(await read(10), 'y\n', 'Ctrl-C dropped the typed-ahead line');

  const euro = new TextEncoder().encode('€!');
  c.write(euro.subarray(0, 2));
  c.write(euro.subarray(2));
  assert.equal(out.join(''), '€!');
});

/** A read of `n` bytes of console `c` by a process of `group`: the text, or 0 / -errno. */
async function readAs(c: Console, group: number, n: number, scope: CancelScope): Promise<string | number> {
  const buf = new Uint8Array(n);
  const got = await c.read(n, into(buf), group, scope, -ERRNO.EINTR);
  return got <= 0 ? got : new TextDecoder().decode(buf.subarray(0, got));
}

test('console: only the input group reads (the foreground one, else the group that left none); others get EIO and take nothing', async () => {
  const c = new Console(() => {}, () => {}, () => {});
  const scope = new CancelScope();
  c.input('for-init\n');
  assert.equal(await readAs(c, 5, 10, scope), -ERRNO.EIO, 'group 5 is not init\'s, the foreground one at boot');
  assert.equal(await readAs(c, 1, 20, scope), 'for-init\n', 'the line was left for the foreground');
  c.setForeground(5, 1);
  assert.equal(await readAs(c, 1, 10, scope), -ERRNO.EIO, 'init\'s group is in the background now');
  const job = readAs(c, 5, 20, scope);
  await turn();
  c.input('for-the-job\n');
  assert.equal(await job, 'for-the-job\n');
  const left = readAs(c, 5, 20, scope);
  await turn();
  // The shell at its prompt: no foreground group, its own group reads; a background job does not.
  c.setForeground(0, 2);
  assert.equal(await left, -ERRNO.EIO, 'a read blocked when its group left the foreground fails then');
  assert.equal(await readAs(c, 7, 20, scope), -ERRNO.EIO);
  const shell = readAs(c, 2, 20, scope);
  await turn();
  c.input('for-the-shell\n');
  assert.equal(await shell, 'for-the-shell\n');
});

test('console: after a hang-up, a read by a group other than the input group gets end of file, not EIO, and takes nothing', async () => {
  const c = new Console(() => {}, () => {}, () => {});
  const scope = new CancelScope();
  c.input('last-line\n');
  c.hangup();
  assert.equal(await readAs(c, 5, 20, scope), 0, 'a background reader of a hung-up console: end of file (Linux)');
  assert.equal(await readAs(c, 1, 20, scope), 'last-line\n', 'the input group still reads what was typed before the hang-up');
  assert.equal(await readAs(c, 1, 20, scope), 0);
  assert.equal(await readAs(c, 5, 20, scope), 0);
});

test('fd table: lowest free descriptor, EMFILE, closed table refuses, closeAll releases each open file once', async () => {
  let closes = 0;
  const file = (): OpenFile => ({ refs: 1, close: async () => void closes++ }) as unknown as OpenFile;
  const t = new FdTable();
  const a = file();
  assert.equal(t.install(a), 0);
  assert.equal(t.install(file()), 1);
  assert.equal(t.remove(0), a);
  assert.equal(t.get(0), null);
  assert.equal(t.get(1.5), null);
  assert.equal(t.get(-1), null);
  assert.equal(t.install(a), 0, 'the lowest free fd');
  for (let i = 2; i < NOFILE; i++) assert.equal(t.install(file()), i);
  assert.equal(t.install(file()), -ERRNO.EMFILE);
  assert.equal(t.free, 0);
  assert.equal(t.remove(0), a);
  t.share(0, t.get(1)!); // fd 0 now names fd 1's open file too
  await t.closeAll();
  assert.equal(closes, NOFILE - 1, 'one close per open file (the shared one once)');
  assert.equal(t.install(file()), -ERRNO.EBADF);
});

test('lexical path resolution for getcwd', () => {
  assert.equal(resolvePath('/', 'a/b'), '/a/b');
  assert.equal(resolvePath('/a/b', '..'), '/a');
  assert.equal(resolvePath('/a/b', '../../..'), '/');
  assert.equal(resolvePath('/a', '/x/./y/'), '/x/y');
  assert.equal(resolvePath('/a', './/b/../c'), '/a/c');
});
