/**
 * Batched transfers on the file backend (fileio.node, src/devices/nvme/fileio.c): the addon's own
 * contract for both its paths (ops in order, consecutive ones grouped, the first failing op
 * reported, memory outside phys and the mapping never touched, bad arguments a TypeError; reads
 * copied through a mapping leave exactly what preadv leaves; an access past the end of a file
 * truncated under the mapping fails the op instead of killing the process), and the controller's
 * batches: any mix of non-adjacent Reads and Writes of any sizes over scattered buffers gives
 * exactly the completions, statuses, data and file contents of one-at-a-time execution, through the
 * mapping, through preadv/pwritev (REDLEAF_NVME_FILEIO=pread) and without the addon
 * (REDLEAF_NVME_FILEIO=0); a batch whose transfer fails part-way gives each later command its own
 * status; an image truncated under a running controller fails reads past its new end and nothing
 * else; writes are in the file after Flush.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { SC } from '../../src/devices/nvme/index.js';
import { FILEIO_ADDON, loadFileIo } from '../../src/devices/nvme/fileio.js';
import { createPair, enableAdmin, rw, startRig, type Cqe, type RawQueue, type Rig, type SqeFields } from './nvme-harness.js';

const PAGE = 4096;
const BS = 512;
const IMAGE_BYTES = 4 << 20;
const status = (c: Cqe): number => (c.sct << 8) | c.sc;
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

/** Submit `cmds` in one doorbell write; their completions, in completion order. */
async function submit(q: RawQueue, cmds: SqeFields[]): Promise<Cqe[]> {
  cmds.forEach((c) => q.put(c));
  q.ring();
  return q.reap(cmds.length);
}

/** A scratch file holding `bytes`, open read-write; removed after `fn`. */
function withFile<T>(bytes: Uint8Array, fn: (fd: number, path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'nvme-fileio-'));
  const path = join(dir, 'f');
  writeFileSync(path, bytes);
  const fd = openSync(path, 'r+');
  try {
    return fn(fd, path);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** How the controller moves file data: the addon's mapping, the addon's preadv/pwritev, or fs without the addon. */
type DataPath = 'mmap' | 'pread' | 'fs';
const FILEIO_SETTING: Record<DataPath, string | undefined> = { mmap: undefined, pread: 'pread', fs: '0' };

async function withImage<T>(path_: DataPath, fn: (rig: Rig, path: string, image: Uint8Array) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'nvme-fileio-'));
  const path = join(dir, 'disk.img');
  const image = randomFillSync(new Uint8Array(IMAGE_BYTES));
  writeFileSync(path, image);
  // The worker copies the environment when it starts: set it only for that moment.
  const saved = process.env.REDLEAF_NVME_FILEIO;
  const setting = FILEIO_SETTING[path_];
  if (setting === undefined) delete process.env.REDLEAF_NVME_FILEIO;
  else process.env.REDLEAF_NVME_FILEIO = setting;
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

/** The data paths this machine has: the addon's two only when it was built. */
const dataPaths: DataPath[] = hasCompiler ? ['mmap', 'pread', 'fs'] : ['fs'];

for (const dp of dataPaths) {
  test(`batches of reads and writes are as if one at a time (${dp})`, async () => {
    await fc.assert(fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 40 }), (cmds) =>
      withImage(dp, (rig, path, image) => checkBatch(rig, path, image, cmds))), { numRuns: dp === 'fs' ? 5 : 12 });
  });
}

