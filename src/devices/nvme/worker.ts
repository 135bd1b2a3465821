/**
 * NVMe controller model: the worker thread that plays the controller (spec: shared/specs/nvme.md).
 *
 * It sees only BAR0, physical memory and its interrupt line. One loop: apply control-register
 * changes (CC.EN, CC.SHN, INTMC), then drain every submission queue round-robin in bursts, posting
 * one completion per command and one interrupt per touched completion queue per pass; when there is
 * nothing to do it polls WAKE (for as long as suits the host, see IDLE_SPIN_MS) and parks on it.
 *
 * Invariants:
 *  - every fetched command is answered with exactly one completion (bad ones with a spec status);
 *    a command is fetched only when its completion queue has room, so nothing is ever dropped
 *    except by a controller reset or queue deletion, as the spec says;
 *  - guest-controlled values (doorbells, queue bases, PRPs, list pointers) are range-checked before
 *    use, so garbage can produce an error status but never an exception in this loop;
 *  - data moves between the backend and physical memory directly (pread/pwrite, or preadv/pwritev
 *    for several segments, on views of physical memory; Buffer.copy for RAM): no intermediate
 *    copy, and the hot path allocates nothing (per-queue state and PRP segment lists live in
 *    preallocated typed arrays; views for vectored transfers are cached by address);
 *  - adjacent Reads (or Writes) at the head of a queue are coalesced into one transfer on the file
 *    backend, then completed one by one, exactly as if executed one at a time (a failed transfer is
 *    redone per command for its status);
 *  - with the native addon (fileio.node, see fileio.ts) other Reads (or Writes) at the head of a
 *    queue are batched: validated here one by one exactly as alone (PRPs, ranges), then their
 *    transfers run in order in one native call, then they complete one by one; a failed transfer
 *    and everything after it is redone per command. The addon also moves single commands and runs.
 *    It maps the image shared once at start (its validated size) and copies each Read from the
 *    mapping into physical memory; Writes, and Reads where the image does not map, use its
 *    preadv/pwritev. A read the file no longer backs (truncated by another process) fails that
 *    transfer, like a short pread. Without the addon, fs.readSync/writeSync and readvSync/writevSync;
 *  - a write-protected namespace (config.readOnly; the image file is then open read-only) answers
 *    every Write with NS_WRITE_PROTECTED before any transfer: Writes never take the fast paths
 *    (fastKind), and execIo refuses them with one comparison; Flush does nothing and succeeds;
 *  - the CQE's dword 3 (phase) is stored last with Atomics.store, so a host that sees the new
 *    phase sees the whole entry;
 *  - the bus is serviced before every command and at the top of every pass (src/devices/bus.ts):
 *    a function reset requested by the kernel is acknowledged only between commands, so once the
 *    kernel sees the acknowledgement no transfer or completion write is in progress, and the reset
 *    forgets every queue and ends the pass in progress (even when bus mastering reads as on again:
 *    that is the next driver's attach), so nothing the old driver queued is ever fetched again.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as fs from 'node:fs';
import { WAKE_WORD, deviceBus, raiseIrq, serviceBus, waitWake, type DeviceWorkerData } from '../bus.js';
import { createIommu } from '../iommu.js';
import { loadFileIo, mappingAllowed } from './fileio.js';
import {
  ADMIN, CAP_TO, CSTS_CFS, CSTS_RDY, CSTS_SHST_COMPLETE, CSTS_SHST_MASK, FAIL_ENABLES_WORD, FID_NUMBER_OF_QUEUES, ID_NS_NSATTR, MAX_IO_QUEUES, MDTS, MQES, NSATTR_WRITE_PROTECTED, NVM, PAGE, REG, SC,
  STAT_NAMES, STATS_WORD, VERSION_1_4, cqHeadDoorbell, sqTailDoorbell,
  type NvmeConfig, type NvmeStatName,
} from './regs.js';

const data = workerData as DeviceWorkerData;
const config = data.config as NvmeConfig;
const bar0 = new Int32Array(data.bar0);
const irq = new Int32Array(data.irq);
const bus = deviceBus(data);
const physLen = data.phys.byteLength;
const physI32 = new Int32Array(data.phys, 0, physLen >>> 2);
const physBuf = Buffer.from(data.phys);
/**
 * The controller's transfers are checked by its IOMMU (../iommu.ts) with iommu.check: a refusal
 * is reported to the kernel as a DMA fault, and the caller fails what needed the transfer with
 * the status the specification has for an address it cannot use.
 */
const iommu = createIommu(data.iommu, bus);

/** Commands taken from one SQ before moving to the next (round-robin fairness). */
const BURST = 32;
/**
 * Idle polling before parking on WAKE, kept only while it pays. A host streaming batches rings
 * again within tens of microseconds of its last completions, and parking in between costs a futex
 * round trip on both sides (the host's Atomics.notify, the scheduler waking this thread).
 * But when the host thread has no core of its own (an oversubscribed machine: it runs on this
 * thread's core, in turns) polling only delays it: measured 180-520 us per 32-command batch
 * polling vs 85 us parking at once, against 55 us polling with a core each. So the controller polls
 * for IDLE_SPIN_MS while polling has been catching the host's next doorbell; after a poll that
 * did not, it parks almost at once, probing with a full poll every PROBE_EVERY idle periods.
 */
const IDLE_SPIN_MS = 0.1;
const BRIEF_SPIN_MS = 0.005;
const PROBE_EVERY = 16;
/** The last full poll saw the host ring in time. */
let spinPays = true;
let idlesSinceProbe = 0;
/** Park timeout when idle; the host always rings WAKE, this only bounds a lost wake. */
const IDLE_PARK_MS = 500;
/** Park timeout while a CQ is full: hosts update CQ head doorbells without ringing WAKE. */
const FULL_CQ_PARK_MS = 1;

// ---------------------------------------------------------------------------------------------
// Backend

/**
 * Where a transfer goes in physical memory: `count` segments (address, length), in order, that
 * together map one run of consecutive backend bytes.
 */
interface Segments {
  readonly addr: Float64Array;
  readonly len: Float64Array;
  count: number;
}

interface Backend {
  readonly bytes: number;
  /** Move the bytes at backend offset `pos` onward to (read) or from (write) the segments. */
  read(pos: number, segs: Segments): void;
  write(pos: number, segs: Segments): void;
  flush(): void;
  /** Whether a run of adjacent commands is worth one transfer (one system call instead of many). */
  readonly vectored: boolean;
  /**
   * Several transfers in one call, when the backend can (the file backend with fileio.node):
   * `count` (backend position, physical address, length) triples of `ops`, in order, all reads or
   * all writes; returns how many were done completely (the next one failed).
   */
  readonly batch: ((write: boolean, ops: Float64Array, count: number) => number) | null;
}

