/**
 * RRef handles (trusted): the objects domains hold to reach exchange-heap allocations.
 *
 * A handle names (slot, generation) in private fields that no domain code can read or forge; it
 * is valid while the slot's generation equals its own. Moves, frees and domain death bump the
 * generation, so a moved or freed handle — and any handle to a child taken through it — stops
 * working at once. Every access is bounds-checked and generation-checked; writes also require a
 * writable (not borrowed-in) handle whose allocation is not currently lent out.
 *
 * An ownership violation (use after move, a foreign or revoked handle) is a panic of the domain
 * that held the handle: the kit reports it to the kernel through `onViolation`, then throws.
 *
 * No caller code runs between a check and the access it guards: offsets, lengths and stored
 * values must be numbers (a valueOf could otherwise answer the bounds check with one offset and
 * the store with another, or free the buffer first), a caller's array or DataView is reached only
 * through the intrinsics after a brand check (a look-alike's `set` would otherwise be handed a view
 * of physical memory), and what a caller's getters yield is read before the address is computed.
 *
 * No domain can construct a handle (the constructor demands a module-private token), and a
 * handle serves only the kit that minted it: every kit (one per exchange heap: a kernel, or a
 * worker domain's view) checks that a handle it is given carries its own state.
 *
 * Performance invariants (the packet path mints and checks handles per frame):
 *  - exactly one handle class per realm, Handle, shared by every kit and every kind of value
 *    (arrays, bytes, deques, structs): each layout field name is one accessor on Handle.prototype,
 *    dispatched on the slot's type id through the kit's tables (on a handle whose layout lacks the
 *    field it reads undefined and refuses a write, as a struct of another layout does). Each site
 *    that reads a handle's private fields therefore sees one hidden class and stays a monomorphic
 *    inline cache. Classes per layout, or per kit, made those sites megamorphic as soon as a few
 *    layouts or kernels had been used in the process: every handle access then paid a stub-cache
 *    lookup per private field. And not a subclass for structs: constructing a derived class
 *    measured ~4x the cost of a base class under lockdown (~15 ns more per struct handle minted,
 *    and a NetIo round trip through the NIC shadow mints four);
 *  - a handle has five private fields (kit state, slot, generation, holder * 2 + read-only, type
 *    id * 2 + child), all set in its constructor; minting one is one monomorphic `new Handle`;
 *  - Handle and its prototype are hardened when the first handle is minted (kit.mint, which every
 *    allocation goes through: no code outside this module can reach them before); a layout
 *    registered after that may only use field names already known;
 *  - a writable handle is only ever minted for the slot's owner (mint refuses otherwise), and a
 *    slot's owner, type and parent change only with its generation where a handle can name it,
 *    so a handle whose generation is current knows them from its mint: the proxies' fast moves
 *    (tryMove, tryMoveFlat) read only the generation and borrow columns of the slot table (each
 *    column read costs ~1 ns per move). They are small and never throw: a refusal changes
 *    nothing, and the proxy then takes moveTyped, which checks the slot table again and reports
 *    what is wrong;
 *  - the deque bulk operations (moveFrom, moveFromSized, readEach, writeEach, extents) do per
 *    element only what that element needs: moveFrom walks for a cycle only when the source deque
 *    is among the destination's ancestors (otherwise no element can contain the destination),
 *    moveFromSized moves only scalar arrays (which contain nothing) and so never walks, and a value
 *    stored through a DataView is never a merge of a u32 column and a constant (`c ? off[s] : 0`
 *    measured ~3x slower per element than one store on each branch: 14 against 4.5 ns).
 */
import './lockdown.js';
import { DEQUE_HEADER, ExchangeHeap, MAX_TYPES, NO_PARENT, TypeKind, KERNEL_OWNER } from './heap.js';
import { HANDLE_MEMBERS, SCALAR_SIZE, type LayoutSpec, type ScalarKind } from './layout.js';

export type { FieldSpec, LayoutSpec, ScalarKind } from './layout.js';

const TOKEN = Symbol('rref-token');

export class HandleError extends Error {
  constructor(
    readonly code: 'EREVOKED' | 'EBORROWED' | 'EREADONLY' | 'ERANGE' | 'EINVAL' | 'EFULL' | 'ERAW',
    message: string,
  ) {
    super(message);
    this.name = 'HandleError';
  }
}

/**
 * What the kit uses of an exchange heap. The kernel passes its ExchangeHeap; a worker domain's
 * thread passes a view of the shared slot table whose changes are system calls to the kernel
 * thread (worker-host.ts). Being a named subset of ExchangeHeap, a kit that starts using another
 * heap member fails to compile until both heaps provide it.
 */
export type HandleHeap = Pick<
  ExchangeHeap,
  | 'phys' | 'u8' | 'dv'
  | 'owner' | 'gen' | 'borrows' | 'type' | 'off' | 'len' | 'rawLen' | 'parent' | 'hasChildren'
  | 'registerType' | 'typeInfo' | 'validChild'
  | 'alloc' | 'free' | 'move' | 'adopt' | 'adoptFlat' | 'release' | 'transfer' | 'heirAbove'
>;

/** A kit's state as its holders see it: opaque outside this module. */
export type KitRef = { readonly __kit: unique symbol };
export type FastMove = (kit: KitRef, h: unknown, typeId: number, from: number, to: number) => object | null;

/** Kernel-only operations on handles (never handed to domains). */
export interface HandleKit<H extends HandleHeap = ExchangeHeap> {
  readonly heap: H;
  /** Is `v` a handle of this kit (brand check, no throw)? */
  isHandle(v: unknown): boolean;
  slotOf(h: object): number;
  /**
   * slotOf without its check that `h` is this kit's: for a handle the caller knows is (one this
   * kit's move just returned, or that isHandle accepted) — a routed call takes two per call. An
   * object that is no handle at all still throws (a TypeError).
   */
  slotOfOwn(h: object): number;
  /** The generation `h` was minted for (-1 once revoked): current only while `h` is valid. */
  genOf(h: object): number;
  /** The domain id `h` was minted for, and whether it is a read-only (borrowed-in) handle. */
  holderOf(h: object): number;
  isReadOnly(h: object): boolean;
  /** Throws unless `h` is a valid, writable, not-lent, root handle held by `holder`. */
  checkMovable(h: object, holder: number): number;
  /** Revoke `h` (a borrowed-in handle after its call returns). */
  revoke(h: object): void;
  /** A fresh handle for `slot` held by `holder` (read-only when `ro`). */
  mint(slot: number, holder: number, ro: boolean): object;
  /**
   * Append roots `slots`, values without children owned by `holder`, in order to `holder`'s deque
   * `deque` (all checked by the caller, the kernel), as RRefDeque.push would each but with no
   * handle to any, as room allows; returns how many it took (a prefix of `slots`), 0 when the
   * deque is lent to a call in progress (push refuses to change it then). A corrupt deque header
   * is `holder`'s violation.
   */
  appendRoots(deque: number, slots: readonly number[], holder: number): number;
  /** Move root `h` (held by `from`) to `to`; returns the new holder's fresh handle. */
  moveTo(h: object, from: number, to: number): object;
  /**
   * The proxies' move: like moveTo, but returns null (moving nothing) when `h` is not a handle of
   * type `typeId`, so one brand check serves both the type test and the move.
   */
  moveTyped(h: unknown, typeId: number, from: number, to: number): object | null;
  /**
   * The proxies' fast move, `fastMove(kit.state, h, typeId, from, to)`: moveTyped's move when
   * everything is in order; otherwise null, having changed and reported nothing (the caller then
   * takes moveTyped, which finds and reports what is wrong). Never throws. A plain function of
   * this kit's (opaque) state, with no closure in between: the JIT's inlining budget counts every
   * level of calls it inlines into a generated proxy.
   */
  readonly fastMove: FastMove;
  /** fastMove for RRefArray types (byte buffers): no tree walk to consider. */
  readonly fastMoveFlat: FastMove;
  readonly state: KitRef;
  /** Byte array type id (RRefArray<u8>). */
  readonly bytesType: number;
  arrayType(kind: ScalarKind): number;
  readonly dequeType: number;
  registerLayout(spec: LayoutSpec): number;
  layoutType(name: string): number | undefined;
  /** Allocate and return a handle for `owner`. */
  allocBytes(owner: number, bytes: number, align?: number): object;
  allocArray(owner: number, kind: ScalarKind, count: number, align?: number): object;
  allocStruct(owner: number, name: string): object;
  allocDeque(owner: number, capacity: number): object;
}

