/**
 * NVMe driver logic (spec: shared/specs/nvme.md), a plain object the nvme domain wraps
 * (`createNvmeCore`).
 *
 * Its only authority is what it is handed: BAR0 as an Int32Array (plus the index of its WAKE
 * word), an allocator of DMA memory for queues and PRP lists, and a clock. It imports no device
 * code; the register layout below is copied from the spec.
 *
 * Invariants:
 *  - at most depth-1 commands per queue pair are outstanding (CIDs come from a pool of that size),
 *    so neither the SQ nor the CQ can overflow and a CID names exactly one command;
 *  - a command that timed out keeps its CID ("zombie") until the controller completes it or the
 *    controller is reset, so a late completion can never be credited to a newer command; its
 *    request is failed at once, but the controller may still move its data: its buffer is not
 *    the caller's again until the controller is stopped (the nvme domain panics on a timeout);
 *  - every request ends exactly once: success, NVMe status error, timeout, or reset;
 *  - data is never copied: PRPs point at the caller's DmaBytes (addr + offset); PRP list pages are
 *    allocated once per CID and reused;
 *  - doorbells are stored per submitBatch call, never per command, and a parked controller is
 *    notified at most once per batch (a caller may ring part of a batch early with `more`: the
 *    wake it skips is delivered by the next ring, see wakeDeferred);
 *  - no allocation per command on the batched path (callers own and reuse BlockRequest objects).
 *
 * Written as closures over local state and plain object literals, not classes, for the sake of
 * restarts: every instance of a domain runs the same evaluated code (src/kernel/isolation.ts), and
 * V8 gives objects of a class declared in that code a new hidden class per instance — so the
 * optimized code of the previous instance would meet unknown maps in the restarted one and be
 * thrown away (and, after a few restarts, its property accesses would go megamorphic). Objects
 * made from literals and state kept in closures look the same to V8 in every instance.
 */
import type { DmaBytes } from '../../runtime/types.js';

const PAGE = 4096;
// BAR0 word indices (byte offset / 4).
const CAP_LO = 0x00 / 4;
const CAP_HI = 0x04 / 4;
const CC = 0x14 / 4;
const CSTS = 0x1c / 4;
const AQA = 0x24 / 4;
const ASQ = 0x28 / 4;
const ACQ = 0x30 / 4;
const DOORBELL = 0x1000 / 4;
const CC_EN = 1;
const CC_SHN_NORMAL = 1 << 14;
const CC_IOSQES_IOCQES = (6 << 16) | (4 << 20);
const CSTS_RDY = 1;
const CSTS_CFS = 2;
const CSTS_SHST_COMPLETE = 2 << 2;
// Opcodes.
const OPC_CREATE_SQ = 0x01;
const OPC_CREATE_CQ = 0x05;
const OPC_IDENTIFY = 0x06;
const OPC_SET_FEATURES = 0x09;
const OPC_FLUSH = 0x00;
const OPC_WRITE = 0x01;
const OPC_READ = 0x02;
const FID_NUMBER_OF_QUEUES = 0x07;
/** Identify Namespace NSATTR byte, bit 0 write protected (NVMe 1.4; beyond the subset, like status 20h). */
const ID_NS_NSATTR = 99;
const NSATTR_WRITE_PROTECTED = 0x01;
/** Generic status 20h: a write to a write-protected namespace (NVMe 1.4). */
export const SC_NS_WRITE_PROTECTED = 0x020;

const STATUS_NAMES: Record<number, string> = {
  0x000: 'success',
  0x001: 'invalid opcode',
  0x002: 'invalid field',
  0x004: 'data transfer error',
  0x006: 'internal error',
  0x00b: 'invalid namespace',
  0x00c: 'command sequence error',
  0x013: 'PRP offset invalid',
  [SC_NS_WRITE_PROTECTED]: 'namespace is write protected',
  0x080: 'LBA out of range',
  0x100: 'invalid completion queue',
  0x101: 'invalid queue identifier',
  0x102: 'invalid queue size',
};

export type NvmeErrorKind = 'status' | 'timeout' | 'reset' | 'request' | 'controller';

