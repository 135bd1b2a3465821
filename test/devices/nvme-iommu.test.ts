/**
 * The NVMe controller behind its IOMMU (src/devices/iommu.ts), over a real exchange heap, driven
 * by hand as domain DRIVER's driver would: a Read into memory of another domain gets Data Transfer
 * Error and not a byte lands there; a Write from it too, unless the memory is lent to a call into
 * the driver in progress (a driver writes a caller's borrowed buffer; a loan to another domain
 * does not count); a PRP list in foreign memory is refused;
 * queue memory the driver freed after creating its queues stops the controller (Controller Fatal
 * Status) before it fetches a command from it. Every refusal reaches the kernel's side as a DMA
 * fault naming the address, the length, the direction and the domain the controller serves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REG, SC, sqTailDoorbell } from '../../src/devices/nvme/index.js';
import type { DmaFault } from '../../src/devices/iommu.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeDma } from './dma-fake.js';
import { createPair, enableAdmin, rw, startRig, until, type RawQueue, type Rig } from './nvme-harness.js';
import { heapAndKit } from '../kernel/kit-helpers.js';

const DRIVER = 1;
const OTHER = 2;
/** The IOMMU loan column DRIVER was given. */
const LOANS = 0;

/** A rig over an exchange heap, the controller attached to DRIVER; `other` allocates OTHER's memory. */
async function iommuRig(extra: Parameters<typeof startRig>[1] = {}): Promise<{ rig: Rig; other: (bytes: number) => FakeDma; slotOf: (d: FakeDma) => number; faults: DmaFault[]; heap: ReturnType<typeof heapAndKit>['heap'] }> {
  const { heap, kit } = heapAndKit({ physBytes: 32 << 20, maxSlots: 1024 });
  const slots = new Map<number, number>();
  const allocAs = (owner: number) => (bytes: number, align = 4096): FakeDma => {
    const slot = kit.slotOf(kit.allocBytes(owner, bytes, align));
    slots.set(heap.off[slot]!, slot);
    return new FakeDma(heap.phys, heap.off[slot]!, bytes);
  };
  const rig = await startRig({ kind: 'ram', bytes: 1 << 20 }, extra, { phys: heap.phys, iommu: heap.iommuTables, heap: { alloc: allocAs(DRIVER) }, owner: DRIVER, loans: LOANS });
  const faults: DmaFault[] = [];
  rig.dev.onDmaFault((f) => faults.push(f));
  return { rig, other: allocAs(OTHER), slotOf: (d) => slots.get(d.addr)!, faults, heap };
}

/** I/O queue pair 1 of `rig`, with blocks 0-7 written with 0x3c from a buffer of the driver's own (its Write must succeed). */
async function queueWithBlock0(rig: Rig): Promise<RawQueue> {
  const q = await createPair(await enableAdmin(rig), 1, 8);
  const src = rig.heap.alloc(4096);
  src.fill(0x3c);
  assert.equal((await q.run(rw(1, 0, 8, src.addr))).sc, SC.SUCCESS, 'a Write from the driver\'s own buffer');
  return q;
}

test('IOMMU: a Read lands in the driver\'s memory only; into another domain\'s it is a Data Transfer Error, reported as a write fault', async () => {
  const { rig, other, faults } = await iommuRig();
  try {
    const q = await queueWithBlock0(rig);
    const own = rig.heap.alloc(4096);
    assert.equal((await q.run(rw(2, 0, 8, own.addr))).sc, SC.SUCCESS);
    assert.ok(own.bytes().every((b) => b === 0x3c), 'the Read landed');

    const victim = other(4096);
    victim.fill(0xa5);
    assert.equal((await q.run(rw(2, 0, 8, victim.addr))).sc, SC.DATA_TRANSFER_ERROR);
    assert.ok(victim.bytes().every((b) => b === 0xa5), 'not a byte landed in the other domain\'s memory');
    await until(() => faults.length > 0, 'the fault report');
    assert.deepEqual(faults[0], { addr: victim.addr, len: 4096, write: true, domain: DRIVER });
    assert.equal((await q.run(rw(2, 0, 8, own.addr))).sc, SC.SUCCESS, 'the controller goes on');
  } finally {
    await rig.stop();
  }
});