// Element-kind index per type id: scalar kinds 0..10 (KINDS order), then these.
const KIND_ARRAY = -1; // "any scalar array" in kind()
const KIND_STRUCT = 100;
const KIND_DEQUE = 101;
// Field codes of struct fields beyond the scalar kinds (0..10).
const FIELD_RREF = 20;
const FIELD_ARRAY = 21;

/** Scalar kinds in the order of their kind index (the kits' tables and field codes). */
const KINDS: readonly ScalarKind[] = ['u8', 'u16', 'u32', 'i8', 'i16', 'i32', 'f32', 'f64', 'u64', 'i64', 'bool'];

/**
 * One struct field of one layout, as the shared accessor of its name finds it for the slot's
 * type: the byte offset, the field code (a scalar kind index, FIELD_RREF or FIELD_ARRAY) and, for
 * fixed arrays, the element kind index and count.
 */
interface FieldImpl {
  readonly name: string;
  readonly offset: number;
  readonly code: number;
  readonly elem: number;
  readonly count: number;
  /** For an RRef field: the heap type name of what it may hold (FieldSpec.holds); '' for any. */
  readonly holds: string;
}

/** The heap type name of a FieldSpec.holds type key ('deque', 'array:<elem>', 'struct:<layout>'). */
const typeNameOfKey = (key: string | undefined): string =>
  key === undefined ? '' : key === 'deque' ? 'RRefDeque' : key.startsWith('array:') ? `RRefArray<${key.slice(6)}>` : key.slice(7);

/** What a handle reaches through its kit field: one heap's tables (one hidden class for all kits). */
class KitState {
  readonly gen: Uint32Array;
  readonly off: Uint32Array;
  readonly len: Uint32Array;
  /** Bytes a handle may write raw (ExchangeHeap.rawLen): 0 where the memory names child slots. */
  readonly rawLen: Uint32Array;
  readonly borrows: Int32Array;
  readonly owner: Int32Array;
  readonly parent: Int32Array;
  readonly type: Int32Array;
  readonly hasChildren: Uint8Array;
  readonly dv: DataView;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  /** Physical memory itself: read/write copy through short-lived views of it (never handed out). */
  readonly phys: SharedArrayBuffer;
  /** Whether the heap is the kernel's (false in a worker domain's view of it, which moves nothing itself). */
  readonly moves: boolean;
  /** Per type id: element-kind index. */
  readonly elemKindOf: number[] = [];
  /**
   * Per type id: 1 for RRefArray types (no children, not a struct: tryMoveFlat's case, and the
   * scalar-array test of the deque batch accessors, per element: a typed-array load).
   */
  readonly flatArray = new Uint8Array(MAX_TYPES);
  /** Per element-kind index: element size in bytes. */
  readonly elemSize: number[] = KINDS.map((k) => SCALAR_SIZE[k]);
  /** Per field-name index (fieldIndex), per type id: the field of that layout. */
  readonly fields: (FieldImpl | undefined)[][] = [];
  constructor(
    readonly heap: HandleHeap,
    readonly onViolation: (holder: number, err: HandleError) => void,
  ) {
    this.gen = heap.gen;
    this.off = heap.off;
    this.len = heap.len;
    this.rawLen = heap.rawLen;
    this.borrows = heap.borrows;
    this.owner = heap.owner;
    this.parent = heap.parent;
    this.type = heap.type;
    this.hasChildren = heap.hasChildren;
    this.dv = heap.dv;
    this.u8 = heap.u8;
    this.phys = heap.phys;
    this.i32 = new Int32Array(heap.phys);
    this.moves = heap instanceof ExchangeHeap;
  }
}

const violation = (k: KitState, holder: number, code: HandleError['code'], msg: string): never => {
  const err = new HandleError(code, msg);
  if (holder !== KERNEL_OWNER) k.onViolation(holder, err);
  throw err;
};
const revoked = (k: KitState, holder: number, s: number): never =>
  violation(k, holder, 'EREVOKED', `use of a revoked RRef (slot ${s}): it was moved, dropped, or its owner died`);

let slotOf!: (h: Handle) => number;
let genOf!: (h: Handle) => number;
let holderOf!: (h: Handle) => number;
let isReadOnly!: (h: Handle) => boolean;
let revoke!: (h: Handle) => void;
/** Is `v` a handle of kit `k` (brand and kit check, no throw)? */
let isHandleOf!: (k: KitState, v: unknown) => boolean;
/** The slot of `h` if `holder` may move it (a valid, writable, not lent, root handle it owns). */
let movableSlot!: (k: KitState, h: Handle, holder: number) => number;
/** The proxies' move (see HandleKit.moveTyped). */
let moveTyped!: (k: KitState, v: unknown, typeId: number, from: number, to: number) => Handle | null;
/** The proxies' fast moves (see HandleKit.fastMove and fastMoveFlat). */
let tryMove!: (k: KitState, v: unknown, typeId: number, from: number, to: number) => Handle | null;
let tryMoveFlat!: (k: KitState, v: unknown, typeId: number, from: number, to: number) => Handle | null;

/**
 * Private state: the kit, the slot, the generation the handle is valid for, `m` = holder * 2 + ro
 * (the holder domain and whether the handle is read-only, in one field), and `t` = type id * 2 +
 * child (whether the slot is inside another allocation): the slot's type and parent at mint time,
 * which stay what they were for as long as the generation does (see `fastSlot`).
 */
