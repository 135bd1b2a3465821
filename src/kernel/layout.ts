/**
 * Layout structs: the fixed-size field kinds the IDL understands and the computed layout of a
 * struct (shared by the IDL compiler, which computes layouts, and the kernel, which builds handle
 * accessors from them). Pure data: no authority, no lockdown needed.
 */
export type ScalarKind = 'u8' | 'u16' | 'u32' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64' | 'u64' | 'i64' | 'bool';

export interface FieldSpec {
  name: string;
  /** Scalar kind, 'rref' for a child handle (u32 slot+1), or 'array' for a fixed array. */
  kind: ScalarKind | 'rref' | 'array';
  offset: number;
  /** For 'array': element kind and count. */
  elem?: ScalarKind;
  count?: number;
  /**
   * For 'rref': what the field may hold, as a type key — 'struct:<layout>', 'array:<elem>' or
   * 'deque' (the IDL's declared type). The kernel refuses a store of any other RRef type, so a
   * domain reading the field can rely on its declared type (e.g. a deque's capacity).
   */
  holds?: string;
  /**
   * For a field holding a deque: its elements' declared type key ('struct:<layout>' or
   * 'array:<elem>'), if declared. Only the interface fingerprint uses it (it changes with the
   * element type); the kernel does not check a deque's elements on a store.
   */
  dequeOf?: string;
}

export interface LayoutSpec {
  name: string;
  size: number;
  align: number;
  fields: FieldSpec[];
}

export const SCALAR_SIZE: Record<ScalarKind, number> = {
  u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, f64: 8, u64: 8, i64: 8,
};

/**
 * The largest layout struct, in bytes (64 KiB); the IDL compiler refuses a FixedArray field or a
 * layout beyond it. A layout is a control block, not a buffer (bulk data goes in an RRefArray
 * field, moved or lent without copying), and the limit keeps it one:
 *  - the kernel reads and writes a FixedArray field whole, element by element (readField builds a
 *    frozen array of all of them), in kernel code, which runs no deadline checks: the limit bounds
 *    what one field access by a domain costs the kernel;
 *  - a struct is allocated from the heap's size classes (at most 1 MiB, MAX_CLASS_SHIFT in
 *    heap.ts), and is a small part of the smallest exchange heap (1 MiB), so a layout that
 *    compiles can always be allocated in a heap that has room; without a limit, `FixedArray<u8,
 *    1e12>` compiled into a struct no heap (at most 4 GiB) could ever hold, whose size no u32
 *    length column (the slot table's `len`) could record;
 *  - sizes and offsets stay exact integers far inside u32 however many fields a layout has, since
 *    each field is checked before it is added.
 */
export const MAX_LAYOUT_BYTES = 64 * 1024;


/**
 * The members of an RRef handle (Handle.prototype in rref.ts, which checks this list against
 * itself when it loads). A layout field becomes an accessor on that prototype, so a field of one
 * of these names (or of Object.prototype's) would hide the member: the IDL compiler refuses it,
 * rather than every kernel refusing the layouts when it starts.
 */
export const HANDLE_MEMBERS: readonly string[] = [
  'r', 'w', 'unwritable', 'ra', 'wa', 'refuse', 'valid', 'addr', 'byteLength', 'getU8', 'setU8',
  'getU16', 'setU16', 'getU32', 'setU32', 'loadU32', 'storeU32', 'getU64', 'setU64', 'read',
  'write', 'fill', 'copyFrom', 'length', 'get', 'set', 'kind', 'capacity', 'checkRing', 'wDeque',
  'push', 'pop', 'moveFrom', 'moveFromSized', 'moveRun', 'drop', 'getField', 'setField',
  'readField', 'writeField', 'noField', 'readEach', 'writeEach', 'extents', 'eachStart',
  'eachRefused',
];