function openBackend(cfg: NvmeConfig): { backend: Backend; blockSize: number; label: string } {
  const b = cfg.backend;
  const blockSize = b.blockSize ?? 512;
  if (blockSize !== 512 && blockSize !== 4096) throw new Error(`nvme: block size ${blockSize} is not 512 or 4096`);
  if (b.kind === 'ram') {
    if (!Number.isSafeInteger(b.bytes) || b.bytes <= 0 || b.bytes % blockSize !== 0) {
      throw new Error(`nvme: RAM disk size ${b.bytes} must be a positive multiple of the block size ${blockSize}`);
    }
    const store = Buffer.alloc(b.bytes);
    return {
      blockSize,
      label: 'ram',
      backend: {
        bytes: b.bytes,
        vectored: false,
        batch: null,
        read(pos, segs) {
          for (let i = 0; i < segs.count; i++) {
            const a = segs.addr[i]!, l = segs.len[i]!;
            store.copy(physBuf, a, pos, pos + l);
            pos += l;
          }
        },
        write(pos, segs) {
          for (let i = 0; i < segs.count; i++) {
            const a = segs.addr[i]!, l = segs.len[i]!;
            physBuf.copy(store, pos, a, a + l);
            pos += l;
          }
        },
        flush: () => undefined,
      },
    };
  }
  const fd = cfg.fd!;
  const size = fs.fstatSync(fd).size;
  const fail = (problem: string): never => {
    throw new Error(`nvme: image file ${b.path} ${problem}`);
  };
  if (size === 0) fail('is empty');
  if (size % blockSize !== 0) fail(`has size ${size}, not a multiple of the block size ${blockSize}`);
  const { batch, how } = nativeBatch(fd, size, b.path);
  const io = batch ? nativeTransfer(batch) : fileTransfer(fd);
  return {
    blockSize,
    label: `file, ${how}`,
    backend: {
      bytes: size,
      vectored: true,
      batch,
      read: (pos, segs) => io(false, pos, segs),
      write: (pos, segs) => io(true, pos, segs),
      flush: () => fs.fdatasyncSync(fd),
    },
  };
}

/** At most this many buffers per preadv/pwritev (Linux IOV_MAX; libuv transfers fewer if asked for more). */
const IOV_MAX = 1024;
/** Views of physical memory for vectored transfers, cached by (address, length): a driver reuses
 *  its buffers, so the steady state allocates nothing. Direct-mapped; a miss makes one view. */
const VIEW_CACHE = 1024;
const viewAddr = new Float64Array(VIEW_CACHE).fill(-1);
const viewLen = new Float64Array(VIEW_CACHE);
const views: (Uint8Array | null)[] = new Array<Uint8Array | null>(VIEW_CACHE).fill(null);
function physView(addr: number, len: number): Uint8Array {
  const k = ((addr >>> 6) ^ len) & (VIEW_CACHE - 1);
  if (viewAddr[k] === addr && viewLen[k] === len) return views[k]!;
  const v = new Uint8Array(data.phys, addr, len);
  viewAddr[k] = addr; viewLen[k] = len; views[k] = v;
  return v;
}

/**
 * fileio.node's batch transfer for image `fd` of `bytes` bytes: reads copied from a shared mapping
 * of the image (no system call per command) when it maps, writes (and reads where it does not map)
 * by its pwritev/preadv; null without the addon. `how` names the choice (it shows in the Identify model number).
 */
function nativeBatch(fd: number, bytes: number, path: string): { batch: Backend['batch']; how: string } {
  const native = loadFileIo().io;
  if (!native) return { batch: null, how: 'fs' };
  const mapping = mappingAllowed() ? native.map(fd, bytes) : 'disabled by REDLEAF_NVME_FILEIO=pread';
  // Reads copy from the mapping; writes still go through pwritev. Writing through a shared mapping
  // was measured to cost more than it saves: every first store to a clean page takes a write fault
  // (dirty tracking, block allocation in a sparse image), and after a burst of such writes reads of
  // the same file slowed down ~8x in `bench nvme` (shadow seqread after the write cases), while
  // pwritev kept every path within a few percent. The page cache is one, so the two stay coherent.
  if (typeof mapping !== 'string') {
    return {
      batch: (write, ops, count) => (write ? native.transfer(fd, true, physBuf, ops, count) : native.copy(mapping, physBuf, ops, count)),
      how: 'mmap',
    };
  }
  if (mappingAllowed()) console.warn(`nvme: image file ${path} is not memory-mapped (${mapping}); using preadv/pwritev`);
  return { batch: (write, ops, count) => native.transfer(fd, write, physBuf, ops, count), how: 'pread' };
}

/**
 * The same through fileio.node: the segments as ops of one batch call (consecutive ones one
 * preadv/pwritev, or copies), without Node's per-buffer checks; an op not done is a failed transfer.
 */
function nativeTransfer(batch: NonNullable<Backend['batch']>): (write: boolean, pos: number, segs: Segments) => void {
  let ops = new Float64Array(3 * 64);
  return (write, pos, segs) => {
    if (ops.length < 3 * segs.count) ops = new Float64Array(3 * segs.count);
    putOps(ops, 0, pos, segs);
    const done = batch(write, ops, segs.count);
    if (done < segs.count) throw new Error(`short ${write ? 'write' : 'read'} at segment ${done}`);
  };
}

/**
 * Write `segs`, a transfer starting at backend position `pos`, into `ops` as fileio.node's
 * (position, physical address, length) triples from op index `at`; returns the index after them.
 */
function putOps(ops: Float64Array, at: number, pos: number, segs: Segments): number {
  for (let i = 0; i < segs.count; i++, at++) {
    const len = segs.len[i]!;
    ops[3 * at] = pos;
    ops[3 * at + 1] = segs.addr[i]!;
    ops[3 * at + 2] = len;
    pos += len;
  }
  return at;
}

/**
 * File transfers straight between the image and physical memory: one pread/pwrite for a single
 * segment, preadv/pwritev for several (a PRP list, or a run of adjacent commands). Short transfers
 * continue where they stopped; a read at end of file is an error (the image shrank).
 */
