/**
 * The 82599-style NIC device model: register file, RX/TX descriptor rings, RSS queue selection,
 * receive filter, statistics and interrupts, driven by one loop in the device worker. Frames come
 * from and go to a Backend (pktgen, loopback, tap).
 *
 * Invariants:
 *  - The model touches physical memory only at addresses it checked: ring bases and lengths are
 *    validated when a queue is enabled, every buffer address per descriptor. Refused input sets a
 *    cause in NIC_ERR (see regs.ts) and the model carries on; it never throws on driver input.
 *  - A queue's ring registers (base, length, RX's SRRCTL) are read when it is enabled and then
 *    fixed until it is disabled: a write to one meanwhile is refused (ringRegsKept).
 *  - Every one of those addresses passes the IOMMU (../iommu.ts) too: each buffer with the bytes a
 *    frame takes, each ring when its queue is enabled and again at every step (so a ring its
 *    driver freed, and the heap handed to another domain, is never written: the queue is
 *    disabled as a refused one is). A refusal is ERR_DMA and a fault reported to the kernel.
 *  - Hardware uses RX descriptors from RDH up to, not including, RDT, and TX descriptors from TDH
 *    up to TDT; a descriptor's write-back status dword is stored last, with Atomics.store, so a
 *    driver that sees DD also sees the data and the rest of the write-back. RX status dwords are
 *    stored in bursts of at most RX_WB_BURST, in ring order, by the end of every step (as the
 *    82599 writes back in bursts, RXDCTL.WTHRESH): see rxCommit.
 *  - Registers are read once per step, yet the model honours the order of the driver's writes as a
 *    device does: before a frame is dropped for a stale read (ring full, RX off, filter), the
 *    registers it depends on are read again (rxClaim, lookAgainRx).
 *  - The hot path does not allocate: descriptors are read through one Uint32Array view of physical
 *    memory, frames are copied with copyWithin/set, and registers are flushed once per batch.
 *  - A transmitted frame shorter than 60 bytes leaves padded with zeros to 60 (TXPADEN), the
 *    driver's buffer untouched: see send.
 *  - After CTRL.RST the model forgets every ring (buffers outstanding are never touched again),
 *    restores register defaults, and only then clears RST.
 */
import * as R from './regs.js';
import { NO_IOMMU, type Iommu } from '../iommu.js';
import { classify } from './rss.js';

/**
 * RX descriptors completed (frame and write-back body stored) before their status dwords are
 * stored, at most. Atomics.store is a full barrier on x86 (an xchg): stored per frame, it waited
 * each time for the frame's own stores, cache lines the driver's core held, so frames were
 * written one cache miss after another; stored per burst, the misses of a burst's frames overlap
 * (`node dist/src/devices/nic/bench.js`, pktgen RX: bench/RESULTS.md, session 26). A driver sees
 * a frame at most one burst (or one step) later.
 */
const RX_WB_BURST = 32;

/** The ring registers of an RX queue fixed while it is enabled (ringRegsKept), by queue. */
const RX_RING_REGS = [R.RDBAL, R.RDBAH, R.RDLEN, R.SRRCTL] as const;
/** The same of a TX queue. */
const TX_RING_REGS = [R.TDBAL, R.TDBAH, R.TDLEN] as const;
const RX_K = RX_RING_REGS.length;
const TX_K = TX_RING_REGS.length;

/** The BAR0 indices of `regs` for queues 0..queues-1, queue after queue. */
const ringRegIndices = (queues: number, regs: readonly ((n: number) => number)[]): Int32Array =>
  Int32Array.from({ length: queues * regs.length }, (_, i) => regs[i % regs.length]!(Math.floor(i / regs.length)));

/** Where frames come from and go to. */
export interface Backend {
  /** Deliver pending incoming frames to `model` (via receive / rxClaim+rxCommit); returns how many. */
  poll(model: NicModel, nowMs: number): number;
  /** A frame left the wire side of the NIC; `b[off..off+len)` is valid only during the call. */
  transmit(model: NicModel, b: Uint8Array, off: number, len: number): void;
  /** True while the backend has work without being woken (a paced generator): the loop then never parks for long. */
  readonly busy: boolean;
}

