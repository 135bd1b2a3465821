/**
 * NVMe controller model conformance at the queue level: hand-built SQEs through the raw harness,
 * checked against shared/specs/nvme.md (registers, admin commands, status codes, phase tags, SQHD,
 * PRP lists, reset, interrupts, power cut, write-protected namespace). No driver code is involved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ID_NS_NSATTR, MQES, NSATTR_WRITE_PROTECTED, REG, SC, cqHeadDoorbell, sqTailDoorbell } from '../../src/devices/nvme/index.js';
import { createPair, enableAdmin, rw, startRig, until, wake, type Cqe, type Rig } from './nvme-harness.js';

const PAGE = 4096;
const status = (c: Cqe): number => (c.sct << 8) | c.sc;

async function withRig(fn: (rig: Rig) => Promise<void>, backend?: Parameters<typeof startRig>[0], extra?: Parameters<typeof startRig>[1]): Promise<void> {
  const rig = await startRig(backend, extra);
  try {
    await fn(rig);
  } finally {
    await rig.stop();
  }
}

test('registers: CAP, VS, enable sets RDY, disable clears it', () => withRig(async (rig) => {
  const b = rig.dev.bar0;
  const capLo = Atomics.load(b, REG.CAP_LO);
  const capHi = Atomics.load(b, REG.CAP_HI);
  assert.equal(capLo & 0xffff, MQES);
  assert.ok(((capLo >>> 24) & 0xff) > 0, 'CAP.TO');
  assert.equal(capHi & 0xf, 0, 'DSTRD');
  assert.equal((capHi >>> 16) & 0xf, 0, 'MPSMIN');
  assert.equal(Atomics.load(b, REG.VS), 0x00010400);
  assert.equal(Atomics.load(b, REG.CSTS) & 1, 0);
  await enableAdmin(rig);
  Atomics.store(b, REG.CC, 0);
  wake(rig.dev);
  await until(() => (Atomics.load(b, REG.CSTS) & 1) === 0, 'RDY=0');
}));

test('enable with a bad admin queue base reports controller fatal status', () => withRig(async (rig) => {
  const b = rig.dev.bar0;
  Atomics.store(b, REG.AQA, 15 | (15 << 16));
  Atomics.store(b, REG.ASQ_LO, 4096 + 8); // not page aligned
  Atomics.store(b, REG.ACQ_LO, 8192);
  Atomics.store(b, REG.CC, 1 | (6 << 16) | (4 << 20));
  wake(rig.dev);
  await until(() => (Atomics.load(b, REG.CSTS) & 2) === 2, 'CSTS.CFS');
  assert.equal(Atomics.load(b, REG.CSTS) & 1, 0);
}));

test('identify controller, namespace and active namespace list', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  const buf = rig.heap.alloc(PAGE);
  assert.equal(status(await admin.run({ opc: 0x06, prp1: buf.addr, cdw10: 1 })), 0);
  assert.equal(buf.getU8(512), 0x66);
  assert.equal(buf.getU8(513), 0x44);
  assert.equal(buf.getU32(516), 1);
  assert.ok(buf.getU8(77) > 0, 'MDTS');
  assert.match(Buffer.from(buf.bytes(24, 40)).toString('ascii'), /RedLeaf/);
  assert.equal(status(await admin.run({ opc: 0x06, nsid: 1, prp1: buf.addr, cdw10: 0 })), 0);
  assert.equal(buf.getU64(0), (8 << 20) / 512);
  assert.equal(buf.getU64(8), (8 << 20) / 512);
  assert.equal(buf.getU8(26) & 0xf, 0);
  assert.equal(buf.getU8(130), 9, 'LBADS');
  buf.fill(0xff);
  assert.equal(status(await admin.run({ opc: 0x06, nsid: 0, prp1: buf.addr, cdw10: 2 })), 0);
  assert.equal(buf.getU32(0), 1);
  assert.equal(buf.getU32(4), 0);
  assert.equal(status(await admin.run({ opc: 0x06, nsid: 1, prp1: buf.addr, cdw10: 2 })), 0);
  assert.equal(buf.getU32(0), 0, 'no namespace above 1');
  assert.equal(status(await admin.run({ opc: 0x06, nsid: 2, prp1: buf.addr, cdw10: 0 })), SC.INVALID_NAMESPACE);
  assert.equal(status(await admin.run({ opc: 0x06, prp1: buf.addr, cdw10: 0x10 })), SC.INVALID_FIELD);
  // Identify data crossing a page boundary goes through PRP2.
  const two = rig.heap.alloc(2 * PAGE);
  assert.equal(status(await admin.run({ opc: 0x06, prp1: two.addr + 2048, prp2: two.addr + PAGE, cdw10: 1 })), 0);
  assert.equal(two.getU8(2048 + 512), 0x66);
}));

test('Identify with an NSID that names no namespace is refused with Invalid Namespace; the controller goes on', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  const buf = rig.heap.alloc(PAGE);
  const refused = async (cns: number, nsid: number, what: string): Promise<void> => {
    buf.fill(0xa5);
    assert.equal(status(await admin.run({ opc: 0x06, nsid, prp1: buf.addr, cdw10: cns })), SC.INVALID_NAMESPACE, what);
    assert.ok(buf.bytes(0, PAGE).every((x) => x === 0xa5), `${what}: no data transferred`);
  };
  // Identify Namespace: one namespace (NN = 1) and no namespace management, so 1 is the only
  // valid NSID (FFFFFFFFh, the common-namespace form, needs namespace management).
  await refused(0x00, 0, 'CNS 0, NSID 0');
  await refused(0x00, 2, 'CNS 0, NSID above NN');
  await refused(0x00, 0xfffffffe, 'CNS 0, NSID FFFFFFFEh');
  await refused(0x00, 0xffffffff, 'CNS 0, NSID FFFFFFFFh');
  // Active namespace list: any NSID below FFFFFFFEh is a start point; those two are refused.
  await refused(0x02, 0xfffffffe, 'CNS 2, NSID FFFFFFFEh');
  await refused(0x02, 0xffffffff, 'CNS 2, NSID FFFFFFFFh');
  buf.fill(0xa5);
  assert.equal(status(await admin.run({ opc: 0x06, nsid: 0xfffffffd, prp1: buf.addr, cdw10: 2 })), 0);
  assert.equal(buf.getU32(0), 0, 'no active namespace above FFFFFFFDh');
  // The controller goes on: namespace 1 is identified, I/O works.
  assert.equal(status(await admin.run({ opc: 0x06, nsid: 1, prp1: buf.addr, cdw10: 0 })), 0);
  assert.equal(buf.getU64(0), (8 << 20) / 512);
  const q = await createPair(admin, 1, 4);
  assert.equal(status(await q.run(rw(2, 0, 1, buf.addr))), 0);
}));

test('block size 4096 is reported as LBADS 12', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  const buf = rig.heap.alloc(PAGE);
  assert.equal(status(await admin.run({ opc: 0x06, nsid: 1, prp1: buf.addr, cdw10: 0 })), 0);
  assert.equal(buf.getU64(0), (1 << 20) / 4096);
  assert.equal(buf.getU8(130), 12);
}, { kind: 'ram', bytes: 1 << 20, blockSize: 4096 }));

test('Set/Get Features number of queues', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  let c = await admin.run({ opc: 0x09, cdw10: 7, cdw11: 7 | (5 << 16) });
  assert.equal(status(c), 0);
  assert.equal(c.dw0, 7 | (5 << 16));
  c = await admin.run({ opc: 0x0a, cdw10: 7 });
  assert.equal(c.dw0, 7 | (5 << 16));
  c = await admin.run({ opc: 0x09, cdw10: 7, cdw11: 1000 | (1000 << 16) });
  assert.ok((c.dw0 & 0xffff) >= 3 && (c.dw0 >>> 16) >= 3, 'at least 4 queue pairs');
  assert.ok((c.dw0 & 0xffff) < 1000, 'capped');
  assert.equal(status(await admin.run({ opc: 0x09, cdw10: 7, cdw11: 0xffff })), SC.INVALID_FIELD);
  assert.equal(status(await admin.run({ opc: 0x09, cdw10: 0x02 })), SC.INVALID_FIELD);
  // After allocating 2 pairs, qid 3 is an invalid queue identifier.
  await admin.run({ opc: 0x09, cdw10: 7, cdw11: 1 | (1 << 16) });
  const q = rig.heap.alloc(PAGE);
  assert.equal(status(await admin.run({ opc: 0x05, prp1: q.addr, cdw10: 3 | (3 << 16), cdw11: 1 })), SC.INVALID_QID);
  assert.equal(status(await admin.run({ opc: 0x05, prp1: q.addr, cdw10: 2 | (3 << 16), cdw11: 1 })), 0);
}));

test('Set Features number of queues after an I/O queue was created: Command Sequence Error until a reset', () => withRig(async (rig) => {
  let admin = await enableAdmin(rig);
  const setQueues = (n: number): Promise<Cqe> => admin.run({ opc: 0x09, cdw10: 7, cdw11: (n - 1) | ((n - 1) << 16) });
  assert.equal(status(await setQueues(4)), 0);
  const mem = rig.heap.alloc(PAGE);
  // A CQ alone is enough, and deleting it does not make the feature settable again.
  assert.equal(status(await admin.run({ opc: 0x05, prp1: mem.addr, cdw10: 1 | (15 << 16), cdw11: 1 })), 0);
  assert.equal(status(await setQueues(1)), SC.COMMAND_SEQUENCE_ERROR, 'after a CQ was created');
  assert.equal(status(await admin.run({ opc: 0x04, cdw10: 1 })), 0);
  assert.equal(status(await setQueues(1)), SC.COMMAND_SEQUENCE_ERROR, 'after it was deleted');
  // The refused command changed nothing: 4 pairs are still allocated, and the controller works.
  const got = await admin.run({ opc: 0x0a, cdw10: 7 });
  assert.equal(status(got), 0);
  assert.equal(got.dw0, 3 | (3 << 16));
  const q = await createPair(admin, 4, 8);
  assert.equal(status(await setQueues(2)), SC.COMMAND_SEQUENCE_ERROR, 'with a queue pair live');
  const buf = rig.heap.alloc(PAGE);
  assert.equal(status(await q.run(rw(2, 0, 1, buf.addr))), 0);
  // A controller reset deletes every queue: the feature is settable again.
  Atomics.store(rig.dev.bar0, REG.CC, 0);
  wake(rig.dev);
  await until(() => (Atomics.load(rig.dev.bar0, REG.CSTS) & 1) === 0, 'RDY=0');
  admin = await enableAdmin(rig);
  assert.equal(status(await setQueues(2)), 0, 'after a reset');
}));

test('queue creation and deletion errors', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  const mem = rig.heap.alloc(16 * PAGE);
  const a = mem.addr;
  const createCq = (qid: number, size: number, cdw11 = 1, base = a): Promise<Cqe> =>
    admin.run({ opc: 0x05, prp1: base, cdw10: qid | ((size - 1) << 16), cdw11 });
  const createSq = (qid: number, size: number, cqid: number, cdw11 = 1, base = a + 8 * PAGE): Promise<Cqe> =>
    admin.run({ opc: 0x01, prp1: base, cdw10: qid | ((size - 1) << 16), cdw11: cdw11 | (cqid << 16) });
  assert.equal(status(await createCq(0, 16)), SC.INVALID_QID);
  assert.equal(status(await createCq(1, 1)), SC.INVALID_QUEUE_SIZE);
  assert.equal(status(await createCq(1, MQES + 2)), SC.INVALID_QUEUE_SIZE);
  assert.equal(status(await createCq(1, 16, 0)), SC.INVALID_FIELD, 'non-contiguous');
  assert.equal(status(await createCq(1, 16, 1, a + 16)), SC.INVALID_FIELD, 'unaligned base');
  assert.equal(status(await createCq(1, 16, 1, rig.phys.byteLength)), SC.INVALID_FIELD, 'base outside memory');
  assert.equal(status(await createCq(1, 16, 1 | 2 | (40 << 16))), SC.INVALID_FIELD, 'vector > 31');
  assert.equal(status(await createCq(1, 16)), 0);
  assert.equal(status(await createCq(1, 16)), SC.INVALID_QID, 'exists');
  assert.equal(status(await createSq(1, 16, 2)), SC.INVALID_CQ);
  assert.equal(status(await createSq(1, 16, 0)), SC.INVALID_CQ);
  assert.equal(status(await createSq(1, 1, 1)), SC.INVALID_QUEUE_SIZE);
  assert.equal(status(await createSq(0, 16, 1)), SC.INVALID_QID);
  assert.equal(status(await createSq(1, 16, 1)), 0);
  assert.equal(status(await createSq(1, 16, 1)), SC.INVALID_QID, 'exists');
  assert.equal(status(await admin.run({ opc: 0x04, cdw10: 1 })), SC.INVALID_QUEUE_DELETION, 'CQ still has an SQ');
  assert.equal(status(await admin.run({ opc: 0x00, cdw10: 2 })), SC.INVALID_QID);
  assert.equal(status(await admin.run({ opc: 0x00, cdw10: 0 })), SC.INVALID_QID);
  assert.equal(status(await admin.run({ opc: 0x00, cdw10: 1 })), 0);
  assert.equal(status(await admin.run({ opc: 0x04, cdw10: 1 })), 0);
  assert.equal(status(await admin.run({ opc: 0x04, cdw10: 1 })), SC.INVALID_QID);
  assert.equal(status(await admin.run({ opc: 0x7f })), SC.INVALID_OPCODE);
  assert.equal(status(await admin.run({ opc: 0x06, cdw10: 1, prp1: a, fuse: 1 })), SC.INVALID_FIELD);
}));

test('I/O command errors: opcode, namespace, LBA range, PRPs, transfer size, data transfer error', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 16);
  const buf = rig.heap.alloc(2 * PAGE);
  const blocks = (8 << 20) / 512;
  const expect = async (f: Parameters<typeof q.run>[0], st: number, what: string): Promise<void> => {
    const c = await q.run(f);
    assert.equal(status(c), st, what);
    assert.equal(c.sqid, 1);
  };
  await expect({ opc: 0x55, nsid: 1 }, SC.INVALID_OPCODE, 'opcode');
  await expect(rw(2, 0, 1, buf.addr, 0, 2), SC.INVALID_NAMESPACE, 'nsid 2');
  await expect(rw(1, 0, 1, buf.addr, 0, 0), SC.INVALID_NAMESPACE, 'nsid 0');
  await expect({ opc: 0x00, nsid: 3 }, SC.INVALID_NAMESPACE, 'flush nsid 3');
  await expect({ opc: 0x00, nsid: 0xffffffff }, 0, 'flush all namespaces');
  await expect(rw(2, blocks - 1, 2, buf.addr, buf.addr + PAGE), SC.LBA_OUT_OF_RANGE, 'end');
  await expect(rw(2, 2 ** 40, 1, buf.addr), SC.LBA_OUT_OF_RANGE, 'huge lba');
  await expect(rw(2, blocks - 1, 1, buf.addr), 0, 'last block');
  await expect(rw(2, 0, 1, buf.addr + 2), SC.INVALID_FIELD, 'PRP1 not dword aligned');
  await expect(rw(2, 0, 8, buf.addr + 512, buf.addr + PAGE + 8), SC.PRP_OFFSET_INVALID, 'PRP2 with offset');
  await expect(rw(2, 0, 1, rig.phys.byteLength), SC.DATA_TRANSFER_ERROR, 'PRP1 past memory');
  await expect(rw(2, 0, 2, rig.phys.byteLength - 512, rig.phys.byteLength), SC.DATA_TRANSFER_ERROR, 'second page past memory');
  await expect(rw(1, 0, 1, 2 ** 40), SC.DATA_TRANSFER_ERROR, 'PRP1 far outside memory');
  await expect(rw(2, 0, 16, buf.addr, rig.phys.byteLength), SC.DATA_TRANSFER_ERROR, 'PRP2 outside memory');
  await expect(rw(2, 0, 24, buf.addr, rig.phys.byteLength + PAGE), SC.DATA_TRANSFER_ERROR, 'PRP list outside memory');
  await expect({ ...rw(2, 0, 1, buf.addr), psdt: 1 }, SC.INVALID_FIELD, 'SGL requested');
  await expect(rw(2, 0, 9000, buf.addr), SC.INVALID_FIELD, 'beyond MDTS (4 MiB)');
}));

test('phase tag and SQHD across many wraps of a tiny queue pair', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 4, 3);
  const buf = rig.heap.alloc(PAGE);
  let done = 0;
  for (let round = 0; round < 60; round++) {
    const n = 1 + (round % 2); // 1 or 2 commands: keeps SQ (4) and CQ (3) from overflowing
    const cids = Array.from({ length: n }, () => q.put(rw(2, round, 1, buf.addr)));
    q.ring();
    const cs = await q.reap(n);
    for (let i = 0; i < n; i++) {
      assert.equal(cs[i]!.cid, cids[i]);
      assert.equal(status(cs[i]!), 0);
      done++;
      assert.equal(cs[i]!.sqhd, done % 4, 'SQ head after the command');
    }
    assert.equal(q.take().length, 0, 'nothing beyond');
  }
  assert.ok(done / 3 > 20, 'wrapped the CQ many times');
}));

test('a full CQ holds commands back until the host frees entries', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 8, 4);
  const buf = rig.heap.alloc(PAGE);
  for (let i = 0; i < 7; i++) q.put(rw(2, i, 1, buf.addr));
  q.ring();
  await sleep(50);
  // 4-entry CQ: 3 completions fill it (one slot stays empty).
  const dw3 = (i: number): number => q.cq.getU32(i * 16 + 12);
  assert.deepEqual([0, 1, 2, 3].map((i) => (dw3(i) >>> 16) & 1), [1, 1, 1, 0]);
  const first = q.take();
  assert.deepEqual(first.map((c) => c.cid), [0, 1, 2]);
  assert.equal(first[2]!.sqhd, 3);
  const rest = await q.reap(4);
  assert.deepEqual(rest.map((c) => c.cid), [3, 4, 5, 6]);
  assert.equal(rest[3]!.sqhd, 7);
}));

test('an out-of-range CQ head doorbell holds commands back instead of overwriting completions', async () => {
  // Both backends: the RAM one executes command by command, the file one also in runs and batches.
  const dir = mkdtempSync(join(tmpdir(), 'nvme-cqhead-'));
  const img = join(dir, 'disk.img');
  writeFileSync(img, Buffer.alloc(1 << 20));
  try {
    for (const backend of [undefined, { kind: 'file' as const, path: img }]) {
      await withRig(async (rig) => {
        const admin = await enableAdmin(rig);
        const q = await createPair(admin, 1, 8, 4);
        const buf = rig.heap.alloc(PAGE);
        // A host bug: a head past the 4-entry CQ. Nothing says which entries the host consumed,
        // so the controller may post none (as for an out-of-range SQ tail, it waits for a sane value).
        Atomics.store(rig.dev.bar0, cqHeadDoorbell(1), 100);
        for (let i = 0; i < 7; i++) q.put(rw(2, i, 1, buf.addr));
        q.ring();
        await sleep(50);
        const dw3 = (i: number): number => q.cq.getU32(i * 16 + 12);
        assert.deepEqual([0, 1, 2, 3].map((i) => (dw3(i) >>> 16) & 1), [0, 0, 0, 0], 'no completion posted');
        // A sane head again: every command completes, none lost.
        Atomics.store(rig.dev.bar0, cqHeadDoorbell(1), 0);
        wake(rig.dev);
        const all = await q.reap(7);
        assert.deepEqual(all.map((c) => c.cid), [0, 1, 2, 3, 4, 5, 6]);
        assert.ok(all.every((c) => status(c) === 0));
        assert.equal((await admin.run({ opc: 0x06, cdw10: 1, prp1: buf.addr })).sc, 0, 'the controller lives on');
      }, backend);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PRP lists: scattered pages, page offsets and chained list pages round-trip', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 8);
  const pages = 600; // > 511 entries: needs a chained list page even without an offset
  const bytes = pages * PAGE - 1024; // starts at offset 512, ends 512 bytes before the last page end
  const nlb = bytes / 512;
  // Data pages in a shuffled order, so a walk that merged or reordered wrongly corrupts data.
  const pool = rig.heap.alloc((pages + 1) * PAGE);
  const order = Array.from({ length: pages }, (_, i) => i).sort((x, y) => ((x * 7919) % pages) - ((y * 7919) % pages));
  const pageAddr = order.map((i) => pool.addr + i * PAGE);
  const pattern = new Uint8Array(bytes);
  randomFillSync(pattern);
  const phys = new Uint8Array(rig.phys);
  const scatter = (): void => {
    let off = 0;
    for (let p = 0; p < pages; p++) {
      const start = p === 0 ? 512 : 0;
      const len = Math.min(PAGE - start, bytes - off);
      phys.set(pattern.subarray(off, off + len), pageAddr[p]! + start);
      off += len;
    }
  };
  const gather = (): Uint8Array => {
    const out = new Uint8Array(bytes);
    let off = 0;
    for (let p = 0; p < pages; p++) {
      const start = p === 0 ? 512 : 0;
      const len = Math.min(PAGE - start, bytes - off);
      out.set(phys.subarray(pageAddr[p]! + start, pageAddr[p]! + start + len), off);
      off += len;
    }
    return out;
  };
  // List starts 16 bytes before a page end: 1 data entry + pointer, then a full page (511 + ptr), then the rest.
  const lists = rig.heap.alloc(3 * PAGE);
  const l0 = lists.addr + PAGE - 16;
  const put = (addr: number, v: number): void => new DataView(rig.phys).setBigUint64(addr, BigInt(v), true);
  put(l0, pageAddr[1]!);
  put(l0 + 8, lists.addr + PAGE);
  for (let i = 0; i < 511; i++) put(lists.addr + PAGE + 8 * i, pageAddr[2 + i]!);
  put(lists.addr + PAGE + 8 * 511, lists.addr + 2 * PAGE);
  for (let i = 513; i < pages; i++) put(lists.addr + 2 * PAGE + 8 * (i - 513), pageAddr[i]!);
  scatter();
  assert.equal(status(await q.run(rw(1, 100, nlb, pageAddr[0]! + 512, l0))), 0);
  phys.fill(0, pool.addr, pool.addr + pool.byteLength);
  assert.equal(status(await q.run(rw(2, 100, nlb, pageAddr[0]! + 512, l0))), 0);
  assert.ok(Buffer.from(gather()).equals(Buffer.from(pattern)), 'data survives write + read through chained PRP lists');
  // Read it again into one contiguous buffer through a differently shaped chain (511 entries and a
  // pointer, then the rest): a walk that got the chaining wrong disagrees with the first layout.
  const flat = rig.heap.alloc((pages + 1) * PAGE);
  const chain = rig.heap.alloc(2 * PAGE);
  for (let i = 0; i < 511; i++) put(chain.addr + 8 * i, flat.addr + (i + 1) * PAGE);
  put(chain.addr + 8 * 511, chain.addr + PAGE);
  for (let i = 511; i < pages - 1; i++) put(chain.addr + PAGE + 8 * (i - 511), flat.addr + (i + 1) * PAGE);
  assert.equal(status(await q.run(rw(2, 100, nlb, flat.addr + 512, chain.addr))), 0);
  assert.ok(Buffer.from(flat.bytes(512, bytes)).equals(Buffer.from(pattern)), 'same data through a second chain layout');
  // A list page whose only slot points at itself is rejected, not looped on.
  put(lists.addr + PAGE - 8, lists.addr + PAGE - 8);
  assert.equal(status(await q.run(rw(2, 0, 24, pageAddr[0]!, lists.addr + PAGE - 8))), SC.PRP_OFFSET_INVALID);
}));

test('PRP entries after PRP1 with an offset, the next-list pointer included, are refused; the controller goes on', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 8);
  const pages = 600; // PRP1 + 511 list entries + more: the first list page's last slot chains
  const nlb = (pages * PAGE) / 512;
  const data = rig.heap.alloc(PAGE); // every entry names the same page: a Read may overwrite it
  const lists = rig.heap.alloc(3 * PAGE);
  const put = (addr: number, v: number): void => new DataView(rig.phys).setBigUint64(addr, BigInt(v), true);
  const first = lists.addr;
  for (let i = 0; i < 511; i++) put(first + 8 * i, data.addr);
  const chainTo = (next: number): void => {
    put(first + 8 * 511, next);
    for (let i = 0; i < pages - 512; i++) put(next + 8 * i, data.addr);
  };
  // The next list laid out 8 bytes into its page: a walk that took the pointer as it is would
  // find well-formed entries there, so only the offset check refuses it.
  chainTo(lists.addr + PAGE + 8);
  assert.equal(status(await q.run(rw(2, 0, nlb, data.addr, first))), SC.PRP_OFFSET_INVALID, 'next-list pointer with an offset');
  assert.equal(status(await q.run(rw(1, 0, nlb, data.addr, first))), SC.PRP_OFFSET_INVALID, 'the same for a Write');
  // A data entry with an offset inside a list.
  chainTo(lists.addr + 2 * PAGE);
  put(first + 8 * 7, data.addr + 512);
  assert.equal(status(await q.run(rw(2, 0, nlb, data.addr, first))), SC.PRP_OFFSET_INVALID, 'list entry with an offset');
  // The same command well formed completes, and so does the next.
  put(first + 8 * 7, data.addr);
  assert.equal(status(await q.run(rw(2, 0, nlb, data.addr, first))), 0, 'page-aligned chain');
  assert.equal(status(await q.run(rw(2, 0, 1, data.addr))), 0);
  assert.equal(status(await admin.run({ opc: 0x06, cdw10: 1, prp1: data.addr })), 0, 'admin queue too');
}));

test('garbage in a queue is answered entry by entry and never kills the controller', () => withRig(async (rig) => {
  const admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 64);
  for (let round = 0; round < 5; round++) {
    const junk = new Uint8Array(63 * 64);
    randomFillSync(junk);
    q.sq.write(0, junk);
    q.sqTail = (q.sqTail + 63) % 64;
    q.ring();
    const cs = await q.reap(63);
    assert.equal(cs.length, 63);
  }
  // Garbage on the admin queue too (it may create or delete queues; it must answer).
  const junk = new Uint8Array(15 * 64);
  randomFillSync(junk);
  admin.sq.write(0, junk);
  admin.sqTail = (admin.sqTail + 15) % 16;
  admin.ring();
  assert.equal((await admin.reap(15)).length, 15);
  // An out-of-range tail doorbell is ignored, not trusted.
  Atomics.store(rig.dev.bar0, sqTailDoorbell(0), 5000);
  wake(rig.dev);
  await sleep(20);
  Atomics.store(rig.dev.bar0, sqTailDoorbell(0), admin.sqTail);
  const buf = rig.heap.alloc(PAGE);
  assert.equal(status(await admin.run({ opc: 0x06, prp1: buf.addr, cdw10: 1 })), 0, 'still alive');
}));

test('reset with commands outstanding drops every queue; bring-up works again', () => withRig(async (rig) => {
  const b = rig.dev.bar0;
  let admin = await enableAdmin(rig);
  const q = await createPair(admin, 1, 16, 2); // CQ of 2 holds back all but one command
  const buf = rig.heap.alloc(PAGE);
  for (let i = 0; i < 10; i++) q.put(rw(2, i, 1, buf.addr));
  q.ring();
  await until(() => q.cq.getU32(12) !== 0, 'first completion');
  await sleep(10);
  Atomics.store(b, REG.CC, 0);
  wake(rig.dev);
  await until(() => (Atomics.load(b, REG.CSTS) & 1) === 0, 'RDY=0');
  admin = await enableAdmin(rig);
  const q2 = await createPair(admin, 1, 16); // qid 1 is free again: the reset deleted it
  await sleep(20);
  assert.equal(q2.take().length, 0, 'no stale completions from before the reset');
  assert.equal(status(await q2.run(rw(2, 0, 1, buf.addr))), 0);
}));

test('interrupts: one vector per CQ, none without IEN, masking and unmasking', () => withRig(async (rig) => {
  const b = rig.dev.bar0;
  const admin = await enableAdmin(rig);
  const q1 = await createPair(admin, 1, 8, 8, 1);
  const q2 = await createPair(admin, 2, 8, 8, 5);
  const q3 = await createPair(admin, 3, 8);
  const buf = rig.heap.alloc(PAGE);
  // An interrupt reaches the host after the completion it signals is in memory (as an MSI follows
  // the CQE's write), so the admin commands' completions can be reaped before it is delivered.
  await until(() => rig.irqSeen.count[0]! > 0, 'admin completions raise vector 0');
  const before = [...rig.irqSeen.count];
  await q1.run(rw(2, 0, 1, buf.addr));
  await until(() => rig.irqSeen.count[1]! > before[1]!, 'vector 1');
  await q2.run(rw(2, 0, 1, buf.addr));
  await until(() => rig.irqSeen.count[5]! > before[5]!, 'vector 5');
  const mid = [...rig.irqSeen.count];
  await q3.run(rw(2, 0, 1, buf.addr));
  await sleep(30);
  assert.deepEqual(rig.irqSeen.count, mid, 'CQ without IEN raises nothing');
  Atomics.or(b, REG.INTMS, 1 << 1);
  await q1.run(rw(2, 0, 1, buf.addr));
  await sleep(30);
  assert.equal(rig.irqSeen.count[1], mid[1], 'masked vector stays quiet');
  assert.equal(Atomics.load(b, REG.INTMS), 1 << 1);
  Atomics.or(b, REG.INTMC, 1 << 1);
  wake(rig.dev);
  await until(() => rig.irqSeen.count[1]! > mid[1]!, 'latched vector 1 after unmask');
  assert.equal(Atomics.load(b, REG.INTMS), 0);
}));

test('power cut: writes after the limit are acknowledged but lost, flush does nothing; stats count them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvme-pc-'));
  const path = join(dir, 'disk.img');
  writeFileSync(path, Buffer.alloc(64 * 512));
  try {
    await withRig(async (rig) => {
      const admin = await enableAdmin(rig);
      const q = await createPair(admin, 1, 8);
      const buf = rig.heap.alloc(PAGE);
      for (let i = 0; i < 4; i++) {
        buf.fill(0xa0 + i);
        assert.equal(status(await q.run(rw(1, i, 1, buf.addr))), 0);
      }
      assert.equal(status(await q.run({ opc: 0x00, nsid: 1 })), 0);
      buf.fill(0);
      assert.equal(status(await q.run(rw(2, 0, 4, buf.addr))), 0);
      assert.deepEqual([0, 1, 2, 3].map((i) => buf.getU8(i * 512)), [0xa0, 0xa1, 0, 0]);
      const img = readFileSync(path);
      assert.deepEqual([0, 1, 2, 3].map((i) => img[i * 512]), [0xa0, 0xa1, 0, 0]);
      const s = rig.dev.stats();
      assert.equal(s.writes, 4);
      assert.equal(s.writesApplied, 2);
      assert.equal(s.writesDropped, 2);
      assert.equal(s.flushes, 1);
      assert.equal(s.reads, 1);
      assert.equal(s.blocksRead, 4);
      assert.equal(s.blocksWritten, 2);
    }, { kind: 'file', path }, { powerCutAfterWrites: 2 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A write-protected namespace (readOnly): every Write, however it reaches the controller (alone,
 * with FUA, as a run of adjacent blocks, in a batch of scattered ones), completes with 20h and
 * changes nothing; a malformed one still gets the status of what is wrong with it; Reads, also in
 * the same doorbell, return the image; Flush succeeds; Identify Namespace sets NSATTR bit 0 (and
 * a writable namespace does not).
 */
