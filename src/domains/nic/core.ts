/**
 * NIC driver core: the logic of the 82599-style NIC driver (specs/nic-82599.md), a plain object
 * the nic domain wraps (`createNicCore`). It meets the device only through BAR0 (Atomics on an
 * Int32Array), descriptor rings it allocates as DmaBytes, and the interrupt bits the kernel hands
 * to onInterrupt.
 *
 * Invariants:
 *  - Zero copy: RX descriptors point at the caller's buffers, TX descriptors at the caller's
 *    frames; the core never copies frame data. Each ring keeps the buffers it holds in a queue of
 *    its own (`held`), in ring order (the front is the oldest slot owned by hardware), so every
 *    buffer handed in comes back out exactly once: filled (RX), done (TX), refused (moved behind
 *    the others in the caller's input queue), or reclaimed by stop()/reset(). Nothing is leaked.
 *  - Buffers move in runs: the core posts a run from the caller's queue into the ring's with one
 *    `moveFromSized`, which also reports the buffers' addresses and sizes (and stops before a
 *    buffer too small), and takes them back with one `moveFrom`, never a buffer at a time: in
 *    the driver domain each of those is one kernel call for the whole run, with no handle per
 *    buffer.
 *  - Ring discipline: at most size-1 descriptors are owned by hardware (head == tail means empty);
 *    software consumes RX write-backs in order while DD is set, and advances RDT/TDT once per call,
 *    followed by one wake of the device.
 *  - Descriptors move in bulk: every DmaBytes access is a checked kernel call, so the core stages
 *    the descriptors it posts in a local buffer (in postFrom's loop itself: every call in domain
 *    code pays the build's deadline tick at its entry, so the per-frame path makes few calls) and
 *    writes each contiguous run of them with one `write`, and copies RX write-backs out with one
 *    `read` per run, after one atomic load of the run's last status dword has shown DD (the
 *    device writes back in ring order, status last).
 *  - TX reclamation is batched: RS is set on every descriptor and the core checks only the DD of
 *    the last descriptor of a batch of 32 (or of all in flight, or of what `done` has room for, if
 *    fewer), since hardware completes descriptors in order.
 *  - Per-slot state lives in one small object per slot (a property store), never in array
 *    elements: under SES lockdown a plain array's element store takes a slow path (~15 ns), a
 *    property store does not. Typed arrays are stored into through DataViews (written when
 *    their stores were slow under lockdown too; see src/kernel/lockdown.ts).
 *  - Write-back status dwords (RX DD, TX DD) are read with loadU32 (atomic): the device stores
 *    them last, so seeing DD guarantees the rest of the write-back and the frame data are visible
 *    (and, since it writes back in ring order, those of every earlier descriptor too).
 *  - The hot path allocates nothing; all per-slot state lives in objects made at construction.
 * Imports only runtime types: a driver may not import device code, so register offsets are copied
 * from the spec below.
 *
 * Written as closures over local state, plain object literals and module-level functions, not
 * classes, for the sake of restarts, as the NVMe driver is (src/domains/nvme/core.ts): every
 * instance of a domain runs the same evaluated code (src/kernel/isolation.ts), and V8 gives the
 * objects of a class declared in it a new hidden class per instance, so after a few restarts the
 * hot path's property accesses went polymorphic, then megamorphic: l2fwd behind the shadow ran at
 * ~0.7 of its rate from the third restart on (`probes/restart-dip.js`). Objects made from literals
 * look the same to V8 in every instance.
 */
import type { DmaBytes } from '../../runtime/types.js';
import { FrameDeque, type FrameQueue } from './deque.js';

