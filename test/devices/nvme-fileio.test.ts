/**
 * Batched transfers on the file backend (fileio.node, src/devices/nvme/fileio.c): the addon's own
 * contract (ops in order, consecutive ones grouped, the first failing op reported, memory outside
 * phys never touched, bad arguments a TypeError), and the controller's batches: any mix of
 * non-adjacent Reads and Writes of any sizes over scattered buffers gives exactly the completions,
 * statuses, data and file contents of one-at-a-time execution, with the addon and without it
 * (REDLEAF_NVME_FILEIO=0); a batch whose transfer fails part-way gives each later command its own
 * status.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { SC } from '../../src/devices/nvme/index.js';
import { FILEIO_ADDON, loadFileIo } from '../../src/devices/nvme/fileio.js';
import { createPair, enableAdmin, rw, startRig, type Cqe, type Rig } from './nvme-harness.js';

const PAGE = 4096;
const BS = 512;
const IMAGE_BYTES = 4 << 20;
const status = (c: Cqe): number => (c.sct << 8) | c.sc;
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

async function withImage<T>(native: boolean, fn: (rig: Rig, path: string, image: Uint8Array) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'nvme-fileio-'));
  const path = join(dir, 'disk.img');
  const image = randomFillSync(new Uint8Array(IMAGE_BYTES));
  writeFileSync(path, image);
  // The worker copies the environment when it starts: set it only for that moment.
  const saved = process.env.REDLEAF_NVME_FILEIO;
  if (!native) process.env.REDLEAF_NVME_FILEIO = '0';
  let rig: Rig;
  try {
    rig = await startRig({ kind: 'file', path });
  } finally {
    if (saved === undefined) delete process.env.REDLEAF_NVME_FILEIO;
    else process.env.REDLEAF_NVME_FILEIO = saved;
  }
  try {
    return await fn(rig, path, image);
  } finally {
    await rig.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const hasCompiler = ['cc', 'gcc', 'clang'].some((cc) => spawnSync(cc, ['--version'], { stdio: 'ignore' }).status === 0);

test('the addon is built when a C compiler is present, and loads; otherwise the reason is given', () => {
  const { io, why } = loadFileIo();
  if (hasCompiler) {
    assert.ok(existsSync(FILEIO_ADDON), `${FILEIO_ADDON} exists`);
    assert.ok(io, why);
  } else {
    assert.equal(io, null);
    assert.match(why, /was not built/);
  }
});

test('addon: ops run in order, consecutive ones grouped; the first failing op is reported; bad arguments throw (without a compiler: no addon, the fallback is used)', () => {
  const io = loadFileIo().io;
  if (!hasCompiler) {
    assert.equal(io, null);
    return;
  }
  assert.ok(io);
  const dir = mkdtempSync(join(tmpdir(), 'nvme-fileio-'));
  const path = join(dir, 'f');
  const file = randomFillSync(new Uint8Array(64 << 10));
  writeFileSync(path, file);
  const fd = openSync(path, 'r+');
  try {
    const phys = new Uint8Array(new SharedArrayBuffer(1 << 20));
    // Three consecutive ops (one preadv) then a separate one.
    const ops = new Float64Array([0, 8192, 100, 100, 0, 4000, 4100, 50000, 12, 30000, 5000, 300]);
    assert.equal(io.transfer(fd, false, phys, ops, 4), 4);
    assert.ok(same(phys.subarray(8192, 8292), file.subarray(0, 100)));
    assert.ok(same(phys.subarray(0, 4000), file.subarray(100, 4100)));
    assert.ok(same(phys.subarray(50000, 50012), file.subarray(4100, 4112)));
    assert.ok(same(phys.subarray(5000, 5300), file.subarray(30000, 30300)));
    // A write then a read of the same bytes reads what was written (order kept across calls' ops).
    phys.fill(0xab, 60000, 60100);
    assert.equal(io.transfer(fd, true, phys, new Float64Array([1000, 60000, 100]), 1), 1);
    assert.equal(io.transfer(fd, false, phys, new Float64Array([1000, 70000, 100]), 1), 1);
    assert.ok(phys.subarray(70000, 70100).every((b) => b === 0xab));
    // Out of range in phys: op 1 not done, nothing written there; end of file: op 1 not done.
    assert.equal(io.transfer(fd, false, phys, new Float64Array([0, 0, 10, 10, (1 << 20) - 5, 10]), 2), 1);
    assert.equal(io.transfer(fd, false, phys, new Float64Array([0, 0, 10, 64 << 10, 0, 10]), 2), 1);
    assert.equal(io.transfer(fd, false, phys, new Float64Array(0), 0), 0);
    assert.throws(() => io.transfer(fd, false, phys, new Float64Array(3), 2), TypeError);
    assert.throws(() => io.transfer(fd, false, new Float64Array(4) as never, new Float64Array(3), 1), TypeError);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A command's buffer: `bytes` from `offset` into its first page, pages never adjacent (a PRP list past two). */