for (const kind of ['file', 'ram'] as const) {
  test(`write-protected namespace (${kind}): Writes get status 20h and change nothing; Reads, Flush and Identify work`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nvme-wp-'));
    const path = join(dir, 'disk.img');
    const image = randomFillSync(Buffer.alloc(256 * 512));
    writeFileSync(path, image);
    try {
      await withRig(async (rig) => {
        assert.equal(rig.dev.readOnly, true);
        const admin = await enableAdmin(rig);
        const id = rig.heap.alloc(PAGE);
        assert.equal(status(await admin.run({ opc: 0x06, nsid: 1, prp1: id.addr, cdw10: 0 })), 0);
        assert.equal(id.getU8(ID_NS_NSATTR) & NSATTR_WRITE_PROTECTED, NSATTR_WRITE_PROTECTED, 'NSATTR: write protected');
        const q = await createPair(admin, 1, 32);
        const src = rig.heap.alloc(8 * PAGE);
        src.fill(0x5a);
        const dst = rig.heap.alloc(8 * PAGE);
        const writes = [
          rw(1, 0, 1, src.addr), rw(1, 1, 1, src.addr + PAGE), rw(1, 2, 1, src.addr + 2 * PAGE), // a run
          rw(1, 40, 2, src.addr), rw(1, 90, 1, src.addr), rw(1, 7, 8, src.addr, src.addr + PAGE), // a batch
          { ...rw(1, 200, 1, src.addr), cdw12: 1 << 30 }, // FUA
        ];
        writes.forEach((w) => q.put(w));
        q.put(rw(2, 0, 8, dst.addr, dst.addr + PAGE));
        q.put(rw(1, 255, 2, src.addr)); // past the end: LBA out of range, not write protected
        q.put({ opc: 0x00, nsid: 1 });
        q.ring();
        const cs = await q.reap(writes.length + 3);
        assert.deepEqual(cs.map(status), [...writes.map(() => SC.NS_WRITE_PROTECTED), 0, SC.LBA_OUT_OF_RANGE, 0]);
        assert.ok(Buffer.from(dst.bytes(0, 8 * 512)).equals(kind === 'file' ? image.subarray(0, 8 * 512) : Buffer.alloc(8 * 512)), 'reads return the image');
        if (kind === 'file') assert.ok(readFileSync(path).equals(image), 'the image file is unchanged');
        const s = rig.dev.stats();
        assert.equal(s.writesApplied, 0);
        assert.equal(s.blocksWritten, 0);
        assert.equal(s.errors, writes.length + 1);
      }, kind === 'file' ? { kind: 'file', path } : { kind: 'ram', bytes: 256 * 512 }, { readOnly: true });
      // The same image, writable: NSATTR clear.
      await withRig(async (rig) => {
        assert.equal(rig.dev.readOnly, false);
        const admin = await enableAdmin(rig);
        const id = rig.heap.alloc(PAGE);
        assert.equal(status(await admin.run({ opc: 0x06, nsid: 1, prp1: id.addr, cdw10: 0 })), 0);
        assert.equal(id.getU8(ID_NS_NSATTR), 0, 'NSATTR: writable');
      }, { kind: 'file', path });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
