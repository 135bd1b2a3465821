/**
 * The exchange heap: physical memory, its allocator and the slot table (trusted).
 *
 * Physical memory is one SharedArrayBuffer shared with device models (DMA) and worker-tier
 * domains; a physical address is a byte offset into it. Every allocation has a slot recording
 * owner domain, generation, borrow count, type id, offset, length and parent. Handles (rref.ts)
 * name (slot, generation): bumping the generation revokes every handle to the slot at once.
 *
 * Invariants:
 *  - a slot is free iff owner[slot] === FREE; its generation only ever increases; a free slot has
 *    parent NO_PARENT (alloc, free and reclaim keep it so), so `parent[c] === p` for a slot p
 *    already implies that c is allocated;
 *  - a child (an element of a deque, an RRef field of a struct) has parent[child] = the slot that
 *    holds it; a root has parent NO_PARENT;
 *  - owners: the owner column is exact for a root and for what a root holds through struct
 *    fields, the only values handles can name. Inside a deque it may be stale: an element (and
 *    everything it holds) belongs to whoever owns the deque's root (ownerOf), so moving a deque is
 *    O(1), however many elements it holds. An element's owner column is written again when it
 *    leaves its deque (release) and read only through ownerOf / effectiveOwners (accounting,
 *    reclaim, a worker's system calls), never on a hot path;
 *  - accounting is exact by construction: usage(d) sums, when asked, the slots whose effective
 *    owner is d (no per-allocation or per-move counters to keep in step; a query is a pass over
 *    the slots used so far and the rings of the deques in use, and queries are rare: monitors and
 *    tests, never a packet path);
 *  - a slot with borrows > 0 is never freed: free() marks it PENDING_FREE and the last
 *    endBorrow() frees it; what it holds stays allocated until then, even when its owner dies;
 *  - entrusted values (entrust(), for shadows): a slot marked ENTRUSTED names an heir (the domain
 *    that marked it while it owned it). The mark lives in the private flags column, so alloc and
 *    free clear it with the stores they already make and no move looks at it; it lasts until the
 *    slot is freed. When a domain dies (reclaim), an entrusted value it holds goes to its heir
 *    instead of being freed, if the kernel's Inheritance says that heir may inherit from that
 *    dead domain: moved (generation bumped: the dead domain's handles stay revoked) with
 *    everything it holds, detached from a holder that is not itself going back. A value held by
 *    one that was lent to a call in progress is not given back (the borrower may still read it
 *    there); it is freed with its holder, as before.
 *
 * Allocator: power-of-two size classes from 64 B to 1 MiB, each a stack of free blocks carved from
 * the bump region in chunks aligned to max(class size, 4 KiB), so a block of size s >= 4 KiB is
 * page-aligned and every block is aligned to its size. Larger allocations are whole pages with an
 * exact-size free list. Alloc and free of a small block are O(1) with no JS allocation, which is
 * what tens of millions of packet buffers per second need. No coalescing: freed blocks stay in
 * their class (documented trade-off: fragmentation across classes, not leaks).
 *
 * The IOMMU's tables (src/devices/iommu.ts) are kept here, beside what they translate: per page
 * the size class carved there (written when a chunk is carved), per 64-byte granule the slot
 * whose block begins there (one store per allocation; per page for a large one). With the slot
 * table's columns they tell a device model who owns an address, so a device DMAs only into its
 * driver's memory. The granule map costs 1/16 of physical memory (zero pages until written).
 */

import { DMA_GRANULE_SHIFT, DMA_LARGE, DMA_PAGE_SHIFT, FREE_OWNER, LOAN_COLUMNS, NO_LOANS, NO_PARENT, type IommuTables } from '../devices/iommu.js';

export const FREE = FREE_OWNER;
export { NO_PARENT };
/** Owner id of allocations the kernel itself holds (never a domain). */
export const KERNEL_OWNER = 0;

const PENDING_FREE = 1;
/** Flag: the slot was entrusted (see entrust); never combined with PENDING_FREE. */
const ENTRUSTED = 2;
const MIN_CLASS_SHIFT = 6; // 64 B
const MAX_CLASS_SHIFT = 20; // 1 MiB
const PAGE = 4096;

/** A device's DMA epoch as the kernel reads it (DeviceHandle.dmaEpoch; bus.ts BUS.EPOCH). */
export type DmaEpoch = () => number;

/** Blocks freed together, held back until the devices that were not parked then are past it. */
interface HeldBatch {
  /** cls, off, bytes and slot of each value freed (HELD_WORDS numbers each). */
  readonly blocks: number[];
  /** The devices not parked at the free, and their epochs then. */
  readonly guards: DmaEpoch[];
  readonly epochs: number[];
}

const HELD_WORDS = 4;
/** How long, at most, an allocation that found memory or slots exhausted waits for held-back ones. */
const HELD_WAIT_MS = 100;

/**
 * A device whose DMA epoch read `atFree` (odd: not parked) just after a free reads `now`: has
 * every transfer it may have checked before the free ended? Yes once it parked (even) or passed
 * two DMA boundaries (serviceBus adds 2; a park and a wake 1 each, so a nap counts as one).
 */
function pastTransfers(now: number, atFree: number): boolean {
  return (now & 1) === 0 || ((now - atFree) | 0) >= 4;
}

export class HeapError extends Error {
  constructor(
    readonly code: 'ENOMEM' | 'ENOSLOT' | 'EINVAL',
    message: string,
  ) {
    super(message);
    this.name = 'HeapError';
  }
}

/** What kind of value a type id describes; decides how children are found. */
export const enum TypeKind {
  /** A flat array of scalars (bytes included): no children. */
  Array = 0,
  /** A layout struct; may hold RRef fields (children) at fixed offsets. */
  Struct = 1,
  /** An RRefDeque: a ring of child slot numbers. */
  Deque = 2,
}

export interface TypeInfo {
  readonly id: number;
  readonly name: string;
  readonly kind: TypeKind;
  /** Byte offsets, inside the allocation, of u32 child slot numbers (structs). */
  readonly childOffsets: readonly number[];
}

/** Deque memory: [head u32][count u32][capacity u32][reserved u32] then capacity u32 slots. */
export const DEQUE_HEADER = 16;

export interface HeapOptions {
  /** Bytes of physical memory (default 256 MiB). */
  physBytes?: number;
  /** Maximum live allocations (default 1 Mi). */
  maxSlots?: number;
}

/**
 * Who may inherit entrusted values from a dead domain (the kernel: a live shadow, from the driver
 * instances it supervises), and where inherited roots are delivered.
 */