test('IOMMU: a Write reads another domain\'s memory only while it is lent to a call into the driver; a PRP list there is refused', async () => {
  const { rig, other, slotOf, faults, heap } = await iommuRig();
  try {
    const q = await createPair(await enableAdmin(rig), 1, 8);
    const foreign = other(4096);
    foreign.fill(0x77);
    assert.equal((await q.run(rw(1, 0, 8, foreign.addr))).sc, SC.DATA_TRANSFER_ERROR, 'not lent: refused');
    await until(() => faults.length === 1, 'the fault report');
    assert.deepEqual(faults[0], { addr: foreign.addr, len: 4096, write: false, domain: DRIVER });

    heap.beginBorrow(slotOf(foreign)); // lent to a call into a domain that drives no device
    assert.equal((await q.run(rw(1, 0, 8, foreign.addr))).sc, SC.DATA_TRANSFER_ERROR, 'lent to another domain: refused');
    await until(() => faults.length === 2, 'the second fault report');
    heap.beginBorrow(slotOf(foreign), LOANS);
    assert.equal((await q.run(rw(1, 0, 8, foreign.addr))).sc, SC.SUCCESS, 'lent to the driver: the Write reads it');
    assert.equal((await q.run(rw(2, 0, 8, foreign.addr))).sc, SC.DATA_TRANSFER_ERROR, 'lent, it is still not written');
    heap.endBorrow(slotOf(foreign), LOANS);
    heap.endBorrow(slotOf(foreign));
    const back = rig.heap.alloc(4096);
    assert.equal((await q.run(rw(2, 0, 8, back.addr))).sc, SC.SUCCESS);
    assert.ok(back.bytes().every((b) => b === 0x77), 'the lent buffer was written to the disk');

    // Three pages: PRP2 points at a list, here one of the other domain's pages.
    const data = rig.heap.alloc(3 * 4096);
    const list = other(4096);
    list.setU64(0, data.addr + 4096);
    list.setU64(8, data.addr + 8192);
    assert.equal((await q.run(rw(2, 0, 24, data.addr, list.addr))).sc, SC.DATA_TRANSFER_ERROR, 'the PRP list is not the driver\'s');
    // Reports of faults close together may come as one (the last record): wait for the PRP list's.
    await until(() => faults.at(-1)?.addr === list.addr, 'the PRP list\'s fault report');
    assert.deepEqual(faults.at(-1), { addr: list.addr, len: 8, write: false, domain: DRIVER });
  } finally {
    await rig.stop();
  }
});

test('IOMMU: queue memory freed after its queue was created stops the controller (Controller Fatal Status) before a command is fetched from it', async () => {
  const { rig, slotOf, faults, heap } = await iommuRig();
  try {
    const q = await createPair(await enableAdmin(rig), 1, 8);
    const buf = rig.heap.alloc(4096);
    assert.equal((await q.run(rw(2, 0, 8, buf.addr))).sc, SC.SUCCESS);
    heap.free(slotOf(q.sq));
    q.put(rw(2, 0, 8, buf.addr));
    q.ring();
    await until(() => (Atomics.load(rig.dev.bar0, REG.CSTS) & 0b10) !== 0, 'CSTS.CFS');
    await until(() => faults.length > 0, 'the fault report');
    assert.deepEqual(faults[0], { addr: q.sq.addr, len: 8 * 64, write: false, domain: DRIVER });
    assert.equal(q.take().length, 0, 'nothing was completed');
  } finally {
    await rig.stop();
  }
});

test('IOMMU: once freed queue memory has stopped the controller, no other queue\'s command is executed in the same pass', async () => {
  const { rig, slotOf, heap } = await iommuRig();
  try {
    const admin = await enableAdmin(rig);
    const q1 = await createPair(admin, 1, 8);
    const q2 = await createPair(admin, 2, 8);
    const buf = rig.heap.alloc(4096);
    heap.free(slotOf(q1.sq));
    // Both doorbells before the one wake: the controller meets queue 1 first, in the same pass as queue 2.
    q1.put(rw(2, 0, 8, buf.addr));
    q2.put(rw(2, 0, 8, buf.addr));
    Atomics.store(rig.dev.bar0, sqTailDoorbell(1), q1.sqTail);
    q2.ring();
    await until(() => (Atomics.load(rig.dev.bar0, REG.CSTS) & 0b10) !== 0, 'CSTS.CFS');
    await sleep(50);
    assert.equal(q2.take().length, 0, 'a controller in fatal status executed a command of another queue');
  } finally {
    await rig.stop();
  }
});