// Registers (BAR0 byte offset / 4) and fields, from the spec's table.
const CTRL = 0x00000 / 4;
const CTRL_RST = 1 << 26;
const STATUS = 0x00008 / 4;
const STATUS_LU = 1 << 7;
const EICR = 0x00800 / 4;
const EIMS = 0x00880 / 4;
const RDBAL = (n: number): number => (0x01000 + 0x40 * n) / 4;
const RDBAH = (n: number): number => (0x01004 + 0x40 * n) / 4;
const RDLEN = (n: number): number => (0x01008 + 0x40 * n) / 4;
const RDH = (n: number): number => (0x01010 + 0x40 * n) / 4;
const SRRCTL = (n: number): number => (0x01014 + 0x40 * n) / 4;
const RDT = (n: number): number => (0x01018 + 0x40 * n) / 4;
const RXDCTL = (n: number): number => (0x01028 + 0x40 * n) / 4;
const SRRCTL_DESCTYPE_ADV_ONEBUF = 1 << 25;
const XDCTL_ENABLE = 1 << 25;
const RXCTRL = 0x03000 / 4;
const RXCTRL_RXEN = 1;
const MPC = 0x03fa0 / 4;
const GPRC = 0x04074 / 4;
const GPTC = 0x04080 / 4;
const GORCL = 0x04088 / 4;
const GOTCL = 0x04090 / 4;
const DMATXCTL = 0x04a80 / 4;
const DMATXCTL_TE = 1;
const FCTRL = 0x05080 / 4;
const FCTRL_MPE = 1 << 8;
const FCTRL_UPE = 1 << 9;
const FCTRL_BAM = 1 << 10;
const TDBAL = (n: number): number => (0x06000 + 0x40 * n) / 4;
const TDBAH = (n: number): number => (0x06004 + 0x40 * n) / 4;
const TDLEN = (n: number): number => (0x06008 + 0x40 * n) / 4;
const TDH = (n: number): number => (0x06010 + 0x40 * n) / 4;
const TDT = (n: number): number => (0x06018 + 0x40 * n) / 4;
const TXDCTL = (n: number): number => (0x06028 + 0x40 * n) / 4;
const RAL0 = 0x0a200 / 4;
const RAH0 = 0x0a204 / 4;
/** The model's refusal report (model-specific, outside the 82599 map): cause bits (clear on read) and count. */
const NIC_ERR = 0x10000 / 4;
const NIC_ERRCNT = 0x10004 / 4;
/** Queue pairs the device has (model-specific, read-only). */
const NIC_NQUEUES = 0x10008 / 4;

const DESC = 16;
const RING_ALIGN = 128;
const RXD_STAT_DD = 1 << 0;
const RXD_STAT_EOP = 1 << 1;
const RXD_ERR_MASK = 0xfff00000;
const TXD_DTYP_DATA = 0x3 << 20;
const TXD_CMD = (1 << 24) /* EOP */ | (1 << 25) /* IFCS */ | (1 << 27) /* RS */ | (1 << 29) /* DEXT */;
const TXD_PAYLEN_SHIFT = 14;
const TXD_STAT_DD = 1;
/** Largest TX frame the device accepts. */
export const MAX_TX_FRAME = 16 * 1024;
/** RedLeaf's batch: buffers per submit/reclaim step. */
export const BATCH = 32;
const TWO32 = 0x100000000;
/** Descriptors staged locally per bulk ring access (and buffers posted per moveFromSized run). */
const STAGE = 64;