export interface NicModelOptions {
  phys: SharedArrayBuffer;
  bar0: Int32Array;
  irq: Int32Array;
  queues: number;
  /** MAC address, 6 bytes. */
  mac: readonly number[];
  /** The device's IOMMU; default: none (every address inside physical memory is reachable). */
  iommu?: Iommu;
}

/**
 * Publishes 64-bit counter `v` in BAR0 words lo (low half) and lo + 1 (high), lo even (8-byte
 * aligned, as GORCL and GOTCL are), so that a driver reading high, low, high and taking the low
 * word when both highs agree (nic/core.ts read64) never sees it torn: while the high word stays,
 * only the low one is stored; when it changes (a carry, once every 4 GiB), both halves are stored
 * at once, in one 64-bit store through `bar0q` (BAR0 as 64-bit words). Storing the halves one
 * after the other, in either order, let a read between the two stores take one half of each value:
 * 4 GiB off.
 */
export function publishCounter64(bar0: Int32Array, bar0q: BigInt64Array, lo: number, v: number): void {
  const hi = Math.floor(v / 0x100000000) | 0;
  // An atomic load, though only this thread writes the word: it is written through the other
  // view (bar0q), and no compiler may keep a value read before that store.
  if (Atomics.load(bar0, lo + 1) === hi) Atomics.store(bar0, lo, v % 0x100000000 | 0);
  else Atomics.store(bar0q, lo >>> 1, BigInt(v));
}

/** Called with the interrupt line and a vector; injected so the model stays independent of the bus module. */
export type RaiseIrq = (irq: Int32Array, vector: number) => void;

export class NicModel {
  readonly phys8: Uint8Array;
  private readonly p32: Uint32Array;
  private readonly physLen: number;
  private readonly bar0: Int32Array;
  /** BAR0 as 64-bit words: the byte counters' carries (publishCounter64). */
  private readonly bar0q: BigInt64Array;
  private readonly irq: Int32Array;
  readonly queues: number;
  private readonly mac: readonly number[];
  private readonly iommu: Iommu;

  // Per-queue state, indexed by queue number. A ring of 0 entries is a disabled queue.
  private readonly rxBase: Float64Array;
  private readonly rxCount: Uint32Array;
  private readonly rxHead: Uint32Array;
  private readonly rxTail: Uint32Array;
  private readonly rxBsize: Uint32Array;
  /**
   * Descriptors completed but not yet written back (status dword not stored), the last one just
   * before rxHead; zero between steps (flush writes them back before RDH moves), and set to zero
   * whenever the ring is (re)configured or disabled, so a step cut short by a model bug
   * (internalError) never writes a status into a ring that has since changed.
   */
  private readonly rxUnwritten: Uint32Array;
  /**
   * The ring registers of every queue (RX_RING_REGS of each RX queue, TX_RING_REGS of each TX
   * queue, queue after queue): their indices in BAR0, and the values last read from them (at the
   * enable, then by ringRegsKept).
   */
  private readonly rxRingRegs: Int32Array;
  private readonly rxRingSeen: Int32Array;
  private readonly txRingRegs: Int32Array;
  private readonly txRingSeen: Int32Array;
  private readonly txBase: Float64Array;
  private readonly txCount: Uint32Array;
  private readonly txHead: Uint32Array;
  /** Multi-descriptor TX frames are gathered here until EOP (one staging buffer per queue). */
  private readonly txStage: Uint8Array[];
  private readonly txStageLen: Int32Array;
  /** A descriptor of the frame being gathered was refused: drop the frame at its EOP. */
  private readonly txStageBad: Uint8Array;
  /** A short TX frame padded to MIN_FRAME (see send). */
  private readonly runt = new Uint8Array(R.MIN_FRAME);

  /** RSS redirection: hash & 127 -> an active RX queue. */
  private readonly reta = new Uint8Array(128);
  private rxActiveMask = 0;
  private rxOn = false;
  /** lookAgainRx ran in this step. */
  private rxLookedAgain = false;
  private txOn = false;
  private fctrl = 0;
  private ral = 0;
  private rah = 0;

  private rxDirty = 0;
  private raised = 0;
  private mpcDelta = 0;
  private errBits = 0;
  private errCount = 0;
  private gprc = 0;
  private gorc = 0;
  private gptc = 0;
  private gotc = 0;
  private readonly ptype = new Int32Array(1);