export interface Inheritance {
  mayInherit(dead: number, heir: number): boolean;
  /** `roots` (slots now owned by `heir`, their handles revoked) came out of dead domain `dead`. */
  inherited(dead: number, heir: number, roots: number[]): void;
}

/** How many types a heap can register (the per-type tables are this long). */
export const MAX_TYPES = 1024;

/**
 * The registered types of a heap and the per-type flags its hot paths test. The kernel's heap and
 * a worker domain's view of it (worker-host.ts) each keep one, filled in the same order.
 */
export class TypeTable {
  readonly infos: TypeInfo[] = [];
  /**
   * Per type id: 1 when values of the type can hold children (structs with RRef fields, deques).
   * Read-only for the handle kit (a push of a value without children needs no cycle check).
   */
  readonly hasChildren = new Uint8Array(MAX_TYPES);
  /** Per type id: 1 for deques (children in a ring), 0 otherwise: the move walk's fast test. */
  readonly isDeque = new Uint8Array(MAX_TYPES);
  /**
   * Per type id: the child offsets again, as plain arrays for the walks (moveTree, forEachChild):
   * reading them through the frozen TypeInfo costs the move of a struct about a third more.
   */
  readonly childOffsetsOf: number[][] = [];

  register(name: string, kind: TypeKind, childOffsets: readonly number[] = []): TypeInfo {
    const info: TypeInfo = Object.freeze({ id: this.infos.length, name, kind, childOffsets: Object.freeze([...childOffsets]) });
    if (info.id >= MAX_TYPES) throw new HeapError('EINVAL', `too many types (max ${MAX_TYPES})`);
    this.infos.push(info);
    this.childOffsetsOf.push([...childOffsets]);
    if (kind === TypeKind.Deque || childOffsets.length > 0) this.hasChildren[info.id] = 1;
    if (kind === TypeKind.Deque) this.isDeque[info.id] = 1;
    return info;
  }

  info(id: number): TypeInfo {
    const t = this.infos[id];
    if (t === undefined) throw new HeapError('EINVAL', `unknown type id ${id}`);
    return t;
  }
}

export class ExchangeHeap {
  readonly phys: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly dv: DataView;
  readonly maxSlots: number;

  // Slot table (structure of arrays: no object per allocation).
  readonly owner: Int32Array;
  readonly gen: Uint32Array;
  readonly borrows: Int32Array;
  readonly type: Int32Array;
  readonly off: Uint32Array;
  readonly len: Uint32Array;
  /**
   * Per slot: how many of its bytes a handle may write raw (RRef setU8..setU64, storeU32, write,
   * fill, copyFrom): its length for a value that holds no RRefs, 0 for a struct with RRef fields
   * and for a deque. Their memory names child slots (a field's slot number, a ring's entries and
   * header), which only the kit writes: were the holder free to scribble there, it could move the
   * value on with a field naming a child of another type or nothing valid at all, and the
   * receiver, reading it, would be the one to fault. The handles' write check reads this column
   * where it would read `len`, so the refusal costs no extra load.
   */
  readonly rawLen: Uint32Array;
  readonly parent: Int32Array;
  private readonly cls: Int8Array;
  private readonly flags: Uint8Array;
  private readonly freeSlots: Int32Array;
  /** The IOMMU's page map and granule map (see the top of this file). */
  private readonly blockShift: Int8Array;
  private readonly slotAt: Int32Array;
  /**
   * The IOMMU's loan columns (iommu.ts): per column, per slot, the loans of that slot to calls
   * into the driver the kernel gave the column; and per column, its loans in all (a column is
   * given to a new driver only once those of the last are over).
   */
  private readonly loanColumns: Int32Array[];
  private readonly loansOut = new Int32Array(LOAN_COLUMNS);
  /** What a device's IOMMU reads (startDevice's `iommu`): shared, written only by this heap. */
  readonly iommuTables: IommuTables;
  private nFreeSlots = 0;
  /** Slots below this index have been used at least once. */
  highWater = 0;

  // Allocator state.
  private bump = 0;
  private readonly classStacks: Uint32Array[] = [];
  private readonly classTops: Int32Array;
  private readonly bigFree = new Map<number, number[]>();

  // Entrusted values (see entrust). The heir column is only read where flags has ENTRUSTED; it is
  // allocated at the first entrust, so a heap that never uses it pays nothing.
  private heirOf: Int32Array | null = null;

  // DMA quarantine (guardDma): the DMA epochs of the devices domains drive (by domain, and as a
  // list for the free path), the blocks of the free in progress (null: none is), and the batches
  // held back.
  private readonly dmaGuards = new Map<number, DmaEpoch>();
  private guardList: DmaEpoch[] = [];
  private freeing: number[] | null = null;
  private readonly held: HeldBatch[] = [];
  /**
   * The sum of the guards' epochs at the last walk of `held` (releaseAged): with one set of
   * guards it changes whenever an epoch does (they only grow); NaN after the set changed.
   */
  private heldWalkedAt = 0;
  private inheritance: Inheritance | null = null;


  private readonly typeTable = new TypeTable();
  /** Per type id: can its values hold children (see TypeTable). Read-only for the handle kit. */
  readonly hasChildren = this.typeTable.hasChildren;
  private readonly isDeque = this.typeTable.isDeque;
  private readonly childOffsetsOf = this.typeTable.childOffsetsOf;