export interface NicCoreOptions {
  bar0: Int32Array;
  /**
   * Rings the device after register writes, by the bus's doorbell convention (src/devices/bus.ts
   * ringWake: bump WAKE; only a parked device is notified, and handed the CPU for a moment):
   * DeviceCap.wake in a domain, bus.ringWake in the host.
   */
  wake: () => void;
  /** Allocates DMA memory for descriptor rings. */
  alloc: (bytes: number, align: number) => DmaBytes;
  /**
   * A queue of the caller's kind (the same kind as the queues handed to rx/txSubmitAndPoll) in
   * which a ring keeps the buffers it holds. Default: a FrameDeque.
   */
  queue?: (capacity: number) => FrameQueue;
  /** Milliseconds, monotonic. */
  now: () => number;
  /** RX/TX queue pairs to use. Default 1. */
  queues?: number;
  /** Descriptors per RX ring, a multiple of 8 (128 bytes), 8..32768. Default DEFAULT_RING_SIZE. */
  rxRingSize?: number;
  /** Descriptors per TX ring, same rule. Default DEFAULT_RING_SIZE. */
  txRingSize?: number;
  /** Bytes of every RX buffer the caller supplies: multiple of 1024, 1024..31744. Default 2048. */
  rxBufSize?: number;
  /** Accept every unicast and multicast frame (FCTRL.UPE|MPE); otherwise our MAC and broadcast only. */
  promiscuous?: boolean;
  /** Device reset timeout. Default 1000 ms. */
  resetTimeoutMs?: number;
}

export interface NicStats {
  /** Frames since the device's last reset: GPRC and GPTC (32 bits) folded into 53-bit totals. */
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Frames dropped for want of an RX descriptor (MPC, accumulated across its clear-on-read). */
  rxMissed: number;
  /** RX write-backs with an error (handed back with length 0). */
  rxErrors: number;
  /** Buffers the core refused to post (too small RX buffers, bad TX lengths). */
  rxRefused: number;
  txRefused: number;
  /** The device's refusal report: cause bits seen so far (NIC_ERR) and its count. */
  deviceErrorBits: number;
  deviceErrorCount: number;
}

export function emptyStats(): NicStats {
  return {
    rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxMissed: 0, rxErrors: 0,
    rxRefused: 0, txRefused: 0, deviceErrorBits: 0, deviceErrorCount: 0,
  };
}

/**
 * Descriptors per ring when the configuration names none: 1024, as DPDK's l2fwd (and twice
 * Linux ixgbe's 512). A ring is the slack between the NIC model's thread and the driver: on a
 * machine whose other load takes the CPU from one of the two now and then, a deeper ring rides
 * out the gap instead of dropping frames and stalling (session 16, bench/RESULTS.md: with 512,
 * l2fwd-64-b32 0.7–0.96x and maglev 0.89–0.93x of what 1024 and 2048 give, in alternated runs).
 */
export const DEFAULT_RING_SIZE = 1024;

/**
 * Submit calls between two folds of the 32-bit packet counters into the core's totals. A call
 * moves at most a ring of frames on one queue (2^15), and a device fills only descriptors the
 * calls posted, so 2^16 calls over up to 16 queues move under 2^31 + 2^19 frames: the registers
 * cannot wrap twice between two folds. (Linux's ixgbe folds from a timer, every 2 s.)
 */
const FOLD_EVERY_CALLS = 1 << 16;

function ringSize(v: number | undefined, what: string): number {
  const n = v ?? DEFAULT_RING_SIZE;
  if (!Number.isInteger(n) || n < 8 || n > 32768 || n % (RING_ALIGN / DESC) !== 0) throw new RangeError(`nic: ${what} ${n} must be a multiple of 8 in 8..32768`);
  return n;
}

/** One direction of one queue: its ring and the buffers its slots hold (made by newRing). */
interface Ring {
  readonly mem: DmaBytes;
  readonly size: number;
  /** The buffers of slots clean, clean+1, ... (as many as are in flight: owned by hardware), with the frame length posted. */
  readonly held: FrameQueue;
  /** Next slot software fills (mirrors the tail register). */
  tail: number;
  /** Oldest slot owned by hardware. */
  clean: number;
  /**
   * Local copy of up to STAGE descriptors: a run being posted (staged by postFrom, written from
   * slot `tail` on by commit) or write-backs just read (collect).
   */
  readonly stage: Uint8Array;
  readonly stageV: DataView;
}

