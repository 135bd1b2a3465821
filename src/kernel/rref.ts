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
 * Classes are created per heap by `createHandleKit` and hardened there; no domain can construct a
 * handle (the constructor demands a module-private token).
 *
 * Performance invariants (the packet path mints and checks handles per frame):
 *  - exactly two handle classes per kit: Handle (arrays, bytes, deques) and StructHandle (every
 *    layout, its field accessors shared by name and dispatched on the slot's type id), so each
 *    private-field read site sees at most two hidden classes and never goes megamorphic;
 *  - a handle has three private fields (slot, generation, holder * 2 + read-only), all set in its
 *    constructor; minting one is one monomorphic `new` of one of the two classes.
 */
import './lockdown.js';
import { DEQUE_HEADER, type ExchangeHeap, NO_PARENT, TypeKind, KERNEL_OWNER } from './heap.js';
import { SCALAR_SIZE, type LayoutSpec, type ScalarKind } from './layout.js';

export type { FieldSpec, LayoutSpec, ScalarKind } from './layout.js';

const TOKEN = Symbol('rref-token');

export class HandleError extends Error {
  constructor(
    readonly code: 'EREVOKED' | 'EBORROWED' | 'EREADONLY' | 'ERANGE' | 'EINVAL' | 'EFULL',
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
  | 'owner' | 'gen' | 'borrows' | 'type' | 'off' | 'len' | 'parent' | 'hasChildren'
  | 'registerType' | 'typeInfo' | 'validChild'
  | 'alloc' | 'free' | 'move' | 'adopt' | 'release'
>;

/** Kernel-only operations on handles (never handed to domains). */
export interface HandleKit<H extends HandleHeap = ExchangeHeap> {
  readonly heap: H;
  /** Is `v` a handle of this kit (brand check, no throw)? */
  isHandle(v: unknown): boolean;
  slotOf(h: object): number;
  /** The domain id `h` was minted for, and whether it is a read-only (borrowed-in) handle. */
  holderOf(h: object): number;
  isReadOnly(h: object): boolean;
  /** Throws unless `h` is a valid, writable, not-lent, root handle held by `holder`. */
  checkMovable(h: object, holder: number): number;
  /** Revoke `h` (a borrowed-in handle after its call returns). */
  revoke(h: object): void;
  /** A fresh handle for `slot` held by `holder` (read-only when `ro`). */
  mint(slot: number, holder: number, ro: boolean): object;
  /** Move root `h` (held by `from`) to `to`; returns the new holder's fresh handle. */
  moveTo(h: object, from: number, to: number): object;
  /**
   * The proxies' move: like moveTo, but returns null (moving nothing) when `h` is not a handle of
   * type `typeId`, so one brand check serves both the type test and the move.
   */
  moveTyped(h: unknown, typeId: number, from: number, to: number): object | null;
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

export function createHandleKit<H extends HandleHeap>(heap: H, onViolation: (holder: number, err: HandleError) => void): HandleKit<H> {
  const { gen, off, len, borrows, owner, parent, type, dv, u8, phys, hasChildren } = heap;
  const i32 = new Int32Array(phys);
  // Per type id: element-kind index (scalar kinds 0..10, then KIND_STRUCT, KIND_DEQUE).
  const elemKindOf: number[] = [];
  const elemSize: number[] = [];
  const KIND_ARRAY = -1; // "any scalar array" in kind()
  const KIND_STRUCT = 100;
  const KIND_DEQUE = 101;
  // Field codes of struct fields beyond the scalar kinds (0..10).
  const FIELD_RREF = 20;
  const FIELD_ARRAY = 21;

  let slotOfImpl!: (h: Handle) => number;
  let genOfImpl!: (h: Handle) => number;
  let holderOfImpl!: (h: Handle) => number;
  let roOfImpl!: (h: Handle) => boolean;
  let revokeImpl!: (h: Handle) => void;
  let isHandleImpl!: (v: unknown) => boolean;
  let movableOfImpl!: (h: Handle, holder: number) => number;
  let moveTypedImpl!: (v: unknown, typeId: number, from: number, to: number) => Handle | null;
  let mintStruct!: (s: number, g: number, m: number) => Handle;

  const violation = (holder: number, code: HandleError['code'], msg: string): never => {
    const err = new HandleError(code, msg);
    if (holder !== KERNEL_OWNER) onViolation(holder, err);
    throw err;
  };
  const revoked = (holder: number, s: number): never =>
    violation(holder, 'EREVOKED', `use of a revoked RRef (slot ${s}): it was moved, dropped, or its owner died`);

  /**
   * One struct field of one layout, as the shared accessor of its name finds it for the slot's
   * type: the byte offset, the field code (a scalar kind index, FIELD_RREF or FIELD_ARRAY) and,
   * for fixed arrays, the element kind index and count.
   */
  interface FieldImpl {
    readonly name: string;
    readonly offset: number;
    readonly code: number;
    readonly elem: number;
    readonly count: number;
  }

  /**
   * Every handle is an instance of Handle (arrays, bytes, deques) or of its one subclass
   * StructHandle (every layout), so every site that reads a handle's private fields sees at most
   * two hidden classes and stays a fast polymorphic inline cache. (One class per layout made
   * those sites megamorphic as soon as a few layouts were in use: every handle access then cost a
   * stub-cache lookup per private field, several times the cost of the access itself.)
   *
   * Private state: the slot, the generation the handle is valid for, and `m` = holder * 2 + ro
   * (the holder domain and whether the handle is read-only, in one field: one store less per mint).
   */
  class Handle {
    #s: number;
    #g: number;
    #m: number;
    constructor(token: symbol, s: number, g: number, m: number) {
      if (token !== TOKEN) throw new TypeError('RRef handles are created by the kernel only');
      this.#s = s;
      this.#g = g;
      this.#m = m;
    }
    static {
      slotOfImpl = (h) => h.#s;
      genOfImpl = (h) => h.#g;
      holderOfImpl = (h) => h.#m >>> 1;
      roOfImpl = (h) => (h.#m & 1) === 1;
      revokeImpl = (h) => {
        h.#g = -1;
      };
      isHandleImpl = (v) => typeof v === 'object' && v !== null && #s in v;
      movableOfImpl = (h, holder) => {
        const s = h.#s;
        // The common case in one test; movableSlot finds (and reports) what is wrong otherwise.
        if (gen[s] === h.#g && h.#m === holder * 2 && borrows[s] === 0 && parent[s] === NO_PARENT && owner[s] === holder) return s;
        return movableSlot(h, holder);
      };
      moveTypedImpl = (v, typeId, from, to) => {
        if (typeof v !== 'object' || v === null || !(#s in v) || type[v.#s] !== typeId) return null;
        const s = movableOfImpl(v, from);
        return mintAs(s, heap.move(s, to), to * 2);
      };
    }
    /** Base byte offset if the handle may read; throws (and reports) otherwise. */
    protected r(): number {
      const s = this.#s;
      if (gen[s] !== this.#g) return revoked(this.#m >>> 1, s);
      return off[s]!;
    }
    /** Base byte offset if the handle may write. */
    protected w(): number {
      const s = this.#s;
      if (gen[s] !== this.#g || (this.#m & 1) === 1 || borrows[s] !== 0) return this.unwritable();
      return off[s]!;
    }
    /** Why this handle may not write (the cold half of w()); always throws. */
    protected unwritable(): never {
      const s = this.#s;
      const holder = this.#m >>> 1;
      if (gen[s] !== this.#g) return revoked(holder, s);
      if ((this.#m & 1) === 1) return violation(holder, 'EREADONLY', `write through a borrowed (read-only) RRef (slot ${s})`);
      return violation(holder, 'EBORROWED', `write to an RRef that is lent to a call in progress (slot ${s})`);
    }
    /** Address of bytes [o, o+n) if the handle may read them (r() and bounds() in one). */
    protected ra(o: number, n: number): number {
      const s = this.#s;
      if (gen[s] !== this.#g) return revoked(this.#m >>> 1, s);
      if (!(o >= 0 && o + n <= len[s]!)) return this.outside(o, n);
      return off[s]! + o;
    }
    /** Address of bytes [o, o+n) if the handle may write them (w() and bounds() in one). */
    protected wa(o: number, n: number): number {
      const s = this.#s;
      if (gen[s] !== this.#g || (this.#m & 1) === 1 || borrows[s] !== 0) return this.unwritable();
      if (!(o >= 0 && o + n <= len[s]!)) return this.outside(o, n);
      return off[s]! + o;
    }
    protected outside(o: number, n: number): never {
      return violation(this.#m >>> 1, 'ERANGE', `RRef access at offset ${o} of ${n} bytes is outside its ${len[this.#s]} bytes`);
    }
    protected bounds(o: number, n: number): void {
      if (!(o >= 0 && o + n <= len[this.#s]!)) this.outside(o, n);
    }
    get valid(): boolean {
      return gen[this.#s] === this.#g;
    }
    get addr(): number {
      return this.r();
    }
    get byteLength(): number {
      this.r();
      return len[this.#s]!;
    }

    getU8(o: number): number {
      return u8[this.ra(o, 1)]!;
    }
    setU8(o: number, v: number): void {
      dv.setUint8(this.wa(o, 1), v);
    }
    getU16(o: number): number {
      return dv.getUint16(this.ra(o, 2), true);
    }
    setU16(o: number, v: number): void {
      dv.setUint16(this.wa(o, 2), v, true);
    }
    getU32(o: number): number {
      return dv.getUint32(this.ra(o, 4), true);
    }
    setU32(o: number, v: number): void {
      dv.setUint32(this.wa(o, 4), v, true);
    }
    loadU32(o: number): number {
      const a = this.ra(o, 4);
      if (a % 4 !== 0) throw new HandleError('EINVAL', `atomic access at unaligned offset ${o}`);
      return Atomics.load(i32, a >> 2) >>> 0;
    }
    storeU32(o: number, v: number): void {
      const a = this.wa(o, 4);
      if (a % 4 !== 0) throw new HandleError('EINVAL', `atomic access at unaligned offset ${o}`);
      Atomics.store(i32, a >> 2, v | 0);
    }
    getU64(o: number): number {
      const a = this.ra(o, 8);
      return dv.getUint32(a, true) + dv.getUint32(a + 4, true) * 0x1_0000_0000;
    }
    setU64(o: number, v: number): void {
      const a = this.wa(o, 8);
      dv.setUint32(a, v % 0x1_0000_0000, true);
      dv.setUint32(a + 4, Math.floor(v / 0x1_0000_0000), true);
    }
    read(o: number, dst: Uint8Array, dstOff = 0, n = dst.length - dstOff): void {
      const a = this.ra(o, n);
      if (!(dstOff >= 0 && dstOff + n <= dst.length)) throw new HandleError('ERANGE', `read: destination range ${dstOff}+${n} outside ${dst.length} bytes`);
      dst.set(u8.subarray(a, a + n), dstOff);
    }
    write(o: number, src: Uint8Array, srcOff = 0, n = src.length - srcOff): void {
      const a = this.wa(o, n);
      if (!(srcOff >= 0 && srcOff + n <= src.length)) throw new HandleError('ERANGE', `write: source range ${srcOff}+${n} outside ${src.length} bytes`);
      u8.set(src.subarray(srcOff, srcOff + n), a);
    }
    fill(v: number, o = 0, n?: number): void {
      const b = this.w();
      const count = n ?? len[this.#s]! - o;
      this.bounds(o, count);
      u8.fill(v, b + o, b + o + count);
    }
    copyFrom(src: Handle, srcOff: number, dstOff: number, n: number): void {
      if (!(src instanceof Handle)) throw new HandleError('EINVAL', 'copyFrom: source is not a byte RRef');
      const sa = src.ra(srcOff, n);
      const da = this.wa(dstOff, n);
      u8.copyWithin(da, sa, sa + n);
    }

    // ---- arrays (RRefArray<T>, bytes included) ----
    get length(): number {
      const b = this.r();
      const s = this.#s;
      const t = elemKindOf[type[s]!]!;
      if (t === KIND_DEQUE) return dv.getUint32(b + 4, true);
      if (t === KIND_STRUCT) return violation(this.#m >>> 1, 'EINVAL', 'a struct RRef has no length');
      return Math.floor(len[s]! / elemSize[t]!);
    }
    get(i: number): unknown {
      const k = this.kind(KIND_ARRAY);
      const size = elemSize[k]!;
      return loadScalar(k, this.ra(i * size, size));
    }
    set(i: number, v: unknown): void {
      const k = this.kind(KIND_ARRAY);
      const size = elemSize[k]!;
      storeScalar(k, this.wa(i * size, size), v);
    }
    /** The element-kind index of this handle's type, checked against what the method needs. */
    protected kind(want: number): number {
      const k = elemKindOf[type[this.#s]!]!;
      if (want === KIND_ARRAY ? k >= KIND_STRUCT : k !== want) {
        violation(this.#m >>> 1, 'EINVAL', `this RRef (${heap.typeInfo(type[this.#s]!).name}) has no such operation`);
      }
      return k;
    }

    // ---- deques ----
    get capacity(): number {
      this.kind(KIND_DEQUE);
      return dv.getUint32(this.r() + 8, true);
    }
    /**
     * The ring header, validated: it lives in the deque's own memory, which its holder can
     * overwrite through the byte accessors (or a device by DMA), so it is never trusted to keep
     * push/pop inside the allocation. The caller reads the three words once and passes them.
     */
    protected checkRing(head: number, count: number, cap: number): void {
      if (!(cap >= 1 && DEQUE_HEADER + cap * 4 <= len[this.#s]! && head < cap && count <= cap)) {
        violation(this.#m >>> 1, 'EINVAL', `deque (slot ${this.#s}) has a corrupt header`);
      }
    }

    /** Base offset of this deque if the handle may change it (w() and the kind check in one). */
    protected wDeque(): number {
      const s = this.#s;
      if (gen[s] !== this.#g || (this.#m & 1) === 1 || borrows[s] !== 0) return this.unwritable();
      if (elemKindOf[type[s]!] !== KIND_DEQUE) this.kind(KIND_DEQUE);
      return off[s]!;
    }

    push(v: unknown): boolean {
      const b = this.wDeque();
      const self = this.#s;
      const holder = this.#m >>> 1;
      const c = checkMovableImpl(v, holder);
      // No cycles: the deque may not end up inside itself (only a value with children can hold it).
      if (hasChildren[type[c]!] === 1) {
        for (let p = self; p !== NO_PARENT; p = parent[p]!) {
          if (p === c) violation(holder, 'EINVAL', 'push of an RRef that contains this deque');
        }
      }
      const head = dv.getUint32(b, true);
      const count = dv.getUint32(b + 4, true);
      const cap = dv.getUint32(b + 8, true);
      this.checkRing(head, count, cap);
      if (count === cap) return false;
      const at = head + count;
      dv.setUint32(b + DEQUE_HEADER + (at < cap ? at : at - cap) * 4, c, true);
      dv.setUint32(b + 4, count + 1, true);
      heap.adopt(self, c);
      return true;
    }
    pop(): Handle | undefined {
      const b = this.wDeque();
      const head = dv.getUint32(b, true);
      const count = dv.getUint32(b + 4, true);
      const cap = dv.getUint32(b + 8, true);
      this.checkRing(head, count, cap);
      if (count === 0) return undefined;
      const c = dv.getUint32(b + DEQUE_HEADER + head * 4, true);
      dv.setUint32(b, head + 1 === cap ? 0 : head + 1, true);
      dv.setUint32(b + 4, count - 1, true);
      const self = this.#s;
      if (!heap.validChild(self, c)) {
        return violation(this.#m >>> 1, 'EINVAL', `deque (slot ${self}) holds a corrupt element entry`);
      }
      // The element is writable: a read-only handle cannot pop (wDeque above).
      return mintAs(c, heap.release(c), this.#m);
    }

    drop(): void {
      this.w();
      const s = this.#s;
      if (parent[s] !== NO_PARENT) violation(this.#m >>> 1, 'EINVAL', `drop of an RRef that lives inside another one (slot ${s}); take it out first`);
      heap.free(s);
    }

    // ---- struct fields (the accessors of StructHandle.prototype call these) ----
    /** Field `name` of this struct: the field of its layout, or undefined when it has none. */
    protected fieldOf(byType: readonly (FieldImpl | undefined)[]): FieldImpl | undefined {
      return byType[type[this.#s]!];
    }
    protected readField(f: FieldImpl): unknown {
      const b = this.r() + f.offset;
      const code = f.code;
      if (code < FIELD_RREF) return loadScalar(code, b);
      if (code === FIELD_RREF) {
        const c = dv.getUint32(b, true);
        if (c === 0) return null;
        if (!heap.validChild(this.#s, c - 1)) return violation(this.#m >>> 1, 'EINVAL', `field ${f.name} holds a corrupt RRef`);
        return mintAs(c - 1, gen[c - 1]!, this.#m);
      }
      const out: unknown[] = [];
      const es = elemSize[f.elem]!;
      for (let i = 0; i < f.count; i++) out.push(loadScalar(f.elem, b + i * es));
      return Object.freeze(out);
    }
    protected writeField(f: FieldImpl, v: unknown): void {
      const b = this.w() + f.offset;
      const code = f.code;
      if (code < FIELD_RREF) {
        storeScalar(code, b, v);
        return;
      }
      if (code === FIELD_ARRAY) {
        const n = f.count;
        if (v === null || typeof v !== 'object' || (v as ArrayLike<unknown>).length !== n) {
          violation(this.#m >>> 1, 'EINVAL', `field ${f.name} takes exactly ${n} elements`);
        }
        const es = elemSize[f.elem]!;
        for (let i = 0; i < n; i++) storeScalar(f.elem, b + i * es, (v as ArrayLike<unknown>)[i]);
        return;
      }
      const s = this.#s;
      const holder = this.#m >>> 1;
      const old = dv.getUint32(b, true);
      if (v === null) {
        dv.setUint32(b, 0, true);
      } else {
        const c = checkMovableImpl(v, holder);
        for (let p = s; p !== NO_PARENT; p = parent[p]!) {
          if (p === c) violation(holder, 'EINVAL', `field ${f.name}: an RRef cannot contain itself`);
        }
        dv.setUint32(b, c + 1, true);
        heap.adopt(s, c);
      }
      // Assignment drops the previous value, as in Rust.
      if (old !== 0 && heap.validChild(s, old - 1)) {
        heap.release(old - 1);
        heap.free(old - 1);
      }
    }
  }

  // An explicit constructor: an implicit derived one spreads its arguments, slow under lockdown.
  class StructHandle extends Handle {
    constructor(t: symbol, s: number, g: number, m: number) {
      super(t, s, g, m);
    }
    static {
      mintStruct = (s, g, m) => new StructHandle(TOKEN, s, g, m);
    }
  }
  Object.defineProperty(StructHandle, 'name', { value: 'RRef<struct>' });
  const structProto = StructHandle.prototype as unknown as Record<string, unknown>;
  /** Per field name: the field of each layout type id that has one (holes elsewhere). */
  const fieldsByName = new Map<string, (FieldImpl | undefined)[]>();
  /**
   * StructHandle.prototype gets one accessor per field name as layouts are registered, and is
   * hardened just before the first struct handle is minted: no domain can reach it before then,
   * and no layout may add a field name after.
   */
  let structsSealed = false;

  const defineField = (layout: string, typeId: number, f: LayoutSpec['fields'][number]): void => {
    let byType = fieldsByName.get(f.name);
    if (byType === undefined) {
      if (structsSealed) throw new HandleError('EINVAL', `layout ${layout}: field ${f.name} is registered after the first struct handle was minted`);
      if (f.name in Handle.prototype) throw new HandleError('EINVAL', `layout ${layout}: field ${f.name} would hide the RRef member of that name`);
      const table: (FieldImpl | undefined)[] = (byType = []);
      fieldsByName.set(f.name, table);
      Object.defineProperty(structProto, f.name, {
        get(this: StructHandle) {
          const fi = this.fieldOf(table);
          return fi === undefined ? undefined : this.readField(fi);
        },
        set(this: StructHandle, v: unknown) {
          const fi = this.fieldOf(table);
          if (fi === undefined) return violation(holderOfImpl(this), 'EINVAL', `RRef<${layout}> has no field ${f.name}`);
          this.writeField(fi, v);
        },
        enumerable: true,
        configurable: false,
      });
    }
    const code = f.kind === 'rref' ? FIELD_RREF : f.kind === 'array' ? FIELD_ARRAY : KINDS.indexOf(f.kind);
    byType[typeId] = Object.freeze({ name: f.name, offset: f.offset, code, elem: f.kind === 'array' ? KINDS.indexOf(f.elem!) : -1, count: f.count ?? 0 });
  };

  /** A fresh handle for (slot, generation) with m = holder * 2 + ro, of the slot's class. */
  const mintAs = (slot: number, g: number, m: number): Handle =>
    elemKindOf[type[slot]!] !== KIND_STRUCT ? new Handle(TOKEN, slot, g, m) : structsSealed ? mintStruct(slot, g, m) : firstStruct(slot, g, m);
  const firstStruct = (slot: number, g: number, m: number): Handle => {
    harden(StructHandle);
    structsSealed = true;
    return mintStruct(slot, g, m);
  };

  const mintImpl = (slot: number, holder: number, ro: boolean): Handle => mintAs(slot, gen[slot]!, holder * 2 + (ro ? 1 : 0));

  const checkMovableImpl = (v: unknown, holder: number): number => {
    if (!isHandleImpl(v)) return notAHandle(holder, v);
    return movableOfImpl(v as Handle, holder);
  };

  const notAHandle = (holder: number, v: unknown): never => violation(holder, 'EINVAL', `expected an RRef handle, got ${describe(v)}`);

  /** checkMovable's checks after the brand check: the slot of `h` if `holder` may move it. */
  const movableSlot = (h: Handle, holder: number): number => {
    const s = slotOfImpl(h);
    if (gen[s] !== genOfImpl(h)) return revoked(holder, s);
    if (roOfImpl(h)) return violation(holder, 'EREADONLY', `a borrowed RRef (slot ${s}) cannot be moved`);
    if (borrows[s] !== 0) return violation(holder, 'EBORROWED', `an RRef lent to a call in progress (slot ${s}) cannot be moved`);
    if (parent[s] !== NO_PARENT) return violation(holder, 'EINVAL', `an RRef inside another one (slot ${s}) cannot be moved on its own; take it out first`);
    if (owner[s] !== holder) return violation(holder, 'EINVAL', `foreign RRef (slot ${s}): not owned by the domain using it`);
    return s;
  };

  harden(Handle);
  const arrayTypes = new Map<ScalarKind, number>();
  KINDS.forEach((k, i) => {
    elemSize[i] = SCALAR_SIZE[k];
    const id = heap.registerType(`RRefArray<${k}>`, TypeKind.Array).id;
    elemKindOf[id] = i;
    arrayTypes.set(k, id);
  });
  const dequeType = heap.registerType('RRefDeque', TypeKind.Deque).id;
  elemKindOf[dequeType] = KIND_DEQUE;
  const bytesType = arrayTypes.get('u8')!;
  const structTypes = new Map<string, number>();
  const layouts = new Map<number, LayoutSpec>();

  /** Scalar kind index k at byte address a. */
  function loadScalar(k: number, a: number): unknown {
    switch (k) {
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

  /** Store `v` as scalar kind index k at byte address a; a value of the wrong type is refused. */
  function storeScalar(k: number, a: number, v: unknown): void {
    if (k === 10) {
      dv.setUint8(a, v ? 1 : 0);
      return;
    }
    if (k === 8 || k === 9) {
      if (typeof v !== 'bigint') throw new HandleError('EINVAL', `expected a bigint, got ${typeof v}`);
      if (k === 8) dv.setBigUint64(a, v, true);
      else dv.setBigInt64(a, v, true);
      return;
    }
    if (typeof v !== 'number') throw new HandleError('EINVAL', `expected a number, got ${typeof v}`);
    switch (k) {
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

  const kit: HandleKit<H> = {
    heap,
    isHandle: isHandleImpl,
    slotOf: (h) => slotOfImpl(h as Handle),
    holderOf: (h) => holderOfImpl(h as Handle),
    isReadOnly: (h) => roOfImpl(h as Handle),
    checkMovable: checkMovableImpl,
    revoke: (h) => revokeImpl(h as Handle),
    mint: mintImpl,
    moveTo(h, from, to) {
      const s = checkMovableImpl(h, from);
      return mintAs(s, heap.move(s, to), to * 2);
    },
    moveTyped: moveTypedImpl,
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
      const childOffsets = spec.fields.filter((f) => f.kind === 'rref').map((f) => f.offset);
      const id = heap.registerType(spec.name, TypeKind.Struct, childOffsets).id;
      elemKindOf[id] = KIND_STRUCT;
      for (const f of spec.fields) defineField(spec.name, id, f);
      structTypes.set(spec.name, id);
      layouts.set(id, spec);
      return id;
    },
    layoutType: (name) => structTypes.get(name),
    allocBytes(o, bytes, align) {
      return mintImpl(heap.alloc(o, bytes, bytesType, align), o, false);
    },
    allocArray(o, kind, count, align) {
      const t = kit.arrayType(kind);
      return mintImpl(heap.alloc(o, count * SCALAR_SIZE[kind], t, align ?? Math.min(8, SCALAR_SIZE[kind])), o, false);
    },
    allocStruct(o, name) {
      const t = structTypes.get(name);
      if (t === undefined) throw new HandleError('EINVAL', `unknown layout struct ${JSON.stringify(name)}`);
      const spec = layouts.get(t)!;
      return mintImpl(heap.alloc(o, spec.size, t, spec.align), o, false);
    },
    allocDeque(o, capacity) {
      if (!Number.isInteger(capacity) || capacity < 1 || capacity > 65536) throw new HandleError('EINVAL', `deque capacity ${capacity} must be 1..65536`);
      const s = heap.alloc(o, DEQUE_HEADER + capacity * 4, dequeType, 8);
      dv.setUint32(off[s]! + 8, capacity, true);
      return mintImpl(s, o, false);
    },
  };
  return kit;
}

/** Scalar kinds in the order of their kind index (the handle kit's tables and field codes). */
const KINDS: readonly ScalarKind[] = ['u8', 'u16', 'u32', 'i8', 'i16', 'i32', 'f32', 'f64', 'u64', 'i64', 'bool'];

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a plain object';
  return typeof v;
}