  constructor(opts: NicModelOptions, private readonly raiseIrq: RaiseIrq) {
    this.phys8 = new Uint8Array(opts.phys);
    this.physLen = opts.phys.byteLength;
    this.p32 = new Uint32Array(opts.phys, 0, this.physLen >>> 2);
    this.bar0 = opts.bar0;
    this.bar0q = new BigInt64Array(opts.bar0.buffer, opts.bar0.byteOffset, opts.bar0.byteLength >>> 3);
    this.irq = opts.irq;
    this.queues = opts.queues;
    this.mac = opts.mac;
    this.iommu = opts.iommu ?? NO_IOMMU;
    const q = opts.queues;
    this.rxBase = new Float64Array(q);
    this.rxCount = new Uint32Array(q);
    this.rxHead = new Uint32Array(q);
    this.rxTail = new Uint32Array(q);
    this.rxBsize = new Uint32Array(q);
    this.rxUnwritten = new Uint32Array(q);
    this.rxRingRegs = ringRegIndices(q, RX_RING_REGS);
    this.rxRingSeen = new Int32Array(q * RX_K);
    this.txRingRegs = ringRegIndices(q, TX_RING_REGS);
    this.txRingSeen = new Int32Array(q * TX_K);
    this.txBase = new Float64Array(q);
    this.txCount = new Uint32Array(q);
    this.txHead = new Uint32Array(q);
    this.txStage = Array.from({ length: q }, () => new Uint8Array(R.MAX_FRAME));
    this.txStageLen = new Int32Array(q);
    this.txStageBad = new Uint8Array(q);
    this.reset();
  }

  /** Device reset: forget all rings and counters, restore register defaults, clear CTRL.RST last. */
  reset(): void {
    const b = this.bar0;
    b.fill(0, 1, b.length - 1); // everything but CTRL (word 0) and the WAKE word (last)
    this.rxCount.fill(0);
    this.rxUnwritten.fill(0);
    this.txCount.fill(0);
    this.txStageLen.fill(0);
    this.txStageBad.fill(0);
    this.rxActiveMask = 0;
    this.rxOn = this.txOn = false;
    this.rxDirty = this.raised = this.mpcDelta = this.errBits = this.errCount = 0;
    this.gprc = this.gorc = this.gptc = this.gotc = 0;
    const m = this.mac;
    this.ral = (m[0]! | (m[1]! << 8) | (m[2]! << 16) | (m[3]! << 24)) | 0;
    this.rah = (m[4]! | (m[5]! << 8) | R.RAH_AV) | 0;
    b[R.RAL0] = this.ral;
    b[R.RAH0] = this.rah;
    b[R.STATUS] = R.STATUS_LU;
    b[R.NIC_NQUEUES] = this.queues;
    Atomics.store(b, R.CTRL, 0);
  }

  private refuse(cause: number): void {
    this.errBits |= cause;
    this.errCount++;
  }

  /** Whether the IOMMU lets the device reach `len` bytes at `addr`; if not, ERR_DMA and a fault report. */
  private dmaOk(addr: number, len: number, write: boolean): boolean {
    if (this.iommu.check(addr, len, write)) return true;
    this.refuse(R.ERR_DMA);
    return false;
  }

  /** Whether the IOMMU still lets the device write ring `n` entries at `base`; else the queue's ENABLE is cleared. */
  private ringMapped(base: number, n: number, ctl: number): boolean {
    if (this.dmaOk(base, n * R.DESC_BYTES, true)) return true;
    Atomics.and(this.bar0, ctl, ~R.XDCTL_ENABLE);
    return false;
  }