function newRing(alloc: NicCoreOptions['alloc'], queue: (capacity: number) => FrameQueue, size: number): Ring {
  const stage = new Uint8Array(STAGE * DESC);
  return { mem: alloc(size * DESC, RING_ALIGN), size, held: queue(size), tail: 0, clean: 0, stage, stageV: new DataView(stage.buffer) };
}

/**
 * Writes the first n descriptors of r's stage into slots tail.. (one DMA write; the caller keeps
 * the run short of the ring's end) and advances tail; moving the buffers into `held` is the
 * caller's.
 */
function commit(r: Ring, n: number): void {
  const s = r.tail;
  r.mem.write(s * DESC, r.stage, 0, n * DESC);
  r.tail = s + n === r.size ? 0 : s + n;
}

/**
 * How many of the next `want` (>= 1, not past the ring's end) descriptors from `clean` are
 * written back (DD), copied into the stage. One atomic load when all are; a scan otherwise.
 */
function collect(r: Ring, want: number, statusOff: number, dd: number): number {
  const mem = r.mem;
  const c = r.clean;
  let n = want;
  if ((mem.loadU32((c + n - 1) * DESC + statusOff) & dd) === 0) {
    n = 0;
    while (n < want - 1 && (mem.loadU32((c + n) * DESC + statusOff) & dd) !== 0) n++;
    if (n === 0) return 0;
  }
  mem.read(c * DESC, r.stage, 0, n * DESC);
  return n;
}

/** Empties the ring; software state only (the device was reset or not yet enabled, and held is empty). */
function clear(r: Ring): void {
  r.mem.fill(0, 0, r.size * DESC);
  r.tail = r.clean = 0;
}

/**
 * Moves the next n buffers the ring holds (from slot clean on) to `out` (which has room for
 * them), lengths as held, or (`withLens` false) left for the caller to set.
 */
function release(r: Ring, n: number, out: FrameQueue, withLens = true): void {
  out.moveFrom(r.held, n, withLens);
  const c = r.clean + n;
  r.clean = c < r.size ? c : c - r.size;
}

/** Moves every buffer still in the ring to `out`, with the length posted (`rx`: 0, no frame). */
function drainTo(r: Ring, out: FrameQueue, rx: boolean): void {
  const first = out.length;
  const n = r.held.length;
  release(r, n, out, !rx);
  if (rx) for (let i = 0; i < n; i++) out.setLenAt(first + i, 0);
}