/** A failed command or bring-up; `sct`/`sc` are the NVMe status when kind is 'status'. */
export class NvmeError extends Error {
  constructor(readonly kind: NvmeErrorKind, what: string, readonly sct = -1, readonly sc = -1) {
    const status = kind === 'status'
      ? `status SCT ${sct} SC 0x${sc.toString(16).padStart(2, '0')} (${STATUS_NAMES[(sct << 8) | sc] ?? 'unknown'})`
      : kind;
    super(`nvme: ${what}: ${status}`);
    this.name = 'NvmeError';
  }
}

export type BlockOp = 'read' | 'write' | 'flush';

/**
 * One block request of the batched API. The caller owns and reuses these objects; the driver
 * sets `error` (null on success) when the request completes.
 */
export interface BlockRequest {
  op: BlockOp;
  lba: number;
  nblocks: number;
  /** Data buffer (ignored for flush). The transfer is [bufOff, bufOff + nblocks*blockSize). */
  buf: DmaBytes | null;
  bufOff: number;
  error: NvmeError | null;
}

export interface NvmeCoreOptions {
  bar0: Int32Array;
  /** Word index of BAR0's WAKE word (rung after doorbell or control-register writes); the word
   *  before it is PARKED (1 while the device sleeps), per the device-bus conventions. */
  wakeWord: number;
  /** DMA memory for queues and PRP lists; `align` is a power of two. */
  alloc(bytes: number, align: number): DmaBytes;
  /** Milliseconds, monotonic. */
  now(): number;
  /**
   * Run `fn` in a microtask, as a task of the driver's domain (its sys.spawn: a throw is the
   * domain's panic, and after its death nobody's concern). Default: queueMicrotask (a host test).
   */
  spawn?(fn: () => void): void;
  /** I/O queue pairs to create; default 1 (at most 31 in interrupt mode: one vector each). */
  ioQueues?: number;
  /** Entries per I/O queue; default 256 (capped by CAP.MQES). depth-1 commands may be in flight. */
  queueDepth?: number;
  /** Interrupt mode: CQs raise vector = qid and the caller calls onInterrupt(bits). Default poll. */
  interrupts?: boolean;
  /** Per-command timeout in ms; default 5000. Admin commands during bring-up use it too. */
  timeoutMs?: number;
}

export interface NvmeInfo {
  blockSize: number;
  blocks: number;
  /** Largest transfer of one command in bytes (Infinity when MDTS = 0). */
  maxTransferBytes: number;
  model: string;
  serial: string;
  /** The namespace is write protected (Identify Namespace NSATTR): every write fails with status 20h. */
  writeProtected: boolean;
  ioQueues: number;
  queueDepth: number;
}

/** An admin command for adminBatch: opcode, NSID, PRP1, CDW10, CDW11, description (for errors). */
type AdminCommand = readonly [opc: number, nsid: number, prp1: number, cdw10: number, cdw11: number, what: string];

interface Waiter {
  resolve(dw0: number): void;
  reject(e: NvmeError): void;
}

/** One SQ/CQ pair with its CID pool and per-CID bookkeeping (a plain object: see the header). */
interface QueuePair {
  readonly qid: number;
  readonly depth: number;
  readonly sq: DmaBytes;
  readonly cq: DmaBytes;
  readonly sqDb: number;
  readonly cqDb: number;
  sqTail: number;
  cqHead: number;
  phase: number;
  /** SQ tail written but its doorbell not yet stored. */
  dirty: boolean;
  /**
   * The per-CID numbers below are DataViews (free: i32, deadline: f64, zombie: u8 per entry):
   * three stores a command (take a CID, stamp its deadline, give it back). Chosen when a store
   * into a typed array took a ~50 ns slow path under SES lockdown (src/kernel/lockdown.ts now
   * keeps it at ~1 ns, as a DataView setter is).
   */
  readonly free: DataView;
  nfree: number;
  readonly req: (BlockRequest | null)[];
  readonly waiter: (Waiter | null)[];
  /** Description of admin commands, for error messages. */
  readonly what: string[];
  readonly deadline: DataView;
  readonly zombie: DataView;
  /** PRP list pages per CID, allocated on first use and reused. */
  readonly lists: DmaBytes[][];
}