  /**
   * Reads the control registers: reset, queue enables and tails, receive/transmit enables, filter.
   * Runs once per loop iteration, so register writes take effect at batch granularity, except
   * where a frame would be lost for a stale read: rxClaim reads RDT again when a ring looks full,
   * and receive reads the RX registers again (lookAgainRx) before dropping a frame.
   */
  private syncRegs(): void {
    const b = this.bar0;
    if (Atomics.load(b, R.CTRL) & R.CTRL_RST) this.reset();
    this.rxLookedAgain = false;
    this.syncRx();
    for (let q = 0; q < this.queues; q++) {
      const en = Atomics.load(b, R.TXDCTL(q)) & R.XDCTL_ENABLE;
      if (en && this.txCount[q] === 0) this.enableTx(q);
      else if (!en || !this.ringMapped(this.txBase[q]!, this.txCount[q]!, R.TXDCTL(q))) this.txCount[q] = 0;
      else this.ringRegsKept(this.txRingRegs, this.txRingSeen, q * TX_K, TX_K, R.TXDCTL(q), R.ERR_TXQ_CFG);
    }
    this.txOn = (Atomics.load(b, R.DMATXCTL) & R.DMATXCTL_TE) !== 0;
  }

  /**
   * The receive half of syncRegs: RX queue enables and tails, RXEN, the filter. A queue found
   * disabled is forgotten, and this step's flush does not publish its RDH (which now belongs to
   * the driver reconfiguring it); its statuses were all written back before (flush, lookAgainRx).
   */
  private syncRx(): void {
    const b = this.bar0;
    let active = 0;
    for (let q = 0; q < this.queues; q++) {
      const en = Atomics.load(b, R.RXDCTL(q)) & R.XDCTL_ENABLE;
      if (en && this.rxCount[q] === 0) this.enableRx(q);
      else if (!en || !this.ringMapped(this.rxBase[q]!, this.rxCount[q]!, R.RXDCTL(q))) {
        this.rxCount[q] = this.rxUnwritten[q] = 0;
        this.rxDirty &= ~(1 << q);
      } else {
        this.ringRegsKept(this.rxRingRegs, this.rxRingSeen, q * RX_K, RX_K, R.RXDCTL(q), R.ERR_RXQ_CFG);
      }
      const n = this.rxCount[q]!;
      if (n !== 0) {
        active |= 1 << q;
        const t = Atomics.load(b, R.RDT(q)) >>> 0;
        if (t < n) this.rxTail[q] = t;
        else this.refuseTail(R.RDT(q), R.ERR_RDT_RANGE, this.rxTail[q]!);
      }
    }
    if (active !== this.rxActiveMask) this.buildReta(active);
    this.rxOn = active !== 0 && (Atomics.load(b, R.RXCTRL) & R.RXCTRL_RXEN) !== 0;
    this.fctrl = Atomics.load(b, R.FCTRL);
    this.ral = Atomics.load(b, R.RAL0);
    this.rah = Atomics.load(b, R.RAH0);
  }

  /**
   * Reads the RX registers again, at most once per step, for a frame about to be dropped (RX off,
   * or the filter refuses it). syncRegs read them at the step's start, but a device sees a
   * driver's register writes in order: a frame looped back from a TDT rung after RXEN (or after a
   * filter change) must find them, even when the step began before the driver wrote them and
   * read TDT after. (A driver's bring-up once lost its first frames so: this thread read RXCTRL
   * before init wrote it and DMATXCTL after.) The pending statuses are written back first, so a
   * queue found disabled or reconfigured loses none of the frames it took before.
   */
  private lookAgainRx(): void {
    this.rxLookedAgain = true;
    for (let q = 0; q < this.queues; q++) this.writeBackStatus(q);
    this.syncRx();
  }

  /** Whether RX takes the frame whose destination MAC starts at b[off]; looks again (lookAgainRx) before saying no. */
  private admits(b: Uint8Array, off: number): boolean {
    if (this.rxOn && this.accepts(b, off)) return true;
    if (this.rxLookedAgain) return false;
    this.lookAgainRx();
    return this.rxOn && this.accepts(b, off);
  }

  /** A tail beyond the ring is ignored: the register is put back to the last good value (so it is refused once). */
  private refuseTail(reg: number, cause: number, good: number): void {
    this.refuse(cause);
    Atomics.store(this.bar0, reg, good);
  }

  /** Reads ring registers regs[at..at+k) into seen[at..at+k) (a queue being enabled). */
  private readRingRegs(regs: Int32Array, seen: Int32Array, at: number, k: number): void {
    for (let i = at; i < at + k; i++) seen[i] = Atomics.load(this.bar0, regs[i]!);
  }