/** The driver core (createNicCore). */
export interface NicCore {
  readonly queues: number;
  /** Descriptors per RX and per TX ring, as configured (or DEFAULT_RING_SIZE). */
  readonly rxRingSize: number;
  readonly txRingSize: number;
  readonly rxBufSize: number;
  /** MAC address read from RAL/RAH at init. */
  readonly mac: Uint8Array;
  /**
   * Resets the device and brings it up: rings programmed and empty, RX/TX enabled, interrupts
   * masked. Throws if the device has fewer queue pairs (NIC_NQUEUES) than `queues`.
   */
  init(): void;
  /** Buffers currently in the rings (owned by hardware). */
  outstanding(): number;
  linkUp(): boolean;
  /**
   * Resets the device and moves every buffer still in a ring into `reclaim` (RX buffers with
   * length 0, TX frames with their length); after the reset the device touches none of them.
   * Throws, changing nothing, if `reclaim` has no room for them all.
   */
  stop(reclaim: FrameQueue): void;
  /** stop() then init(): the recovery path, with buffers outstanding. */
  reset(reclaim: FrameQueue): void;
  /**
   * RX on queue q. First collects received frames, in order, into `filled` (each buffer with its
   * frame length; a write-back with an error comes back with length 0), as many as `filled` has
   * room for. Then posts buffers from `free` into the ring's empty slots and advances RDT once.
   * A buffer smaller than rxBufSize is refused: pushed back onto `free`, and posting stops.
   * With `info`, each collected frame's write-back dwords 0 and 1 (packet and RSS types, RSS
   * hash: NetIo.collectInfo) are stored there as two little-endian u32 at 8 * its index in
   * `filled` (from the front), which `info` must have room for. Returns the number of buffers
   * pushed into `filled`.
   */
  rxSubmitAndPoll(q: number, free: FrameQueue, filled: FrameQueue, info?: DataView | null): number;
  /**
   * TX on queue q. First reclaims finished frames into `done` in batches of 32 (each with the
   * length it was sent with). Then posts frames from `frames` (front first, each buffer with its
   * frame length) and advances TDT once. A frame with length 0, over 16 KiB, or longer than its
   * buffer is refused: pushed back onto `frames`, and posting stops. Returns frames posted.
   */
  txSubmitAndPoll(q: number, frames: FrameQueue, done: FrameQueue): number;
  /** TX frames of queue q not yet reclaimed. */
  txInflight(q: number): number;
  /** RX buffers of queue q currently posted to hardware. */
  rxPosted(q: number): number;
  /** Interrupt mode: unmask the RX interrupt of every queue (EIMS). */
  enableInterrupts(): void;
  /**
   * Poll mode: mask every RX interrupt. EIMC's effect is applied to EIMS directly: the model folds
   * EIMC lazily, so an EIMC write followed by an EIMS write could be folded after the set.
   */
  disableInterrupts(): void;
  /**
   * The kernel delivered interrupt vectors `bits`. Reads (and so clears) EICR and returns the mask
   * of RX queues that have work: the caller then runs rxSubmitAndPoll on each.
   */
  onInterrupt(bits: number): number;
  /** Fills `s` with the device counters and the core's own. */
  readStats(s: NicStats): NicStats;
}

