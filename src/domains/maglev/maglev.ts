/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016) for the maglev load-balancer program.
 *
 * Each backend has a permutation of the lookup table's M slots, given by offset = h1(name) mod M
 * and skip = h2(name) mod (M - 1) + 1 (M prime, so every skip generates all slots); backends take
 * turns claiming their next unclaimed preferred slot until the table is full. A flow's 5-tuple
 * hash indexes the table. A connection-tracking flow cache pins each flow to the backend it first
 * got, so table changes never move live flows of surviving backends.
 *
 * Invariants: every table entry names a live backend; backends' entry counts differ by at most 1
 * (round-robin population); backend ids are stable across backend-set changes (so the cache stays
 * valid); the per-packet path (lookup) allocates nothing: the cache is open addressing over one
 * preallocated array, a bounded probe, evicting the home slot when the probe finds no room.
 *
 * The cache knows a flow by a 63-bit key, not by its 13 bytes of 5-tuple: flowHash (31 bits: the
 * home slot, and its top bits in the tag) and flowCheck (32 bits, independent of it), as the
 * Maglev of RedLeaf's authors and NetBricks' key their connection tracking by a 64-bit flow hash.
 * A slot is two 32-bit words — flowCheck, and a tag of flowHash >>> 21, the probe distance and
 * backend id + 1 (0: empty) — so a probe reads one word pair, and 1M flows at load factor 1/2
 * take 16 MB, not the 32 MB four words per slot took (the cache misses of its lookups were
 * maglev's main cost).
 * Two flows share an entry only if both hashes agree: with 1M flows, a chance of about 5e-8 over
 * the whole cache, far below what evictions already move.
 */

/** The paper's table size: a prime, so every skip is a full-cycle step. */
export const MAGLEV_M = 65537;
/** Default flow-cache slots (power of two): room for 1M flows at load factor 1/2. */
export const DEFAULT_FLOW_SLOTS = 1 << 21;
const PROBES = 8;
const EMPTY = -1;
/** Words per flow-cache slot: flowCheck, tag. */
const SLOT_WORDS = 2;
/** Tag layout: backend id + 1 in the low bits, then the probe distance, then flowHash >>> 21. */
const TAG_ID_BITS = 18;
const TAG_PROBE_BITS = 3;
const TAG_ID_MASK = (1 << TAG_ID_BITS) - 1;
/** Largest number of backends a tag names (ids 0 .. MAX_BACKENDS - 1). */
const MAX_BACKENDS = TAG_ID_MASK;

/** 32-bit FNV-1a of a string with a seed, finished with murmur3's mixer. */
function strHash(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix(h);
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Hash of an IPv4 5-tuple: addresses as 32-bit numbers, `ports` = source port << 16 | destination
 * port (the transport header's first four bytes, big-endian), protocol 8-bit. 31 bits: a
 * non-negative int32, so a caller can keep hashes in an int32 array and mark "no flow" with -1.
 */
export function flowHash(srcIp: number, dstIp: number, ports: number, proto: number): number {
  let h = Math.imul(srcIp ^ 0x9e3779b9, 0xcc9e2d51);
  h = Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ dstIp;
  h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
  h ^= Math.imul(ports ^ (proto << 8), 0xcc9e2d51);
  return fmix(h) & 0x7fffffff;
}

/**
 * The flow's second, independent 32-bit hash (the rest of its cache key, see the header): other
 * seeds and rotations than flowHash, the same murmur3 finish. Any int32.
 */
export function flowCheck(srcIp: number, dstIp: number, ports: number, proto: number): number {
  let h = Math.imul(dstIp ^ 0x85ebca6b, 0x9e3779b1);
  h = Math.imul((h << 13) | (h >>> 19), 0x27d4eb2f) ^ srcIp;
  h = Math.imul((h << 11) | (h >>> 21), 0x165667b1) ^ ports;
  h = Math.imul((h << 17) | (h >>> 15), 0xc2b2ae35) ^ proto;
  return fmix(h) | 0;
}

/** Fills `table` (length M, prime) with indices into `names` by Maglev's permutation population. */
export function populate(names: readonly string[], table: Int32Array): void {
  const m = table.length;
  const n = names.length;
  if (n === 0) throw new RangeError('maglev: no backends');
  const cur = new Float64Array(n);
  const skip = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    cur[i] = strHash(names[i]!, 0x5bd1e995) % m;
    skip[i] = (strHash(names[i]!, 0x27d4eb2f) % (m - 1)) + 1;
  }
  table.fill(EMPTY);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      let c = cur[i]!;
      while (table[c] !== EMPTY) c = (c + skip[i]!) % m;
      table[c] = i;
      cur[i] = (c + skip[i]!) % m;
      if (++filled === m) return;
    }
  }
}