  /**
   * Checks an enabled queue's ring registers regs[at..at+k) against the values last read
   * (`seen`). The ring in use is the one read at the enable: a register the driver wrote since is
   * refused (`cause`), reported once per value written, and takes effect only at the queue's next
   * enable. Decision (the spec is silent; the 82599 datasheet has software disable a queue before
   * it changes its ring): kept, not disabled, as a tail out of range is; the register is not put
   * back either, since the write may be a correct driver's that cleared ENABLE after this step
   * read it, then reprogrammed the ring; ENABLE is read again for that case, which is no error.
   */
  private ringRegsKept(regs: Int32Array, seen: Int32Array, at: number, k: number, ctl: number, cause: number): void {
    let changed = false;
    for (let i = at; i < at + k; i++) {
      const v = Atomics.load(this.bar0, regs[i]!);
      if (v !== seen[i]) {
        seen[i] = v;
        changed = true;
      }
    }
    if (changed && (Atomics.load(this.bar0, ctl) & R.XDCTL_ENABLE) !== 0) this.refuse(cause);
  }

  /** Validates a ring's base and length; returns its entry count, or 0 if refused. */
  private ringEntries(lo: number, hi: number, lenBytes: number): number {
    const base = lo >>> 0;
    const len = lenBytes >>> 0;
    if (hi !== 0 || base % R.RING_ALIGN !== 0 || len === 0 || len % R.RING_ALIGN !== 0 || base + len > this.physLen) return 0;
    return this.dmaOk(base, len, true) ? len / R.DESC_BYTES : 0;
  }

  private enableRx(q: number): void {
    const b = this.bar0;
    // The ring registers are read once: checked and used as one value each, whatever the driver
    // writes meanwhile (ringRegsKept compares later reads with these).
    const s = this.rxRingSeen;
    const at = q * RX_K;
    this.readRingRegs(this.rxRingRegs, s, at, RX_K);
    const base = s[at]! >>> 0;
    const n = this.ringEntries(base, s[at + 1]!, s[at + 2]!);
    const srr = s[at + 3]!;
    const bsize = (srr & R.SRRCTL_BSIZE_MASK) * 1024;
    const head = Atomics.load(b, R.RDH(q)) >>> 0;
    const tail = Atomics.load(b, R.RDT(q)) >>> 0;
    if (n === 0 || bsize === 0 || ((srr >>> R.SRRCTL_DESCTYPE_SHIFT) & 7) !== R.SRRCTL_DESCTYPE_ADV_ONEBUF || head >= n || tail >= n) {
      this.refuse(R.ERR_RXQ_CFG);
      Atomics.and(b, R.RXDCTL(q), ~R.XDCTL_ENABLE);
      return;
    }
    this.rxBase[q] = base;
    this.rxBsize[q] = bsize;
    this.rxHead[q] = head;
    this.rxTail[q] = tail;
    this.rxUnwritten[q] = 0;
    this.rxCount[q] = n;
  }

  private enableTx(q: number): void {
    const b = this.bar0;
    const s = this.txRingSeen; // read once, as enableRx's
    const at = q * TX_K;
    this.readRingRegs(this.txRingRegs, s, at, TX_K);
    const base = s[at]! >>> 0;
    const n = this.ringEntries(base, s[at + 1]!, s[at + 2]!);
    const head = Atomics.load(b, R.TDH(q)) >>> 0;
    if (n === 0 || head >= n || (Atomics.load(b, R.TDT(q)) >>> 0) >= n) {
      this.refuse(R.ERR_TXQ_CFG);
      Atomics.and(b, R.TXDCTL(q), ~R.XDCTL_ENABLE);
      return;
    }
    this.txBase[q] = base;
    this.txHead[q] = head;
    this.txStageLen[q] = 0;
    this.txStageBad[q] = 0;
    this.txCount[q] = n;
  }

  /** Spreads the 128 redirection entries round-robin over the active RX queues. */
  private buildReta(active: number): void {
    this.rxActiveMask = active;
    const list: number[] = [];
    for (let q = 0; q < this.queues; q++) if (active & (1 << q)) list.push(q);
    for (let i = 0; i < 128; i++) this.reta[i] = list.length ? list[i % list.length]! : 0;
  }

  /** True when received frames have somewhere to go (RXEN and at least one enabled queue). */
  get rxReady(): boolean {
    return this.rxOn;
  }