function newQueuePair(qid: number, depth: number, sq: DmaBytes, cq: DmaBytes, sqDb: number, cqDb: number): QueuePair {
  const slots = depth - 1;
  const free = new DataView(new ArrayBuffer(slots * 4));
  for (let i = 0; i < slots; i++) free.setInt32(i * 4, slots - 1 - i);
  return {
    qid, depth, sq, cq, sqDb, cqDb,
    sqTail: 0, cqHead: 0, phase: 1, dirty: false,
    free, nfree: slots,
    req: new Array<BlockRequest | null>(slots).fill(null),
    waiter: new Array<Waiter | null>(slots).fill(null),
    what: new Array<string>(slots).fill(''),
    deadline: new DataView(new ArrayBuffer(slots * 8)),
    zombie: new DataView(new ArrayBuffer(slots)),
    lists: Array.from({ length: slots }, () => []),
  };
}

const queueInFlight = (q: QueuePair): number => q.depth - 1 - q.nfree;

function dropQueuePair(q: QueuePair): void {
  q.sq.drop();
  q.cq.drop();
  for (const l of q.lists) for (const p of l) p.drop();
}

/** The driver: what the nvme domain, the driver benchmark and the driver tests use. */
export interface NvmeCore {
  /** Geometry, valid after init() (throws before). */
  info(): NvmeInfo;
  /** Commands submitted and not yet completed or timed out, over all I/O queues. */
  inFlight(): number;
  /**
   * Reset the controller and bring it up: admin queue, Identify, number of queues, I/O queue pairs.
   * Bring-up waits by polling (CAP.TO for readiness, timeoutMs per admin command).
   */
  init(): Promise<NvmeInfo>;
  /**
   * The bring-up of init(), synchronously (it polls the controller), without init's cleanup when
   * it fails: for a caller that is discarded on failure anyway (the driver domain panics, and the
   * kernel reclaims its memory and resets the controller).
   */
  bringUp(): NvmeInfo;
  /**
   * Controller reset with recovery: every outstanding request fails with a 'reset' error, the
   * controller is disabled and brought up again with the same options.
   */
  reset(): Promise<NvmeInfo>;
  /** Normal shutdown (the controller makes written data durable), then disable. */
  shutdown(): Promise<void>;
  /**
   * Batched submission: queue as many of `reqs[start..]` as there are free slots on I/O queue
   * `queue`, then ring its doorbell and WAKE once. Returns how many were taken (from `start`, in
   * order). Malformed requests are finished at once with a 'request' error (collect them with
   * pollCompletions) and count as taken. `more` says the caller is about to submit again (part of
   * a batch): the doorbell is rung, but a parked controller is not woken for it — waking costs
   * both threads a futex round trip, once per batch is enough.
   */
  submitBatch(reqs: readonly BlockRequest[], queue?: number, start?: number, more?: boolean): number;
  /**
   * Reap completions (and timeouts) and move finished batched requests into `out`; returns how
   * many. `checkClock` false skips the timeout check (a caller spinning on the CQ checks every
   * so many polls: reading the clock costs more than an empty poll).
   */
  pollCompletions(out: BlockRequest[], checkClock?: boolean): number;
  read(lba: number, nblocks: number, buf: DmaBytes, bufOff?: number): Promise<void>;
  write(lba: number, nblocks: number, buf: DmaBytes, bufOff?: number): Promise<void>;
  flush(): Promise<void>;
  /**
   * Poll mode (and the timeout clock in interrupt mode): reap every CQ, fail expired commands,
   * move waiting requests into freed slots. Returns the number of completions reaped.
   */
  poll(checkClock?: boolean): number;
  /** Interrupt mode: `bits` are the vectors delivered (vector 0 = admin, vector q = I/O queue q). */
  onInterrupt(bits: number): void;
}