function fileTransfer(fd: number): (write: boolean, pos: number, segs: Segments) => void {
  const iov: Uint8Array[] = [];
  return (write, pos, segs) => {
    if (segs.count === 1) {
      let addr = segs.addr[0]!, len = segs.len[0]!;
      while (len > 0) {
        const n = write ? fs.writeSync(fd, physBuf, addr, len, pos) : fs.readSync(fd, physBuf, addr, len, pos);
        if (n <= 0) throw new Error(`short ${write ? 'write' : 'read'} at ${pos}`);
        pos += n; addr += n; len -= n;
      }
      return;
    }
    let i = 0;
    let done = 0; // bytes of segment i already transferred
    while (i < segs.count) {
      iov.length = 0;
      for (let j = i; j < segs.count && iov.length < IOV_MAX; j++) {
        const skip = j === i ? done : 0;
        iov.push(skip === 0 ? physView(segs.addr[j]!, segs.len[j]!) : new Uint8Array(data.phys, segs.addr[j]! + skip, segs.len[j]! - skip));
      }
      let n = write ? fs.writevSync(fd, iov, pos) : fs.readvSync(fd, iov, pos);
      if (n <= 0) throw new Error(`short ${write ? 'write' : 'read'} at ${pos}`);
      pos += n;
      while (n > 0) {
        const left = segs.len[i]! - done;
        if (n >= left) { n -= left; i++; done = 0; } else { done += n; n = 0; }
      }
    }
  };
}

const { backend, blockSize, label } = openBackend(config);
const lbads = Math.log2(blockSize);
const nsze = backend.bytes / blockSize;
const maxTransfer = PAGE << MDTS;
const powerCutAfter = config.powerCutAfterWrites ?? Infinity;
const readOnly = config.readOnly === true;
/** Writes may take the fast paths (runs, batches): not when they are counted one by one for a power
 *  cut, nor when each is refused (a write-protected namespace). */
const fastWrites = powerCutAfter === Infinity && !readOnly;
const commandDelayMs = config.commandDelayMs ?? 0;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

// ---------------------------------------------------------------------------------------------
// Statistics, published to BAR0 after every pass.

const stats = new Float64Array(STAT_NAMES.length);
const STAT = Object.fromEntries(STAT_NAMES.map((n, i) => [n, i])) as Record<NvmeStatName, number>;
function publishStats(): void {
  for (let i = 0; i < stats.length; i++) Atomics.store(bar0, STATS_WORD + i, stats[i]! % 0x100000000 | 0);
}

// ---------------------------------------------------------------------------------------------
// Queue state, indexed by queue id (0 = admin). Size 0 means "does not exist".

const NQ = MAX_IO_QUEUES + 1;
const sqBase = new Float64Array(NQ);
const sqSize = new Int32Array(NQ);
const sqHead = new Int32Array(NQ);
const sqCq = new Int32Array(NQ);
const cqBase = new Float64Array(NQ);
const cqSize = new Int32Array(NQ);
const cqTail = new Int32Array(NQ);
const cqPhase = new Int32Array(NQ);
/** Interrupt vector bit of the CQ, 0 when interrupts are disabled for it. */
const cqIrqBit = new Int32Array(NQ);

let enabled = false;
/** The CC.EN value the controller last acted on. */
let enSeen = 0;
/** Allocated I/O queues (Set Features FID 7), 0-based like the feature. */
let nsqa = MAX_IO_QUEUES - 1;
let ncqa = MAX_IO_QUEUES - 1;
/** An I/O queue was created since the last reset: the number of queues is fixed until the next. */
let ioQueuesCreated = false;
/** Vectors with completions posted while masked: raised when unmasked. */
let latchedIrq = 0;
/** Vectors to raise at the end of the current pass. */
let pendingIrq = 0;
/** A CQ was full during the last pass: re-check soon without waiting for WAKE. */
let cqBlocked = false;
let writesApplied = 0;

function resetQueues(): void {
  sqSize.fill(0); cqSize.fill(0); sqHead.fill(0); cqTail.fill(0); cqIrqBit.fill(0);
  // Doorbells reset to 0 with their queues; the host rings none before CSTS.RDY.
  for (let q = 0; q < NQ; q++) {
    Atomics.store(bar0, sqTailDoorbell(q), 0);
    Atomics.store(bar0, cqHeadDoorbell(q), 0);
  }
  nsqa = ncqa = MAX_IO_QUEUES - 1;
  ioQueuesCreated = false;
  latchedIrq = pendingIrq = 0;
}

/**
 * True when queue memory [addr, addr+len) is page-aligned at its start, inside physical memory,
 * and the IOMMU lets the controller read (SQ) or write (CQ) it.
 */
const pageRangeOk = (addr: number, len: number, write: boolean): boolean => addr % PAGE === 0 && addr + len <= physLen && iommu.check(addr, len, write);

function controllerReset(): void {
  resetQueues();
  enabled = false;
  Atomics.store(bar0, REG.INTMS, 0);
  Atomics.store(bar0, REG.CSTS, 0);
}

/** Function-level reset: the power-on state, registers included (the host's CC too). */
function functionReset(): void {
  iommu.bind();
  controllerReset();
  enSeen = 0;
  cqBlocked = false;
  for (const r of [REG.CC, REG.INTMC, REG.AQA, REG.ASQ_LO, REG.ASQ_HI, REG.ACQ_LO, REG.ACQ_HI]) Atomics.store(bar0, r, 0);
}

/** Whether the controller may go on with its current pass: false with bus mastering off, and right
 *  after a function reset, which forgot the queue being drained (see serviceBus). */
const busOk = (): boolean => serviceBus(bus, irq, functionReset);

function enable(): void {
  const aqa = Atomics.load(bar0, REG.AQA);
  const asqs = (aqa & 0xfff) + 1;
  const acqs = ((aqa >>> 16) & 0xfff) + 1;
  const asq = u64(Atomics.load(bar0, REG.ASQ_LO), Atomics.load(bar0, REG.ASQ_HI));
  const acq = u64(Atomics.load(bar0, REG.ACQ_LO), Atomics.load(bar0, REG.ACQ_HI));
  const cc = Atomics.load(bar0, REG.CC);
  const mps = (cc >>> 7) & 0xf;
  const css = (cc >>> 4) & 0x7;
  if (Atomics.load(bar0, FAIL_ENABLES_WORD) > 0) {
    Atomics.sub(bar0, FAIL_ENABLES_WORD, 1);
    Atomics.store(bar0, REG.CSTS, CSTS_CFS); // injected: broken during bring-up
    return;
  }
  if (asqs < 2 || acqs < 2 || asqs > MQES + 1 || acqs > MQES + 1 || mps !== 0 || css !== 0 ||
      !pageRangeOk(asq, asqs * 64, false) || !pageRangeOk(acq, acqs * 16, true)) {
    // A bring-up the controller cannot honour: controller fatal status, never ready.
    Atomics.store(bar0, REG.CSTS, CSTS_CFS);
    return;
  }
  resetQueues();
  sqBase[0] = asq; sqSize[0] = asqs; sqCq[0] = 0;
  cqBase[0] = acq; cqSize[0] = acqs; cqPhase[0] = 1; cqIrqBit[0] = 1; // admin CQ: vector 0
  enabled = true;
  // A bring-up follows: admin commands back to back, worth polling for (see spinOnWake).
  spinPays = true;
  Atomics.store(bar0, REG.CSTS, CSTS_RDY);
}