  /** The RX queue RSS picks for `hash`. */
  queueFor(hash: number): number {
    return this.reta[hash & 127]!;
  }

  /** RX descriptors currently owned by hardware on queue q. */
  rxFree(q: number): number {
    const n = this.rxCount[q]!;
    const d = this.rxTail[q]! - this.rxHead[q]!;
    return d < 0 ? d + n : d;
  }

  /** Receive filter (FCTRL, RAL/RAH): does the frame whose destination MAC starts at b[off] pass? */
  accepts(b: Uint8Array, off: number): boolean {
    const f = this.fctrl;
    const b0 = b[off]!;
    if (b0 & 1) {
      const bcast = (b0 & b[off + 1]! & b[off + 2]! & b[off + 3]! & b[off + 4]! & b[off + 5]!) === 0xff;
      return (f & (bcast ? R.FCTRL_BAM : R.FCTRL_MPE)) !== 0;
    }
    if (f & R.FCTRL_UPE) return true;
    return (this.rah & R.RAH_AV) !== 0
      && (b0 | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) === this.ral
      && (b[off + 4]! | (b[off + 5]! << 8)) === (this.rah & 0xffff);
  }

  /** `n` frames arrived while the packet buffer was full: dropped, counted in MPC. */
  missed(n: number): void {
    this.mpcDelta += n;
  }

  /**
   * Takes the next RX descriptor of queue q for a frame of `len` bytes and returns the physical
   * address to write the frame to, then the caller must call rxCommit. Returns -1 when the frame
   * is dropped: no descriptor free (counted in MPC), or the descriptor was refused (written back
   * with RXE and consumed).
   */
  rxClaim(q: number, len: number): number {
    const head = this.rxHead[q]!;
    const n = this.rxCount[q]!;
    if (head === this.rxTail[q] && n !== 0) {
      // RDT was read at the step's start; software may have posted descriptors since, and a device
      // sees a driver's register writes in order (RDT rung before the TDT whose frames loop back
      // here): look again before dropping. A bad value is left for syncRegs to refuse.
      const t = Atomics.load(this.bar0, R.RDT(q)) >>> 0;
      if (t < n) this.rxTail[q] = t;
    }
    if (head === this.rxTail[q] || n === 0) {
      this.mpcDelta++;
      return -1;
    }
    const d = (this.rxBase[q]! + head * R.DESC_BYTES) >>> 2;
    const addr = this.p32[d]!;
    const bsize = this.rxBsize[q]!;
    if (this.p32[d + 1] !== 0 || addr + bsize > this.physLen) {
      this.refuse(R.ERR_RX_ADDR);
      this.refuseRx(q, R.RXD_ERR_RXE);
      return -1;
    }
    if (len > bsize) {
      this.refuse(R.ERR_RX_SIZE);
      this.refuseRx(q, R.RXD_ERR_RXE);
      return -1;
    }
    if (!this.dmaOk(addr, len, true)) {
      this.refuseRx(q, R.RXD_ERR_RXE);
      return -1;
    }
    return addr;
  }

  /**
   * Completes the descriptor rxClaim handed out: its write-back body (packet type, RSS hash,
   * length) is stored and RDH's shadow advances; its status dword (DD|EOP) is stored with the
   * others of its burst (writeBackStatus), when the burst is full or the step ends.
   */
  rxCommit(q: number, len: number, hash: number, ptype: number): void {
    this.completeRx(q, ptype, hash, len);
    this.gprc++;
    this.gorc += len;
    if (++this.rxUnwritten[q]! === RX_WB_BURST) this.writeBackStatus(q);
  }

  /** A refused descriptor: written back at once with RXE, after the burst before it (ring order). */
  private refuseRx(q: number, err: number): void {
    this.writeBackStatus(q);
    const d = this.completeRx(q, 0, 0, 0);
    Atomics.store(this.p32, d + 2, R.RXD_STAT_DD | R.RXD_STAT_EOP | err);
  }

  /** Stores the write-back body of the descriptor at RDH's shadow and advances it; returns the descriptor's word index. */
  private completeRx(q: number, ptype: number, hash: number, len: number): number {
    const head = this.rxHead[q]!;
    const d = (this.rxBase[q]! + head * R.DESC_BYTES) >>> 2;
    const p = this.p32;
    p[d] = ptype;
    p[d + 1] = hash;
    p[d + 3] = len;
    this.rxHead[q] = head + 1 === this.rxCount[q] ? 0 : head + 1;
    this.rxDirty |= 1 << q;
    return d;
  }

