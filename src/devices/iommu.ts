/**
 * The IOMMU: which physical memory a device may reach by DMA, checked by the device model on
 * every transfer (ring, descriptor buffer, queue, PRP list and data segment), before it touches
 * a byte. RedLeaf has none: there a driver can point its device anywhere in memory. Here a device
 * attached to a driver domain may write only memory that domain owns, and read only memory it
 * owns or that is lent (Borrow<>) to a call into that domain in progress (a driver writes a
 * caller's borrowed buffer to disk); anything else is a DMA fault.
 *
 * The translation tables are the exchange heap's own (src/kernel/heap.ts keeps them), shared
 * read-only with the device as an OS shares page tables with its IOMMU:
 *  - blockShift, per 4 KiB page: log2 of the size of the blocks carved in that page (the heap's
 *    blocks are aligned to their size), DMA_LARGE for a page of an allocation of whole pages,
 *    0 where nothing was ever allocated;
 *  - slotAt, per 64-byte granule: 1 + the slot whose block begins there (for a large allocation,
 *    at every one of its pages), 0 for none. Entries are written at allocation and never cleared:
 *    a lookup checks the slot's current offset and length, so a stale entry (its slot freed or
 *    moved elsewhere) matches nothing, as blocks never overlap;
 *  - the slot table's owner, parent, offset and length columns: the owner of a value is that of
 *    its root (a deque's elements belong to whoever owns the deque, whatever their own column
 *    says), found by following parent links;
 *  - loan columns (LOAN_COLUMNS of them, a count per slot each): the kernel gives each driver it
 *    attaches a column of its own, and counts there every loan of a value to a call into that
 *    driver. A value is lent to the driver when it or one holding it (up to its root) is: a loan
 *    counts per slot, and a struct field's value can be lent alone. A loan to any other domain
 *    lends the device nothing (the slot table's borrow column counts those too).
 * The attached domain is BUS.DOMAIN and its loan column BUS.LOANS (bus.ts), which the kernel
 * writes before it requests the function reset of an attach (the new instance) or a detach
 * (none). The IOMMU takes them up when the device performs that reset (bind), not before: what
 * the device did up to the reset is checked against the domain it was doing it for, what it does
 * after against the next one, so a transfer of the old driver's is never charged to the new.
 *
 * A check comes before its transfer, which may take a while (a file read into memory): memory
 * freed meanwhile must not go to another domain before the transfer ends. The driver may free
 * it, or move it to another domain that frees it. So while any device does DMA, the heap holds
 * back every block freed, by anyone, until each device that was not parked at the free has
 * passed two DMA boundaries, or parked, or was detached (BUS.EPOCH, heap.ts guardDma); the
 * slot number waits with its bytes, so no lookup here sees a slot reused halfway through. Left
 * open, for at most one transfer each: memory the driver moves away, or a loan that ends, while
 * its device is still transferring (README, IOMMU). The lookups are plain loads, ordered by x86's
 * total store order against the heap's stores (an offset before an owner; a fence after a free).
 *
 * A refused transfer does not happen: the device model treats it as the address fault its
 * specification defines (an NVMe Data Transfer Error, a NIC descriptor refused in NIC_ERR) and the
 * IOMMU reports it to the kernel (BUS.FAULTS, FAULT_ADDR, FAULT_LEN, FAULT_WRITE and a notify on
 * FAULTS, its fault interrupt, with FAULT_DOMAIN: the domain attached at the time), which charges
 * it to that driver: the driver domain is terminated,
 * and a shadow restarts it. The tables are read without locks while the kernel thread writes
 * them: a value the driver keeps posted to its device does not change hands, so only a transfer
 * the driver got wrong can see a table mid-change, and it is refused either way.
 *
 * Without tables (a device model driven by a test, no kernel) every address inside physical
 * memory is allowed, as before the IOMMU.
 */
import { BUS, BUS_BYTES } from './bus.js';

/** log2 of the IOMMU's page: blockShift has one entry per page. */
export const DMA_PAGE_SHIFT = 12;
/** log2 of the granule at which allocations begin: slotAt has one entry per granule. */
export const DMA_GRANULE_SHIFT = 6;
/** blockShift of a page of a large (whole pages) allocation: every page has its slotAt entry. */
export const DMA_LARGE = DMA_PAGE_SHIFT;
/** Slot-table values the IOMMU reads: an owner of FREE_OWNER is a free slot; NO_PARENT a root. */
export const FREE_OWNER = -1;
export const NO_PARENT = -1;
/** BUS.DOMAIN of a device attached to no domain: nothing is reachable. */
export const NO_DOMAIN = -2;
/** Loan columns the tables have: drivers attached at once (with loans still out to dead ones). */
export const LOAN_COLUMNS = 8;
/** BUS.LOANS of a device whose domain is lent nothing it may read (a host-linked driver's, none). */
export const NO_LOANS = -1;
/**
 * How many parent links a lookup follows to a root before it refuses. Values nest through struct
 * fields and deques a few levels deep; a chain this long is not one a driver posts to its device.
 */
const MAX_DEPTH = 32;

/** The tables, as the device worker receives them (DeviceWorkerData.iommu). */
export interface IommuTables {
  readonly blockShift: SharedArrayBuffer;
  readonly slotAt: SharedArrayBuffer;
  readonly owner: SharedArrayBuffer;
  readonly parent: SharedArrayBuffer;
  readonly off: SharedArrayBuffer;
  readonly len: SharedArrayBuffer;
  /** LOAN_COLUMNS Int32 columns of the slot table: loans to the driver given that column. */
  readonly loans: readonly SharedArrayBuffer[];
}