function checkControl(): void {
  const cc = Atomics.load(bar0, REG.CC);
  const en = cc & 1;
  if (en !== enSeen) {
    enSeen = en;
    if (en) enable();
    else controllerReset();
  }
  const csts = Atomics.load(bar0, REG.CSTS);
  if (((cc >>> 14) & 3) !== 0 && (csts & CSTS_SHST_MASK) !== CSTS_SHST_COMPLETE) {
    // Shutdown notification: make everything durable, then report shutdown complete.
    flushBackend();
    Atomics.store(bar0, REG.CSTS, (csts & ~CSTS_SHST_MASK) | CSTS_SHST_COMPLETE);
  }
  const clear = Atomics.exchange(bar0, REG.INTMC, 0);
  if (clear !== 0) {
    Atomics.and(bar0, REG.INTMS, ~clear);
    pendingIrq |= latchedIrq & clear;
    latchedIrq &= ~clear;
  }
}

// ---------------------------------------------------------------------------------------------
// Command execution. Each returns the 15-bit status; `result` carries completion dword 0.

let result = 0;
const u64 = (lo: number, hi: number): number => (lo >>> 0) + (hi >>> 0) * 0x100000000;

/** Segments of one command's transfer: its pages, plus one for an unaligned start. */
const maxSegs = (maxTransfer / PAGE) + 1;
/**
 * PRP walk output, preallocated: the physical segments of the transfer being prepared (adjacent
 * pages merged). A run of coalesced commands appends to it (at most maxTransfer bytes in all);
 * a run whose next command does not fit ends before it (addSeg).
 */
const segs: Segments = { addr: new Float64Array(maxSegs + BURST), len: new Float64Array(maxSegs + BURST), count: 0 };

/** Append a segment the controller writes (`write`: a Read's data) or reads, checked by the IOMMU. */
function addSeg(addr: number, len: number, write: boolean): number {
  if (addr + len > physLen || !iommu.check(addr, len, write)) return SC.DATA_TRANSFER_ERROR;
  const last = segs.count - 1;
  if (last >= 0 && segs.addr[last]! + segs.len[last]! === addr) segs.len[last]! += len;
  // Full: reachable only in a run (gatherRun) of commands over scattered pages that start and end
  // mid-page (up to three segments for a little over a page each). That command is then left out
  // of the run and executed alone, where its segments fit, so this status never reaches a host.
  else if (segs.count === segs.addr.length) return SC.INVALID_FIELD;
  else { segs.addr[segs.count] = addr; segs.len[segs.count] = len; segs.count++; }
  return SC.SUCCESS;
}

/** Read a qword PRP entry at physical `addr`, or -1 if it lies outside physical memory or the IOMMU refuses it. */
function prpEntry(addr: number): number {
  if (addr + 8 > physLen || !iommu.check(addr, 8, false)) return -1;
  const w = addr / 4;
  return u64(physI32[w]!, physI32[w + 1]!);
}

/**
 * Append the segments of `len` bytes described by PRP1/PRP2 (and PRP lists) to `segs`. Only PRP1
 * and a list pointer in PRP2 may carry an offset in their page; every other entry (PRP2 as the
 * second data page, the data entries of a list, and the last entry of a full list page pointing to
 * the next one) must be page-aligned, else PRP Offset Invalid (NVMe 1.4, 4.3).
 */
function mapPrps(prp1: number, prp2: number, len: number, write: boolean): number {
  if (prp1 % 4 !== 0) return SC.INVALID_FIELD;
  const first = Math.min(len, PAGE - (prp1 % PAGE));
  let st = addSeg(prp1, first, write);
  let rem = len - first;
  if (st !== SC.SUCCESS || rem === 0) return st;
  if (rem <= PAGE) return prp2 % PAGE !== 0 ? SC.PRP_OFFSET_INVALID : addSeg(prp2, rem, write);
  let list = prp2;
  // Only the first list page can be short (PRP2's offset): every later one is a whole page, so each
  // later hop takes 511 data entries and a list pointing at itself ends with the transfer. The hop
  // bound is a second guard.
  for (let hops = 0; rem > 0; hops++) {
    if (list % 8 !== 0 || hops > maxSegs) return SC.INVALID_FIELD;
    const slots = (PAGE - (list % PAGE)) / 8;
    const pagesLeft = Math.ceil(rem / PAGE);
    const dataSlots = pagesLeft <= slots ? pagesLeft : slots - 1;
    for (let i = 0; i < dataSlots; i++) {
      const e = prpEntry(list + 8 * i);
      if (e < 0) return SC.DATA_TRANSFER_ERROR;
      if (e % PAGE !== 0) return SC.PRP_OFFSET_INVALID;
      const l = Math.min(rem, PAGE);
      st = addSeg(e, l, write);
      if (st !== SC.SUCCESS) return st;
      rem -= l;
    }
    if (rem > 0) {
      list = prpEntry(list + 8 * (slots - 1));
      if (list < 0) return SC.DATA_TRANSFER_ERROR;
      // The pointer to the next list page is an entry of this list, so it has no offset either:
      // accepting one would read a list page the host never laid out as one.
      if (list % PAGE !== 0) return SC.PRP_OFFSET_INVALID;
    }
  }
  return SC.SUCCESS;
}

/** Copy a host-side buffer to the mapped segments (admin data, e.g. Identify; not hot). */
function copyOut(src: Uint8Array): void {
  let off = 0;
  for (let i = 0; i < segs.count; i++) {
    const len = segs.len[i]!;
    physBuf.set(src.subarray(off, off + len), segs.addr[i]!);
    off += len;
  }
}

function flushBackend(): void {
  // Write protected: nothing was written, so there is nothing to make durable.
  if (readOnly || writesApplied >= powerCutAfter) return;
  backend.flush();
}

const identifyBuf = Buffer.alloc(PAGE);

