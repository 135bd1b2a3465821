/**
 * Raw NVMe test harness: drives the controller model through BAR0 and hand-built queue entries in
 * physical memory, with no driver in between, so conformance tests check the device alone.
 *
 * Invariants: every rig is stopped by its test (stop() in finally), and every wait has a deadline,
 * so a broken controller fails a test instead of hanging it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { REG, cqHeadDoorbell, sqTailDoorbell, startNvme, type NvmeBackend, type NvmeDevice, type StartNvmeOptions } from '../../src/devices/nvme/index.js';
import { FakeDma, FakeHeap } from './dma-fake.js';
import type { IommuTables } from '../../src/devices/iommu.js';

export const PHYS_BYTES = 64 << 20;

/** Where a rig's queues and buffers come from (FakeHeap, or an exchange heap's domain: memoryOf). */
export interface DmaAllocator {
  alloc(bytes: number, align?: number): FakeDma;
}

/**
 * The rig's memory: a fresh physical memory with a bump allocator and no IOMMU (the default), or
 * an exchange heap whose tables the controller's IOMMU checks, the rig allocating as `owner`
 * and the controller attached to that domain.
 */
export interface RigMemory {
  phys: SharedArrayBuffer;
  iommu?: IommuTables;
  heap: DmaAllocator;
  /** The domain the controller is attached to (its IOMMU's), when there is one. */
  owner?: number;
  /** The IOMMU loan column that domain was given (loans to it the controller may read). */
  loans?: number;
}

export interface Rig {
  dev: NvmeDevice;
  phys: SharedArrayBuffer;
  heap: DmaAllocator;
  /** Interrupt vector bits delivered so far (OR of all deliveries). */
  irqSeen: { bits: number; count: number[] };
  stop(): Promise<void>;
}

export async function startRig(
  backend: NvmeBackend = { kind: 'ram', bytes: 8 << 20 },
  extra: Pick<StartNvmeOptions, 'powerCutAfterWrites' | 'commandDelayMs' | 'readOnly'> = {},
  memory: RigMemory = fakeMemory(),
): Promise<Rig> {
  const { phys, heap } = memory;
  const dev = await startNvme({ phys, backend, ...extra, ...(memory.iommu ? { iommu: memory.iommu } : {}) });
  if (memory.owner !== undefined) dev.attach(memory.owner, memory.loans);
  const irqSeen = { bits: 0, count: new Array<number>(32).fill(0) };
  dev.onIrq((bits) => {
    irqSeen.bits |= bits;
    for (let v = 0; v < 32; v++) if (bits & (1 << v)) irqSeen.count[v]!++;
  });
  return { dev, phys, heap, irqSeen, stop: () => dev.stop() };
}

function fakeMemory(): RigMemory {
  const phys = new SharedArrayBuffer(PHYS_BYTES);
  return { phys, heap: new FakeHeap(phys) };
}

export function wake(dev: NvmeDevice): void {
  Atomics.add(dev.bar0, dev.wakeWord, 1);
  Atomics.notify(dev.bar0, dev.wakeWord, 1);
}

export async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

export interface Cqe { dw0: number; sqhd: number; sqid: number; cid: number; p: number; sct: number; sc: number; dnr: number }

export interface SqeFields {
  opc: number; cid?: number; nsid?: number; prp1?: number; prp2?: number; fuse?: number; psdt?: number;
  cdw10?: number; cdw11?: number; cdw12?: number;
}

/** One hand-driven queue pair (qid 0 = admin). */
export class RawQueue {
  sqTail = 0;
  cqHead = 0;
  phase = 1;
  nextCid = 0;
  readonly sq: FakeDma;
  readonly cq: FakeDma;

  constructor(readonly rig: Rig, readonly qid: number, readonly sqDepth: number, readonly cqDepth = sqDepth) {
    this.sq = rig.heap.alloc(sqDepth * 64);
    this.cq = rig.heap.alloc(cqDepth * 16);
  }

  /** Write one SQE at the tail (doorbell not rung); returns its CID. */
  put(f: SqeFields): number {
    const off = this.sqTail * 64;
    const cid = f.cid ?? (this.nextCid++ & 0xffff);
    this.sq.fill(0, off, 64);
    this.sq.setU32(off, f.opc | ((f.fuse ?? 0) << 8) | ((f.psdt ?? 0) << 14) | (cid << 16));
    this.sq.setU32(off + 4, f.nsid ?? 0);
    this.sq.setU64(off + 24, f.prp1 ?? 0);
    this.sq.setU64(off + 32, f.prp2 ?? 0);
    this.sq.setU32(off + 40, f.cdw10 ?? 0);
    this.sq.setU32(off + 44, f.cdw11 ?? 0);
    this.sq.setU32(off + 48, f.cdw12 ?? 0);
    this.sqTail = (this.sqTail + 1) % this.sqDepth;
    return cid;
  }

