/**
 * Coalescing on the file backend: adjacent Reads (or Writes) at the head of a queue become one
 * transfer with the image (counted by the 'transfers' statistic), with exactly the completions,
 * statuses and data of one-at-a-time execution. Covered: scattered pages with offsets (more
 * segments than one preadv takes), writes with FUA, runs cut by commands that are not adjacent,
 * by other opcodes, by a bad command and by CQ room, and a run that fails part-way (the image
 * shrank) redone command by command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SC } from '../../src/devices/nvme/index.js';
import { createPair, enableAdmin, rw, startRig, type Cqe, type Rig, type RawQueue } from './nvme-harness.js';

const PAGE = 4096;
const BS = 512;
const IMAGE_BYTES = 8 << 20;
const status = (c: Cqe): number => (c.sct << 8) | c.sc;

async function withImageRig(fn: (rig: Rig, path: string, image: Uint8Array) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nvme-coalesce-'));
  const path = join(dir, 'disk.img');
  const image = randomFillSync(new Uint8Array(IMAGE_BYTES));
  writeFileSync(path, image);
  const rig = await startRig({ kind: 'file', path });
  try {
    await fn(rig, path, image);
  } finally {
    await rig.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A command's data buffer: `bytes` starting `offset` into its first page, its pages never adjacent. */
interface Scattered { prp1: number; prp2: number; gather(): Uint8Array; scatter(data: Uint8Array): void }

function scattered(rig: Rig, bytes: number, offset: number): Scattered {
  const npages = Math.ceil((offset + bytes) / PAGE);
  const pool = rig.heap.alloc(2 * npages * PAGE);
  const pages = Array.from({ length: npages }, (_, i) => pool.addr + 2 * i * PAGE); // every other page
  let prp2 = 0;
  if (npages === 2) prp2 = pages[1]!;
  if (npages > 2) {
    const list = rig.heap.alloc(PAGE);
    for (let i = 1; i < npages; i++) list.setU64(8 * (i - 1), pages[i]!);
    prp2 = list.addr;
  }
  const phys = new Uint8Array(rig.phys);
  const walk = (each: (addr: number, off: number, len: number) => void): void => {
    let off = 0;
    for (let p = 0; off < bytes; p++) {
      const start = p === 0 ? offset : 0;
      const len = Math.min(PAGE - start, bytes - off);
      each(pages[p]! + start, off, len);
      off += len;
    }
  };
  return {
    prp1: pages[0]! + offset,
    prp2,
    gather() {
      const out = new Uint8Array(bytes);
      walk((addr, off, len) => out.set(phys.subarray(addr, addr + len), off));
      return out;
    },
    scatter(data) {
      walk((addr, off, len) => phys.set(data.subarray(off, off + len), addr));
    },
  };
}

/** Submit `cmds` at once, ring once, return their completions in order (checking CIDs and SQHD). */
async function batch(q: RawQueue, cmds: Parameters<RawQueue['put']>[0][]): Promise<Cqe[]> {
  const head0 = q.sqTail;
  const cids = cmds.map((c) => q.put(c));
  q.ring();
  const cs = await q.reap(cmds.length);
  cs.forEach((c, i) => {
    assert.equal(c.cid, cids[i], `completion ${i} in submission order`);
    assert.equal(c.sqhd, (head0 + i + 1) % q.sqDepth, `SQHD after command ${i}`);
  });
  return cs;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

test('a run of adjacent reads over scattered pages is one transfer, with every completion and all data', () => withImageRig(async (rig, _path, image) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 64);
  // 32 x 128 KiB starting 512 bytes into a page: 4 MiB (one maximum transfer) in 1056 segments.
  const bytes = 128 << 10;
  const bufs = Array.from({ length: 32 }, () => scattered(rig, bytes, 512));
  const before = rig.dev.stats();
  const cs = await batch(q, bufs.map((b, i) => rw(2, 1000 + i * (bytes / BS), bytes / BS, b.prp1, b.prp2)));
  assert.deepEqual(cs.map(status), new Array(32).fill(0));
  bufs.forEach((b, i) => {
    const at = (1000 + i * (bytes / BS)) * BS;
    assert.ok(same(b.gather(), image.subarray(at, at + bytes)), `data of read ${i}`);
  });
  const after = rig.dev.stats();
  assert.equal(after.transfers - before.transfers, 1, 'one transfer for the whole run');
  assert.equal(after.reads - before.reads, 32);
  assert.equal(after.blocksRead - before.blocksRead, 32 * (bytes / BS));
}));