function identify(w: number): number {
  const cns = physI32[w + 10]! & 0xff;
  const nsid = physI32[w + 1]! >>> 0;
  const b = identifyBuf;
  b.fill(0);
  if (cns === 0x01) {
    b.writeUInt16LE(0x1d1d, 0); // VID
    b.writeUInt16LE(0x1d1d, 2); // SSVID
    b.write((config.serial ?? 'RLTS0001').slice(0, 20).padEnd(20), 4, 'ascii');
    b.write(`RedLeaf.ts NVMe (${label})`.padEnd(40), 24, 'ascii');
    b.write('1.0'.padEnd(8), 64, 'ascii');
    b[77] = MDTS;
    b.writeUInt32LE(VERSION_1_4, 80);
    b[512] = 0x66; // SQES: required and max 2^6
    b[513] = 0x44; // CQES: 2^4
    b.writeUInt32LE(1, 516); // NN
  } else if (cns === 0x00) {
    // NN = 1 and no namespace management (so no common-namespace form with NSID FFFFFFFFh):
    // every NSID but 1 is invalid (0, above NN, FFFFFFFEh, FFFFFFFFh), and NVMe 1.4 (Identify,
    // CNS 00h) answers an invalid NSID with Invalid Namespace or Format, not a zero-filled
    // structure (that is for an inactive NSID, of which there are none).
    if (nsid !== 1) return SC.INVALID_NAMESPACE;
    b.writeBigUInt64LE(BigInt(nsze), 0);
    b.writeBigUInt64LE(BigInt(nsze), 8);
    b.writeBigUInt64LE(BigInt(nsze), 16);
    b[25] = 0; // NLBAF: one format
    b[26] = 0; // FLBAS: format 0
    b.writeUInt32LE(lbads << 16, 128);
    if (readOnly) b[ID_NS_NSATTR] = NSATTR_WRITE_PROTECTED;
  } else if (cns === 0x02) {
    // The list starts above NSID; FFFFFFFEh and FFFFFFFFh are refused (NVMe 1.4, Identify, CNS 02h).
    if (nsid >= 0xfffffffe) return SC.INVALID_NAMESPACE;
    if (nsid < 1) b.writeUInt32LE(1, 0); // active NSIDs greater than NSID: only namespace 1
  } else {
    return SC.INVALID_FIELD;
  }
  segs.count = 0;
  const st = mapPrps(u64(physI32[w + 6]!, physI32[w + 7]!), u64(physI32[w + 8]!, physI32[w + 9]!), PAGE, true);
  if (st !== SC.SUCCESS) return st;
  copyOut(b);
  return SC.SUCCESS;
}

function createCq(w: number): number {
  const cdw10 = physI32[w + 10]!;
  const cdw11 = physI32[w + 11]!;
  const qid = cdw10 & 0xffff;
  const size = (cdw10 >>> 16) + 1;
  const base = u64(physI32[w + 6]!, physI32[w + 7]!);
  const iv = cdw11 >>> 16;
  if (qid === 0 || qid > ncqa + 1 || cqSize[qid] !== 0) return SC.INVALID_QID;
  if (size < 2 || size > MQES + 1) return SC.INVALID_QUEUE_SIZE;
  // IV is checked whether or not IEN is set: NVMe lists Create I/O CQ's Invalid Interrupt Vector
  // status with no exception for IEN cleared, and a host gives 0 for a queue it polls.
  if ((cdw11 & 1) === 0 || iv > 31 || !pageRangeOk(base, size * 16, true)) return SC.INVALID_FIELD;
  cqBase[qid] = base; cqSize[qid] = size; cqTail[qid] = 0; cqPhase[qid] = 1;
  cqIrqBit[qid] = (cdw11 & 2) !== 0 ? 1 << iv : 0;
  ioQueuesCreated = true;
  // A re-created queue starts empty whatever the host left in its doorbell.
  Atomics.store(bar0, cqHeadDoorbell(qid), 0);
  return SC.SUCCESS;
}

function createSq(w: number): number {
  const cdw10 = physI32[w + 10]!;
  const cdw11 = physI32[w + 11]!;
  const qid = cdw10 & 0xffff;
  const size = (cdw10 >>> 16) + 1;
  const cqid = cdw11 >>> 16;
  const base = u64(physI32[w + 6]!, physI32[w + 7]!);
  if (qid === 0 || qid > nsqa + 1 || sqSize[qid] !== 0) return SC.INVALID_QID;
  if (cqid === 0 || cqid >= NQ || cqSize[cqid] === 0) return SC.INVALID_CQ;
  if (size < 2 || size > MQES + 1) return SC.INVALID_QUEUE_SIZE;
  if ((cdw11 & 1) === 0 || !pageRangeOk(base, size * 64, false)) return SC.INVALID_FIELD;
  sqBase[qid] = base; sqSize[qid] = size; sqHead[qid] = 0; sqCq[qid] = cqid;
  ioQueuesCreated = true;
  Atomics.store(bar0, sqTailDoorbell(qid), 0);
  return SC.SUCCESS;
}

function deleteSq(w: number): number {
  const qid = physI32[w + 10]! & 0xffff;
  if (qid === 0 || qid >= NQ || sqSize[qid] === 0) return SC.INVALID_QID;
  sqSize[qid] = 0;
  return SC.SUCCESS;
}

function deleteCq(w: number): number {
  const qid = physI32[w + 10]! & 0xffff;
  if (qid === 0 || qid >= NQ || cqSize[qid] === 0) return SC.INVALID_QID;
  for (let q = 1; q < NQ; q++) if (sqSize[q] !== 0 && sqCq[q] === qid) return SC.INVALID_QUEUE_DELETION;
  cqSize[qid] = 0;
  return SC.SUCCESS;
}

function features(w: number, set: boolean): number {
  if ((physI32[w + 10]! & 0xff) !== FID_NUMBER_OF_QUEUES) return SC.INVALID_FIELD;
  if (set) {
    // NVMe 1.4 (5.21.1.7): Number of Queues is set only before any I/O queue is created; after
    // that (deleting them does not undo it, only a reset does) it fails with Command Sequence
    // Error. Accepting it would shrink the allocation under queues that already exist.
    if (ioQueuesCreated) return SC.COMMAND_SEQUENCE_ERROR;
    const cdw11 = physI32[w + 11]!;
    const nsqr = cdw11 & 0xffff;
    const ncqr = cdw11 >>> 16;
    if (nsqr === 0xffff || ncqr === 0xffff) return SC.INVALID_FIELD;
    nsqa = Math.min(nsqr, MAX_IO_QUEUES - 1);
    ncqa = Math.min(ncqr, MAX_IO_QUEUES - 1);
  }
  result = nsqa | (ncqa << 16);
  return SC.SUCCESS;
}