class Handle {
  #k: KitState;
  #s: number;
  #g: number;
  #m: number;
  #t: number;
  constructor(token: symbol, k: KitState, s: number, g: number, m: number, t: number) {
    if (token !== TOKEN) throw new TypeError('RRef handles are created by the kernel only');
    this.#k = k;
    this.#s = s;
    this.#g = g;
    this.#m = m;
    this.#t = t;
  }
  static {
    slotOf = (h) => h.#s;
    genOf = (h) => h.#g;
    holderOf = (h) => h.#m >>> 1;
    isReadOnly = (h) => (h.#m & 1) === 1;
    revoke = (h) => {
      h.#g = -1;
    };
    isHandleOf = (k, v) => typeof v === 'object' && v !== null && #k in v && v.#k === k;
    movableSlot = (k, h, holder) => {
      const s = h.#s;
      // The common case in one test; movableWhy finds (and reports) what is wrong otherwise.
      if (k.gen[s] === h.#g && h.#m === holder * 2 && k.borrows[s] === 0 && k.parent[s] === NO_PARENT && k.owner[s] === holder) return s;
      return movableWhy(k, h, holder);
    };
    moveTyped = (k, v, typeId, from, to) => {
      if (typeof v !== 'object' || v === null || !(#k in v) || v.#k !== k || k.type[v.#s] !== typeId) return null;
      const s = movableSlot(k, v, from);
      return mintAs(k, s, k.heap.move(s, to), to * 2, ROOT);
    };
    // The fast moves: movableSlot's test and moveTyped's move in small functions with no throw,
    // so that the JIT inlines all of it into every generated proxy method (two moves per round
    // trip). Of the slot table they read only the generation and the borrow count (each column
    // read costs): the rest of movableSlot's test holds for as long as the generation does, so
    // the handle carries it from its mint. The owner is implied by the holder check: a writable
    // handle is only minted for the slot's owner (see `mint`). The owner, type and parent of a
    // slot change only together with its generation (move, adopt, release, free, reclaim; alloc
    // reuses a slot whose generation its free bumped), except for deque elements, which no handle
    // names: transfer re-parents them and their owner column is not kept (see ExchangeHeap.ownerOf).
    const fastSlot = (k: KitState, v: unknown, typeId: number, from: number): number => {
      if (typeof v !== 'object' || v === null || !(#k in v) || v.#k !== k) return -1;
      const s = v.#s;
      if (v.#t !== typeId * 2 || k.gen[s] !== v.#g || v.#m !== from * 2 || k.borrows[s] !== 0 || !k.moves) return -1;
      return s;
    };
    tryMove = (k, v, typeId, from, to) => {
      const s = fastSlot(k, v, typeId, from);
      // The slot's type is typeId (fastSlot checked the handle's): mintAs would read it again.
      return s < 0 ? null : new Handle(TOKEN, k, s, k.heap.move(s, to), to * 2, typeId * 2);
    };
    tryMoveFlat = (k, v, typeId, from, to) => {
      const s = fastSlot(k, v, typeId, from);
      if (s < 0) return null;
      if (k.flatArray[typeId] !== 1) return mintAs(k, s, k.heap.move(s, to), to * 2, ROOT); // not an array type after all
      // heap.move's flat case (two stores), without the call.
      const next = ((v as Handle).#g + 1) >>> 0;
      k.gen[s] = next;
      k.owner[s] = to;
      return new Handle(TOKEN, k, s, next, to * 2, typeId * 2);
    };
  }
  /** Base byte offset if the handle may read; throws (and reports) otherwise. */
  protected r(): number {
    const k = this.#k;
    const s = this.#s;
    if (k.gen[s] !== this.#g) return revoked(k, this.#m >>> 1, s);
    return k.off[s]!;
  }
  /** Base byte offset if the handle may write. */
  protected w(): number {
    const k = this.#k;
    const s = this.#s;
    if (k.gen[s] !== this.#g || (this.#m & 1) === 1 || k.borrows[s] !== 0) return this.unwritable();
    return k.off[s]!;
  }
  /** Why this handle may not write (the cold half of w()); always throws. */
  protected unwritable(): never {
    const k = this.#k;
    const s = this.#s;
    const holder = this.#m >>> 1;
    if (k.gen[s] !== this.#g) return revoked(k, holder, s);
    if ((this.#m & 1) === 1) return violation(k, holder, 'EREADONLY', `write through a borrowed (read-only) RRef (slot ${s})`);
    return violation(k, holder, 'EBORROWED', `write to an RRef that is lent to a call in progress (slot ${s})`);
  }
  /**
   * Address of bytes [o, o+n) if the handle may read them (r() and a bounds check in one). One
   * test and one cold call: ra and wa are inlined into every accessor, and through those into
   * the proxies' callers, where the JIT's inlining budget is counted in bytecode.
   */
  protected ra(o: number, n: number): number {
    const k = this.#k;
    const s = this.#s;
    if (k.gen[s] !== this.#g || typeof o !== 'number' || typeof n !== 'number' || !(o >= 0 && o + n <= k.len[s]!)) return this.refuse(o, n, false);
    return k.off[s]! + o;
  }
  /**
   * Address of bytes [o, o+n) if the handle may write them (w() and a bounds check in one). The
   * bound is rawLen, not len: a struct with RRef fields and a deque are written only through the
   * kit (field assignment, push, pop), never raw (see ExchangeHeap.rawLen).
   */
  protected wa(o: number, n: number): number {
    const k = this.#k;
    const s = this.#s;
    if (k.gen[s] !== this.#g || (this.#m & 1) === 1 || k.borrows[s] !== 0 || typeof o !== 'number' || typeof n !== 'number' || !(o >= 0 && o + n <= k.rawLen[s]!)) {
      return this.refuse(o, n, true);
    }
    return k.off[s]! + o;
  }
  /** Why the access [o, o+n) (a write if `write`) is refused (the cold half of ra and wa); throws. */
  protected refuse(o: number, n: number, write: boolean): never {
    if (write) this.w();
    else this.r();
    const holder = this.#m >>> 1;
    if (typeof o !== 'number' || typeof n !== 'number') {
      return violation(this.#k, holder, 'EINVAL', `RRef access: offset and length must be numbers, got ${typeof o} and ${typeof n}`);
    }
    const k = this.#k;
    if (write && k.rawLen[this.#s] !== k.len[this.#s] && o >= 0 && o + n <= k.len[this.#s]!) {
      const what = k.heap.typeInfo(k.type[this.#s]!).name;
      return violation(k, holder, 'ERAW', `raw write into ${what} (slot ${this.#s}): its memory names the RRefs it holds, which change only through its fields, push and pop`);
    }
    return violation(this.#k, holder, 'ERANGE', `RRef access at offset ${o} of ${n} bytes is outside its ${this.#k.len[this.#s]} bytes`);
  }
  get valid(): boolean {
    return this.#k.gen[this.#s] === this.#g;
  }
  get addr(): number {
    return this.r();
  }
  get byteLength(): number {
    this.r();
    return this.#k.len[this.#s]!;
  }

  getU8(o: number): number {
    return this.#k.u8[this.ra(o, 1)]!;
  }
  setU8(o: number, v: number): void {
    this.#k.dv.setUint8(this.wa(o, 1), num(v));
  }
  getU16(o: number): number {
    return this.#k.dv.getUint16(this.ra(o, 2), true);
  }
  setU16(o: number, v: number): void {
    this.#k.dv.setUint16(this.wa(o, 2), num(v), true);
  }
  getU32(o: number): number {
    return this.#k.dv.getUint32(this.ra(o, 4), true);
  }
  setU32(o: number, v: number): void {
    this.#k.dv.setUint32(this.wa(o, 4), num(v), true);
  }
  loadU32(o: number): number {
    const a = this.ra(o, 4);
    if (a % 4 !== 0) throw new HandleError('EINVAL', `atomic access at unaligned offset ${o}`);
    return Atomics.load(this.#k.i32, a >> 2) >>> 0;
  }
  storeU32(o: number, v: number): void {
    num(v);
    const a = this.wa(o, 4);
    if (a % 4 !== 0) throw new HandleError('EINVAL', `atomic access at unaligned offset ${o}`);
    Atomics.store(this.#k.i32, a >> 2, v | 0);
  }
  getU64(o: number): number {
    const a = this.ra(o, 8);
    const dv = this.#k.dv;
    return dv.getUint32(a, true) + dv.getUint32(a + 4, true) * 0x1_0000_0000;
  }
  setU64(o: number, v: number): void {
    num(v);
    const a = this.wa(o, 8);
    const dv = this.#k.dv;
    dv.setUint32(a, v % 0x1_0000_0000, true);
    dv.setUint32(a + 4, Math.floor(v / 0x1_0000_0000), true);
  }
  // read and write take the caller's array only if it is a genuine Uint8Array, and reach it only
  // through the intrinsics (see callerBytes): a look-alike's `set`, a getter or a Proxy trap would
  // otherwise run caller code between the check and the copy, or be handed a view of physical
  // memory itself.
  read(o: number, dst: Uint8Array, dstOff = 0, n?: number): void {
    const len = callerBytes(dst, 'read');
    const count = n === undefined && typeof dstOff === 'number' ? len - dstOff : n;
    rangeIn(dstOff, count, len, 'read: destination');
    const a = this.ra(o, count);
    typedArraySet.call(dst, new Uint8Array(this.#k.phys, a, count), dstOff);
  }
  write(o: number, src: Uint8Array, srcOff = 0, n?: number): void {
    const len = callerBytes(src, 'write');
    const count = n === undefined && typeof srcOff === 'number' ? len - srcOff : n;
    rangeIn(srcOff, count, len, 'write: source');
    const from = new Uint8Array(typedArrayBuffer.call(src) as ArrayBufferLike, (typedArrayByteOffset.call(src) as number) + srcOff, count);
    this.#k.u8.set(from, this.wa(o, count));
  }
  fill(v: number, o = 0, n?: number): void {
    num(v);
    const count = n ?? this.#k.len[this.#s]! - (typeof o === 'number' ? o : 0);
    const a = this.wa(o, count);
    this.#k.u8.fill(v, a, a + count);
  }
  copyFrom(src: Handle, srcOff: number, dstOff: number, n: number): void {
    if (!isHandleOf(this.#k, src)) throw new HandleError('EINVAL', 'copyFrom: source is not a byte RRef');
    const sa = src.ra(srcOff, n);
    const da = this.wa(dstOff, n);
    this.#k.u8.copyWithin(da, sa, sa + n);
  }

  // ---- arrays (RRefArray<T>, bytes included) ----
  get length(): number {
    const b = this.r();
    const k = this.#k;
    const s = this.#s;
    const t = k.elemKindOf[k.type[s]!]!;
    if (t === KIND_DEQUE) return k.dv.getUint32(b + 4, true);
    if (t === KIND_STRUCT) return violation(k, this.#m >>> 1, 'EINVAL', 'a struct RRef has no length');
    return Math.floor(k.len[s]! / k.elemSize[t]!);
  }
  get(i: number): unknown {
    const e = this.kind(KIND_ARRAY);
    const size = this.#k.elemSize[e]!;
    return loadScalar(this.#k.dv, e, this.ra(i * size, size));
  }
  set(i: number, v: unknown): void {
    const e = this.kind(KIND_ARRAY);
    const size = this.#k.elemSize[e]!;
    storeScalar(this.#k.dv, e, this.wa(i * size, size), v);
  }
  /** The element-kind index of this handle's type, checked against what the method needs. */
  protected kind(want: number): number {
    const k = this.#k;
    const t = k.type[this.#s]!;
    const e = k.elemKindOf[t]!;
    if (want === KIND_ARRAY ? e >= KIND_STRUCT : e !== want) {
      violation(k, this.#m >>> 1, 'EINVAL', `this RRef (${k.heap.typeInfo(t).name}) has no such operation`);
    }
    return e;
  }

  // ---- deques ----
  get capacity(): number {
    this.kind(KIND_DEQUE);
    return this.#k.dv.getUint32(this.r() + 8, true);
  }
  /**
   * The ring header, validated: it lives in the deque's own memory, which a device can overwrite
   * by DMA (its holder cannot through a handle: ExchangeHeap.rawLen), so it is never trusted to
   * keep push/pop inside the allocation. The caller reads the three words once and passes them.
   */
  protected checkRing(head: number, count: number, cap: number): void {
    checkHeader(this.#k, this.#m >>> 1, this.#s, head, count, cap);
  }
  /** Base offset of this deque if the handle may change it (w() and the kind check in one). */
  protected wDeque(): number {
    const k = this.#k;
    const s = this.#s;
    if (k.gen[s] !== this.#g || (this.#m & 1) === 1 || k.borrows[s] !== 0) return this.unwritable();
    if (k.elemKindOf[k.type[s]!] !== KIND_DEQUE) this.kind(KIND_DEQUE);
    return k.off[s]!;
  }

  push(v: unknown): boolean {
    this.wDeque();
    const k = this.#k;
    const self = this.#s;
    const holder = this.#m >>> 1;
    const c = checkMovable(k, v, holder);
    // No cycles: the deque may not end up inside itself (only a value with children can hold it).
    if (k.hasChildren[k.type[c]!] === 1 && containsSlot(k, c, self)) violation(k, holder, 'EINVAL', 'push of an RRef that contains this deque');
    return append(k, holder, self, c);
  }
  pop(): Handle | undefined {
    const b = this.wDeque();
    const k = this.#k;
    const dv = k.dv;
    const head = dv.getUint32(b, true);
    const count = dv.getUint32(b + 4, true);
    const cap = dv.getUint32(b + 8, true);
    this.checkRing(head, count, cap);
    if (count === 0) return undefined;
    const c = dv.getUint32(b + DEQUE_HEADER + head * 4, true);
    const next = head + 1;
    dv.setUint32(b, next < cap ? next : 0, true);
    dv.setUint32(b + 4, count - 1, true);
    const self = this.#s;
    if (!k.heap.validChild(self, c)) return violation(k, this.#m >>> 1, 'EINVAL', `deque (slot ${self}) holds a corrupt element entry`);
    // The element is writable: a read-only handle cannot pop (wDeque above).
    return mintAs(k, c, k.heap.release(c), this.#m, ROOT);
  }

  /**
   * Bulk move between two deques of one holder: pops up to `n` elements from the front of `src`
   * and pushes them, in order, onto the back of this deque; returns how many moved (bounded by
   * src's length and this deque's free room). The elements never surface as handles, so none is
   * minted or brand-checked: each is re-parented by slot number (same owner; no generation bump,
   * as no handle to a deque element can exist), with the effect of pop-then-push. Both deques
   * must be writable, not lent, held by the caller and owned alike; `src` may not be this deque.
   * An element entry of `src` that the slot table does not confirm (memory overwritten) stops the
   * move there and is a violation, as in pop; an element that contains this deque is refused as
   * in push.
   */
  moveFrom(src: unknown, n: number): number {
    return this.moveRun(src, n, -1, null, 0);
  }
  /**
   * moveFrom for a driver posting buffers: moves up to `n` elements, stopping (no violation)
   * before the first that is not a scalar array of at least `minBytes` bytes, and writes each
   * moved element's address and byte length at dstOff + i*8 of `dst`, as `extents` would have:
   * one pass instead of an extents pass and a move. `dst` must have room for n records.
   */
  moveFromSized(src: unknown, n: number, minBytes: number, dst: DataView, dstOff: number): number {
    if (!(typeof minBytes === 'number' && minBytes >= 0)) throw new HandleError('EINVAL', `moveFromSized: minBytes ${String(minBytes)} must be a non-negative number`);
    return this.moveRun(src, n, minBytes, callerView(dst, dstOff, typeof n === 'number' ? n : 0, 8, 8, 'moveFromSized'), dstOff);
  }
  /**
   * moveFrom (`out` null) and moveFromSized (elements of at least `minBytes` bytes, their extents
   * written to `out` from `outOff`): the checks once, then one loop each.
   */
  protected moveRun(src: unknown, n: number, minBytes: number, out: DataView | null, outOff: number): number {
    const b = this.wDeque();
    const k = this.#k;
    const holder = this.#m >>> 1;
    if (!isHandleOf(k, src)) return violation(k, holder, 'EINVAL', `moveFrom: expected an RRefDeque handle, got ${describe(src)}`);
    const from = src as Handle;
    // Holder first: only then may a problem of src be reported against (and panic) its holder.
    if (from.#m >>> 1 !== holder) return violation(k, holder, 'EINVAL', `moveFrom: source deque (slot ${from.#s}) is not held by the domain using it`);
    const sb = from.wDeque();
    const self = this.#s;
    const ss = from.#s;
    if (ss === self) return violation(k, holder, 'EINVAL', 'moveFrom: source and destination are the same deque');
    if (k.owner[ss] !== k.owner[self]) return violation(k, holder, 'EINVAL', `moveFrom: foreign RRef (slot ${ss}): not owned by the domain using it`);
    if (!(typeof n === 'number' && n >= 0 && Number.isInteger(n))) return violation(k, holder, 'EINVAL', `moveFrom: count ${String(n)} must be a non-negative integer`);
    const dv = k.dv;
    const head = dv.getUint32(b, true);
    const count = dv.getUint32(b + 4, true);
    const cap = dv.getUint32(b + 8, true);
    this.checkRing(head, count, cap);
    const sHead = dv.getUint32(sb, true);
    const sCount = dv.getUint32(sb + 4, true);
    const sCap = dv.getUint32(sb + 8, true);
    from.checkRing(sHead, sCount, sCap);
    let moving = cap - count;
    if (sCount < moving) moving = sCount;
    if (n < moving) moving = n;
    const heap = k.heap;
    const { parent, type, hasChildren, i32 } = k;
    // Elements leaving an entrusted holder take its mark (ExchangeHeap.entrust): read once.
    const heir = moving > 0 ? heap.heirAbove(ss) : -1;
    // Ring entries read as aligned words (a deque is 8-aligned, its header 16 bytes).
    const srcRing = (sb + DEQUE_HEADER) >>> 2;
    const dstRing = b + DEQUE_HEADER;
    let si = sHead;
    let di = head + count;
    if (di >= cap) di -= cap;
    let moved = 0;
    let bad = '';
    if (out !== null) {
      // Only scalar arrays move: they hold no slot numbers, so none can contain this deque.
      const { flatArray, len } = k;
      const base = k.off;
      for (let o = outOff; moved < moving; moved++, o += 8) {
        const c = i32[srcRing + si]!;
        if (parent[c] !== ss) {
          bad = `deque (slot ${ss}) holds a corrupt element entry`;
          break;
        }
        if (flatArray[type[c]!] !== 1 || len[c]! < minBytes) break;
        out.setUint32(o, base[c]!, true);
        out.setUint32(o + 4, len[c]!, true);
        dv.setUint32(dstRing + di * 4, c, true);
        heap.transfer(c, self, heir);
        si = si + 1 === sCap ? 0 : si + 1;
        di = di + 1 === cap ? 0 : di + 1;
      }
    } else {
      // An element of src (parent src) that contains this deque would make src contain it too:
      // when src is not among this deque's ancestors (one walk up, the common case), no element
      // can, and the per-element walk is skipped. The moves change no parent on that chain (an
      // element on it would have src above this deque), so the answer holds for the whole loop.
      const mayContain = containsSlot(k, ss, self);
      for (; moved < moving; moved++) {
        const c = i32[srcRing + si]!;
        // Validated one at a time, after the elements before it moved: a slot number listed twice
        // fails here the second time (its parent is this deque by then), as pop would fail on it.
        // parent[c] === ss is validChild: a free slot names no parent, and a number outside the
        // table reads undefined.
        if (parent[c] !== ss) {
          bad = `deque (slot ${ss}) holds a corrupt element entry`;
          break;
        }
        if (mayContain && hasChildren[type[c]!] === 1 && containsSlot(k, c, self)) {
          bad = 'moveFrom of an RRef that contains this deque';
          break;
        }
        dv.setUint32(dstRing + di * 4, c, true);
        heap.transfer(c, self, heir);
        si = si + 1 === sCap ? 0 : si + 1;
        di = di + 1 === cap ? 0 : di + 1;
      }
    }
    if (moved > 0) {
      dv.setUint32(sb, si, true);
      dv.setUint32(sb + 4, sCount - moved, true);
      dv.setUint32(b + 4, count + moved, true);
    }
    if (bad !== '') violation(k, holder, 'EINVAL', bad);
    return moved;
  }

  drop(): void {
    this.w();
    const k = this.#k;
    const s = this.#s;
    if (k.parent[s] !== NO_PARENT) violation(k, this.#m >>> 1, 'EINVAL', `drop of an RRef that lives inside another one (slot ${s}); take it out first`);
    k.heap.free(s);
  }

  // ---- struct fields (the field accessors on Handle.prototype call these) ----
  /**
   * Field name index `i` of this struct (the accessor of that name calls this): undefined when
   * its layout has no such field. The common scalar kinds are read without the general switch.
   */
  protected getField(i: number): unknown {
    const k = this.#k;
    const s = this.#s;
    const f = k.fields[i]?.[k.type[s]!];
    if (f === undefined) return undefined;
    if (k.gen[s] !== this.#g) return revoked(k, this.#m >>> 1, s);
    const a = k.off[s]! + f.offset;
    const code = f.code;
    if (code === 2) return k.dv.getUint32(a, true);
    if (code === 5) return k.dv.getInt32(a, true);
    if (code === 7) return k.dv.getFloat64(a, true);
    return code < FIELD_RREF ? loadScalar(k.dv, code, a) : this.readField(f);
  }
  /** Assignment to field name index `i` (`name`) of this struct. */
  protected setField(i: number, name: string, v: unknown): void {
    const k = this.#k;
    const s = this.#s;
    const f = k.fields[i]?.[k.type[s]!];
    if (f === undefined) return this.noField(name);
    const code = f.code;
    if (typeof v === 'number' && (code === 2 || code === 5 || code === 7)) {
      const a = this.w() + f.offset;
      if (code === 2) k.dv.setUint32(a, v, true);
      else if (code === 5) k.dv.setInt32(a, v, true);
      else k.dv.setFloat64(a, v, true);
      return;
    }
    this.writeField(f, v);
  }
  protected readField(f: FieldImpl): unknown {
    const k = this.#k;
    const b = this.r() + f.offset;
    const code = f.code;
    if (code < FIELD_RREF) return loadScalar(k.dv, code, b);
    if (code === FIELD_RREF) {
      const c = k.dv.getUint32(b, true);
      if (c === 0) return null;
      if (!k.heap.validChild(this.#s, c - 1)) return violation(k, this.#m >>> 1, 'EINVAL', `field ${f.name} holds a corrupt RRef`);
      return mintAs(k, c - 1, k.gen[c - 1]!, this.#m, CHILD);
    }
    const out: unknown[] = [];
    const es = k.elemSize[f.elem]!;
    for (let i = 0; i < f.count; i++) out.push(loadScalar(k.dv, f.elem, b + i * es));
    return Object.freeze(out);
  }
  protected writeField(f: FieldImpl, v: unknown): void {
    const k = this.#k;
    const b = this.w() + f.offset;
    const code = f.code;
    if (code < FIELD_RREF) {
      storeScalar(k.dv, code, b, v);
      return;
    }
    if (code === FIELD_ARRAY) {
      // The elements are read (a getter or Proxy of the caller's may run) before anything is
      // stored, and the address computed again after: nothing the caller ran can move it.
      const n = f.count;
      if (v === null || typeof v !== 'object' || (v as ArrayLike<unknown>).length !== n) {
        violation(k, this.#m >>> 1, 'EINVAL', `field ${f.name} takes exactly ${n} elements`);
      }
      const items: unknown[] = [];
      for (let i = 0; i < n; i++) items.push((v as ArrayLike<unknown>)[i]);
      const at = this.w() + f.offset;
      const es = k.elemSize[f.elem]!;
      for (let i = 0; i < n; i++) storeScalar(k.dv, f.elem, at + i * es, items[i]);
      return;
    }
    const s = this.#s;
    const holder = this.#m >>> 1;
    const old = k.dv.getUint32(b, true);
    if (v === null) {
      k.dv.setUint32(b, 0, true);
    } else {
      const c = checkMovable(k, v, holder);
      // The declared type is enforced here, where the value goes in, so a reader of the field (a
      // shadow reading a deque's capacity) never meets another kind of RRef there.
      if (f.holds !== '' && k.heap.typeInfo(k.type[c]!).name !== f.holds) {
        violation(k, holder, 'EINVAL', `field ${f.name} holds ${f.holds}, not ${k.heap.typeInfo(k.type[c]!).name}`);
      }
      if (containsSlot(k, c, s)) violation(k, holder, 'EINVAL', `field ${f.name}: an RRef cannot contain itself`);
      k.dv.setUint32(b, c + 1, true);
      k.heap.adopt(s, c);
    }
    // Assignment drops the previous value, as in Rust.
    if (old !== 0 && k.heap.validChild(s, old - 1)) {
      k.heap.release(old - 1);
      k.heap.free(old - 1);
    }
  }
  /** Assignment to a field this struct's layout does not have. */
  protected noField(name: string): never {
    const k = this.#k;
    return violation(k, this.#m >>> 1, 'EINVAL', `RRef<${k.heap.typeInfo(k.type[this.#s]!).name}> has no field ${name}`);
  }

  // ---- deque batch accessors: the bytes of many elements in one call, no handle per element ----
  // Safe without handles: the caller holds the deque, so it owns every element (a child has its
  // root's owner), and no handle to a deque element exists (see ExchangeHeap.moveTree). Each call
  // checks the deque handle once, then every element it touches: a slot the table confirms as an
  // element of this deque (the entry lives in memory a device can overwrite by DMA), a
  // scalar array (no child slot numbers inside to corrupt), the bytes inside its allocation. The
  // per-element test is one expression over the slot table (parent[c] === deque: a free slot has
  // no parent, see ExchangeHeap) and eachRefused finds and reports what is wrong otherwise.
  // readEach and writeEach keep a loop each: one loop with a read/write flag measured ~5% slower
  // per batch (each runs once per received batch of packets).
  /**
   * Copies bytes [off, off+n) of each element i in [from, from+count), counted from the front,
   * to `dst` at dstOff + (i-from)*stride. A read-only (borrowed) deque may be read.
   */
  readEach(from: number, count: number, off: number, n: number, dst: DataView, dstOff: number, stride = n): void {
    const out = callerView(dst, dstOff, count, stride, n, 'readEach');
    const b = this.r();
    const k = this.#k;
    const self = this.#s;
    let at = this.eachStart(b, from, count, off, n);
    const cap = eachCap;
    const { dv, parent, type, len, flatArray } = k;
    const base = k.off;
    const ring = b + DEQUE_HEADER;
    const end = off + n;
    // First a pass that only loads each element's first byte to copy (those that pass the copy's
    // range check; nothing else is read, the rest of the checks come below): a received frame was
    // just written by the device's thread, on the other core, so each such load misses, and in
    // this tight loop the batch's misses overlap instead of coming one after another inside the
    // copy. maglev and l2fwd ran 5-7% faster with it (bench/RESULTS.md, session 24).
    let touched = 0;
    for (let i = 0, t = at; n > 0 && i < count; i++) {
      const c = dv.getUint32(ring + t * 4, true);
      if (parent[c] === self && end <= len[c]!) touched = (touched + dv.getUint8(base[c]! + off)) | 0;
      t = t + 1 === cap ? 0 : t + 1;
    }
    touchSink = (touchSink + touched) | 0;
    for (let i = 0, o = dstOff; i < count; i++, o += stride) {
      const c = dv.getUint32(ring + at * 4, true);
      if (parent[c] !== self || flatArray[type[c]!] !== 1 || end > len[c]!) this.eachRefused(c, off, n);
      copyBytes(dv, base[c]! + off, out, o, n);
      at = at + 1 === cap ? 0 : at + 1;
    }
  }
  /**
   * Copies `src` at srcOff + (i-from)*stride into bytes [off, off+n) of each element i in
   * [from, from+count), counted from the front. The deque must be writable (not borrowed, not lent).
   */
  writeEach(from: number, count: number, off: number, n: number, src: DataView, srcOff: number, stride = n): void {
    const inp = callerView(src, srcOff, count, stride, n, 'writeEach');
    const b = this.wDeque();
    const k = this.#k;
    const self = this.#s;
    let at = this.eachStart(b, from, count, off, n);
    const cap = eachCap;
    const { dv, parent, type, len, borrows, flatArray } = k;
    const base = k.off;
    const ring = b + DEQUE_HEADER;
    const end = off + n;
    for (let i = 0, o = srcOff; i < count; i++, o += stride) {
      const c = dv.getUint32(ring + at * 4, true);
      if (parent[c] !== self || flatArray[type[c]!] !== 1 || end > len[c]! || borrows[c] !== 0) this.eachRefused(c, off, n);
      copyBytes(inp, o, dv, base[c]! + off, n);
      at = at + 1 === cap ? 0 : at + 1;
    }
  }
  /**
   * For each element i in [from, from+count), counted from the front: its physical address and
   * its byte length (what `addr` and `byteLength` of its handle would say), as two little-endian
   * u32 at dstOff + (i-from)*8 of `dst` (the exchange heap is below 4 GiB). For DMA descriptors:
   * an element that is not a scalar array (a struct or deque, whose memory holds slot numbers)
   * offers no bytes for DMA and reads as address 0, length 0, so a driver refuses it as it would
   * a too-small buffer instead of failing the caller's whole batch.
   */
  extents(from: number, count: number, dst: DataView, dstOff: number): void {
    const out = callerView(dst, dstOff, count, 8, 8, 'extents');
    const b = this.r();
    const k = this.#k;
    const self = this.#s;
    let at = this.eachStart(b, from, count, 0, 0);
    const cap = eachCap;
    const { dv, parent, type, len, flatArray } = k;
    const base = k.off;
    const ring = b + DEQUE_HEADER;
    for (let i = 0, o = dstOff; i < count; i++, o += 8) {
      const c = dv.getUint32(ring + at * 4, true);
      if (parent[c] !== self) this.eachRefused(c, 0, 0);
      // Two stores on each branch: a store of `flat ? base[c] : 0` measured ~3x slower per
      // element (presumably the JIT merges the u32 and the small integer into a general number).
      if (flatArray[type[c]!] === 1) {
        out.setUint32(o, base[c]!, true);
        out.setUint32(o + 4, len[c]!, true);
      } else {
        out.setUint32(o, 0, true);
        out.setUint32(o + 4, 0, true);
      }
      at = at + 1 === cap ? 0 : at + 1;
    }
  }
  /**
   * Validates a batch access to elements [from, from+count) at bytes [off, off+n) of deque memory
   * at `b`: returns the ring index of element `from` and leaves the ring capacity in eachCap (read
   * once: a device may change the header concurrently).
   */
  protected eachStart(b: number, from: number, count: number, off: number, n: number): number {
    const k = this.#k;
    const s = this.#s;
    if (k.elemKindOf[k.type[s]!] !== KIND_DEQUE) this.kind(KIND_DEQUE);
    const dv = k.dv;
    const head = dv.getUint32(b, true);
    const length = dv.getUint32(b + 4, true);
    const cap = dv.getUint32(b + 8, true);
    this.checkRing(head, length, cap);
    if (!(Number.isInteger(from) && Number.isInteger(count) && from >= 0 && count >= 0 && from + count <= length)) {
      return violation(k, this.#m >>> 1, 'ERANGE', `deque (slot ${s}): elements ${String(from)}+${String(count)} outside its ${length}`);
    }
    if (!(Number.isInteger(off) && Number.isInteger(n) && off >= 0 && n >= 0)) {
      return violation(k, this.#m >>> 1, 'EINVAL', `deque (slot ${s}): byte range ${String(off)}+${String(n)} must be non-negative integers`);
    }
    eachCap = cap;
    const at = head + from;
    return at < cap ? at : at - cap;
  }
  /**
   * Why element entry `c` of this deque may not be accessed at bytes [off, off+n) (the cold half
   * of the batch accessors' per-element test): reports it and throws.
   */
  protected eachRefused(c: number, off: number, n: number): never {
    const k = this.#k;
    const self = this.#s;
    const holder = this.#m >>> 1;
    if (!k.heap.validChild(self, c)) return violation(k, holder, 'EINVAL', `deque (slot ${self}) holds a corrupt element entry`);
    if (k.elemKindOf[k.type[c]!]! >= KIND_STRUCT) return violation(k, holder, 'EINVAL', `deque (slot ${self}): element (slot ${c}) is not a scalar array`);
    if (off + n > k.len[c]!) return violation(k, holder, 'ERANGE', `deque (slot ${self}): bytes ${off}+${n} outside element (slot ${c}) of ${k.len[c]} bytes`);
    return violation(k, holder, 'EBORROWED', `deque (slot ${self}): element (slot ${c}) is lent to a call in progress`);
  }
}

// layout.ts lists these names for the IDL compiler, which must not load this module (lockdown).
{
  const own = Object.getOwnPropertyNames(Handle.prototype).filter((n) => n !== 'constructor');
  if (own.length !== HANDLE_MEMBERS.length || own.some((n) => !HANDLE_MEMBERS.includes(n))) {
    throw new Error(`HANDLE_MEMBERS in src/kernel/layout.ts must list Handle's members: ${own.join(', ')}`);
  }
}

/** Ring capacity validated by the last Handle.eachStart (read once per batch access). */
let eachCap = 0;
/** What readEach's first pass loaded: kept here, so that V8 does not drop the loads. */
let touchSink = 0;
/** Copies `n` bytes from `src` at `from` to `dst` at `to` (readEach and writeEach, per element). */
function copyBytes(src: DataView, from: number, dst: DataView, to: number, n: number): void {
  // Two words per step (a 12-byte header: one step and one word) measured ~25% faster per element.
  let q = 0;
  for (; q + 8 <= n; q += 8) {
    dst.setUint32(to + q, src.getUint32(from + q, true), true);
    dst.setUint32(to + q + 4, src.getUint32(from + q + 4, true), true);
  }
  if (q + 4 <= n) {
    dst.setUint32(to + q, src.getUint32(from + q, true), true);
    q += 4;
  }
  for (; q < n; q++) dst.setUint8(to + q, src.getUint8(from + q));
}
/** `v` if it is a number (no valueOf of the caller's can run once an address is computed); else EINVAL. */
function num(v: unknown): number {
  if (typeof v !== 'number') throw new HandleError('EINVAL', `expected a number, got ${typeof v}`);
  return v;
}
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayGetter = (name: string | symbol): ((this: unknown) => unknown) => Object.getOwnPropertyDescriptor(typedArrayProto, name)!.get!;
const typedArrayTag = typedArrayGetter(Symbol.toStringTag);
const typedArrayLength = typedArrayGetter('length');
const typedArrayBuffer = typedArrayGetter('buffer');
const typedArrayByteOffset = typedArrayGetter('byteOffset');
const typedArraySet = (typedArrayProto as { set: (this: unknown, src: ArrayLike<number>, at: number) => void }).set;
/**
 * The length of `v` if it is a genuine Uint8Array, read through the intrinsic getter (a
 * look-alike object, a Proxy or an own `length` runs no code here: the tag getter reads an
 * internal slot); else EINVAL naming `what`.
 */
function callerBytes(v: unknown, what: string): number {
  if (typedArrayTag.call(v) !== 'Uint8Array') throw new HandleError('EINVAL', `${what}: expected a Uint8Array, got ${describe(v)}`);
  return typedArrayLength.call(v) as number;
}
/** [at, at+n) inside `len` bytes, both numbers; else ERANGE naming `what`. */
function rangeIn(at: unknown, n: unknown, len: number, what: string): asserts n is number {
  if (!(typeof at === 'number' && typeof n === 'number' && at >= 0 && n >= 0 && at + n <= len)) {
    throw new HandleError('ERANGE', `${what} range ${String(at)}+${String(n)} outside ${len} bytes`);
  }
}
const dataViewGetter = (name: string): ((this: unknown) => unknown) => Object.getOwnPropertyDescriptor(DataView.prototype, name)!.get!;
const dvBuffer = dataViewGetter('buffer');
const dvByteOffset = dataViewGetter('byteOffset');
const dvByteLength = dataViewGetter('byteLength');
/**
 * The kernel's own view of each DataView a caller has handed a batch accessor (callers reuse
 * one scratch view per batch, so the check below runs once per view, not once per call).
 */
const callerViews = new WeakMap<object, DataView>();
/**
 * A kernel-made DataView over the same bytes as caller-supplied `v`, after checking that `v` is a
 * genuine DataView with room for `count` records of `size` bytes, `stride` bytes apart from `at`.
 * The intrinsic getters read v's internal slots, so no caller code (a proxy, an own property)
 * runs inside the call; the kernel then reads and writes through its own view only. (A caller
 * that shrinks or detaches the buffer under a view it handed in makes the access throw a
 * TypeError: its own bytes, its own fault.)
 */
function callerView(v: unknown, at: number, count: number, stride: number, size: number, what: string): DataView {
  let view = typeof v === 'object' && v !== null ? callerViews.get(v) : undefined;
  if (view === undefined) {
    try {
      view = new DataView(Reflect.apply(dvBuffer, v, []) as ArrayBufferLike, Reflect.apply(dvByteOffset, v, []) as number, Reflect.apply(dvByteLength, v, []) as number);
    } catch {
      throw new HandleError('EINVAL', `${what}: expected a DataView, got ${describe(v)}`);
    }
    callerViews.set(v as object, view);
  }
  const len = view.byteLength;
  if (!(Number.isInteger(stride) && stride >= 0 && Number.isInteger(count) && count >= 0)) {
    throw new HandleError('EINVAL', `${what}: count ${String(count)} and stride ${String(stride)} must be non-negative integers`);
  }
  if (!(Number.isInteger(at) && at >= 0 && (count === 0 || at + (count - 1) * stride + size <= len))) {
    throw new HandleError('ERANGE', `${what}: ${count} records of ${String(size)} bytes ${stride} apart at ${String(at)} outside the ${len}-byte DataView`);
  }
  return view;
}

/** Field name -> its index (the accessor on Handle.prototype and KitState.fields). */
const fieldIndex = new Map<string, number>();
/** Handle is hardened (see sealHandles): no new field accessor after that. */
let handlesSealed = false;

/** Hardens Handle before the first handle leaves this module (kit.mint calls it). */
function sealHandles(): void {
  harden(Handle);
  handlesSealed = true;
}

/** The accessor of field `name` on Handle.prototype (once per realm); its name index. */
function fieldAccessor(name: string, layout: string): number {
  let i = fieldIndex.get(name);
  if (i !== undefined) return i;
  if (handlesSealed) throw new HandleError('EINVAL', `layout ${layout}: field name ${name} is new after the first RRef handle was minted; register layouts first`);
  if (name in Handle.prototype) throw new HandleError('EINVAL', `layout ${layout}: field ${name} would hide the RRef member of that name`);
  const index = (i = fieldIndex.size);
  fieldIndex.set(name, index);
  Object.defineProperty(Handle.prototype, name, {
    get(this: Handle) {
      return this.getField(index);
    },
    set(this: Handle, v: unknown) {
      this.setField(index, name, v);
    },
    enumerable: true,
    configurable: false,
  });
  return index;
}

/** Whether a slot is a root or inside another allocation, as a handle records it (the low bit of t). */
const ROOT = 0;
const CHILD = 1;

/** A fresh handle for (slot, generation), m = holder * 2 + ro, of a root or child slot. */
function mintAs(k: KitState, slot: number, g: number, m: number, child: typeof ROOT | typeof CHILD): Handle {
  return new Handle(TOKEN, k, slot, g, m, k.type[slot]! * 2 + child);
}

/** A header deque `s` cannot have (its ring beyond its slot, head or count beyond it) is `holder`'s violation. */
function checkHeader(k: KitState, holder: number, s: number, head: number, count: number, cap: number): void {
  if (!(cap >= 1 && DEQUE_HEADER + cap * 4 <= k.len[s]! && head < cap && count <= cap)) {
    violation(k, holder, 'EINVAL', `deque (slot ${s}) has a corrupt header`);
  }
}

/**
 * Where deque `s` (at `b`) takes its next element: its ring index behind the last one, or -1 when
 * full. Its header is checked first (a corrupt one is `holder`'s violation).
 */
function tailOf(k: KitState, holder: number, s: number, b: number): number {
  const dv = k.dv;
  const head = dv.getUint32(b, true);
  const count = dv.getUint32(b + 4, true);
  const cap = dv.getUint32(b + 8, true);
  checkHeader(k, holder, s, head, count, cap);
  if (count === cap) return -1;
  const at = head + count;
  return at < cap ? at : at - cap;
}

/**
 * Appends root `c` (movable by `holder`, not containing the deque) to the back of deque `s`, which
 * `holder` may change, and makes it the deque's child; false when the deque is full. A corrupt
 * header is `holder`'s violation. RRefDeque.push.
 */
function append(k: KitState, holder: number, s: number, c: number): boolean {
  const b = k.off[s]!;
  const at = tailOf(k, holder, s, b);
  if (at < 0) return false;
  const dv = k.dv;
  dv.setUint32(b + DEQUE_HEADER + at * 4, c, true);
  dv.setUint32(b + 4, dv.getUint32(b + 4, true) + 1, true);
  k.heap.adopt(s, c);
  return true;
}

/**
 * append() for a run of flat roots `cs` (childless values `holder` may move), in order, as room
 * allows, with one header check and one owner lookup for them all; returns how many it took (a
 * prefix of cs). The kernel's return of a dead driver's buffers to its shadow (appendRoots).
 */
function appendFlat(k: KitState, holder: number, s: number, cs: readonly number[]): number {
  const b = k.off[s]!;
  let at = tailOf(k, holder, s, b);
  if (at < 0) return 0;
  const dv = k.dv;
  const count = dv.getUint32(b + 4, true);
  const cap = dv.getUint32(b + 8, true);
  const n = Math.min(cs.length, cap - count);
  for (let i = 0; i < n; i++, at = at + 1 === cap ? 0 : at + 1) dv.setUint32(b + DEQUE_HEADER + at * 4, cs[i]!, true);
  dv.setUint32(b + 4, count + n, true);
  k.heap.adoptFlat(s, cs, n);
  return n;
}

/**
 * Is slot `s` slot `c` or inside it (c among s's ancestors)? Moving c into s would make a cycle.
 * The walk is bounded by the slot table's size: a longer chain is already a cycle (a kernel bug no
 * test has seen), and it answers yes, so the move is refused rather than the thread spinning for
 * ever (the heap bounds its own parent walks the same way).
 */
function containsSlot(k: KitState, c: number, s: number): boolean {
  const parent = k.parent;
  const slots = parent.length;
  for (let p = s, steps = 0; p !== NO_PARENT; p = parent[p]!, steps++) if (p === c || steps > slots) return true;
  return false;
}

/** The slot of `v` if it is a handle of kit `k` that `holder` may move; throws otherwise. */
function checkMovable(k: KitState, v: unknown, holder: number): number {
  if (!isHandleOf(k, v)) return violation(k, holder, 'EINVAL', `expected an RRef handle, got ${describe(v)}`);
  return movableSlot(k, v as Handle, holder);
}

/** Why `holder` may not move `h` (the cold half of movableSlot): throws, or the slot if it may. */
function movableWhy(k: KitState, h: Handle, holder: number): number {
  const s = slotOf(h);
  if (k.gen[s] !== genOf(h)) return revoked(k, holder, s);
  if (isReadOnly(h)) return violation(k, holder, 'EREADONLY', `a borrowed RRef (slot ${s}) cannot be moved`);
  if (k.borrows[s] !== 0) return violation(k, holder, 'EBORROWED', `an RRef lent to a call in progress (slot ${s}) cannot be moved`);
  if (k.parent[s] !== NO_PARENT) return violation(k, holder, 'EINVAL', `an RRef inside another one (slot ${s}) cannot be moved on its own; take it out first`);
  if (k.owner[s] !== holder) return violation(k, holder, 'EINVAL', `foreign RRef (slot ${s}): not owned by the domain using it`);
  return s;
}

/** Scalar kind index e at byte address a. */
function loadScalar(dv: DataView, e: number, a: number): unknown {
  switch (e) {
    case 0: return dv.getUint8(a);
    case 1: return dv.getUint16(a, true);
    case 2: return dv.getUint32(a, true);
    case 3: return dv.getInt8(a);
    case 4: return dv.getInt16(a, true);
    case 5: return dv.getInt32(a, true);
    case 6: return dv.getFloat32(a, true);
    case 7: return dv.getFloat64(a, true);
    case 8: return dv.getBigUint64(a, true);
    case 9: return dv.getBigInt64(a, true);
    default: return dv.getUint8(a) !== 0;
  }
}

/** Store `v` as scalar kind index e at byte address a; a value of the wrong type is refused. */
function storeScalar(dv: DataView, e: number, a: number, v: unknown): void {
  if (e === 10) {
    dv.setUint8(a, v ? 1 : 0);
    return;
  }
  if (e === 8 || e === 9) {
    if (typeof v !== 'bigint') throw new HandleError('EINVAL', `expected a bigint, got ${typeof v}`);
    if (e === 8) dv.setBigUint64(a, v, true);
    else dv.setBigInt64(a, v, true);
    return;
  }
  if (typeof v !== 'number') throw new HandleError('EINVAL', `expected a number, got ${typeof v}`);
  switch (e) {
    case 0: dv.setUint8(a, v); return;
    case 1: dv.setUint16(a, v, true); return;
    case 2: dv.setUint32(a, v, true); return;
    case 3: dv.setInt8(a, v); return;
    case 4: dv.setInt16(a, v, true); return;
    case 5: dv.setInt32(a, v, true); return;
    case 6: dv.setFloat32(a, v, true); return;
    default: dv.setFloat64(a, v, true);
  }
}

export function createHandleKit<H extends HandleHeap>(heap: H, onViolation: (holder: number, err: HandleError) => void): HandleKit<H> {
  const k = new KitState(heap, onViolation);
  const { elemKindOf } = k;
  const mint = (slot: number, holder: number, ro: boolean): Handle => {
    // The fast moves rely on it (see fastSlot): only the owner gets a writable handle.
    if (!ro && heap.owner[slot] !== holder) throw new HandleError('EINVAL', `a writable RRef to slot ${slot} for domain ${holder}, which does not own it`);
    if (!handlesSealed) sealHandles();
    return mintAs(k, slot, heap.gen[slot]!, holder * 2 + (ro ? 1 : 0), heap.parent[slot] === NO_PARENT ? ROOT : CHILD);
  };
  /** A handle of this kit, or a clear error (kernel-side misuse, not a domain's violation). */
  const own = (h: object): Handle => {
    if (!isHandleOf(k, h)) throw new HandleError('EINVAL', `not an RRef handle of this kernel: ${describe(h)}`);
    return h as Handle;
  };

  const arrayTypes = new Map<ScalarKind, number>();
  KINDS.forEach((kind, i) => {
    const id = heap.registerType(`RRefArray<${kind}>`, TypeKind.Array).id;
    elemKindOf[id] = i;
    new DataView(k.flatArray.buffer).setUint8(id, 1);
    arrayTypes.set(kind, id);
  });
  const dequeType = heap.registerType('RRefDeque', TypeKind.Deque).id;
  elemKindOf[dequeType] = KIND_DEQUE;
  const bytesType = arrayTypes.get('u8')!;
  const structTypes = new Map<string, number>();
  const layouts = new Map<number, LayoutSpec>();

  const kit: HandleKit<H> = {
    heap,
    isHandle: (v) => isHandleOf(k, v),
    slotOf: (h) => slotOf(own(h)),
    slotOfOwn: (h) => slotOf(h as Handle),
    genOf: (h) => genOf(own(h)),
    holderOf: (h) => holderOf(own(h)),
    isReadOnly: (h) => isReadOnly(own(h)),
    checkMovable: (h, holder) => checkMovable(k, h, holder),
    revoke: (h) => revoke(own(h)),
    mint,
    appendRoots: (deque, slots, holder) => (k.borrows[deque] === 0 ? appendFlat(k, holder, deque, slots) : 0),
    moveTo(h, from, to) {
      const s = checkMovable(k, h, from);
      return mintAs(k, s, heap.move(s, to), to * 2, ROOT);
    },
    moveTyped: (h, typeId, from, to) => moveTyped(k, h, typeId, from, to),
    fastMove: tryMove as unknown as FastMove,
    fastMoveFlat: tryMoveFlat as unknown as FastMove,
    state: k as unknown as KitRef,
    bytesType,
    dequeType,
    arrayType(kind) {
      const t = arrayTypes.get(kind);
      if (t === undefined) throw new HandleError('EINVAL', `unknown element type ${String(kind)}`);
      return t;
    },
    registerLayout(spec) {
      const existing = structTypes.get(spec.name);
      if (existing !== undefined) return existing;
      const indices = spec.fields.map((f) => fieldAccessor(f.name, spec.name));
      const childOffsets = spec.fields.filter((f) => f.kind === 'rref').map((f) => f.offset);
      const id = heap.registerType(spec.name, TypeKind.Struct, childOffsets).id;
      elemKindOf[id] = KIND_STRUCT;
      spec.fields.forEach((f, j) => {
        const byType = (k.fields[indices[j]!] ??= []);
        const code = f.kind === 'rref' ? FIELD_RREF : f.kind === 'array' ? FIELD_ARRAY : KINDS.indexOf(f.kind);
        byType[id] = Object.freeze({ name: f.name, offset: f.offset, code, elem: f.kind === 'array' ? KINDS.indexOf(f.elem!) : -1, count: f.count ?? 0, holds: typeNameOfKey(f.holds) });
      });
      structTypes.set(spec.name, id);
      layouts.set(id, spec);
      return id;
    },
    layoutType: (name) => structTypes.get(name),
    allocBytes(o, bytes, align) {
      return mint(heap.alloc(o, bytes, bytesType, align), o, false);
    },
    allocArray(o, kind, count, align) {
      const t = kit.arrayType(kind);
      return mint(heap.alloc(o, count * SCALAR_SIZE[kind], t, align ?? Math.min(8, SCALAR_SIZE[kind])), o, false);
    },
    allocStruct(o, name) {
      const t = structTypes.get(name);
      if (t === undefined) throw new HandleError('EINVAL', `unknown layout struct ${JSON.stringify(name)}`);
      const spec = layouts.get(t)!;
      return mint(heap.alloc(o, spec.size, t, spec.align), o, false);
    },
    allocDeque(o, capacity) {
      if (!Number.isInteger(capacity) || capacity < 1 || capacity > 65536) throw new HandleError('EINVAL', `deque capacity ${capacity} must be 1..65536`);
      const s = heap.alloc(o, DEQUE_HEADER + capacity * 4, dequeType, 8);
      heap.dv.setUint32(heap.off[s]! + 8, capacity, true);
      return mint(s, o, false);
    },
  };
  return kit;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a plain object';
  return typeof v;
}