  constructor(opts: HeapOptions = {}) {
    const physBytes = opts.physBytes ?? 256 * 1024 * 1024;
    if (!Number.isInteger(physBytes) || physBytes < 1 << 20 || physBytes % PAGE !== 0 || physBytes > 2 ** 32 - PAGE) {
      throw new HeapError('EINVAL', `physical memory size ${physBytes} must be a multiple of 4096 between 1 MiB and 4 GiB`);
    }
    this.phys = new SharedArrayBuffer(physBytes);
    this.u8 = new Uint8Array(this.phys);
    this.u32 = new Uint32Array(this.phys);
    this.dv = new DataView(this.phys);
    const n = (this.maxSlots = opts.maxSlots ?? 1 << 20);
    // The columns are written with plain typed-array stores: ~1 ns under the kernel's lockdown,
    // which freezes the typed-array prototypes so that V8 keeps them fast (src/kernel/lockdown.ts).
    // The slot table's public columns live in shared memory: worker-tier domains check their
    // handles against them. Only the kernel thread ever writes them (src/kernel/worker-tier.ts).
    const shared = (): SharedArrayBuffer => new SharedArrayBuffer(n * 4);
    this.owner = new Int32Array(shared()).fill(FREE);
    this.gen = new Uint32Array(shared());
    this.borrows = new Int32Array(shared());
    this.type = new Int32Array(shared());
    this.off = new Uint32Array(shared());
    this.len = new Uint32Array(shared());
    this.rawLen = new Uint32Array(shared());
    this.parent = new Int32Array(shared()).fill(NO_PARENT);
    this.cls = new Int8Array(n);
    this.flags = new Uint8Array(n);
    this.freeSlots = new Int32Array(n);
    this.blockShift = new Int8Array(new SharedArrayBuffer(physBytes >>> DMA_PAGE_SHIFT));
    this.slotAt = new Int32Array(new SharedArrayBuffer((physBytes >>> DMA_GRANULE_SHIFT) * 4));
    this.loanColumns = Array.from({ length: LOAN_COLUMNS }, () => new Int32Array(shared()));
    const buf = (a: Int8Array | Int32Array | Uint32Array): SharedArrayBuffer => a.buffer as SharedArrayBuffer;
    this.iommuTables = Object.freeze({
      blockShift: buf(this.blockShift), slotAt: buf(this.slotAt), owner: buf(this.owner), parent: buf(this.parent),
      off: buf(this.off), len: buf(this.len), loans: Object.freeze(this.loanColumns.map(buf)),
    });
    const nClasses = MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1;
    this.classTops = new Int32Array(nClasses);
    for (let c = 0; c < nClasses; c++) {
      const stack = new Uint32Array(64);
      this.classStacks.push(stack);
    }

    // Page 0 is never handed out, so physical address 0 always means "none" (as in NVMe PRPs).
    this.bump = PAGE;
  }

  // ---- types ----------------------------------------------------------------------------------

  registerType(name: string, kind: TypeKind, childOffsets: readonly number[] = []): TypeInfo {
    return this.typeTable.register(name, kind, childOffsets);
  }

  typeInfo(id: number): TypeInfo {
    return this.typeTable.info(id);
  }

  // ---- allocation -----------------------------------------------------------------------------

  /** Allocate `bytes` (zeroed) for `owner`; returns the slot. `align` is a power of two <= 4096. */
  alloc(owner: number, bytes: number, typeId: number, align = 8): number {
    if (!(bytes > 0) || !Number.isInteger(bytes)) throw new HeapError('EINVAL', `allocation size ${bytes} must be a positive integer`);
    if (align > PAGE || (align & (align - 1)) !== 0) throw new HeapError('EINVAL', `alignment ${align} must be a power of two <= 4096`);
    if (this.held.length !== 0) this.releaseAged();
    if (this.nFreeSlots === 0 && this.highWater === this.maxSlots && !this.awaitHeld()) {
      throw new HeapError('ENOSLOT', `exchange heap: all ${this.maxSlots} slots are in use`);
    }
    const want = Math.max(bytes, align);
    const cls = want <= 1 << MAX_CLASS_SHIFT ? classOf(want) : -1;
    let offset = this.carve(cls, bytes);
    if (offset < 0 && this.held.length !== 0) {
      // Wait again while batches still come back within the one bound: the first to come back
      // may hold only blocks of other sizes (a small metadata block freed before the large one).
      const end = performance.now() + HELD_WAIT_MS;
      while (offset < 0 && this.awaitHeld(end)) offset = this.carve(cls, bytes);
    }
    if (offset < 0) {
      const size = cls >= 0 ? 1 << (cls + MIN_CLASS_SHIFT) : Math.ceil(bytes / PAGE) * PAGE;
      throw new HeapError('ENOMEM', `exchange heap: out of physical memory (${this.phys.byteLength} bytes) allocating ${size} bytes`);
    }
    const slot = this.nFreeSlots > 0 ? this.freeSlots[--this.nFreeSlots]! : this.highWater++;
    // Where the block is, first; its owner last: an IOMMU that read the slot's old offset (a stale
    // granule entry: a device thread looks up without locks) and then this owner reads the
    // offset again after the owner and sees the new one (iommu.ts), so it never takes the new
    // owner over the block the slot had before.
    this.off[slot] = offset;
    this.len[slot] = bytes;
    this.borrows[slot] = 0;
    this.type[slot] = typeId;
    this.rawLen[slot] = this.hasChildren[typeId] === 1 ? 0 : bytes;
    this.parent[slot] = NO_PARENT;
    this.cls[slot] = cls;
    this.flags[slot] = 0;
    this.owner[slot] = owner;
    if (cls >= 0) this.slotAt[offset >>> DMA_GRANULE_SHIFT] = slot + 1;
    else for (let p = offset; p < offset + bytes; p += PAGE) this.slotAt[p >>> DMA_GRANULE_SHIFT] = slot + 1;
    this.u8.fill(0, offset, offset + bytes);
    return slot;
  }

  /** A free block of size class `cls` (-1: whole pages for `bytes`), or -1 if memory is exhausted. */
  private carve(cls: number, bytes: number): number {
    return cls >= 0 ? this.allocClass(cls) : this.allocPages(Math.ceil(bytes / PAGE));
  }

  /**
   * Memory or slots ran out while the DMA quarantine holds some back: wait (the kernel thread
   * spins, at most HELD_WAIT_MS, or until `end`) for the devices to pass the boundaries that
   * release them. Returns whether anything came back.
   */
  private awaitHeld(end = performance.now() + HELD_WAIT_MS): boolean {
    if (this.held.length === 0) return false;
    const before = this.held.length;
    do this.releaseHeld();
    while (this.held.length === before && performance.now() < end);
    return this.held.length !== before;
  }

  /** A block of class `cls` from its stack, else carved from a new chunk; -1 if memory is exhausted. */
  private allocClass(cls: number): number {
    const top = this.classTops[cls]!;
    if (top > 0) {
      this.classTops[cls] = top - 1;
      return this.classStacks[cls]![top - 1]!;
    }
    const size = 1 << (cls + MIN_CLASS_SHIFT);
    const chunk = Math.max(size, 64 * 1024);
    const alignTo = Math.max(size, PAGE);
    const start = Math.ceil(this.bump / alignTo) * alignTo;
    if (start + chunk > this.phys.byteLength) return -1;
    this.bump = start + chunk;
    this.blockShift.fill(cls + MIN_CLASS_SHIFT, start >>> DMA_PAGE_SHIFT, (start + chunk) >>> DMA_PAGE_SHIFT);
    // Keep the first block, push the rest onto the class stack.
    for (let o = start + chunk - size; o > start; o -= size) this.pushClass(cls, o);
    return start;
  }

  private pushClass(cls: number, offset: number): void {
    let stack = this.classStacks[cls]!;
    const top = this.classTops[cls]!;
    if (top === stack.length) {
      const bigger = new Uint32Array(stack.length * 2);
      bigger.set(stack);
      this.classStacks[cls] = stack = bigger;
    }
    stack[top] = offset;
    this.classTops[cls] = top + 1;
  }