function execAdmin(w: number, opc: number): number {
  switch (opc) {
    case ADMIN.DELETE_SQ: return deleteSq(w);
    case ADMIN.CREATE_SQ: return createSq(w);
    case ADMIN.DELETE_CQ: return deleteCq(w);
    case ADMIN.CREATE_CQ: return createCq(w);
    case ADMIN.IDENTIFY: return identify(w);
    case ADMIN.SET_FEATURES: return features(w, true);
    case ADMIN.GET_FEATURES: return features(w, false);
    default: return SC.INVALID_OPCODE; // unreachable: execute() checked ADMIN_OPCODES
  }
}

/** Set by prepareRw: where the command's data starts in the backend, its blocks, its FUA bit. */
let rwPos = 0;
let rwBlocks = 0;
let rwFua = false;

/**
 * Check a Read/Write at SQE word `w` and append its segments to `segs`; returns the status.
 * `read`: it is a Read (the controller writes memory), as the caller read its opcode once and will
 * execute it: the SQE is the driver's memory, and an opcode read again here could differ from the
 * one executed (a Read checked as a Write would write memory only lent to the driver).
 */
function prepareRw(w: number, read: boolean): number {
  if ((physI32[w + 1]! >>> 0) !== 1) return SC.INVALID_NAMESPACE;
  const slba = u64(physI32[w + 10]!, physI32[w + 11]!);
  const cdw12 = physI32[w + 12]!;
  const nlb = (cdw12 & 0xffff) + 1;
  if (slba + nlb > nsze) return SC.LBA_OUT_OF_RANGE;
  const len = nlb * blockSize;
  if (len > maxTransfer) return SC.INVALID_FIELD;
  // A Read's data is written into memory, a Write's read from it.
  const st = mapPrps(u64(physI32[w + 6]!, physI32[w + 7]!), u64(physI32[w + 8]!, physI32[w + 9]!), len, read);
  rwPos = slba * blockSize;
  rwBlocks = nlb;
  rwFua = (cdw12 & (1 << 30)) !== 0;
  return st;
}

/** Count `commands` Reads of `blocks` blocks in all as done. */
function countReads(commands: number, blocks: number): void {
  stats[STAT.reads] += commands;
  stats[STAT.blocksRead] += blocks;
}

/** Count `commands` Writes of `blocks` blocks in all as applied. */
function countWrites(commands: number, blocks: number): void {
  writesApplied += commands;
  stats[STAT.writes] += commands;
  stats[STAT.writesApplied] += commands;
  stats[STAT.blocksWritten] += blocks;
}

function execIo(w: number, opc: number): number {
  if (opc === NVM.FLUSH) {
    const nsid = physI32[w + 1]! >>> 0;
    if (nsid !== 1 && nsid !== 0xffffffff) return SC.INVALID_NAMESPACE;
    stats[STAT.flushes]++;
    flushBackend();
    return SC.SUCCESS;
  }
  // The slow-device hook waits before the command's memory is checked, not between the check and
  // the transfer: the driver may free a buffer (and the heap give it to another domain) meanwhile.
  if (commandDelayMs > 0) Atomics.wait(sleepCell, 0, 0, commandDelayMs);
  segs.count = 0;
  const st = prepareRw(w, opc === NVM.READ);
  if (st !== SC.SUCCESS) return st;
  if (opc === NVM.READ) {
    stats[STAT.transfers]++;
    backend.read(rwPos, segs);
    countReads(1, rwBlocks);
    return SC.SUCCESS;
  }
  // A well-formed Write (its namespace, range and PRPs checked above, so a malformed one gets the
  // status that says what is wrong with it) to a write-protected namespace: refused, nothing moved.
  if (readOnly) return SC.NS_WRITE_PROTECTED;
  if (writesApplied >= powerCutAfter) {
    stats[STAT.writes]++;
    stats[STAT.writesDropped]++;
    return SC.SUCCESS;
  }
  stats[STAT.transfers]++;
  backend.write(rwPos, segs);
  if (rwFua) backend.flush();
  countWrites(1, rwBlocks);
  return SC.SUCCESS;
}

const ADMIN_OPCODES = new Set<number>(Object.values(ADMIN));
const NVM_OPCODES = new Set<number>(Object.values(NVM));

function execute(q: number, w: number): number {
  result = 0;
  const dw0 = physI32[w]!;
  const opc = dw0 & 0xff;
  if (!(q === 0 ? ADMIN_OPCODES : NVM_OPCODES).has(opc)) return SC.INVALID_OPCODE;
  // FUSE and PSDT must be 0: no fused commands, PRPs only.
  if ((dw0 & 0xc300) !== 0) return SC.INVALID_FIELD;
  try {
    return q === 0 ? execAdmin(w, opc) : execIo(w, opc);
  } catch {
    // Host I/O failure (EIO, ENOSPC, ...): the command fails, the controller lives on.
    return SC.INTERNAL_ERROR;
  }
}

// ---------------------------------------------------------------------------------------------
// Queue processing

/**
 * Whether CQ `cq` has no free entry. An out-of-range head doorbell (a host bug) says nothing of
 * which entries the host consumed, so it counts as full (as in cqRoom): posting anyway would
 * overwrite completions the host has not seen. The controller waits for a sane value.
 */
function cqFull(cq: number): boolean {
  const size = cqSize[cq]!;
  const head = Atomics.load(bar0, cqHeadDoorbell(cq));
  if (head >>> 0 >= size) return true;
  const next = cqTail[cq]! + 1 === size ? 0 : cqTail[cq]! + 1;
  return next === head;
}

function postCompletion(cq: number, dw0: number, sqhd: number, sqid: number, cid: number, status: number): void {
  const w = (cqBase[cq]! + cqTail[cq]! * 16) / 4;
  physI32[w] = dw0;
  physI32[w + 1] = 0;
  physI32[w + 2] = sqhd | (sqid << 16);
  Atomics.store(physI32, w + 3, cid | (cqPhase[cq]! << 16) | (status << 17));
  if (++cqTail[cq]! === cqSize[cq]!) { cqTail[cq] = 0; cqPhase[cq]! ^= 1; }
  pendingIrq |= cqIrqBit[cq]!;
  stats[STAT.commands]++;
  if (status !== 0) stats[STAT.errors]++;
}