function buffer(rig: Rig, bytes: number, offset: number): { prp1: number; prp2: number; at: (off: number) => number } {
  const npages = Math.ceil((offset + bytes) / PAGE);
  const pool = rig.heap.alloc(2 * npages * PAGE);
  const pages = Array.from({ length: npages }, (_, i) => pool.addr + 2 * i * PAGE);
  let prp2 = npages === 2 ? pages[1]! : 0;
  if (npages > 2) {
    const list = rig.heap.alloc(PAGE);
    for (let i = 1; i < npages; i++) list.setU64(8 * (i - 1), pages[i]!);
    prp2 = list.addr;
  }
  return {
    prp1: pages[0]! + offset,
    prp2,
    at: (off) => {
      const o = offset + off;
      return pages[Math.floor(o / PAGE)]! + (o % PAGE);
    },
  };
}

interface Cmd { write: boolean; lba: number; nlb: number; offset: number }
const cmdArb = fc.record({ write: fc.boolean(), lba: fc.integer({ min: 0, max: IMAGE_BYTES / BS - 64 }), nlb: fc.integer({ min: 1, max: 40 }), offset: fc.constantFrom(0, 512, 2048) });

/** Run `cmds` as one submission; check statuses, data and the file against one-at-a-time execution. */
async function checkBatch(rig: Rig, path: string, image: Uint8Array, cmds: Cmd[]): Promise<void> {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 64);
  const phys = new Uint8Array(rig.phys);
  const model = image.slice();
  const bufs = cmds.map((c) => buffer(rig, c.nlb * BS, c.offset));
  const writes = cmds.map((c) => (c.write ? randomFillSync(new Uint8Array(c.nlb * BS)) : null));
  const expected: (Uint8Array | null)[] = [];
  cmds.forEach((c, i) => {
    const bytes = c.nlb * BS;
    if (c.write) {
      for (let o = 0; o < bytes; o++) phys[bufs[i]!.at(o)] = writes[i]![o]!;
      model.set(writes[i]!, c.lba * BS);
      expected.push(null);
    } else {
      expected.push(model.slice(c.lba * BS, c.lba * BS + bytes));
    }
  });
  const before = rig.dev.stats();
  cmds.forEach((c, i) => q.put(rw(c.write ? 1 : 2, c.lba, c.nlb, bufs[i]!.prp1, bufs[i]!.prp2)));
  q.ring();
  const cs = await q.reap(cmds.length);
  assert.deepEqual(cs.map(status), cmds.map(() => 0));
  cmds.forEach((c, i) => {
    if (c.write) return;
    const got = new Uint8Array(c.nlb * BS);
    for (let o = 0; o < got.length; o++) got[o] = phys[bufs[i]!.at(o)]!;
    assert.ok(same(got, expected[i]!), `data of read ${i} (lba ${c.lba})`);
  });
  assert.ok(same(readFileSync(path), model), 'the file holds every write in order');
  const after = rig.dev.stats();
  assert.equal(after.reads - before.reads + after.writes - before.writes, cmds.length);
}

for (const native of [true, false]) {
  test(`batches of reads and writes are as if one at a time (${native ? 'addon' : 'fs fallback'})`, async () => {
    await fc.assert(fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 40 }), (cmds) =>
      withImage(native, (rig, path, image) => checkBatch(rig, path, image, cmds))), { numRuns: native ? 12 : 5 });
  });
}

test('a batch whose transfer fails part-way gives every command its own status', () => withImage(hasCompiler, async (rig, path, image) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 16);
  const end = 2 << 20;
  truncateSync(path, end); // blocks from `end` on are past the end of the file
  const lbas = [10, 300, end / BS + 50, 40, end / BS + 8, 700];
  const bufs = lbas.map(() => buffer(rig, BS, 0));
  lbas.forEach((l, i) => q.put(rw(2, l, 1, bufs[i]!.prp1)));
  q.ring();
  const cs = await q.reap(lbas.length);
  assert.deepEqual(cs.map(status), lbas.map((l) => (l * BS >= end ? SC.INTERNAL_ERROR : 0)));
  const phys = new Uint8Array(rig.phys);
  lbas.forEach((l, i) => {
    if (l * BS >= end) return;
    assert.ok(same(phys.subarray(bufs[i]!.at(0), bufs[i]!.at(0) + BS), image.subarray(l * BS, (l + 1) * BS)), `data of read ${i}`);
  });
}));