  /** `pages` whole pages, from the free list of that size, else the bump region; -1 if memory is exhausted. */
  private allocPages(pages: number): number {
    const list = this.bigFree.get(pages);
    if (list !== undefined && list.length > 0) return list.pop()!;
    const start = Math.ceil(this.bump / PAGE) * PAGE;
    if (start + pages * PAGE > this.phys.byteLength) return -1;
    this.bump = start + pages * PAGE;
    this.blockShift.fill(DMA_LARGE, start >>> DMA_PAGE_SHIFT, (start >>> DMA_PAGE_SHIFT) + pages);
    return start;
  }

  /** Free `slot` and its children; deferred while borrowed. Bumps the generation (revokes). */
  free(slot: number): void {
    this.quarantined(this.freeTree, slot);
  }

  private freeTree(slot: number): void {
    if (this.borrows[slot]! > 0) {
      // A value held by one being freed (a struct field lent alone, freed with its struct or in a
      // reclaim) outlives its holder: it becomes a root of the holder's owner. Left naming the
      // holder, whose slot goes back to the free list, it would belong to (ownerOf, the IOMMU's
      // root walk) whoever is next given that slot: a driver's device could write it, and the
      // driver list it as a field of its own (validChild), while it is lent to someone else.
      if (this.parent[slot] !== NO_PARENT) {
        this.owner[slot] = this.ownerOf(slot);
        this.parent[slot] = NO_PARENT;
      }
      this.flags[slot] = PENDING_FREE;
      return;
    }
    if (this.hasChildren[this.type[slot]!] === 1) {
      this.forEachChild(slot, (c) => this.free(c));
      this.freeUnlisted(slot);
    }
    this.freeBlock(slot);
  }

  /**
   * Free the children of `slot` (being freed) that its memory no longer lists: a device can
   * overwrite a deque's header or ring entries, or a struct's RRef field, by DMA, and a child so
   * hidden from the walk above still names `slot` as its parent. Left so, once `slot` is reused
   * (by another domain, even) that child would be the new value's (ownerOf, the IOMMU's root walk,
   * validChild): a later ring entry naming it would hand it over. One indexOf over the parent
   * column (a builtin), only for values that can hold children.
   */
  private freeUnlisted(slot: number): void {
    const inUse = this.parent.subarray(0, this.highWater);
    for (let c = inUse.indexOf(slot); c >= 0; c = inUse.indexOf(slot, c + 1)) this.free(c);
  }

  // ---- DMA quarantine -------------------------------------------------------------------------

  /**
   * Domain `domain` drives a device whose DMA epoch `epoch` reads (bus.ts BUS.EPOCH: odd while the
   * device may be transferring, even while it is parked; 2 more at every DMA boundary). Until
   * unguardDma, a block anyone frees while that device is not parked is held back from reuse
   * until the device has passed two DMA boundaries since, or parked, or was detached. The IOMMU
   * checks a transfer before it starts, so a transfer checked just before the free may still be
   * copying into the block; after that it has ended, and every later transfer is checked against
   * the free slot. Anyone's free, not only the driver's: a driver may hand a buffer its device is
   * still filling to another domain, which frees it at once. (A real IOMMU's deferred flush
   * holds freed I/O addresses the same way.) The value is freed at once (handles revoked,
   * accounting exact); its bytes and its slot number wait (freeBlock). Packet and block paths
   * free nothing per request, so only frees off them (setup, the file system's metadata, a dead
   * domain's memory) pay this. An allocation that finds memory or slots exhausted waits for the
   * devices a while (awaitHeld).
   */
  guardDma(domain: number, epoch: DmaEpoch): void {
    this.dmaGuards.set(domain, epoch);
    this.setGuards();
  }

  /** The guard list from the map; the next releaseAged walks (its sum was over another set). */
  private setGuards(): void {
    this.guardList = [...this.dmaGuards.values()];
    this.heldWalkedAt = NaN;
  }

  /** `domain`'s device does no DMA any more (detached, acknowledged): nothing waits for it now. */
  unguardDma(domain: number): void {
    const guard = this.dmaGuards.get(domain);
    if (guard === undefined) return;
    this.dmaGuards.delete(domain);
    this.setGuards();
    for (const b of this.held) {
      const i = b.guards.indexOf(guard);
      if (i >= 0) { b.guards.splice(i, 1); b.epochs.splice(i, 1); }
    }
    this.releaseHeld();
  }

  /** Blocks held back in DMA quarantine now (tests, monitors). */
  get dmaHeld(): number {
    let n = 0;
    for (const b of this.held) n += b.blocks.length / HELD_WORDS;
    return n;
  }

  /**
   * Run `work(arg)` (a free or a reclaim; a method and its argument, so a free makes no closure);
   * the memory blocks it frees are quarantined together, if some device does DMA. A free inside
   * another (a tree's values) joins the outer one's batch.
   */
  private quarantined<T>(work: (this: ExchangeHeap, arg: number) => T, arg: number): T {
    if (this.guardList.length === 0 || this.freeing !== null) return work.call(this, arg);
    const blocks: number[] = (this.freeing = []);
    try {
      return work.call(this, arg);
    } finally {
      this.freeing = null;
      if (blocks.length !== 0) this.quarantine(blocks);
    }
  }

  /**
   * The values (cls, off, bytes, slot) of a free that just ended: held back as one batch, with
   * the epochs of the devices not parked now, or returned at once if every device is parked. The
   * epochs are read after the frees' owner stores (Atomics.store in freeBlock, a full fence): a
   * device's boundary after this read is followed by checks that see the slots free.
   */
  private quarantine(blocks: number[]): void {
    const guards: DmaEpoch[] = [];
    const epochs: number[] = [];
    for (const g of this.guardList) {
      const e = g();
      if ((e & 1) === 1) { guards.push(g); epochs.push(e); }
    }
    if (guards.length === 0) {
      this.returnHeld(blocks);
      return;
    }
    this.held.push({ blocks, guards, epochs });
  }

  /**
   * Return the held batches whose devices all passed two DMA boundaries since their free, or
   * parked. The list is walked only when some device's epoch moved since the last walk (the sum
   * of the epochs: a few loads, one a device), so allocations while devices run no boundary do
   * not walk it again and again.
   */
  private releaseAged(): void {
    let sum = 0;
    for (const g of this.guardList) sum = (sum + g()) | 0;
    if (sum === this.heldWalkedAt) return;
    this.heldWalkedAt = sum;
    this.releaseHeld();
  }