/** Free entries of CQ `cq` (0 when the host's head doorbell is out of range). */
function cqRoom(cq: number): number {
  const size = cqSize[cq]!;
  const head = Atomics.load(bar0, cqHeadDoorbell(cq));
  if (head < 0 || head >= size) return 0;
  const used = cqTail[cq]! - head;
  return size - 1 - (used < 0 ? used + size : used);
}

/**
 * Coalescing: adjacent Reads (or Writes) at the head of an I/O queue become one transfer, one
 * preadv/pwritev instead of a system call each, then one completion each. Only where it saves
 * system calls (the file backend), not with the slow-device test hook (commands one at a time)
 * and not for Writes once a power cut is configured (it counts Writes one by one) or the namespace
 * is write protected (each is refused; see fastWrites).
 */
const coalescing = backend.vectored && commandDelayMs === 0;
let runBlocks = 0;
/** Set by gatherRun: its commands are Writes (else Reads), as it checked their memory. */
let runWrite = false;

/** SQE word of entry `i` of SQ `q`. */
const sqeAt = (q: number, i: number): number => (sqBase[q]! + i * 64) / 4;
/** The entry after `i` in SQ `q` (wrapping). */
const sqNext = (q: number, i: number): number => (i + 1 === sqSize[q]! ? 0 : i + 1);
/** Whether the SQE at word `w` is a Read or Write (FUSE and PSDT 0) the fast paths may take. */
function fastKind(w: number): number {
  const kind = physI32[w]! & 0xc3ff; // opcode with FUSE and PSDT, which must be 0
  if (kind === NVM.READ || (kind === NVM.WRITE && fastWrites)) return kind;
  return -1;
}

/** Whether entry `idx` of SQ `q` (tail `tail`) and the next are Reads (or Writes) of adjacent blocks: a run for gatherRun. */
function startsRun(q: number, idx: number, tail: number): boolean {
  const next = sqNext(q, idx);
  if (next === tail) return false;
  const w0 = sqeAt(q, idx);
  const w1 = sqeAt(q, next);
  const kind = fastKind(w0);
  return kind >= 0 && (physI32[w1]! & 0xc3ff) === kind &&
    u64(physI32[w1 + 10]!, physI32[w1 + 11]!) === u64(physI32[w0 + 10]!, physI32[w0 + 11]!) + (physI32[w0 + 12]! & 0xffff) + 1;
}

/**
 * If SQ `q` (tail `tail`) starts with at least two Reads or Writes of adjacent blocks, prepare up
 * to `max` of them as one transfer: their segments in `segs`, its start in rwPos, FUA in rwFua,
 * their blocks in runBlocks. Returns how many commands it covers (below 2: not a run).
 */
function gatherRun(q: number, tail: number, max: number): number {
  let idx = sqHead[q]!;
  // A cheap look at the first two commands first: random I/O pays only this.
  if (max < 2 || !startsRun(q, idx, tail)) return 0;
  // The kind is read once: every command of the run is checked, and executed, as this kind.
  const kind = fastKind(sqeAt(q, idx));
  if (kind < 0) return 0;
  runWrite = kind === NVM.WRITE;
  segs.count = 0;
  runBlocks = 0;
  let start = 0;
  let end = 0;
  let fua = false;
  let k = 0;
  for (; k < max && idx !== tail; k++, idx = sqNext(q, idx)) {
    const w = sqeAt(q, idx);
    if ((physI32[w]! & 0xc3ff) !== kind) break;
    if (k > 0 && u64(physI32[w + 10]!, physI32[w + 11]!) * blockSize !== end) break;
    if ((end - start) + ((physI32[w + 12]! & 0xffff) + 1) * blockSize > maxTransfer) break;
    const count = segs.count;
    const lastLen = count > 0 ? segs.len[count - 1]! : 0;
    // Adjacency and size again as prepareRw read (and range-checked) them: the SQE may have
    // changed since the looks above, and the run moves each command's data where the one before ended.
    if (prepareRw(w, !runWrite) !== SC.SUCCESS || (k > 0 && rwPos !== end) || (end - start) + rwBlocks * blockSize > maxTransfer) {
      // Leave this one to be executed alone (it gets its error status then).
      segs.count = count;
      if (count > 0) segs.len[count - 1] = lastLen;
      break;
    }
    if (k === 0) start = rwPos;
    end = rwPos + rwBlocks * blockSize;
    runBlocks += rwBlocks;
    fua ||= rwFua;
  }
  rwPos = start;
  rwFua = fua;
  return k;
}

/** Fetch the command at the head of SQ `q`, execute it (unless its `status` is known: a run already
 *  did), post its completion on `cq`. */
function execOne(q: number, cq: number, status: number | null): void {
  const head = sqHead[q]!;
  const w = sqeAt(q, head);
  const next = sqNext(q, head);
  sqHead[q] = next;
  // Queue deletions run on the admin queue and a CQ with SQs cannot be deleted, so `cq` still
  // exists after any command of this SQ.
  const cid = physI32[w]! >>> 16;
  if (status === null) status = execute(q, w);
  else result = 0;
  postCompletion(cq, result, next, q, cid, status);
}

/** Execute the run gatherRun prepared (`k` commands of SQ `q`); a failed transfer is redone command by command, so each gets its own status. */
function execRun(q: number, cq: number, k: number, write: boolean): void {
  let ok = true;
  stats[STAT.transfers]++;
  try {
    if (write) {
      backend.write(rwPos, segs);
      if (rwFua) backend.flush();
    } else {
      backend.read(rwPos, segs);
    }
  } catch {
    ok = false;
  }
  if (ok) {
    if (write) countWrites(k, runBlocks);
    else countReads(k, runBlocks);
  }
  for (let j = 0; j < k; j++) execOne(q, cq, ok ? SC.SUCCESS : null);
}

/**
 * Batching (with backend.batch): Reads (or Writes) at the head of an I/O queue that are not runs
 * go to the backend in one call, each its own transfer, then one completion each. Same conditions
 * as coalescing; FUA Writes are left to execOne (they flush before completing).
 */
const batching = coalescing && backend.batch !== null;
/** Most transfer segments one batch holds (a batch stops before a command that would not fit). */
const BATCH_OPS = 1024;
const batchOps = new Float64Array(BATCH_OPS * 3);
/** Per command of the batch: the index of the op after its last, and its blocks. */
const batchEnd = new Int32Array(BURST);
const batchBlocks = new Int32Array(BURST);