for (const dp of dataPaths) {
  test(`a batch whose transfer fails part-way gives every command its own status (${dp})`, () => withImage(dp, async (rig, path, image) => {
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
}

test('addon mapping: copies in order and in range, a file truncated under the mapping fails the op and the process goes on, bad arguments throw', () => {
  const io = loadFileIo().io;
  if (!hasCompiler) return assert.equal(io, null);
  assert.ok(io);
  const file = randomFillSync(new Uint8Array(64 << 10));
  withFile(file, (fd, path) => {
    const m = io.map(fd, file.length);
    if (typeof m === 'string') return assert.fail(`map: ${m}`);
    const phys = new Uint8Array(new SharedArrayBuffer(1 << 20));
    assert.equal(io.copy(m, phys, new Float64Array([0, 8192, 100, 30000, 5000, 300]), 2), 2);
    assert.ok(same(phys.subarray(8192, 8292), file.subarray(0, 100)));
    assert.ok(same(phys.subarray(5000, 5300), file.subarray(30000, 30300)));
    // A write by transfer goes to the file (seen by pread) and a later copy of the same bytes reads it.
    phys.fill(0xab, 60000, 60100);
    assert.equal(io.transfer(fd, true, phys, new Float64Array([1000, 60000, 100, 1000, 70000, 100]), 1), 1);
    assert.equal(io.copy(m, phys, new Float64Array([1000, 70000, 100]), 1), 1);
    assert.ok(phys.subarray(70000, 70100).every((b) => b === 0xab));
    assert.ok(readFileSync(path).subarray(1000, 1100).every((b) => b === 0xab));
    // Out of range in phys, past the mapping: op 1 not done, nothing touched.
    assert.equal(io.copy(m, phys, new Float64Array([0, 0, 10, 10, (1 << 20) - 5, 10]), 2), 1);
    assert.equal(io.copy(m, phys, new Float64Array([0, 0, 10, (64 << 10) - 5, 0, 10]), 2), 1);
    assert.equal(io.copy(m, phys, new Float64Array(0), 0), 0);
    // Another process truncates the file: pages past the new end are gone (SIGBUS). A read there
    // fails; once a write (by transfer) extends the file again, reads there work.
    truncateSync(path, 16 << 10);
    assert.equal(io.copy(m, phys, new Float64Array([4096, 0, 512, 20 << 10, 0, 512, 0, 0, 512]), 3), 1);
    phys.fill(0x11, 0, 4096);
    assert.equal(io.transfer(fd, true, phys, new Float64Array([0, 0, 512, 40 << 10, 0, 4096, 100, 0, 10]), 3), 3);
    assert.equal(statSync(path).size, (40 << 10) + 4096);
    assert.equal(io.copy(m, phys, new Float64Array([40 << 10, 8192, 4096, 36 << 10, 16384, 4096]), 2), 2);
    assert.ok(phys.subarray(8192, 8192 + 4096).every((b) => b === 0x11), 'the write past the end is in the file');
    assert.ok(phys.subarray(16384, 16384 + 4096).every((b) => b === 0), 'the hole it left reads as zeros');
    // Still usable below the new end.
    assert.equal(io.copy(m, phys, new Float64Array([(16 << 10) - 512, 0, 512]), 1), 1);
    assert.ok(same(phys.subarray(0, 512), file.subarray((16 << 10) - 512, 16 << 10)));
    assert.throws(() => io.copy(m, phys, new Float64Array(3), 2), TypeError);
    assert.throws(() => io.copy({} as never, phys, new Float64Array(3), 1), TypeError);
    assert.throws(() => io.map(fd, 0), TypeError);
  });
});

/** Ops inside the 64 KiB file (where one fails the paths may differ in what the failed op left), anywhere in or past 128 KiB of phys. */
const opArb = fc.record({ write: fc.boolean(), pos: fc.nat(), addr: fc.integer({ min: 0, max: (128 << 10) - 1 }), len: fc.integer({ min: 1, max: 9000 }) })
  .map((o) => ({ ...o, pos: o.pos % ((64 << 10) - o.len + 1) }));

test('addon: reads copied through the mapping (between pwritev writes) leave the same file and physical memory as preadv, for any batches', () => {
  const io = loadFileIo().io;
  if (!hasCompiler) return assert.equal(io, null);
  assert.ok(io);
  fc.assert(fc.property(fc.array(fc.array(opArb, { minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (batches, seed) => {
    const file = randomFillSync(new Uint8Array(64 << 10));
    const physInit = new Uint8Array(128 << 10).map((_, i) => (i * 31 + seed) & 0xff);
    const run = (mapped: boolean): { file: Buffer; phys: Uint8Array; done: number[] } => withFile(file, (fd, path) => {
      const m = mapped ? io.map(fd, file.length) : null;
      assert.notEqual(typeof m, 'string');
      const phys = new Uint8Array(new SharedArrayBuffer(physInit.length));
      phys.set(physInit);
      const done = batches.map((ops) => {
        const write = ops[0]!.write;
        const flat = new Float64Array(ops.flatMap((o) => [o.pos, o.addr, o.len]));
        return m && !write ? io.copy(m as never, phys, flat, ops.length) : io.transfer(fd, write, phys, flat, ops.length);
      });
      return { file: readFileSync(path), phys: phys.slice(), done };
    });
    const viaMap = run(true), viaPread = run(false);
    assert.deepEqual(viaMap.done, viaPread.done);
    assert.ok(same(viaMap.phys, viaPread.phys), 'physical memory');
    assert.ok(same(viaMap.file, viaPread.file), 'file contents');
  }), { numRuns: 60 });
});

for (const dp of dataPaths) {
  test(`an image truncated under a running controller fails reads past its new end, and the controller goes on; writes are in the file after Flush (${dp})`, () => withImage(dp, async (rig, path, image) => {
    const admin = await enableAdmin(rig);
    const id = rig.heap.alloc(PAGE);
    assert.equal(status(await admin.run({ opc: 0x06, prp1: id.addr, cdw10: 1 })), 0);
    assert.equal(Buffer.from(id.bytes(24, 40)).toString('ascii').trim(), `RedLeaf.ts NVMe (file, ${dp})`, 'the model number names the data path in use');
    const q = await createPair(admin, 1, 16);
    const phys = new Uint8Array(rig.phys);
    const end = 1 << 20;
    truncateSync(path, end);
    const past = buffer(rig, 8 * BS, 0);
    const cs1 = await submit(q, [rw(2, end / BS, 8, past.prp1, past.prp2), rw(2, IMAGE_BYTES / BS - 8, 8, past.prp1, past.prp2)]);
    assert.deepEqual(cs1.map(status), [SC.INTERNAL_ERROR, SC.INTERNAL_ERROR]);
    // Below the new end: a write, a Flush, a read back, all fine; the file holds the write.
    const data = randomFillSync(new Uint8Array(8 * BS));
    const wbuf = buffer(rig, data.length, 0), rbuf = buffer(rig, data.length, 0);
    for (let o = 0; o < data.length; o++) phys[wbuf.at(o)] = data[o]!;
    const lba = end / BS - 16;
    const cs2 = await submit(q, [rw(1, lba, 8, wbuf.prp1, wbuf.prp2), { opc: 0, nsid: 1 }, rw(2, lba, 8, rbuf.prp1, rbuf.prp2), rw(2, 0, 8, rbuf.prp1, rbuf.prp2)]);
    assert.deepEqual(cs2.map(status), [0, 0, 0, 0]);
    for (let o = 0; o < data.length; o++) assert.equal(phys[rbuf.at(o)], image[o], `byte ${o} of the read of block 0`);
    const reopened = readFileSync(path);
    assert.equal(reopened.length, end);
    assert.ok(same(reopened.subarray(lba * BS, lba * BS + data.length), data), 'the write is in the file after Flush');
  }));
}