  private releaseHeld(): void {
    let kept = 0;
    for (const b of this.held) {
      if (b.guards.every((g, i) => pastTransfers(g(), b.epochs[i]!))) {
        this.returnHeld(b.blocks);
      } else {
        this.held[kept++] = b;
      }
    }
    this.held.length = kept;
  }

  /** Held values (quarantine's batches) back to the free lists: their memory and their slots. */
  private returnHeld(held: readonly number[]): void {
    for (let i = 0; i < held.length; i += HELD_WORDS) {
      this.returnBlock(held[i]!, held[i + 1]!, held[i + 2]!);
      this.freeSlots[this.nFreeSlots++] = held[i + 3]!;
    }
  }

  /**
   * Free `slot` (generation bumped: its handles are revoked) and give its memory and the slot back
   * to the free lists: `slot` holds nothing any more (what it held was freed or detached), or it
   * is a flat value. Inside a free while some device does DMA, both go to that free's batch
   * instead (quarantine): the slot too, so that no IOMMU lookup in flight, which reads a slot's
   * columns one after another, can see the slot given to another value halfway through (the new
   * owner over the old block, or over an old child's parent link).
   */
  private freeBlock(slot: number): void {
    const bytes = this.len[slot]!;
    const cls = this.cls[slot]!;
    const off = this.off[slot]!;
    Atomics.store(this.owner, slot, FREE);
    this.parent[slot] = NO_PARENT;
    this.flags[slot] = 0;
    this.gen[slot] = (this.gen[slot]! + 1) >>> 0;
    if (this.freeing !== null) {
      this.freeing.push(cls, off, bytes, slot);
      return;
    }
    this.returnBlock(cls, off, bytes);
    this.freeSlots[this.nFreeSlots++] = slot;
  }

  private returnBlock(cls: number, off: number, bytes: number): void {
    if (cls >= 0) return this.pushClass(cls, off);
    const pages = Math.ceil(bytes / PAGE);
    let list = this.bigFree.get(pages);
    if (list === undefined) this.bigFree.set(pages, (list = []));
    list.push(off);
  }

  isLive(slot: number, gen: number): boolean {
    return this.gen[slot] === gen && this.owner[slot] !== FREE;
  }

  isPendingFree(slot: number): boolean {
    return this.flags[slot] === PENDING_FREE;
  }

  // ---- ownership ------------------------------------------------------------------------------

  /**
   * Move `slot` (a root) and what it holds to `newOwner`, bumping generations so that every
   * existing handle to any of them is revoked. Returns the root's new generation.
   */
  move(slot: number, newOwner: number): number {
    const g = (this.gen[slot]! + 1) >>> 0;
    if (this.hasChildren[this.type[slot]!] === 1) {
      this.moveTree(slot, newOwner, true);
    } else {
      // A flat array (a packet buffer): the whole move is two stores (also made by rref.ts tryMoveFlat).
      this.gen[slot] = g;
      this.owner[slot] = newOwner;
    }
    return g;
  }

  /**
   * Gives `slot` and what it holds through struct fields to `to` and, where handles to them can
   * exist (`bump`), revokes those handles with a generation bump.
   *
   * Handles can exist to a root and to the RRef fields of a struct reachable through handles
   * (a field read mints one), but never to the elements of a deque: push revokes the pushed
   * handle (and its subtree's), a deque hands an element out only by pop, which takes it out
   * first, and a borrowed deque cannot pop. So a deque's elements are not visited at all: they
   * belong to whoever owns the deque (see ownerOf), and release() gives one its owner again when
   * it leaves. A move costs the number of struct fields on the way, not the deques' lengths: a
   * NetIo with two deques of 32 buffers moves in five stores. Child slot numbers read from memory
   * are validated as in forEachChild.
   */
  private moveTree(slot: number, to: number, bump: boolean): void {
    const gen = this.gen;
    const type = this.type;
    const hasChildren = this.hasChildren;
    const isDeque = this.isDeque;
    const owner = this.owner;
    if (bump) gen[slot] = (gen[slot]! + 1) >>> 0;
    owner[slot] = to;
    const t = type[slot]!;
    if (hasChildren[t] !== 1 || isDeque[t] === 1) return; // flat arrays and deques: done
    // A struct: its children that are flat arrays or deques (the common case: a NetIo's two
    // deques and two length arrays) are handled here, without a call; only a nested struct recurses.
    const base = this.off[slot]!;
    const offsets = this.childOffsetsOf[t]!;
    const parent = this.parent;
    // RRef fields are 4-aligned: read through the u32 view (the DataView over shared memory is
    // slower to read, and a NetIo's four fields are read on every move of it, twice per call).
    const u32 = this.u32;
    for (let k = 0; k < offsets.length; k++) {
      const c = u32[(base + offsets[k]!) >>> 2]! - 1;
      // A valid child names this slot as its parent. That one test also refuses a null field
      // (-1) and any other number memory may hold: a free slot, or one never used, names no
      // parent, and an index outside the table reads undefined.
      if (parent[c] !== slot) continue;
      const ct = type[c]!;
      if (hasChildren[ct] === 1 && isDeque[ct] !== 1) {
        this.moveTree(c, to, bump);
        continue;
      }
      if (bump) gen[c] = (gen[c]! + 1) >>> 0;
      owner[c] = to;
    }
  }

  /**
   * The owner of allocated slot `slot` as its root says: the owner of the value reached by
   * following parents (FREE if that chain ends at a free slot: a stray whose holder was freed).
   * Exact for anything a handle can name or a holder can list; see the owners invariant above.
   */
  ownerOf(slot: number): number {
    const parent = this.parent;
    let c = slot;
    for (let steps = 0; parent[c] !== NO_PARENT && steps < this.highWater; steps++) c = parent[c]!;
    return this.owner[c]!;
  }

  /** Make `child` (a root owned like `parentSlot`) a child of `parentSlot`; revokes its handles. */
  adopt(parentSlot: number, child: number): void {
    this.parent[child] = parentSlot;
    const to = this.ownerOf(parentSlot);
    if (this.hasChildren[this.type[child]!] === 1) {
      this.moveTree(child, to, true);
    } else {
      this.gen[child] = (this.gen[child]! + 1) >>> 0;
      this.owner[child] = to;
    }
  }

  /**
   * adopt() for the flat roots (values without children: byte arrays) `children[0 .. n)`, with one
   * owner lookup for them all: the kernel's return of a dead driver's ~2000 buffers to its shadow.
   */
  adoptFlat(parentSlot: number, children: readonly number[], n: number): void {
    const to = this.ownerOf(parentSlot);
    for (let i = 0; i < n; i++) {
      const c = children[i]!;
      this.parent[c] = parentSlot;
      this.gen[c] = (this.gen[c]! + 1) >>> 0;
      this.owner[c] = to;
    }
  }