/**
 * Take up to `max` same-kind Reads or Writes from the head of SQ `q` (tail `tail`), stopping
 * before anything else (another kind, a FUA Write, a command prepareRw rejects, the start of a
 * run), move their data in one backend.batch call and complete them; a command whose transfer
 * failed, and every one after it, is redone by execOne for its status. Returns how many commands
 * it completed (0: none taken, the head is for execOne or gatherRun).
 */
function execBatch(q: number, cq: number, tail: number, max: number): number {
  let idx = sqHead[q]!;
  const kind = fastKind(sqeAt(q, idx));
  if (kind < 0) return 0;
  let count = 0;
  let ops = 0;
  for (; count < max && idx !== tail; count++, idx = sqNext(q, idx)) {
    const w = sqeAt(q, idx);
    if ((physI32[w]! & 0xc3ff) !== kind || (physI32[w + 12]! & (1 << 30)) !== 0) break;
    if (count > 0 && startsRun(q, idx, tail)) break;
    segs.count = 0;
    if (prepareRw(w, kind === NVM.READ) !== SC.SUCCESS || ops + segs.count > BATCH_OPS) break;
    ops = putOps(batchOps, ops, rwPos, segs);
    batchEnd[count] = ops;
    batchBlocks[count] = rwBlocks;
  }
  if (count === 0) return 0;
  const write = kind === NVM.WRITE;
  let done = 0;
  try {
    done = backend.batch!(write, batchOps, ops);
  } catch {
    // unreachable (the arguments are well-formed): every command is redone for its status
  }
  for (let j = 0; j < count; j++) {
    const ok = batchEnd[j]! <= done;
    if (ok) {
      stats[STAT.transfers]++;
      if (write) countWrites(1, batchBlocks[j]!);
      else countReads(1, batchBlocks[j]!);
    }
    execOne(q, cq, ok ? SC.SUCCESS : null);
  }
  return count;
}

/**
 * Whether the IOMMU still lets the controller read SQ `q` and write its CQ `cq`. Checked at every
 * burst, not only when the queues were created: a driver that freed their memory (which the heap
 * may then give to another domain) must not have its controller fetch or post there. If not, the
 * controller stops as one that lost its queues does: Controller Fatal Status, not ready.
 */
function queuesMapped(q: number, cq: number): boolean {
  if (iommu.check(sqBase[q]!, sqSize[q]! * 64, false) && iommu.check(cqBase[cq]!, cqSize[cq]! * 16, true)) return true;
  enabled = false;
  Atomics.store(bar0, REG.CSTS, CSTS_CFS);
  return false;
}

/** Execute up to BURST commands of SQ `q`; returns how many. */
function processSq(q: number): number {
  const tail = Atomics.load(bar0, sqTailDoorbell(q));
  // An out-of-range tail is a host bug; the controller waits for a sane value.
  if (tail < 0 || tail >= sqSize[q]!) return 0;
  let n = 0;
  const cq = sqCq[q]!;
  if (sqHead[q] !== tail && !queuesMapped(q, cq)) return 0;
  while (sqHead[q] !== tail && n < BURST) {
    // After a function reset the queue is gone (`tail`, `cq` and the queue's base are the old
    // driver's): stop before fetching anything.
    if (!busOk()) return n;
    if (cqFull(cq)) { cqBlocked = true; break; }
    const room = coalescing && q !== 0 ? Math.min(BURST - n, cqRoom(cq)) : 0;
    const k = room > 0 ? gatherRun(q, tail, room) : 0;
    if (k >= 2) {
      execRun(q, cq, k, runWrite);
      n += k;
      continue;
    }
    const b = batching && room > 0 ? execBatch(q, cq, tail, room) : 0;
    if (b > 0) {
      n += b;
    } else {
      execOne(q, cq, null);
      n++;
    }
  }
  return n;
}

function raisePending(): void {
  if (pendingIrq === 0) return;
  const mask = Atomics.load(bar0, REG.INTMS);
  latchedIrq |= pendingIrq & mask;
  const fire = pendingIrq & ~mask;
  pendingIrq = 0;
  for (let bits = fire; bits !== 0; bits &= bits - 1) raiseIrq(irq, 31 - Math.clz32(bits & -bits));
}

/** One controller pass over every SQ; returns true if any command was executed. */
function step(): boolean {
  if (!busOk()) return false;
  checkControl();
  cqBlocked = false;
  let any = false;
  if (enabled) {
    for (let progress = true; progress;) {
      progress = false;
      // A queue whose memory was freed stops the controller (queuesMapped): no queue after it runs.
      for (let q = 0; q < NQ && enabled; q++) {
        if (sqSize[q] !== 0 && processSq(q) > 0) progress = true;
      }
      raisePending();
      any ||= progress;
    }
  }
  raisePending();
  return any;
}

// ---------------------------------------------------------------------------------------------
// Bring-up and main loop

Atomics.store(bar0, REG.CAP_LO, MQES | (1 << 16) | (CAP_TO << 24)); // CQR: contiguous queues
Atomics.store(bar0, REG.CAP_HI, 1 << 5); // CSS: NVM command set; DSTRD = MPSMIN = MPSMAX = 0
Atomics.store(bar0, REG.VS, VERSION_1_4);
controllerReset();
publishStats();
parentPort!.postMessage('ready');

/**
 * Poll WAKE until it differs from `seen` (true) or the polling budget from `idleSince` passed
 * (false); the clock is read every 64 polls.
 */
function spinOnWake(seen: number, idleSince: number): boolean {
  const full = spinPays || ++idlesSinceProbe >= PROBE_EVERY;
  if (full) idlesSinceProbe = 0;
  const end = idleSince + (full ? IDLE_SPIN_MS : BRIEF_SPIN_MS);
  for (;;) {
    for (let i = 0; i < 64; i++) {
      if (Atomics.load(bar0, WAKE_WORD) !== seen) {
        spinPays = true;
        return true;
      }
    }
    if (performance.now() > end) {
      if (full) spinPays = false;
      return false;
    }
  }
}

let idleSince = -1; // when the current idle period began (the last pass with work, or a park ended); -1 while working
for (;;) {
  const seen = Atomics.load(bar0, WAKE_WORD);
  const worked = step();
  publishStats();
  if (worked) {
    idleSince = -1;
    continue;
  }
  if (idleSince < 0) idleSince = performance.now();
  if (cqBlocked) {
    waitWake(bar0, bus, seen, 0, FULL_CQ_PARK_MS);
  } else if (!spinOnWake(seen, idleSince)) {
    waitWake(bar0, bus, seen, 0, IDLE_PARK_MS);
    stats[STAT.wakeups]++;
    idleSince = -1;
  }
}