/** What the kernel learns of a DMA fault (DeviceHandle.onDmaFault). */
export interface DmaFault {
  readonly addr: number;
  readonly len: number;
  readonly write: boolean;
  /** The domain the device was attached to when it refused the transfer: the one to charge. */
  readonly domain: number;
}

/** The device side: `allows` before every transfer, `fault` when it said no. */
export interface Iommu {
  /** May the device write (`write`) or read `len` bytes at physical `addr`? */
  allows(addr: number, len: number, write: boolean): boolean;
  /** Report a refused transfer to the kernel (the transfer itself must not happen). */
  fault(addr: number, len: number, write: boolean): void;
  /** What a device model asks before a transfer: `allows`, and a refusal reported (`fault`). */
  check(addr: number, len: number, write: boolean): boolean;
  /** At a function reset of the device bus (serviceBus): take up the domain (and loan column) the kernel attached. */
  bind(): void;
}

/** No IOMMU: every address inside physical memory is reachable, and nothing is ever refused. */
export const NO_IOMMU: Iommu = Object.freeze({ allows: () => true, fault: () => {}, check: () => true, bind: () => {} });

/**
 * An IOMMU over `tables` bound to `domain` (and loan column `loans`), on bus-control words of its
 * own: what a device attached to that domain checks against after its reset, for code that
 * drives the check without a device worker (the IOMMU's tests, probes/iommu-cost). Its `bus`
 * shows the fault records.
 */
export function boundIommu(tables: IommuTables, domain: number, loans = NO_LOANS): { iommu: Iommu; bus: Int32Array } {
  const bus = new Int32Array(new SharedArrayBuffer(BUS_BYTES));
  bus[BUS.DOMAIN] = domain;
  bus[BUS.LOANS] = loans;
  const iommu = createIommu(tables, bus);
  iommu.bind();
  return { iommu, bus };
}

/** The IOMMU of a device whose bus-control words are `bus`; NO_IOMMU without tables. */
export function createIommu(tables: IommuTables | undefined, bus: Int32Array): Iommu {
  if (tables === undefined) return NO_IOMMU;
  let domain = NO_DOMAIN;
  /** The attached driver's loan column; null: it is lent nothing. */
  let lent: Int32Array | null = null;
  const fault = (addr: number, len: number, write: boolean): void => {
    Atomics.store(bus, BUS.FAULT_ADDR, addr | 0);
    Atomics.store(bus, BUS.FAULT_LEN, len | 0);
    Atomics.store(bus, BUS.FAULT_WRITE, write ? 1 : 0);
    Atomics.store(bus, BUS.FAULT_DOMAIN, domain);
    Atomics.add(bus, BUS.FAULTS, 1);
    Atomics.notify(bus, BUS.FAULTS);
  };
  const blockShift = new Int8Array(tables.blockShift);
  const slotAt = new Int32Array(tables.slotAt);
  const owner = new Int32Array(tables.owner);
  const parent = new Int32Array(tables.parent);
  const off = new Uint32Array(tables.off);
  const size = new Uint32Array(tables.len);
  const loanColumns = tables.loans.map((b) => new Int32Array(b));
  const pages = blockShift.length;
  const allows = (addr: number, len: number, write: boolean): boolean => {
      const page = addr >>> DMA_PAGE_SHIFT;
      if (!(page < pages) || !(len > 0)) return false;
      const shift = blockShift[page]!;
      if (shift === 0) return false;
      const start = (addr >>> shift) * (1 << shift);
      const slot = slotAt[start >>> DMA_GRANULE_SHIFT]! - 1;
      if (slot < 0) return false;
      const o = off[slot]!;
      // A free slot needs no test of its own: its owner (FREE_OWNER) is no domain's and it is lent to no one.
      if (addr < o || addr + len > o + size[slot]!) return false;
      let root = slot;
      for (let depth = 0; parent[root] !== NO_PARENT; depth++) {
        if (depth === MAX_DEPTH) return false;
        root = parent[root]!;
      }
      let ok = owner[root] === domain;
      if (!ok && !write && lent !== null) {
        // Lent to the driver: the loan of a value lends what it holds, and a value held in a
        // struct field (a BlkReq's data) can be lent by itself: any loan on the way to its root counts.
        // Bounded as the root walk is: the kernel may change a parent link between the two walks
        // (a field released, a value freed), and a walk that misses `root` would otherwise follow
        // NO_PARENT off the chain and spin forever on the device thread. Such a race refuses.
        for (let s = slot, depth = 0; !ok && s >= 0 && depth <= MAX_DEPTH; s = parent[s]!, depth++) {
          ok = lent[s]! > 0;
          if (s === root) break;
        }
      }
      // The slot's offset again, after its owner: the heap writes a reused slot's offset before
      // its owner, so a slot given to a new value while this lookup ran (found through a stale
      // granule entry) shows here, and its new owner is not taken over its old block. (A slot
      // freed while a device works is reused only after its boundaries: heap.ts freeBlock.)
      return ok && off[slot] === o;
  };
  return {
    allows,
    fault,
    check(addr, len, write) {
      if (allows(addr, len, write)) return true;
      fault(addr, len, write);
      return false;
    },
    bind() {
      domain = Atomics.load(bus, BUS.DOMAIN);
      lent = loanColumns[Atomics.load(bus, BUS.LOANS)] ?? null;
    },
  };
}