  /**
   * Move deque element `child` into container `to`, which has the same owner (the bulk move
   * between two deques of one holder): only its parent changes. No generation bump is needed: no
   * handle to a deque element, or to anything inside it, can exist (see moveTree). The caller
   * validated `child` as an element of its current deque and checked the owners; `heir` is
   * heirAbove(its deque), read once per batch: an element leaving a marked holder takes its mark.
   */
  transfer(child: number, to: number, heir = -1): void {
    this.inheritMark(child, heir);
    this.parent[child] = to;
  }

  /**
   * Detach `child` from its parent: it becomes a root of its holder's owner (written again here,
   * with what it holds through struct fields: inside a deque it may have been stale); returns
   * its new generation.
   */
  release(child: number): number {
    // One walk up to the root: its owner is the new owner, and the nearest marked holder on the
    // way is the heir the child takes with it (entrust).
    const parent = this.parent;
    const marks = this.heirOf;
    let heir = -1;
    let c = child;
    for (let steps = 0; parent[c] !== NO_PARENT && steps < this.highWater; steps++) {
      c = parent[c]!;
      if (marks !== null && heir < 0 && this.flags[c] === ENTRUSTED) heir = marks[c]!;
    }
    const to = this.owner[c]!;
    this.inheritMark(child, heir);
    this.parent[child] = NO_PARENT;
    if (this.hasChildren[this.type[child]!] === 1) this.moveTree(child, to, false);
    else this.owner[child] = to;
    this.gen[child] = (this.gen[child]! + 1) >>> 0;
    return this.gen[child]!;
  }

  /**
   * `slot` is lent to a call; into a driver given IOMMU loan column `loans` (NO_LOANS: into any
   * other domain), whose device may then read it. endBorrow takes the same column.
   */
  beginBorrow(slot: number, loans = NO_LOANS): void {
    this.borrows[slot] = this.borrows[slot]! + 1;
    if (loans !== NO_LOANS) {
      this.loanColumns[loans]![slot]!++;
      this.loansOut[loans]!++;
    }
  }

  endBorrow(slot: number, loans = NO_LOANS): void {
    if (loans !== NO_LOANS) {
      this.loanColumns[loans]![slot]!--;
      this.loansOut[loans]!--;
    }
    this.borrows[slot] = this.borrows[slot]! - 1;
    if (this.borrows[slot] === 0 && this.flags[slot] === PENDING_FREE) this.free(slot);
  }

  /** How many loans to calls into the driver given loan column `loans` are in progress. */
  loansIn(loans: number): number {
    return this.loansOut[loans]!;
  }

  /**
   * The ring capacity of deque `slot` (at `base`) that a walk may use: a device may have written
   * the header by DMA (a handle cannot: rawLen), so the walk stays inside the allocation whatever
   * the header says.
   */
  private ringCap(slot: number, base: number): number {
    const room = (this.len[slot]! - DEQUE_HEADER) >>> 2;
    // Through the u32 view: a deque's header is 4-aligned, and this is read on every routed call.
    const capWord = this.u32[(base + 8) >>> 2]!;
    return capWord < room ? capWord : room;
  }

  /** How many elements a walk of deque `slot` (at `base`) may visit: its count, within ringCap. */
  private dequeLength(slot: number, base: number): number {
    const count = this.u32[(base + 4) >>> 2]!;
    const cap = this.ringCap(slot, base);
    return count < cap ? count : cap;
  }

  /** The ring capacity of deque `slot` (0 for a value of another kind). */
  capacityOf(slot: number): number {
    return this.isDeque[this.type[slot]!] === 1 ? this.ringCap(slot, this.off[slot]!) : 0;
  }

  /**
   * For struct `slot`, whose RRef fields `at` lists in pairs (index among the RRef fields, byte
   * offset; routes.ts DequeFields): the length of the deque each such field holds (0 for an empty
   * field or a value of another kind), as u32 to `into` at the field's index. What a route's hook
   * is told of a moved struct: read on every routed call, so through the u32 view (RRef fields and
   * deque headers are 4-aligned), not the DataView over shared memory.
   */
  dequeLengths(slot: number, at: Int32Array, into: DataView): void {
    const u32 = this.u32;
    const base = this.off[slot]!;
    for (let p = 0; p < at.length; p += 2) {
      const c = u32[(base + at[p + 1]!) >>> 2]! - 1;
      // validChild, but for the owner: a slot that names a parent is allocated.
      const len = c >= 0 && c < this.highWater && this.parent[c] === slot && this.isDeque[this.type[c]!] === 1 ? this.dequeLength(c, this.off[c]!) : 0;
      into.setUint32(at[p]! * 4, len, true);
    }
  }

  /** Calls `fn` for each child slot of `slot` (validated: a child must name `slot` as parent). */
  forEachChild(slot: number, fn: (child: number) => void): void {
    const t = this.type[slot]!;
    if (this.hasChildren[t] !== 1) return;
    const base = this.off[slot]!;
    if (this.isDeque[t] !== 1) {
      const offsets = this.childOffsetsOf[t]!;
      for (let k = 0; k < offsets.length; k++) {
        const c = this.dv.getUint32(base + offsets[k]!, true);
        if (c !== 0 && this.validChild(slot, c - 1)) fn(c - 1);
      }
      return;
    }
    this.walkRing(slot, base, fn, null);
  }

  /**
   * The elements of deque `slot` (at `base`), validated (validChild inline: a dead driver's
   * reclaim walks ~2000 elements, the first time interpreted, where each call counts): each
   * passed to `visit`, or, with `into`, appended there (heldBy: no call per element).
   */
  private walkRing(slot: number, base: number, visit: ((child: number) => void) | null, into: number[] | null): void {
    const head = this.dv.getUint32(base, true);
    const cap = this.ringCap(slot, base);
    const n = this.dequeLength(slot, base);
    const hw = this.highWater;
    const owner = this.owner;
    const parent = this.parent;
    for (let i = 0; i < n; i++) {
      const c = this.dv.getUint32(base + DEQUE_HEADER + ((head + i) % cap) * 4, true);
      if (c < hw && owner[c] !== FREE && parent[c] === slot) {
        if (into !== null) into.push(c);
        else visit!(c);
      }
    }
  }

  /**
   * A child slot number read from physical memory is trusted only if the slot table agrees:
   * the domain holding the memory may have had its own device write there by DMA (the IOMMU lets
   * a driver's device write what the driver owns), or a device started without an IOMMU anywhere.
   */
  validChild(parentSlot: number, child: number): boolean {
    return child >= 0 && child < this.highWater && this.owner[child] !== FREE && this.parent[child] === parentSlot;
  }

