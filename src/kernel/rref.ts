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
 */
import './lockdown.js';
import { DEQUE_HEADER, type ExchangeHeap, NO_PARENT, TypeKind, type TypeInfo, KERNEL_OWNER } from './heap.js';
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
  const { gen, off, len, borrows, owner, parent, dv, u8, phys, hasChildren } = heap;
  const i32 = new Int32Array(phys);
  const classByType: Array<new (t: symbol, s: number, g: number, ro: boolean, h: number) => Handle> = [];
  // Per type id: element-kind index (scalar kinds 0..10, then KIND_STRUCT, KIND_DEQUE).
  const elemKindOf: number[] = [];
  const elemSize: number[] = [];
  const elemGet: Array<(o: number) => unknown> = [];
  const elemSet: Array<(o: number, v: never) => void> = [];
  const KIND_ARRAY = -1; // "any scalar array" in kind()
  const KIND_STRUCT = 100;
  const KIND_DEQUE = 101;

  let slotOfImpl!: (h: Handle) => number;
  let genOfImpl!: (h: Handle) => number;
  let holderOfImpl!: (h: Handle) => number;
  let roOfImpl!: (h: Handle) => boolean;
  let revokeImpl!: (h: Handle) => void;
  let isHandleImpl!: (v: unknown) => boolean;

  const violation = (holder: number, code: HandleError['code'], msg: string): never => {
    const err = new HandleError(code, msg);
    if (holder !== KERNEL_OWNER) onViolation(holder, err);
    throw err;
  };

  class Handle {
    #s: number;
    #g: number;
    #ro: boolean;
    #h: number;
    constructor(token: symbol, s: number, g: number, ro: boolean, holder: number) {
      if (token !== TOKEN) throw new TypeError('RRef handles are created by the kernel only');
      this.#s = s;
      this.#g = g;
      this.#ro = ro;
      this.#h = holder;
    }
    static {
      slotOfImpl = (h) => h.#s;
      genOfImpl = (h) => h.#g;
      holderOfImpl = (h) => h.#h;
      roOfImpl = (h) => h.#ro;
      revokeImpl = (h) => {
        h.#g = -1;
      };
      isHandleImpl = (v) => typeof v === 'object' && v !== null && #s in v;
    }
    /** Base byte offset if the handle may read; throws (and reports) otherwise. */
    protected r(): number {
      const s = this.#s;
      if (gen[s] !== this.#g) return violation(this.#h, 'EREVOKED', `use of a revoked RRef (slot ${s}): it was moved, dropped, or its owner died`);
      return off[s]!;
    }
    /** Base byte offset if the handle may write. */
    protected w(): number {
      const s = this.#s;
      if (gen[s] !== this.#g) return violation(this.#h, 'EREVOKED', `use of a revoked RRef (slot ${s}): it was moved, dropped, or its owner died`);
      if (this.#ro) return violation(this.#h, 'EREADONLY', `write through a borrowed (read-only) RRef (slot ${s})`);
      if (borrows[s] !== 0) return violation(this.#h, 'EBORROWED', `write to an RRef that is lent to a call in progress (slot ${s})`);
      return off[s]!;
    }
    protected bounds(o: number, n: number): void {
      if (!(o >= 0 && o + n <= len[this.#s]!)) {
        violation(this.#h, 'ERANGE', `RRef access at offset ${o} of ${n} bytes is outside its ${len[this.#s]} bytes`);
      }
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
    const b = this.r();
    this.bounds(o, 1);
    return u8[b + o]!;
  }
  setU8(o: number, v: number): void {
    const b = this.w();
    this.bounds(o, 1);
    dv.setUint8(b + o, v);
  }
  getU16(o: number): number {
    const b = this.r();
    this.bounds(o, 2);
    return dv.getUint16(b + o, true);
  }
  setU16(o: number, v: number): void {
    const b = this.w();
    this.bounds(o, 2);
    dv.setUint16(b + o, v, true);
  }
  getU32(o: number): number {
    const b = this.r();
    this.bounds(o, 4);
    return dv.getUint32(b + o, true);
  }
  setU32(o: number, v: number): void {
    const b = this.w();
    this.bounds(o, 4);
    dv.setUint32(b + o, v, true);
  }
  loadU32(o: number): number {
    const b = this.r();
    this.bounds(o, 4);
    if ((b + o) % 4 !== 0) throw new HandleError('EINVAL', `atomic access at unaligned offset ${o}`);
    return Atomics.load(i32, (b + o) >> 2) >>> 0;
  }
  storeU32(o: number, v: number): void {
    const b = this.w();
    this.bounds(o, 4);
    if ((b + o) % 4 !== 0) throw new HandleError('EINVAL', `atomic access at unaligned offset ${o}`);
    Atomics.store(i32, (b + o) >> 2, v | 0);
  }
  getU64(o: number): number {
    const b = this.r();
    this.bounds(o, 8);
    return dv.getUint32(b + o, true) + dv.getUint32(b + o + 4, true) * 0x1_0000_0000;
  }
  setU64(o: number, v: number): void {
    const b = this.w();
    this.bounds(o, 8);
    dv.setUint32(b + o, v % 0x1_0000_0000, true);
    dv.setUint32(b + o + 4, Math.floor(v / 0x1_0000_0000), true);
  }
  read(o: number, dst: Uint8Array, dstOff = 0, n = dst.length - dstOff): void {
    const b = this.r();
    this.bounds(o, n);
    if (!(dstOff >= 0 && dstOff + n <= dst.length)) throw new HandleError('ERANGE', `read: destination range ${dstOff}+${n} outside ${dst.length} bytes`);
    dst.set(u8.subarray(b + o, b + o + n), dstOff);
  }
  write(o: number, src: Uint8Array, srcOff = 0, n = src.length - srcOff): void {
    const b = this.w();
    this.bounds(o, n);
    if (!(srcOff >= 0 && srcOff + n <= src.length)) throw new HandleError('ERANGE', `write: source range ${srcOff}+${n} outside ${src.length} bytes`);
    u8.set(src.subarray(srcOff, srcOff + n), b + o);
  }
  fill(v: number, o = 0, n?: number): void {
    const b = this.w();
    const count = n ?? len[slotOfImpl(this)]! - o;
    this.bounds(o, count);
    u8.fill(v, b + o, b + o + count);
  }
  copyFrom(src: Handle, srcOff: number, dstOff: number, n: number): void {
    if (!(src instanceof Handle)) throw new HandleError('EINVAL', 'copyFrom: source is not a byte RRef');
    const sb = src.r();
    src.bounds(srcOff, n);
    const b = this.w();
    this.bounds(dstOff, n);
    u8.copyWithin(b + dstOff, sb + srcOff, sb + srcOff + n);
  }

    // ---- arrays (RRefArray<T>, bytes included) ----
    get length(): number {
      const b = this.r();
      const s = this.#s;
      const t = elemKindOf[heap.type[s]!]!;
      if (t === KIND_DEQUE) return dv.getUint32(b + 4, true);
      if (t === KIND_STRUCT) return violation(this.#h, 'EINVAL', 'a struct RRef has no length');
      return Math.floor(len[s]! / elemSize[t]!);
    }
    get(i: number): unknown {
      const b = this.r();
      const k = this.kind(KIND_ARRAY);
      const size = elemSize[k]!;
      this.bounds(i * size, size);
      return elemGet[k]!(b + i * size);
    }
    set(i: number, v: unknown): void {
      const b = this.w();
      const k = this.kind(KIND_ARRAY);
      const size = elemSize[k]!;
      this.bounds(i * size, size);
      elemSet[k]!(b + i * size, v as never);
    }
    /** The element-kind index of this handle's type, checked against what the method needs. */
    protected kind(want: number): number {
      const k = elemKindOf[heap.type[this.#s]!]!;
      if (want === KIND_ARRAY ? k >= KIND_STRUCT : k !== want) {
        violation(this.#h, 'EINVAL', `this RRef (${heap.typeInfo(heap.type[this.#s]!).name}) has no such operation`);
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
      violation(this.#h, 'EINVAL', `deque (slot ${this.#s}) has a corrupt header`);
    }
  }

  push(v: unknown): boolean {
    const b = this.w();
    this.kind(KIND_DEQUE);
    const self = slotOfImpl(this);
    const holder = holderOfImpl(this);
    const c = checkMovableImpl(v, holder);
    // No cycles: the deque may not end up inside itself (only a value with children can hold it).
    if (hasChildren[heap.type[c]!] === 1) {
      for (let p = self; p !== NO_PARENT; p = parent[p]!) {
        if (p === c) violation(holder, 'EINVAL', 'push of an RRef that contains this deque');
      }
    }
    const head = dv.getUint32(b, true);
    const count = dv.getUint32(b + 4, true);
    const cap = dv.getUint32(b + 8, true);
    this.checkRing(head, count, cap);
    if (count === cap) return false;
    dv.setUint32(b + DEQUE_HEADER + ((head + count) % cap) * 4, c, true);
    dv.setUint32(b + 4, count + 1, true);
    heap.adopt(self, c);
    return true;
  }
  pop(): Handle | undefined {
    const b = this.w();
    this.kind(KIND_DEQUE);
    const head = dv.getUint32(b, true);
    const count = dv.getUint32(b + 4, true);
    const cap = dv.getUint32(b + 8, true);
    this.checkRing(head, count, cap);
    if (count === 0) return undefined;
    const c = dv.getUint32(b + DEQUE_HEADER + head * 4, true);
    dv.setUint32(b, (head + 1) % cap, true);
    dv.setUint32(b + 4, count - 1, true);
    const self = slotOfImpl(this);
    if (!heap.validChild(self, c)) return violation(holderOfImpl(this), 'EINVAL', `deque (slot ${self}) holds a corrupt element entry`);
    heap.release(c);
    return mintImpl(c, holderOfImpl(this), false);
  }

    drop(): void {
      this.w();
      const s = this.#s;
      if (parent[s] !== NO_PARENT) violation(this.#h, 'EINVAL', `drop of an RRef that lives inside another one (slot ${s}); take it out first`);
      heap.free(s);
    }
  }

  const structClasses = new Map<string, number>();

  const makeStructClass = (spec: LayoutSpec): typeof Handle => {
    // An explicit constructor: an implicit derived one spreads its arguments, slow under lockdown.
    class StructHandle extends Handle {
      constructor(t: symbol, s: number, g: number, ro: boolean, h: number) {
        super(t, s, g, ro, h);
      }
    }
    const proto = StructHandle.prototype as unknown as Record<string, unknown>;
    for (const f of spec.fields) {
      let desc: PropertyDescriptor;
      if (f.kind === 'rref') {
        desc = {
          get(this: StructHandle) {
            const b = this.r();
            const c = dv.getUint32(b + f.offset, true);
            if (c === 0) return null;
            const s = slotOfImpl(this);
            if (!heap.validChild(s, c - 1)) return violation(holderOfImpl(this), 'EINVAL', `field ${f.name} holds a corrupt RRef`);
            return mintImpl(c - 1, holderOfImpl(this), roOfImpl(this));
          },
          set(this: StructHandle, v: unknown) {
            const b = this.w();
            const s = slotOfImpl(this);
            const old = dv.getUint32(b + f.offset, true);
            if (v === null) {
              dv.setUint32(b + f.offset, 0, true);
            } else {
              const c = checkMovableImpl(v, holderOfImpl(this));
              for (let p = s; p !== NO_PARENT; p = parent[p]!) {
                if (p === c) violation(holderOfImpl(this), 'EINVAL', `field ${f.name}: an RRef cannot contain itself`);
              }
              dv.setUint32(b + f.offset, c + 1, true);
              heap.adopt(s, c);
            }
            // Assignment drops the previous value, as in Rust.
            if (old !== 0 && heap.validChild(s, old - 1)) {
              heap.release(old - 1);
              heap.free(old - 1);
            }
          },
        };
      } else if (f.kind === 'array') {
        const ek = f.elem!;
        const es = SCALAR_SIZE[ek];
        const n = f.count!;
        const get = scalarGetter(dv, ek);
        const set = scalarSetter(dv, ek);
        desc = {
          get(this: StructHandle) {
            const b = this.r() + f.offset;
            const out: unknown[] = [];
            for (let i = 0; i < n; i++) out.push(get(b + i * es));
            return Object.freeze(out);
          },
          set(this: StructHandle, v: ArrayLike<never>) {
            const b = this.w() + f.offset;
            if (v === null || typeof v !== 'object' || v.length !== n) {
              violation(holderOfImpl(this), 'EINVAL', `field ${f.name} takes exactly ${n} elements`);
            }
            for (let i = 0; i < n; i++) set(b + i * es, v[i]!);
          },
        };
      } else {
        const get = scalarGetter(dv, f.kind);
        const set = scalarSetter(dv, f.kind);
        desc = {
          get(this: StructHandle) {
            return get(this.r() + f.offset);
          },
          set(this: StructHandle, v: never) {
            set(this.w() + f.offset, v);
          },
        };
      }
      Object.defineProperty(proto, f.name, { ...desc, enumerable: true, configurable: false });
    }
    Object.defineProperty(StructHandle, 'name', { value: `RRef<${spec.name}>` });
    return StructHandle;
  };

  const mintImpl = (slot: number, holder: number, ro: boolean): Handle => {
    const C = classByType[heap.type[slot]!]!;
    return new C(TOKEN, slot, gen[slot]!, ro, holder);
  };

  const checkMovableImpl = (v: unknown, holder: number): number => {
    if (!isHandleImpl(v)) return violation(holder, 'EINVAL', `expected an RRef handle, got ${describe(v)}`);
    return movableSlot(v as Handle, holder);
  };

  /** checkMovable's checks after the brand check: the slot of `h` if `holder` may move it. */
  const movableSlot = (h: Handle, holder: number): number => {
    const s = slotOfImpl(h);
    if (gen[s] !== genOfImpl(h)) return violation(holder, 'EREVOKED', `use of a revoked RRef (slot ${s}): it was moved, dropped, or its owner died`);
    if (roOfImpl(h)) return violation(holder, 'EREADONLY', `a borrowed RRef (slot ${s}) cannot be moved`);
    if (borrows[s] !== 0) return violation(holder, 'EBORROWED', `an RRef lent to a call in progress (slot ${s}) cannot be moved`);
    if (parent[s] !== NO_PARENT) return violation(holder, 'EINVAL', `an RRef inside another one (slot ${s}) cannot be moved on its own; take it out first`);
    if (owner[s] !== holder) return violation(holder, 'EINVAL', `foreign RRef (slot ${s}): not owned by the domain using it`);
    return s;
  };

  const register = (info: TypeInfo, C: new (t: symbol, s: number, g: number, ro: boolean, h: number) => Handle): number => {
    classByType[info.id] = C;
    return info.id;
  };

  // Arrays and deques are instances of Handle itself: a class with no base constructor to call
  // is what makes minting a handle cheap (see lockdown.ts on why derived classes are avoided).
  harden(Handle);
  const arrayTypes = new Map<ScalarKind, number>();
  const kinds: ScalarKind[] = ['u8', 'u16', 'u32', 'i8', 'i16', 'i32', 'f32', 'f64', 'u64', 'i64', 'bool'];
  kinds.forEach((k, i) => {
    elemSize[i] = SCALAR_SIZE[k];
    elemGet[i] = scalarGetter(dv, k);
    elemSet[i] = scalarSetter(dv, k);
    const id = register(heap.registerType(`RRefArray<${k}>`, TypeKind.Array), Handle);
    elemKindOf[id] = i;
    arrayTypes.set(k, id);
  });
  const dequeType = register(heap.registerType('RRefDeque', TypeKind.Deque), Handle);
  elemKindOf[dequeType] = KIND_DEQUE;
  const bytesType = arrayTypes.get('u8')!;

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
      heap.move(s, to);
      return mintImpl(s, to, false);
    },
    moveTyped(h, typeId, from, to) {
      if (!isHandleImpl(h) || heap.type[slotOfImpl(h as Handle)] !== typeId) return null;
      const s = movableSlot(h as Handle, from);
      return new classByType[typeId]!(TOKEN, s, heap.move(s, to), false, to);
    },
    bytesType,
    dequeType,
    arrayType(kind) {
      const t = arrayTypes.get(kind);
      if (t === undefined) throw new HandleError('EINVAL', `unknown element type ${String(kind)}`);
      return t;
    },
    registerLayout(spec) {
      const existing = structClasses.get(spec.name);
      if (existing !== undefined) return existing;
      const childOffsets = spec.fields.filter((f) => f.kind === 'rref').map((f) => f.offset);
      const C = makeStructClass(spec);
      harden(C);
      const id = register(heap.registerType(spec.name, TypeKind.Struct, childOffsets), C);
      elemKindOf[id] = KIND_STRUCT;
      structClasses.set(spec.name, id);
      layouts.set(id, spec);
      return id;
    },
    layoutType: (name) => structClasses.get(name),
    allocBytes(o, bytes, align) {
      return mintImpl(heap.alloc(o, bytes, bytesType, align), o, false);
    },
    allocArray(o, kind, count, align) {
      const t = kit.arrayType(kind);
      return mintImpl(heap.alloc(o, count * SCALAR_SIZE[kind], t, align ?? Math.min(8, SCALAR_SIZE[kind])), o, false);
    },
    allocStruct(o, name) {
      const t = structClasses.get(name);
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
  const layouts = new Map<number, LayoutSpec>();
  return kit;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a plain object';
  return typeof v;
}

function scalarGetter(dv: DataView, k: ScalarKind): (o: number) => never {
  switch (k) {
    case 'u8': return ((o: number) => dv.getUint8(o)) as never;
    case 'i8': return ((o: number) => dv.getInt8(o)) as never;
    case 'bool': return ((o: number) => dv.getUint8(o) !== 0) as never;
    case 'u16': return ((o: number) => dv.getUint16(o, true)) as never;
    case 'i16': return ((o: number) => dv.getInt16(o, true)) as never;
    case 'u32': return ((o: number) => dv.getUint32(o, true)) as never;
    case 'i32': return ((o: number) => dv.getInt32(o, true)) as never;
    case 'f32': return ((o: number) => dv.getFloat32(o, true)) as never;
    case 'f64': return ((o: number) => dv.getFloat64(o, true)) as never;
    case 'u64': return ((o: number) => dv.getBigUint64(o, true)) as never;
    case 'i64': return ((o: number) => dv.getBigInt64(o, true)) as never;
  }
}

function scalarSetter(dv: DataView, k: ScalarKind): (o: number, v: never) => void {
  const num = (v: unknown): number => {
    if (typeof v !== 'number') throw new HandleError('EINVAL', `expected a number, got ${typeof v}`);
    return v;
  };
  const big = (v: unknown): bigint => {
    if (typeof v !== 'bigint') throw new HandleError('EINVAL', `expected a bigint, got ${typeof v}`);
    return v;
  };
  switch (k) {
    case 'u8': return (o, v) => dv.setUint8(o, num(v));
    case 'i8': return (o, v) => dv.setInt8(o, num(v));
    case 'bool': return (o, v) => dv.setUint8(o, (v as unknown) ? 1 : 0);
    case 'u16': return (o, v) => dv.setUint16(o, num(v), true);
    case 'i16': return (o, v) => dv.setInt16(o, num(v), true);
    case 'u32': return (o, v) => dv.setUint32(o, num(v), true);
    case 'i32': return (o, v) => dv.setInt32(o, num(v), true);
    case 'f32': return (o, v) => dv.setFloat32(o, num(v), true);
    case 'f64': return (o, v) => dv.setFloat64(o, num(v), true);
    case 'u64': return (o, v) => dv.setBigUint64(o, big(v), true);
    case 'i64': return (o, v) => dv.setBigInt64(o, big(v), true);
  }
}