  ring(): void {
    Atomics.store(this.rig.dev.bar0, sqTailDoorbell(this.qid), this.sqTail);
    wake(this.rig.dev);
  }

  /** CQEs currently visible with the expected phase, consumed (head doorbell written if any). */
  take(max = Infinity): Cqe[] {
    const out: Cqe[] = [];
    while (out.length < max) {
      const off = this.cqHead * 16;
      const dw3 = this.cq.loadU32(off + 12);
      const p = (dw3 >>> 16) & 1;
      if (p !== this.phase) break;
      const dw2 = this.cq.getU32(off + 8);
      out.push({ dw0: this.cq.getU32(off), sqhd: dw2 & 0xffff, sqid: dw2 >>> 16, cid: dw3 & 0xffff, p,
        sc: (dw3 >>> 17) & 0xff, sct: (dw3 >>> 25) & 7, dnr: dw3 >>> 31 });
      if (++this.cqHead === this.cqDepth) { this.cqHead = 0; this.phase ^= 1; }
    }
    if (out.length > 0) Atomics.store(this.rig.dev.bar0, cqHeadDoorbell(this.qid), this.cqHead);
    return out;
  }

  async reap(n: number, ms = 3000): Promise<Cqe[]> {
    const got: Cqe[] = [];
    await until(() => { got.push(...this.take(n - got.length)); return got.length >= n; }, `${n} completions on queue ${this.qid} (got ${got.length})`, ms);
    return got;
  }

  /** Submit one command, ring, and return its completion. */
  async run(f: SqeFields): Promise<Cqe> {
    const cid = this.put(f);
    this.ring();
    const [c] = await this.reap(1);
    if (c!.cid !== cid) throw new Error(`completion for cid ${c!.cid}, expected ${cid}`);
    return c!;
  }
}

/** Enable the controller with an admin queue of `depth` entries. */
export async function enableAdmin(rig: Rig, depth = 16): Promise<RawQueue> {
  const b = rig.dev.bar0;
  const admin = new RawQueue(rig, 0, depth);
  Atomics.store(b, REG.AQA, (depth - 1) | ((depth - 1) << 16));
  Atomics.store(b, REG.ASQ_LO, admin.sq.addr);
  Atomics.store(b, REG.ASQ_HI, 0);
  Atomics.store(b, REG.ACQ_LO, admin.cq.addr);
  Atomics.store(b, REG.ACQ_HI, 0);
  Atomics.store(b, REG.CC, 1 | (6 << 16) | (4 << 20));
  wake(rig.dev);
  await until(() => (Atomics.load(b, REG.CSTS) & 1) === 1, 'CSTS.RDY=1');
  return admin;
}

/** Create I/O CQ+SQ `qid` (CQ with interrupts on vector `iv` when `iv` >= 0). */
export async function createPair(admin: RawQueue, qid: number, sqDepth: number, cqDepth = sqDepth, iv = -1): Promise<RawQueue> {
  const q = new RawQueue(admin.rig, qid, sqDepth, cqDepth);
  const cq = await admin.run({ opc: 0x05, prp1: q.cq.addr, cdw10: qid | ((cqDepth - 1) << 16), cdw11: 1 | (iv >= 0 ? 2 | (iv << 16) : 0) });
  const sq = await admin.run({ opc: 0x01, prp1: q.sq.addr, cdw10: qid | ((sqDepth - 1) << 16), cdw11: 1 | (qid << 16) });
  if (cq.sc !== 0 || sq.sc !== 0 || cq.sct !== 0 || sq.sct !== 0) throw new Error(`creating queue pair ${qid} failed`);
  return q;
}

/** Build an I/O read/write SQE's fields for [lba, lba+nlb) and PRPs. */
export const rw = (opc: 1 | 2, lba: number, nlb: number, prp1: number, prp2 = 0, nsid = 1): SqeFields =>
  ({ opc, nsid, prp1, prp2, cdw10: lba % 0x100000000, cdw11: Math.floor(lba / 0x100000000), cdw12: nlb - 1 });