  /**
   * Per slot in use: 1 if its holder lists it (the parent it names is allocated and its memory
   * holds the slot number: validChild from the other side). One pass over the values in use and
   * the rings of their deques.
   */
  private listedChildren(): Uint8Array {
    const hw = this.highWater;
    const listed = new Uint8Array(hw);
    const mark = (c: number): void => {
      listed[c] = 1;
    };
    for (let p = 0; p < hw; p++) if (this.owner[p] !== FREE) this.forEachChild(p, mark);
    return listed;
  }

  /**
   * Per slot in use, its effective owner: a listed child's is its holder's, up to a root; a slot
   * its holder no longer lists (a stray: its entry was overwritten in the holder's memory) keeps
   * the owner it names; a free slot's is FREE. See the owners invariant.
   */
  private effectiveOwners(): Int32Array {
    const listed = this.listedChildren();
    const hw = this.highWater;
    const out = new Int32Array(hw);
    for (let s = 0; s < hw; s++) {
      let c = s;
      for (let steps = 0; listed[c] === 1 && steps < hw; steps++) c = this.parent[c]!;
      out[s] = this.owner[c]!;
    }
    return out;
  }

  // ---- entrusted values (shadow recovery) -------------------------------------------------------

  /** Set the kernel's inheritance rule (once). */
  setInheritance(rule: Inheritance): void {
    this.inheritance = rule;
  }

  /**
   * Mark allocated slot `slot` as entrusted by `heir`, and with it everything it holds while it
   * holds it: should a domain die holding them, they go to `heir` (if the Inheritance allows)
   * instead of being freed. The caller (the kernel) checked that `heir` owns the value.
   * O(1): only `slot` is marked. What leaves a marked holder (release, transfer) takes the mark of
   * its nearest marked holder with it, so a value taken out and kept elsewhere is covered as if it
   * had been marked at once; what stays inside goes back with its holder (reclaim, settle).
   * If `slot` is a deque and `order` an allocation (>= 0), the physical addresses of its elements
   * are written there as u32 in deque order (0 for a corrupt entry): what lets a shadow find each
   * request again after a crash without touching them one by one. With `into` instead (the
   * kernel's own list, for a routed call: src/kernel/routes.ts, with room for the deque's
   * capacity), they are written there the same way. Returns how many.
   */
  entrust(slot: number, heir: number, order = -1, into: DataView | null = null): number {
    // Kept small enough for V8 to inline into a routed call (at most 460 bytes of bytecode): the
    // listing of a deque's elements is a function of its own.
    if (this.heirOf === null) this.heirOf = new Int32Array(this.maxSlots);
    if (!this.markEntrusted(slot, heir) || (order < 0 && into === null) || this.isDeque[this.type[slot]!] !== 1) return 0;
    return this.listElements(slot, order, into);
  }

  /** entrust's listing of deque `slot`'s element addresses into allocation `order` or `into`; returns how many. */
  private listElements(slot: number, order: number, into: DataView | null): number {
    const base = this.off[slot]!;
    const head = this.dv.getUint32(base, true);
    const cap = this.ringCap(slot, base);
    const listed = this.dequeLength(slot, base);
    if (order >= 0 && listed * 4 > this.len[order]!) {
      throw new HeapError('EINVAL', `entrust: ${listed} element addresses do not fit in ${this.len[order]} bytes`);
    }
    // Child slot numbers read from memory are validated as in moveTree (a child names its holder).
    const out = into ?? this.dv;
    const outAt = into !== null ? 0 : this.off[order]!;
    const ring = (base + DEQUE_HEADER) >>> 2;
    const hw = this.highWater;
    for (let k = 0, at = head < cap ? head : 0; k < listed; k++, at = at + 1 === cap ? 0 : at + 1) {
      const c = this.u32[ring + at]!;
      out.setUint32(outAt + k * 4, c < hw && this.parent[c] === slot ? this.off[c]! : 0, true);
    }
    return listed;
  }

  /** The heir of the nearest marked value among `slot` and its holders (-1: none): see transfer. */
  heirAbove(slot: number): number {
    const marks = this.heirOf;
    if (marks === null) return -1;
    const parent = this.parent;
    for (let c = slot, steps = 0; c !== NO_PARENT && steps <= this.highWater; c = parent[c]!, steps++) {
      if (this.flags[c] === ENTRUSTED) return marks[c]!;
    }
    return -1;
  }

  /** `child`, leaving a holder under `heir`'s mark (-1: none), takes that mark unless it has its own. */
  private inheritMark(child: number, heir: number): void {
    if (heir >= 0 && this.flags[child] !== ENTRUSTED) this.markEntrusted(child, heir);
  }

  /** Mark slot `s` as entrusted by `heir`; false if it is being freed. */
  private markEntrusted(s: number, heir: number): boolean {
    if (this.flags[s] === PENDING_FREE) return false; // being freed: nothing to give back
    // Marked already (a NetIo routed again and again keeps its mark): no store.
    if (this.flags[s] === ENTRUSTED && this.heirOf![s] === heir) return true;
    this.flags[s] = ENTRUSTED;
    this.heirOf![s] = heir;
    return true;
  }

  /**
   * Is `slot` entrusted — marked, or held by a marked value — and by whom (-1: not entrusted)?
   * For tests and monitors.
   */
  entrustedTo(slot: number): number {
    return this.owner[slot] === FREE ? -1 : this.heirAbove(slot);
  }

  // ---- accounting -----------------------------------------------------------------------------

  /** Bytes and slots `owner` holds now, elements of its deques included (see effectiveOwners). */
  usage(owner: number): { bytes: number; slots: number } {
    return this.usageByOwner().get(owner) ?? { bytes: 0, slots: 0 };
  }

  /** usage() of every owner holding something, in one pass (what a domain listing needs). */
  usageByOwner(): Map<number, { bytes: number; slots: number }> {
    const out = new Map<number, { bytes: number; slots: number }>();
    const own = this.effectiveOwners();
    const len = this.len;
    for (let s = 0; s < this.highWater; s++) {
      const o = own[s]!;
      if (o === FREE) continue;
      let u = out.get(o);
      if (u === undefined) out.set(o, (u = { bytes: 0, slots: 0 }));
      u.bytes += len[s]!;
      u.slots++;
    }
    return out;
  }

  /** Bytes and slots held by anyone (kernel included). */
  totalUsage(): { bytes: number; slots: number } {
    let bytes = 0;
    let slots = 0;
    const own = this.owner;
    const len = this.len;
    for (let s = 0; s < this.highWater; s++) {
      if (own[s] !== FREE) {
        bytes += len[s]!;
        slots++;
      }
    }
    return { bytes, slots };
  }