  /**
   * Stores the status dwords of queue q's descriptors completed since the last burst, oldest
   * first, each with Atomics.store: a driver that sees DD on one sees its frame and body, and
   * those of every descriptor before it.
   */
  private writeBackStatus(q: number): void {
    const k = this.rxUnwritten[q]!;
    if (k === 0) return;
    this.rxUnwritten[q] = 0;
    const n = this.rxCount[q]!;
    const base = this.rxBase[q]!;
    const p = this.p32;
    let slot = this.rxHead[q]! - k;
    if (slot < 0) slot += n;
    for (let i = 0; i < k; i++) {
      Atomics.store(p, (base + slot * R.DESC_BYTES + 8) >>> 2, R.RXD_STAT_DD | R.RXD_STAT_EOP);
      slot = slot + 1 === n ? 0 : slot + 1;
    }
  }

  /** Receives the frame at b[off..off+len) from the wire: filter, RSS, DMA, write-back. */
  receive(b: Uint8Array, off: number, len: number): void {
    if (len < 6 || !this.admits(b, off)) return;
    const hash = classify(b, off, len, this.ptype);
    const q = this.reta[hash & 127]!;
    const dst = this.rxClaim(q, len);
    if (dst < 0) return;
    if (b === this.phys8) this.phys8.copyWithin(dst, off, off + len);
    else if (off === 0 && len === b.length) this.phys8.set(b, dst);
    else this.phys8.set(b.subarray(off, off + len), dst);
    this.rxCommit(q, len, hash, this.ptype[0]!);
  }

  /** Sends what the driver queued on every enabled TX ring; returns descriptors processed. */
  private processTx(backend: Backend): number {
    if (!this.txOn) return 0;
    let done = 0;
    for (let q = 0; q < this.queues; q++) {
      const n = this.txCount[q]!;
      if (n === 0) continue;
      const t = Atomics.load(this.bar0, R.TDT(q)) >>> 0;
      if (t >= n) {
        this.refuseTail(R.TDT(q), R.ERR_TDT_RANGE, this.txHead[q]!); // the head has caught up with the last good tail
        continue;
      }
      let head = this.txHead[q]!;
      if (head === t) continue;
      while (head !== t) {
        this.txOne(backend, q, (this.txBase[q]! + head * R.DESC_BYTES) >>> 2);
        head = head + 1 === n ? 0 : head + 1;
        done++;
      }
      this.txHead[q] = head;
      Atomics.store(this.bar0, R.TDH(q), head);
    }
    return done;
  }

  private txOne(backend: Backend, q: number, d: number): void {
    const p = this.p32;
    const addr = p[d]!;
    const w2 = p[d + 2]!;
    const len = w2 & 0xffff;
    const cause = (w2 & R.TXD_CMD_DEXT) === 0 || ((w2 >>> 20) & 0xf) !== R.TXD_DTYP_DATA ? R.ERR_TX_DESC
      : len === 0 || len > R.MAX_FRAME ? R.ERR_TX_LEN
      : p[d + 1] !== 0 || addr + len > this.physLen ? R.ERR_TX_ADDR
      : 0;
    const eop = (w2 & R.TXD_CMD_EOP) !== 0;
    const staged = this.txStageLen[q]!;
    if (cause !== 0) {
      this.refuse(cause);
      this.txStageBad[q] = 1;
    } else if (!this.dmaOk(addr, len, false)) {
      this.txStageBad[q] = 1;
    } else if (eop && staged === 0 && this.txStageBad[q] === 0) {
      this.send(backend, this.phys8, addr, len);
    } else if (staged + len > R.MAX_FRAME) {
      this.refuse(R.ERR_TX_LEN);
      this.txStageBad[q] = 1;
    } else if (this.txStageBad[q] === 0) {
      this.txStage[q]!.set(this.phys8.subarray(addr, addr + len), staged);
      this.txStageLen[q] = staged + len;
    }
    if (eop) {
      if (this.txStageBad[q] === 0 && this.txStageLen[q] !== 0) this.send(backend, this.txStage[q]!, 0, this.txStageLen[q]!);
      this.txStageLen[q] = 0;
      this.txStageBad[q] = 0;
    }
    if (w2 & R.TXD_CMD_RS) Atomics.store(p, d + 3, p[d + 3]! | R.TXD_STAT_DD);
  }