export class Maglev {
  /** Lookup table: M entries of stable backend ids. */
  readonly table: Int32Array;
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];
  private alive = new Uint8Array(0);
  private readonly mask: number;
  /** The flow cache: SLOT_WORDS words per slot (see the header). */
  private readonly cache: Int32Array;
  // Stores into the flow cache go through a DataView: under SES lockdown (domain code) a
  // `typedArray[i] = v` store takes a ~30 ns slow path, a DataView setter ~1 ns. Loads are fine.
  private readonly wCache: DataView;
  private readonly scratch: Int32Array;
  private cached = 0;

  constructor(backends: readonly string[], opts: { tableSize?: number; flowSlots?: number } = {}) {
    const m = opts.tableSize ?? MAGLEV_M;
    const slots = opts.flowSlots ?? DEFAULT_FLOW_SLOTS;
    if (!Number.isInteger(slots) || slots < PROBES || (slots & (slots - 1)) !== 0) throw new RangeError('maglev: flowSlots must be a power of two >= 8');
    this.table = new Int32Array(m);
    this.scratch = new Int32Array(m);
    this.mask = slots - 1;
    this.cache = new Int32Array(slots * SLOT_WORDS);
    this.wCache = new DataView(this.cache.buffer);
    this.setBackends(backends);
  }

  /** Replaces the backend set (control plane): rebuilds the table; cached flows of survivors stay put. */
  setBackends(backends: readonly string[]): void {
    if (new Set(backends).size !== backends.length) throw new RangeError('maglev: duplicate backend names');
    if (this.names.length + backends.length > MAX_BACKENDS) throw new RangeError(`maglev: more than ${MAX_BACKENDS} backends`);
    populate(backends, this.scratch);
    for (const b of backends) if (!this.ids.has(b)) { this.ids.set(b, this.names.length); this.names.push(b); }
    const alive = new Uint8Array(this.names.length);
    const idOf = backends.map((b) => this.ids.get(b)!);
    for (const id of idOf) alive[id] = 1;
    for (let i = 0; i < this.table.length; i++) this.table[i] = idOf[this.scratch[i]!]!;
    this.alive = alive;
  }

  backendName(id: number): string {
    return this.names[id]!;
  }

  /** Flows currently held by the cache. */
  get cachedFlows(): number {
    return this.cached;
  }

  /** The backend (stable id) for a flow: its cached backend if still alive, else the table's, cached. */
  lookup(srcIp: number, dstIp: number, srcPort: number, dstPort: number, proto: number): number {
    const ports = ((srcPort << 16) | dstPort) >>> 0;
    return this.lookupHashed(flowHash(srcIp, dstIp, ports, proto), srcIp, dstIp, ports, proto);
  }

  /**
   * Reads the flow-cache line of each of the first n hashes in `hashes` (flowHash values as
   * little-endian int32 at i * 4; -1: no flow) and returns a value derived from them. A batch
   * touches all its lines first, in this tight loop, so their misses overlap: taken one after
   * another, inside the lookups, each costs a DRAM access and a page walk (16 MB of cache is far
   * beyond the TLB's reach), and a batch's lookups then took ~3x as long. The caller keeps the
   * value somewhere, so the loads stay.
   */
  touch(hashes: DataView, n: number): number {
    const c = this.cache;
    const mask = this.mask;
    let t = 0;
    for (let i = 0; i < n; i++) {
      const h = hashes.getInt32(i * 4, true);
      if (h >= 0) t = (t + c[(h & mask) * SLOT_WORDS + 1]!) | 0;
    }
    return t;
  }

  /** lookup() with the flow's hash already computed (flowHash of the same 5-tuple; ports packed as there). */
  lookupHashed(h: number, srcIp: number, dstIp: number, ports: number, proto: number): number {
    const check = flowCheck(srcIp | 0, dstIp | 0, ports | 0, proto & 0xff);
    const key = h >>> 21;
    const c = this.cache;
    const mask = this.mask;
    const home = h & mask;
    let free = -1;
    let freeAt = 0;
    for (let p = 0; p < PROBES; p++) {
      const s = (home + p) & mask;
      const o = s * SLOT_WORDS;
      const tag = c[o + 1]!;
      if (tag === 0) {
        if (free < 0) { free = s; freeAt = p; }
        continue;
      }
      if (tag >>> TAG_ID_BITS === ((key << TAG_PROBE_BITS) | p) && c[o] === check) {
        const id = (tag & TAG_ID_MASK) - 1;
        if (this.alive[id] === 1) return id;
        const nid = this.table[h % this.table.length]!;
        this.wCache.setInt32((o + 1) * 4, (tag & ~TAG_ID_MASK) | (nid + 1), true);
        return nid;
      }
    }
    const id = this.table[h % this.table.length]!;
    // Full probe window: evict the home slot.
    const s = free >= 0 ? free : home;
    const p = free >= 0 ? freeAt : 0;
    if (free >= 0) this.cached++;
    const b = s * SLOT_WORDS * 4;
    this.wCache.setInt32(b, check, true);
    this.wCache.setInt32(b + 4, (((key << TAG_PROBE_BITS) | p) << TAG_ID_BITS) | (id + 1), true);
    return id;
  }
}