test('adjacent writes are one transfer too, FUA included; the data reaches the file', () => withImageRig(async (rig, path) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 32);
  const bytes = 8 * BS;
  const data = Array.from({ length: 16 }, () => randomFillSync(new Uint8Array(bytes)));
  const bufs = data.map((d, i) => {
    const b = scattered(rig, bytes, i % 2 === 0 ? 0 : 1024);
    b.scatter(d);
    return b;
  });
  const before = rig.dev.stats();
  const cmds = bufs.map((b, i) => rw(1, 64 + i * 8, 8, b.prp1, b.prp2));
  cmds[5]!.cdw12! |= 1 << 30; // FUA on one of them
  const cs = await batch(q, cmds);
  assert.deepEqual(cs.map(status), new Array(16).fill(0));
  const after = rig.dev.stats();
  assert.equal(after.transfers - before.transfers, 1);
  assert.equal(after.writesApplied - before.writesApplied, 16);
  const file = readFileSync(path);
  data.forEach((d, i) => assert.ok(same(file.subarray((64 + i * 8) * BS, (64 + i * 8) * BS + bytes), d), `write ${i} on disk`));
}));

test('runs are cut by gaps, other opcodes, a bad command and CQ room; results are as if one at a time', () => withImageRig(async (rig, _path, image) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 64, 6); // 5 completions fit the CQ at a time
  const plan: { op: 1 | 2 | 0; lba: number; nlb: number; want: number; nsid?: number }[] = [
    { op: 2, lba: 0, nlb: 4, want: 0 }, { op: 2, lba: 4, nlb: 4, want: 0 }, { op: 2, lba: 8, nlb: 4, want: 0 },
    { op: 2, lba: 100, nlb: 1, want: 0 }, { op: 2, lba: 101, nlb: 1, want: 0 }, // a gap before
    { op: 1, lba: 102, nlb: 1, want: 0 }, // a write after reads
    { op: 2, lba: 103, nlb: 1, want: 0 }, { op: 2, lba: 104, nlb: 1, want: 0 },
    { op: 2, lba: 105, nlb: 1, nsid: 2, want: SC.INVALID_NAMESPACE }, // adjacent, but bad
    { op: 2, lba: 105, nlb: 2, want: 0 }, { op: 0, lba: 0, nlb: 0, want: 0 }, // a flush
    ...Array.from({ length: 12 }, (_, i) => ({ op: 2 as const, lba: 200 + i, nlb: 1, want: 0 })), // longer than the CQ
  ];
  const bufs = plan.map((p) => (p.op === 0 ? null : scattered(rig, p.nlb * BS, 0)));
  const written = randomFillSync(new Uint8Array(BS));
  bufs[5]!.scatter(written);
  const before = rig.dev.stats();
  const cs = await batch(q, plan.map((p, i) => (p.op === 0 ? { opc: 0, nsid: 1 } : rw(p.op, p.lba, p.nlb, bufs[i]!.prp1, bufs[i]!.prp2, p.nsid))));
  assert.deepEqual(cs.map(status), plan.map((p) => p.want));
  const expect = image.slice();
  expect.set(written, 102 * BS);
  plan.forEach((p, i) => {
    if (p.op !== 2 || p.want !== 0) return;
    assert.ok(same(bufs[i]!.gather(), expect.subarray(p.lba * BS, (p.lba + p.nlb) * BS)), `data of command ${i} (lba ${p.lba})`);
  });
  const after = rig.dev.stats();
  const ran = plan.filter((p) => p.op !== 0 && p.want === 0).length;
  assert.ok(after.transfers - before.transfers < ran, `fewer transfers (${after.transfers - before.transfers}) than data commands (${ran})`);
  assert.ok(after.transfers - before.transfers >= 6, 'the gap, the write, the bad command and the CQ each cut a run');
}));

test('a run that fails part-way (the image shrank) is redone command by command, each with its status', () => withImageRig(async (rig, path, image) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 16);
  const end = 4 << 20;
  // Page-aligned: a memory-mapped image fails whole pages past the end of file (see fileio.c).
  truncateSync(path, end); // commands 0-3 below stay readable, 4-7 are past the end
  const first = end / BS - 8;
  const bufs = Array.from({ length: 8 }, () => scattered(rig, 2 * BS, 0));
  const cs = await batch(q, bufs.map((b, i) => rw(2, first + 2 * i, 2, b.prp1, b.prp2)));
  assert.deepEqual(cs.map(status), [0, 0, 0, 0, SC.INTERNAL_ERROR, SC.INTERNAL_ERROR, SC.INTERNAL_ERROR, SC.INTERNAL_ERROR]);
  for (let i = 0; i < 4; i++) {
    const at = (first + 2 * i) * BS;
    assert.ok(same(bufs[i]!.gather(), image.subarray(at, at + 2 * BS)), `data of read ${i}`);
  }
}));