  /**
   * A frame leaves the wire side. One shorter than MIN_FRAME is padded with zeros to it first, as
   * the 82599 does (HLREG0.TXPADEN, on by default): every backend (loopback's RX copy, pktgen's
   * sink, a TAP interface) and GPTC/GOTC see the padded frame. The padding is built in `runt`,
   * never in the driver's buffer; a full-size frame pays one comparison (the padding is a method
   * of its own, so that the per-frame one stays as small as it was for V8 to inline).
   */
  private send(backend: Backend, b: Uint8Array, off: number, len: number): void {
    if (len < R.MIN_FRAME) {
      this.sendPadded(backend, b, off, len);
      return;
    }
    this.gptc++;
    this.gotc += len;
    backend.transmit(this, b, off, len);
  }

  /** send() of a runt: its `len` bytes and zeros to MIN_FRAME, in `runt`. */
  private sendPadded(backend: Backend, b: Uint8Array, off: number, len: number): void {
    const r = this.runt;
    for (let i = 0; i < len; i++) r[i] = b[off + i]!; // at most 59 bytes, and no view allocated
    r.fill(0, len);
    this.send(backend, r, 0, R.MIN_FRAME);
  }

  /**
   * Publishes a batch: statistics, errors, RDH, interrupt causes (RX queues written back) and
   * interrupts. The counters go first, so software that sees a frame's RDH also sees it counted.
   */
  private flush(): void {
    const b = this.bar0;
    const dirty = this.rxDirty;
    this.rxDirty = 0;
    for (let q = 0; q < this.queues; q++) this.writeBackStatus(q);
    if (this.mpcDelta !== 0) {
      Atomics.add(b, R.MPC, this.mpcDelta);
      this.mpcDelta = 0;
    }
    if (this.errBits !== 0) {
      Atomics.or(b, R.NIC_ERR, this.errBits);
      Atomics.add(b, R.NIC_ERRCNT, this.errCount);
      this.errBits = this.errCount = 0;
    }
    Atomics.store(b, R.GPRC, this.gprc | 0);
    publishCounter64(b, this.bar0q, R.GORCL, this.gorc);
    Atomics.store(b, R.GPTC, this.gptc | 0);
    publishCounter64(b, this.bar0q, R.GOTCL, this.gotc);
    for (let q = 0; q < this.queues; q++) if (dirty & (1 << q)) Atomics.store(b, R.RDH(q), this.rxHead[q]!);
    this.interrupts(dirty);
  }

  /**
   * Raises one interrupt per cause bit that is pending, unmasked and not yet signalled; a cause
   * can fire again once software cleared it by reading EICR (so a masked-then-unmasked pending
   * cause fires when unmasked, as on the real part).
   */
  private interrupts(causes: number): void {
    const b = this.bar0;
    const clear = Atomics.exchange(b, R.EIMC, 0);
    if (clear !== 0) Atomics.and(b, R.EIMS, ~clear);
    // EICR before the new causes: a bit software cleared since the last raise is re-armed even
    // when this batch sets it again.
    const before = causes !== 0 ? Atomics.or(b, R.EICR, causes) : Atomics.load(b, R.EICR);
    this.raised &= before;
    const eicr = before | causes;
    const fire = eicr & Atomics.load(b, R.EIMS) & ~this.raised;
    if (fire === 0) return;
    this.raised |= fire;
    for (let v = 0; v < this.queues; v++) if (fire & (1 << v)) this.raiseIrq(this.irq, v);
  }

  /** One loop iteration: registers, transmit, receive from the backend, publish. Returns work done. */
  step(backend: Backend, nowMs: number): number {
    this.syncRegs();
    let work = this.processTx(backend);
    work += backend.poll(this, nowMs);
    this.flush();
    return work;
  }

  /** Records an exception the model caught in itself (a model bug, never driver input). */
  internalError(): void {
    this.refuse(R.ERR_INTERNAL);
    this.flush();
  }
}