  /**
   * Free what dead domain `dead` holds: each of its roots, with what it holds (the owner column is
   * exact for a root, see the owners invariant), and the strays that were its; except that an
   * entrusted value goes back to its heir whole, and one lent to a call in progress is freed when
   * the borrow ends (settle). Returns how many roots and strays were freed or scheduled.
   *
   * Work in proportion to what the dead domain held, not to the whole slot table: its roots are
   * found by indexOf (a builtin: fast the first time too, when V8 still interprets this code — a
   * process's first driver death), and only what they hold is walked. One pass over the table is
   * left, for strays: children whose slot numbers were overwritten in their holder's memory, so
   * that no walk reaches them. It frees those whose holder is now free (one this reclaim freed:
   * a child its holder still listed was settled with it) and those whose owner column names the
   * dead domain while their live holder does not list them (a stray naming it is its own root,
   * settled like one: an entrusted one goes back). A child its live holder lists is that holder's,
   * whatever (stale) owner it names.
   */
  reclaim(dead: number): number {
    return this.quarantined(this.reclaimRoots, dead);
  }

  private reclaimRoots(dead: number): number {
    const hw = this.highWater; // no slot is allocated below, so this stays the table's end
    const owner = this.owner;
    const parent = this.parent;
    const flags = this.flags;
    const borrows = this.borrows;
    const g: Gifts = { dead, asked: -1, allowed: false, given: new Map(), list: [] };
    let n = 0;
    // Collected before any is settled: settling moves values to heirs (and so changes owners).
    const roots: number[] = [];
    const inUse = owner.subarray(0, hw);
    for (let s = inUse.indexOf(dead); s >= 0; s = inUse.indexOf(dead, s + 1)) {
      if (parent[s] === NO_PARENT && flags[s] !== PENDING_FREE) roots.push(s);
    }
    for (const r of roots) n += this.settle(r, g);
    // What each live holder met below lists (heldBy), worked out once per holder: a live deque
    // can hold thousands of elements naming the dead domain (it allocated them and handed them
    // over; an element's owner column is not rewritten while it stays in a deque), and walking the
    // holder again for each of them made this quadratic.
    const listedBy = new Map<number, Set<number>>();
    const lists = (p: number, c: number): boolean => {
      let listed = listedBy.get(p);
      if (listed === undefined) listedBy.set(p, (listed = new Set(this.heldBy(p))));
      return listed.has(c);
    };
    for (let s = 0; s < hw; s++) {
      const p = parent[s]!;
      if (p === NO_PARENT || owner[s] === FREE || flags[s] === PENDING_FREE || borrows[s] !== 0) continue;
      const named = owner[s] === dead;
      const stray = owner[p] === FREE || (named && !lists(p, s));
      if (!stray) continue;
      this.parent[s] = NO_PARENT;
      if (named) n += this.settle(s, g);
      else {
        this.free(s);
        n++;
      }
    }
    for (const [heir, given] of g.given) this.inheritance!.inherited(dead, heir, given);
    return n;
  }

  /**
   * What becomes of value `s` of a dead domain's (a root of its, a stray naming it, or a value
   * one of them holds): lent to a call in progress, it is freed when the borrow ends, with what it
   * holds then; entrusted to an heir the inheritance allows, it goes to that heir whole (detached
   * from its holder, moved: generations bumped, so the dead domain's handles stay revoked);
   * otherwise what it holds is settled in turn, then it is freed. Returns 1 if it was freed or
   * scheduled, 0 if it went back.
   */
  private settle(s: number, g: Gifts): number {
    if (this.borrows[s] !== 0) {
      this.free(s);
      return 1;
    }
    if (this.flags[s] === ENTRUSTED && this.mayGive(g, this.heirOf![s]!)) {
      this.give(s, g);
      return 0;
    }
    if (this.hasChildren[this.type[s]!] === 1) {
      const held = this.heldBy(s);
      const { borrows, flags, type, hasChildren } = this;
      const heirOf = this.heirOf;
      for (let i = 0; i < held.length; i++) {
        const c = held[i]!;
        // Listed twice (a deque's ring entry written by the holder's device names an element
        // again): settled already, it no longer names `s`. Settled twice, its slot would go back
        // to the free list twice and be handed to two values at once.
        if (this.parent[c] !== s) continue;
        // A flat value entrusted to the heir last asked about, and allowed, goes back without a
        // call: settle's and give's work written out (a dead driver's rings hold thousands, and
        // this runs interpreted at a process's first driver death, where each call counts).
        if (heirOf !== null && flags[c] === ENTRUSTED && heirOf[c] === g.asked && g.allowed && borrows[c] === 0 && hasChildren[type[c]!] !== 1) {
          this.parent[c] = NO_PARENT;
          this.gen[c] = (this.gen[c]! + 1) >>> 0;
          this.owner[c] = g.asked;
          g.list.push(c);
        } else this.settle(c, g);
      }
    }
    this.freeBlock(s);
    return 1;
  }

  /**
   * Whether `heir` may inherit from the dead domain of `g` (asked once per run of one heir); if it
   * may, `g.list` is then its list of values given.
   */
  private mayGive(g: Gifts, heir: number): boolean {
    if (heir !== g.asked) {
      g.asked = heir;
      g.allowed = this.inheritance !== null && this.inheritance.mayInherit(g.dead, heir);
      if (g.allowed) {
        const had = g.given.get(heir);
        if (had === undefined) g.given.set(heir, (g.list = []));
        else g.list = had;
      }
    }
    return g.allowed;
  }

  /** Entrusted value `s` to its heir (mayGive said it may): detached (its holder is being freed), moved, listed. */
  private give(s: number, g: Gifts): void {
    this.parent[s] = NO_PARENT;
    this.move(s, g.asked);
    g.list.push(s);
  }

  /** The children `slot` holds (validated, as forEachChild does), in order. */
  private heldBy(slot: number): number[] {
    const held: number[] = [];
    if (this.isDeque[this.type[slot]!] === 1) this.walkRing(slot, this.off[slot]!, null, held);
    else this.forEachChild(slot, (c) => held.push(c));
    return held;
  }
}

/**
 * A reclaim's gifts in progress (settle): the dead domain, the heir last asked about and its
 * answer, the values given so far per heir, and (while `allowed`) the asked heir's list of them.
 */
interface Gifts {
  readonly dead: number;
  asked: number;
  allowed: boolean;
  readonly given: Map<number, number[]>;
  list: number[];
}

function classOf(bytes: number): number {
  const shift = Math.max(MIN_CLASS_SHIFT, 32 - Math.clz32(bytes - 1));
  return shift - MIN_CLASS_SHIFT;
}