export function createNicCore(o: NicCoreOptions): NicCore {
  const bar0 = o.bar0;
  /** The doorbell (NicCoreOptions.wake). */
  const wake = o.wake;
  const now = o.now;
  const queues = o.queues ?? 1;
  if (!Number.isInteger(queues) || queues < 1 || queues > 16) throw new RangeError(`nic: queues ${queues} not in 1..16`);
  const rxBufSize = o.rxBufSize ?? 2048;
  if (!Number.isInteger(rxBufSize) || rxBufSize % 1024 !== 0 || rxBufSize < 1024 || rxBufSize > 31 * 1024) throw new RangeError(`nic: rxBufSize ${rxBufSize} must be a multiple of 1024 in 1024..31744`);
  const resetTimeoutMs = o.resetTimeoutMs ?? 1000;
  const promiscuous = o.promiscuous ?? false;
  const rxN = ringSize(o.rxRingSize, 'rxRingSize');
  const txN = ringSize(o.txRingSize, 'txRingSize');
  const queue = o.queue ?? ((n: number): FrameQueue => new FrameDeque(n));
  const rx = Array.from({ length: queues }, () => newRing(o.alloc, queue, rxN));
  const tx = Array.from({ length: queues }, () => newRing(o.alloc, queue, txN));
  const queueMask = (1 << queues) - 1;
  const mac = new Uint8Array(6);
  /** Addresses and sizes of the buffers of one posting run (FrameQueue.moveFromSized). */
  const ext = new DataView(new ArrayBuffer(STAGE * 8));
  let up = false;
  // The core's own counts (what NicStats adds to the device's counters).
  let missed = 0;
  let rxErrors = 0;
  let rxRefused = 0;
  let txRefused = 0;
  let errBits = 0;
  /**
   * The packet counts since the device's last reset, beyond the 32 bits of GPRC and GPTC: what the
   * registers read at the last fold, and the totals folded from them. A fold every
   * FOLD_EVERY_CALLS submit calls (and at every readStats) keeps them exact: that many calls move
   * fewer than 2^32 frames (see FOLD_EVERY_CALLS).
   */
  let gprcSeen = 0;
  let gptcSeen = 0;
  let rxPackets = 0;
  let txPackets = 0;
  let callsToFold = FOLD_EVERY_CALLS;

  const foldPackets = (): void => {
    const r = Atomics.load(bar0, GPRC) >>> 0;
    const t = Atomics.load(bar0, GPTC) >>> 0;
    rxPackets += (r - gprcSeen) >>> 0;
    txPackets += (t - gptcSeen) >>> 0;
    gprcSeen = r;
    gptcSeen = t;
    callsToFold = FOLD_EVERY_CALLS;
  };

  const resetDevice = (): void => {
    Atomics.store(bar0, CTRL, CTRL_RST);
    wake();
    const deadline = now() + resetTimeoutMs;
    while (Atomics.load(bar0, CTRL) & CTRL_RST) {
      if (now() > deadline) throw new Error(`nic: device reset did not complete within ${resetTimeoutMs} ms`);
    }
    // The reset cleared the device's counters: so are the totals (NetStats counts since a reset).
    gprcSeen = gptcSeen = rxPackets = txPackets = 0;
  };

  const init = (): void => {
    const b = bar0;
    resetDevice(); // leaves EIMS 0: every interrupt masked
    // The device ignores the registers of a queue it lacks: buffers posted there would never
    // fill, frames never leave, and nothing would say why. Read after the reset, which restores it.
    const has = Atomics.load(b, NIC_NQUEUES);
    if (queues > has) throw new RangeError(`nic: ${queues} queues configured, the device has ${has}`);
    const ral = Atomics.load(b, RAL0);
    const rah = Atomics.load(b, RAH0);
    for (let i = 0; i < 4; i++) mac[i] = (ral >>> (8 * i)) & 255;
    mac[4] = rah & 255;
    mac[5] = (rah >>> 8) & 255;
    for (let q = 0; q < queues; q++) {
      const r = rx[q]!;
      clear(r);
      Atomics.store(b, RDBAL(q), r.mem.addr % TWO32);
      Atomics.store(b, RDBAH(q), Math.floor(r.mem.addr / TWO32));
      Atomics.store(b, RDLEN(q), r.size * DESC);
      Atomics.store(b, SRRCTL(q), (rxBufSize / 1024) | SRRCTL_DESCTYPE_ADV_ONEBUF);
      Atomics.store(b, RDH(q), 0);
      Atomics.store(b, RDT(q), 0);
      Atomics.store(b, RXDCTL(q), XDCTL_ENABLE);
      const t = tx[q]!;
      clear(t);
      Atomics.store(b, TDBAL(q), t.mem.addr % TWO32);
      Atomics.store(b, TDBAH(q), Math.floor(t.mem.addr / TWO32));
      Atomics.store(b, TDLEN(q), t.size * DESC);
      Atomics.store(b, TDH(q), 0);
      Atomics.store(b, TDT(q), 0);
      Atomics.store(b, TXDCTL(q), XDCTL_ENABLE);
    }
    Atomics.store(b, FCTRL, FCTRL_BAM | (promiscuous ? FCTRL_UPE | FCTRL_MPE : 0));
    Atomics.store(b, RXCTRL, RXCTRL_RXEN);
    Atomics.store(b, DMATXCTL, DMATXCTL_TE);
    up = true;
    wake();
  };

  const outstanding = (): number => {
    let n = 0;
    for (let q = 0; q < queues; q++) n += rx[q]!.held.length + tx[q]!.held.length;
    return n;
  };

  /** Folds the clear-on-read MPC and NIC_ERR into the core's own counts (the reset clears them). */
  const foldClearOnRead = (): void => {
    missed += Atomics.exchange(bar0, MPC, 0) >>> 0;
    errBits |= Atomics.exchange(bar0, NIC_ERR, 0);
  };

  const stop = (reclaim: FrameQueue): void => {
    const n = outstanding();
    if (reclaim.capacity - reclaim.length < n) throw new RangeError(`nic: stop needs room for ${n} buffers in reclaim`);
    foldClearOnRead(); // frames missed since the last readStats: the reset would clear MPC uncounted
    resetDevice();
    up = false;
    for (let q = 0; q < queues; q++) {
      drainTo(rx[q]!, reclaim, true);
      drainTo(tx[q]!, reclaim, false);
    }
  };

  const checkQueue = (q: number): void => {
    if (!up) throw new Error('nic: device not initialized');
    if (!(q >= 0 && q < queues)) throw new RangeError(`nic: queue ${q} not in 0..${queues - 1}`);
  };

  /** Whether the TX frame at the front of `src` (its length already checked) fits its buffer. */
  const fitsFront = (src: FrameQueue): boolean => {
    src.extents(1, ext);
    return src.lenAt(0) <= ext.getUint32(4, true);
  };

  /**
   * Posts buffers from the front of `src` into ring `r`'s empty slots, up to STAGE per run (and
   * not past the ring's end): the run is moved into `r.held` with one `moveFromSized`, which
   * reports the buffers' addresses and sizes, staged as descriptors and written with one
   * `commit`. The first bad buffer (RX: smaller than rxBufSize; TX: frame length 0, over 16 KiB
   * or longer than its buffer) is refused: rotated behind the others in `src`, and posting stops.
   * If anything was posted, writes the tail register `tailReg` once and wakes the device.
   * Returns buffers posted.
   *
   * TX lengths are known before the move: a run ends before the first bad length, its buffers
   * must hold its longest frame (`need`), and the descriptors' length words are staged first. A
   * buffer too small for that but not for its own frame ends the run without being refused: it
   * is then posted as a run of one, with need = its own frame's length.
   */
  const postFrom = (src: FrameQueue, r: Ring, tailReg: number, isRx: boolean): number => {
    const v = r.stageV;
    let posted = 0;
    let single = false;
    for (;;) {
      let k = r.size - 1 - r.held.length;
      if (src.length < k) k = src.length;
      if (STAGE < k) k = STAGE;
      if (r.size - r.tail < k) k = r.size - r.tail; // a run stops at the ring's end: one write
      if (single && k > 1) k = 1;
      if (k <= 0) break;
      let need = rxBufSize;
      let run = k;
      if (!isRx) {
        // Staged right here, not through a call per descriptor: every call in domain code pays
        // the deadline tick the build puts at its entry.
        need = 1;
        for (run = 0; run < k; run++) {
          const len = src.lenAt(run);
          if (!(len > 0 && len <= MAX_TX_FRAME)) break;
          if (len > need) need = len;
          const off = run * DESC;
          v.setUint32(off + 8, len | TXD_DTYP_DATA | TXD_CMD, true);
          v.setUint32(off + 12, len << TXD_PAYLEN_SHIFT, true);
        }
      }
      const moved = run > 0 ? r.held.moveFromSized(src, run, need, ext, !isRx) : 0; // RX buffers carry no length until filled
      for (let i = 0; i < moved; i++) {
        const off = i * DESC;
        v.setUint32(off, ext.getUint32(i * 8, true), true);
        v.setUint32(off + 4, 0, true);
        if (isRx) {
          v.setUint32(off + 8, 0, true); // header address 0
          v.setUint32(off + 12, 0, true); // clears DD
        }
      }
      if (moved > 0) commit(r, moved);
      posted += moved;
      single = false;
      if (moved < k) {
        if (moved < run && !isRx && fitsFront(src)) {
          single = true; // too small for the run's longest frame, not for its own
          continue;
        }
        src.rotate();
        if (isRx) rxRefused++;
        else txRefused++;
        break;
      }
    }
    if (posted > 0) {
      Atomics.store(bar0, tailReg, r.tail);
      wake();
    }
    return posted;
  };

  /**
   * A 64-bit counter as low/high words: re-read until the high word is stable. It never tears
   * because the device changes the high word only together with the low one, in one 64-bit store
   * (a carry); between carries it stores the low word alone.
   */
  const read64 = (lo: number): number => {
    for (;;) {
      const h = Atomics.load(bar0, lo + 1) >>> 0;
      const l = Atomics.load(bar0, lo) >>> 0;
      if ((Atomics.load(bar0, lo + 1) >>> 0) === h) return h * TWO32 + l;
    }
  };

  return {
    queues,
    rxRingSize: rxN,
    txRingSize: txN,
    rxBufSize,
    mac,
    init,
    outstanding,
    linkUp: () => (Atomics.load(bar0, STATUS) & STATUS_LU) !== 0,
    stop,
    reset(reclaim) {
      stop(reclaim);
      init();
    },
    rxSubmitAndPoll(q, free, filled, info = null) {
      if (--callsToFold === 0) foldPackets();
      checkQueue(q);
      const r = rx[q]!;
      const sv = r.stageV;
      let got = 0;
      while (r.held.length > 0 && filled.length < filled.capacity) {
        let want = filled.capacity - filled.length;
        if (r.held.length < want) want = r.held.length;
        if (STAGE < want) want = STAGE;
        if (r.size - r.clean < want) want = r.size - r.clean;
        const n = collect(r, want, 8, RXD_STAT_DD);
        const first = filled.length;
        release(r, n, filled, false);
        for (let i = 0; i < n; i++) {
          const st = sv.getUint32(i * DESC + 8, true);
          let len = sv.getUint16(i * DESC + 12, true);
          if ((st & RXD_ERR_MASK) !== 0 || (st & RXD_STAT_EOP) === 0) {
            rxErrors++;
            len = 0;
          }
          filled.setLenAt(first + i, len);
          if (info !== null) {
            info.setUint32((first + i) * 8, sv.getUint32(i * DESC, true), true);
            info.setUint32((first + i) * 8 + 4, sv.getUint32(i * DESC + 4, true), true);
          }
        }
        got += n;
        if (n < want) break;
      }
      postFrom(free, r, RDT(q), true);
      return got;
    },
    txSubmitAndPoll(q, frames, done) {
      if (--callsToFold === 0) foldPackets();
      checkQueue(q);
      const t = tx[q]!;
      const mem = t.mem;
      while (t.held.length > 0) {
        // A batch of 32, or fewer if fewer are in flight or `done` has less room (batch-1 callers).
        const room = done.capacity - done.length;
        let n = t.held.length < BATCH ? t.held.length : BATCH;
        if (room < n) n = room;
        if (n <= 0) break;
        let last = t.clean + n - 1;
        if (last >= t.size) last -= t.size;
        if ((mem.loadU32(last * DESC + 12) & TXD_STAT_DD) === 0) break;
        release(t, n, done);
      }
      return postFrom(frames, t, TDT(q), false);
    },
    txInflight: (q) => tx[q]!.held.length,
    rxPosted: (q) => rx[q]!.held.length,
    enableInterrupts() {
      Atomics.or(bar0, EIMS, queueMask);
      wake();
    },
    disableInterrupts() {
      Atomics.and(bar0, EIMS, ~queueMask);
      wake();
    },
    onInterrupt: (bits) => (Atomics.exchange(bar0, EICR, 0) | bits) & queueMask,
    readStats(s) {
      const b = bar0;
      foldClearOnRead();
      foldPackets();
      s.rxPackets = rxPackets;
      s.txPackets = txPackets;
      s.rxBytes = read64(GORCL);
      s.txBytes = read64(GOTCL);
      s.rxMissed = missed;
      s.rxErrors = rxErrors;
      s.rxRefused = rxRefused;
      s.txRefused = txRefused;
      s.deviceErrorBits = errBits;
      s.deviceErrorCount = Atomics.load(b, NIC_ERRCNT) >>> 0;
      return s;
    },
  };
}