export function createNvmeCore(o: NvmeCoreOptions): NvmeCore {
  const bar0 = o.bar0;
  const spawn = o.spawn ?? queueMicrotask;
  const opts: Required<Omit<NvmeCoreOptions, 'bar0' | 'wakeWord' | 'alloc' | 'now' | 'spawn'>> = {
    ioQueues: o.ioQueues ?? 1,
    queueDepth: o.queueDepth ?? 256,
    interrupts: o.interrupts ?? false,
    timeoutMs: o.timeoutMs ?? 5000,
  };
  const nq = opts.ioQueues;
  if (!Number.isInteger(nq) || nq < 1 || nq > (opts.interrupts ? 31 : 0xfffe)) {
    throw new RangeError(`nvme: ioQueues ${nq} out of range`);
  }
  if (!Number.isInteger(opts.queueDepth) || opts.queueDepth < 2) {
    throw new RangeError(`nvme: queueDepth ${opts.queueDepth} must be an integer >= 2`);
  }
  // A command past its deadline panics the domain (the shadow's cue): NaN or Infinity would leave a
  // lost command waiting for ever, and 0 or less would fail every command at its first poll.
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
    throw new RangeError(`nvme: timeoutMs ${opts.timeoutMs} must be a finite number of milliseconds > 0`);
  }
  let admin: QueuePair | null = null;
  let io: QueuePair[] = [];
  let stride = 1;
  let capTimeoutMs = 0;
  let info: NvmeInfo | null = null;
  let identifyBuf: DmaBytes | null = null;
  /** Finished batched requests not yet handed out by pollCompletions. */
  const completed: BlockRequest[] = [];
  /** Promise-API requests waiting for a free CID. */
  const backlog: { req: BlockRequest; waiter: Waiter }[] = [];
  let nextDeadline = Infinity;
  let rr = 0;
  let ringScheduled = false;
  /** The last WAKE increment did not notify a parked controller (ring(false)). */
  let wakeDeferred = false;
  const ringLater = (): void => {
    ringScheduled = false;
    ring();
  };

  const inFlight = (): number => {
    let n = 0;
    for (const q of io) n += queueInFlight(q);
    return n;
  };

  // -------------------------------------------------------------------------------------------
  // Bring-up, reset, shutdown

  /** init(), synchronously. */
  function initNow(): NvmeInfo {
    if (admin !== null) teardown('controller re-initialized');
    try {
      return bringUp();
    } catch (e) {
      // Free what a failed bring-up allocated; the bring-up error is the one worth reporting.
      try { teardown('bring-up failed'); } catch { /* controller unresponsive */ }
      throw e;
    }
  }

  function bringUp(): NvmeInfo {
    const b = bar0;
    const capLo = Atomics.load(b, CAP_LO);
    const capHi = Atomics.load(b, CAP_HI);
    const mqes = (capLo & 0xffff) + 1;
    capTimeoutMs = ((capLo >>> 24) & 0xff) * 500;
    stride = 1 << (capHi & 0xf);
    if (((capHi >>> 16) & 0xf) !== 0) throw new NvmeError('controller', 'controller does not support 4 KiB pages');
    disable();

    const adepth = Math.min(32, mqes);
    const aq = (admin = newQueue(0, adepth));
    Atomics.store(b, AQA, (adepth - 1) | ((adepth - 1) << 16));
    store64(ASQ, aq.sq.addr);
    store64(ACQ, aq.cq.addr);
    Atomics.store(b, CC, CC_EN | CC_IOSQES_IOCQES);
    wake();
    waitStatus(CSTS_RDY, CSTS_RDY, 'enable');

    // Bring-up is a few round trips with the controller, not one per command: a restarted driver
    // is back sooner. Commands of one batch do not depend on each other; queue creation waits for
    // the batch before it (an SQ needs its CQ).
    const want = opts.ioQueues;
    const idBuf = (identifyBuf ??= o.alloc(2 * PAGE, PAGE));
    const [, , dw0] = adminBatch([
      [OPC_IDENTIFY, 0, idBuf.addr, 0x01, 0, 'identify controller'],
      [OPC_IDENTIFY, 1, idBuf.addr + PAGE, 0x00, 0, 'identify namespace 1'],
      [OPC_SET_FEATURES, 0, 0, FID_NUMBER_OF_QUEUES, (want - 1) | ((want - 1) << 16), 'set number of queues'],
    ]);
    const text = (off: number, len: number): string => {
      let s = '';
      for (let i = 0; i < len; i++) s += String.fromCharCode(idBuf.getU8(off + i));
      return s.trim();
    };
    const serial = text(4, 20);
    const model = text(24, 40);
    const mdts = idBuf.getU8(77);
    if (idBuf.getU32(516) < 1) throw new NvmeError('controller', 'controller has no namespaces');
    const blocks = idBuf.getU64(PAGE);
    const lbaf = idBuf.getU8(PAGE + 26) & 0xf;
    const blockSize = 2 ** idBuf.getU8(PAGE + 128 + 4 * lbaf + 2);
    const writeProtected = (idBuf.getU8(PAGE + ID_NS_NSATTR) & NSATTR_WRITE_PROTECTED) !== 0;
    const granted = Math.min((dw0! & 0xffff) + 1, (dw0! >>> 16) + 1);
    if (granted < want) throw new NvmeError('controller', `asked for ${want} I/O queues, controller granted ${granted}`);

    const depth = Math.min(opts.queueDepth, mqes);
    const ien = opts.interrupts ? 2 : 0;
    const queues: QueuePair[] = [];
    for (let qid = 1; qid <= want; qid++) queues.push(newQueue(qid, depth));
    try {
      adminBatch(queues.map((q) => [OPC_CREATE_CQ, 0, q.cq.addr, q.qid | ((depth - 1) << 16), 1 | ien | (q.qid << 16), `create CQ ${q.qid}`]));
      adminBatch(queues.map((q) => [OPC_CREATE_SQ, 0, q.sq.addr, q.qid | ((depth - 1) << 16), 1 | (q.qid << 16), `create SQ ${q.qid}`]));
    } finally {
      io.push(...queues); // freed by teardown, created or not
    }
    info = {
      blockSize, blocks, model, serial, writeProtected, ioQueues: want, queueDepth: depth,
      maxTransferBytes: mdts === 0 ? Infinity : PAGE * 2 ** mdts,
    };
    return info;
  }

  /** Fail everything outstanding, disable the controller and free all queue memory. */
  function teardown(why: string): void {
    for (const q of io) failAll(q, why);
    if (admin !== null) failAll(admin, why);
    for (const { req, waiter } of backlog.splice(0)) finish(null, req, waiter, new NvmeError('reset', `${req.op} lba ${req.lba}: ${why}`));
    disable();
    for (const q of io) dropQueuePair(q);
    if (admin !== null) dropQueuePair(admin);
    io = [];
    admin = null;
    info = null;
  }

  /** Fail the commands of a queue about to be freed (its CIDs die with it). */
  function failAll(q: QueuePair, why: string): void {
    for (let cid = 0; cid < q.depth - 1; cid++) {
      if (q.req[cid] !== null || q.waiter[cid] !== null) {
        complete(q, cid, new NvmeError('reset', `${describe(q, cid)}: ${why}`), 0);
      }
    }
  }

  function disable(): void {
    const cc = Atomics.load(bar0, CC);
    if ((cc & CC_EN) === 0 && (Atomics.load(bar0, CSTS) & CSTS_RDY) === 0) return;
    Atomics.store(bar0, CC, cc & ~(CC_EN | CC_SHN_NORMAL));
    wake();
    waitStatus(CSTS_RDY, 0, 'disable');
  }

  /** Poll CSTS until (CSTS & mask) === value, within CAP.TO. */
  function waitStatus(mask: number, value: number, what: string): void {
    const end = o.now() + Math.max(capTimeoutMs, 500);
    for (;;) {
      const csts = Atomics.load(bar0, CSTS);
      if ((csts & CSTS_CFS) !== 0 && what !== 'disable') throw new NvmeError('controller', `${what}: controller fatal status (CSTS.CFS)`);
      if ((csts & mask) === value) return;
      if (o.now() > end) throw new NvmeError('timeout', `${what}: CSTS did not reach 0x${value.toString(16)} within ${capTimeoutMs} ms`);
    }
  }

  function newQueue(qid: number, depth: number): QueuePair {
    const sq = o.alloc(depth * 64, PAGE);
    const cq = o.alloc(depth * 16, PAGE);
    cq.fill(0); // phase 0 everywhere: the controller's first pass writes P=1
    return newQueuePair(qid, depth, sq, cq, DOORBELL + 2 * qid * stride, DOORBELL + (2 * qid + 1) * stride);
  }

  function store64(word: number, v: number): void {
    Atomics.store(bar0, word, v % 0x100000000);
    Atomics.store(bar0, word + 1, Math.floor(v / 0x100000000));
  }

  /**
   * Device-bus convention: the word before WAKE is 1 while the device sleeps; notify only then.
   * With `notifyParked` false a sleeping device is left asleep (it sees the new WAKE value at its
   * next wake-up): for doorbells worth taking at once only if the controller is polling anyway.
   */
  function wake(notifyParked = true): void {
    Atomics.add(bar0, o.wakeWord, 1);
    wakeDeferred = !notifyParked;
    if (notifyParked && Atomics.load(bar0, o.wakeWord - 1) !== 0) Atomics.notify(bar0, o.wakeWord, 1);
  }

  /**
   * Run admin commands (opcode, nsid, PRP1, CDW10, CDW11, description) to completion by polling
   * the admin CQ, submitted together with one doorbell; returns their completion dwords 0 in order,
   * or throws the first failure (in order) once all have ended.
   */
  function adminBatch(cmds: readonly AdminCommand[]): number[] {
    const q = admin!;
    if (cmds.length > q.nfree) throw new RangeError(`nvme: ${cmds.length} admin commands at once, the admin queue holds ${q.nfree}`);
    const results = new Array<number>(cmds.length).fill(0);
    const errors = new Array<NvmeError | null>(cmds.length).fill(null);
    let left = cmds.length;
    cmds.forEach(([opc, nsid, prp1, cdw10, cdw11, what], i) => {
      const cid = takeCid(q);
      q.what[cid] = what;
      q.waiter[cid] = { resolve: (dw0) => { left--; results[i] = dw0; }, reject: (e) => { left--; errors[i] = e; } };
      writeSqe(q, cid, opc, nsid, prp1, 0, cdw10, cdw11, 0);
    });
    ring();
    while (left > 0) {
      pollQueue(q);
      if (left > 0 && o.now() >= nextDeadline) expire();
    }
    const failed = errors.find((e) => e !== null);
    if (failed) throw failed;
    return results;
  }

  // -------------------------------------------------------------------------------------------
  // Submission

  function takeCid(q: QueuePair): number {
    const cid = q.free.getInt32(--q.nfree * 4);
    const d = o.now() + opts.timeoutMs;
    q.deadline.setFloat64(cid * 8, d);
    if (d < nextDeadline) nextDeadline = d;
    return cid;
  }

  function writeSqe(q: QueuePair, cid: number, opc: number, nsid: number, prp1: number, prp2: number,
                    cdw10: number, cdw11: number, cdw12: number): void {
    const off = q.sqTail * 64;
    const sq = q.sq;
    sq.fill(0, off, 64);
    sq.setU32(off, opc | (cid << 16));
    sq.setU32(off + 4, nsid);
    sq.setU64(off + 24, prp1);
    sq.setU64(off + 32, prp2);
    sq.setU32(off + 40, cdw10);
    sq.setU32(off + 44, cdw11);
    sq.setU32(off + 48, cdw12);
    q.sqTail = q.sqTail + 1 === q.depth ? 0 : q.sqTail + 1;
    q.dirty = true;
  }

  /** Store the tail doorbell of every queue with new entries, then wake the controller once. */
  function ring(notifyParked = true): void {
    let any = false;
    if (admin?.dirty) { storeTail(admin); any = true; }
    for (const q of io) if (q.dirty) { storeTail(q); any = true; }
    // A doorbell rung without waking may still wait for its wake (the rest of its batch found the
    // queue full): any later ring delivers it, with or without new entries.
    if (any || (notifyParked && wakeDeferred)) wake(notifyParked);
  }

  function storeTail(q: QueuePair): void {
    q.dirty = false;
    Atomics.store(bar0, q.sqDb, q.sqTail);
  }

  /** Check a request; returns an error for a malformed one (it then never reaches the device). */
  function check(r: BlockRequest): NvmeError | null {
    const inf = info;
    if (inf === null) return new NvmeError('request', `${r.op}: controller not initialized`);
    if (r.op === 'flush') return null;
    const len = r.nblocks * inf.blockSize;
    const b = r.buf;
    if (!Number.isInteger(r.nblocks) || r.nblocks < 1 || r.nblocks > 0x10000 || len > inf.maxTransferBytes) {
      return new NvmeError('request', `${r.op} lba ${r.lba}: ${r.nblocks} blocks is not a valid transfer (max ${inf.maxTransferBytes} bytes)`);
    }
    if (!Number.isSafeInteger(r.lba) || r.lba < 0) return new NvmeError('request', `${r.op}: bad lba ${r.lba}`);
    if (b === null || !b.valid || !Number.isInteger(r.bufOff) || r.bufOff < 0 || r.bufOff + len > b.byteLength || (b.addr + r.bufOff) % 4 !== 0) {
      return new NvmeError('request', `${r.op} lba ${r.lba}: buffer missing, revoked, too small or not 4-byte aligned`);
    }
    return null;
  }

  /** Put `r` on queue `q` (which has a free CID). */
  function issue(q: QueuePair, r: BlockRequest, waiter: Waiter | null): void {
    const cid = takeCid(q);
    q.req[cid] = r;
    q.waiter[cid] = waiter;
    r.error = null;
    if (r.op === 'flush') {
      writeSqe(q, cid, OPC_FLUSH, 1, 0, 0, 0, 0, 0);
      return;
    }
    const len = r.nblocks * info!.blockSize;
    const addr = r.buf!.addr + r.bufOff;
    const first = Math.min(len, PAGE - (addr % PAGE));
    const rem = len - first;
    let prp2 = 0;
    if (rem > 0 && rem <= PAGE) prp2 = addr + first;
    else if (rem > PAGE) prp2 = buildPrpList(q, cid, addr + first, Math.ceil(rem / PAGE));
    writeSqe(q, cid, r.op === 'read' ? OPC_READ : OPC_WRITE, 1, addr, prp2,
      r.lba % 0x100000000, Math.floor(r.lba / 0x100000000), r.nblocks - 1);
  }

  /** Fill the PRP list pages of `cid` with `pages` page addresses from `page`; returns PRP2. */
  function buildPrpList(q: QueuePair, cid: number, page: number, pages: number): number {
    const lists = q.lists[cid]!;
    const perPage = PAGE / 8;
    for (let k = 0; pages > 0; k++) {
      const list = lists[k] ?? (lists[k] = o.alloc(PAGE, PAGE));
      const data = pages <= perPage ? pages : perPage - 1;
      for (let i = 0; i < data; i++, page += PAGE) list.setU64(8 * i, page);
      pages -= data;
      if (pages > 0) list.setU64(8 * (perPage - 1), (lists[k + 1] ?? (lists[k + 1] = o.alloc(PAGE, PAGE))).addr);
    }
    return lists[0]!.addr;
  }

  function pickQueue(): QueuePair | null {
    const n = io.length;
    for (let i = 0; i < n; i++) {
      const q = io[(rr + i) % n]!;
      if (q.nfree > 0) {
        rr = (rr + i + 1) % n;
        return q;
      }
    }
    return null;
  }

  function submitOne(r: BlockRequest): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve: () => resolve(), reject };
      const bad = check(r);
      if (bad !== null) return reject(bad);
      const q = pickQueue();
      if (q === null) {
        backlog.push({ req: r, waiter });
        return;
      }
      issue(q, r, waiter);
      // Requests issued in the same turn share one doorbell write and one WAKE.
      if (!ringScheduled) {
        ringScheduled = true;
        spawn(ringLater);
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // Completion

  function poll(checkClock = true): number {
    let n = 0;
    if (admin !== null) n += pollQueue(admin);
    for (const q of io) n += pollQueue(q);
    afterReap(checkClock);
    return n;
  }

  function afterReap(checkClock = true): void {
    if (checkClock && o.now() >= nextDeadline) expire();
    let q: QueuePair | null;
    while (backlog.length > 0 && (q = pickQueue()) !== null) {
      const { req, waiter } = backlog.shift()!;
      issue(q, req, waiter);
    }
    ring();
  }

  function pollQueue(q: QueuePair): number {
    const cq = q.cq;
    let head = q.cqHead;
    let n = 0;
    for (;;) {
      const off = head * 16;
      const dw3 = cq.loadU32(off + 12); // atomic: the controller stores dword 3 last
      if (((dw3 >>> 16) & 1) !== q.phase) break;
      const cid = dw3 & 0xffff;
      const status = dw3 >>> 17;
      if (cid < q.depth - 1) {
        if (q.zombie.getUint8(cid) === 1) {
          q.zombie.setUint8(cid, 0);
          q.free.setInt32(q.nfree++ * 4, cid);
        } else if (q.req[cid] !== null || q.waiter[cid] !== null) {
          const err = (status & 0x7ff) === 0 ? null
            : new NvmeError('status', describe(q, cid), (status >>> 8) & 7, status & 0xff);
          complete(q, cid, err, cq.getU32(off));
          q.free.setInt32(q.nfree++ * 4, cid);
        }
      }
      if (++head === q.depth) { head = 0; q.phase ^= 1; }
      n++;
    }
    if (n > 0) {
      q.cqHead = head;
      Atomics.store(bar0, q.cqDb, head);
    }
    return n;
  }

  /** End the command in `cid` (its CID is recycled by the caller). */
  function complete(q: QueuePair, cid: number, err: NvmeError | null, dw0: number): void {
    const r = q.req[cid] ?? null;
    const w = q.waiter[cid] ?? null;
    q.req[cid] = null;
    q.waiter[cid] = null;
    finish(q.qid === 0 ? null : completed, r, w, err, dw0);
  }

  function finish(sink: BlockRequest[] | null, r: BlockRequest | null, w: Waiter | null, err: NvmeError | null, dw0 = 0): void {
    if (r !== null) r.error = err;
    if (w !== null) {
      if (err === null) w.resolve(dw0);
      else w.reject(err);
    } else if (r !== null && sink !== null) {
      sink.push(r);
    }
  }

  function expire(): void {
    const t = o.now();
    let next = Infinity;
    for (const q of admin === null ? io : [admin, ...io]) {
      for (let cid = 0; cid < q.depth - 1; cid++) {
        if (q.req[cid] === null && q.waiter[cid] === null) continue;
        const d = q.deadline.getFloat64(cid * 8);
        if (d <= t) {
          complete(q, cid, new NvmeError('timeout', `${describe(q, cid)} after ${opts.timeoutMs} ms`), 0);
          q.zombie.setUint8(cid, 1); // keeps the CID until the controller answers or is reset
        } else if (d < next) {
          next = d;
        }
      }
    }
    nextDeadline = next;
  }

  function describe(q: QueuePair, cid: number): string {
    if (q.qid === 0) return q.what[cid]!;
    const r = q.req[cid]!;
    return r.op === 'flush' ? `flush on queue ${q.qid}` : `${r.op} lba ${r.lba} x${r.nblocks} on queue ${q.qid}`;
  }

  return {
    info() {
      if (info === null) throw new Error('nvme: not initialized');
      return info;
    },
    inFlight,
    init: async () => initNow(),
    bringUp,
    async reset() {
      teardown('controller reset');
      return initNow();
    },
    async shutdown() {
      if (admin !== null) {
        Atomics.store(bar0, CC, Atomics.load(bar0, CC) | CC_SHN_NORMAL);
        wake();
        waitStatus(0b1100, CSTS_SHST_COMPLETE, 'shutdown');
      }
      teardown('controller shut down');
    },
    submitBatch(reqs, queue = 0, start = 0, more = false) {
      const q = io[queue];
      if (q === undefined) throw new RangeError(`nvme: no I/O queue ${queue}`);
      let i = start;
      for (; i < reqs.length; i++) {
        const r = reqs[i]!;
        const bad = check(r);
        if (bad !== null) {
          r.error = bad;
          completed.push(r);
          continue;
        }
        if (q.nfree === 0) break;
        issue(q, r, null);
      }
      ring(!more);
      return i - start;
    },
    pollCompletions(out, checkClock = true) {
      poll(checkClock);
      const n = completed.length;
      if (n === 0) return 0; // the common case while spinning: setting length costs more than this call
      for (let i = 0; i < n; i++) out.push(completed[i]!);
      completed.length = 0;
      return n;
    },
    read: (lba, nblocks, buf, bufOff = 0) => submitOne({ op: 'read', lba, nblocks, buf, bufOff, error: null }),
    write: (lba, nblocks, buf, bufOff = 0) => submitOne({ op: 'write', lba, nblocks, buf, bufOff, error: null }),
    flush: () => submitOne({ op: 'flush', lba: 0, nblocks: 0, buf: null, bufOff: 0, error: null }),
    poll,
    onInterrupt(bits) {
      if ((bits & 1) !== 0 && admin !== null) pollQueue(admin);
      for (const q of io) if ((bits & (1 << q.qid)) !== 0) pollQueue(q);
      afterReap();
    },
  };
}