/** A slow controller (commandDelayMs): every Read or Write sits this long inside the controller. */
const SLOW_MS = 400;

/** A Read into a buffer of the driver's, taken by the controller, which now sits in its delay (`rig` started with commandDelayMs SLOW_MS). */
async function slowReadInFlight(rig: Rig): Promise<{ q: RawQueue; own: FakeDma }> {
  const q = await queueWithBlock0(rig);
  const own = rig.heap.alloc(4096);
  q.put(rw(2, 0, 8, own.addr));
  q.ring();
  await sleep(SLOW_MS / 4);
  return { q, own };
}

test('IOMMU: a slow command checks its memory when it moves the data, not before it waits: a buffer freed (and given to another domain) meanwhile is refused', async () => {
  const { rig, other, slotOf, faults, heap } = await iommuRig({ commandDelayMs: SLOW_MS });
  try {
    // The controller took the Read and sits in its delay: the driver frees the buffer, and the heap
    // hands the same block to another domain, which fills it.
    const { q, own } = await slowReadInFlight(rig);
    heap.free(slotOf(own));
    const victim = other(4096);
    assert.equal(victim.addr, own.addr, 'the freed block was reused');
    victim.fill(0xa5);
    const [c] = await q.reap(1, 3000 + 2 * SLOW_MS);
    assert.equal(c!.sc, SC.DATA_TRANSFER_ERROR);
    assert.ok(victim.bytes().every((b) => b === 0xa5), 'not a byte landed in the other domain\'s memory');
    await until(() => faults.length > 0, 'the fault report');
    assert.deepEqual(faults[0], { addr: victim.addr, len: 4096, write: true, domain: DRIVER });
  } finally {
    await rig.stop();
  }
});

test('IOMMU: the opcode is read once: a Read turned into a Write while the command is in the controller neither escapes the write check nor reads', async () => {
  const { rig, other, slotOf, faults, heap } = await iommuRig({ commandDelayMs: SLOW_MS });
  try {
    const q = await queueWithBlock0(rig);
    // Lent to a call: the driver's device may read it (a Write), never write it (a Read).
    const lent = other(4096);
    lent.fill(0xa5);
    heap.beginBorrow(slotOf(lent));
    const at = q.sqTail * 64;
    q.put(rw(2, 0, 8, lent.addr));
    q.ring();
    await sleep(SLOW_MS / 4);
    q.sq.setU32(at, (q.sq.getU32(at) & ~0xff) | 1); // now a Write, as the controller checks it
    const [c] = await q.reap(1, 3000 + 2 * SLOW_MS);
    assert.equal(c!.sc, SC.DATA_TRANSFER_ERROR, 'executed as the Read it was fetched as, and refused');
    assert.ok(lent.bytes().every((b) => b === 0xa5), 'not a byte landed in the lent buffer');
    await until(() => faults.length > 0, 'the fault report');
    assert.equal(faults[0]!.write, true);
    heap.endBorrow(slotOf(lent));
  } finally {
    await rig.stop();
  }
});

test('DMA epoch: odd while the controller is in the middle of a command, even once its thread is gone (stopped mid-command): the kernel\'s DMA quarantine waits for no device that cannot transfer', async () => {
  const { rig } = await iommuRig({ commandDelayMs: SLOW_MS });
  let stopped = false;
  try {
    await slowReadInFlight(rig);
    assert.equal(rig.dev.dmaEpoch() & 1, 1, 'in its delay, the controller may be transferring');
    await rig.stop();
    stopped = true;
    assert.equal(rig.dev.dmaEpoch() & 1, 0, 'its thread is gone: parked for good');
  } finally {
    if (!stopped) await rig.stop();
  }
});
