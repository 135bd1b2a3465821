/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016) for the maglev load-balancer program.
 *
 * Each backend has a permutation of the lookup table's M slots, given by offset = h1(name) mod M
 * and skip = h2(name) mod (M - 1) + 1 (M prime, so every skip generates all slots); backends take
 * turns claiming their next unclaimed preferred slot until the table is full. A flow's 5-tuple
 * hash indexes the table. Connection tracking pins each flow to the backend it first got, so table
 * changes never move live flows of surviving backends.
 *
 * Connection tracking is lazy (a decision of ours; Maglev inserts every flow into its table):
 * while a table entry has never changed, every flow through it has had that entry's backend all
 * along, so it needs no tracking entry to keep it — only a record that it was seen. So:
 *  - `route`: per table entry, its backend while the entry has never changed (setBackends), -1
 *    once it has (sticky: flows pinned to its old backend may live on);
 *  - the direct path (route >= 0, every flow until the backend set first changes): the entry's
 *    backend, and the flow's bit set in this epoch's `seen` bitset (a bit per flowHash bucket, 256
 *    KB by default: in the CPU cache, where a tracking entry per flow, 16 MB, missed it on every
 *    lookup of a million flows);
 *  - an epoch ends at each setBackends: its table and its `seen` are kept (at most MAX_EPOCHS,
 *    newest first);
 *  - the tracked path (route < 0): the flow cache, as before — a connection-tracking table keyed by
 *    the flow; on a miss the flow's backend is the one it had in the newest kept epoch whose `seen`
 *    has its bit (if that backend still lives), else the current table's (a new flow), and the
 *    answer is cached.
 * What it gives up, in return for a lookup that stays in the CPU cache: a new flow whose seen-bit
 * bucket an older flow set is taken for that older one and sent to the backend that entry had then
 * (a live backend: any backend is right for a new flow, and from then on it is cached); and a flow
 * idle across more than MAX_EPOCHS backend-set changes loses its pin (as a connection-tracking
 * entry expires when idle). A flow evicted from the flow cache falls back to its seen bits, as
 * it lost its pin altogether before.
 *
 * Invariants: every table entry names a live backend; backends' entry counts differ by at most 1
 * (round-robin population); backend ids are stable across backend-set changes (so the cache and
 * the kept epochs stay valid); a flow through an entry that never changed gets the entry's
 * backend; the per-packet path (lookup) allocates nothing: the cache is open addressing over one
 * preallocated array, a bounded probe, evicting the home slot when the probe finds no room.
 *
 * Maglev knows a flow by a 31-bit key, not by its 13 bytes of 5-tuple, as the Maglev of RedLeaf's
 * authors and NetBricks' key their connection tracking by a flow hash: the key gives the flow's
 * table entry (key mod M), its seen bit and its home slot in the cache. The key is flowKey of the
 * NIC's RSS hash where the Net reports one (NetLink.rxInfo: the NIC hashed the addresses and
 * ports as it received the frame, so the balancer reads no header), else flowHash of the 5-tuple
 * (nullnet); an app takes one or the other for its whole life, so a flow's key never changes. A
 * slot is two 32-bit words — the key, and a tag of key >>> 21, the probe distance and backend id
 * + 1 (0: empty) — so a probe reads one word pair and a hit is the whole key. Two flows with one
 * key are one flow here — the same table entry, seen bit and cache entry, so the same backend at
 * every moment: neither is ever moved by the other, and a new flow that takes an older one's key
 * gets that flow's backend (a live one, and any is right for a new flow). With 1M flows, a few
 * hundred keys are shared.
 */

/** The paper's table size: a prime, so every skip is a full-cycle step. */
export const MAGLEV_M = 65537;
/** Default flow-cache slots and seen bits per epoch (power of two): room for 1M flows at load factor 1/2. */
export const DEFAULT_FLOW_SLOTS = 1 << 21;
/** Epochs (backend sets before the current one) whose seen flows keep their pins. */
export const MAX_EPOCHS = 8;
const PROBES = 8;
const EMPTY = -1;
/** Bits per word of a seen bitset (flowSlots is at least one word's worth). */
const SEEN_WORD_BITS = 32;
/** Words per flow-cache slot: the key, tag. */
const SLOT_WORDS = 2;
/** Tag layout: backend id + 1 in the low bits, then the probe distance, then the key >>> 21. */
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
 * A flow's key from a hash of its 5-tuple that the NIC computed (the RSS Toeplitz hash: linear,
 * so its low bits alone spread structured flows poorly), mixed: 31 bits, as flowHash's.
 */
export function flowKey(rssHash: number): number {
  return fmix(rssHash) & 0x7fffffff;
}

/**
 * A flow's key when no NIC hashed it: a hash of its IPv4 5-tuple (addresses as 32-bit numbers,
 * `ports` = source port << 16 | destination port, the transport header's first four bytes,
 * big-endian; protocol 8-bit). 31 bits: a non-negative int32, so a caller can keep keys in an
 * int32 array and mark "no flow" with -1.
 */
export function flowHash(srcIp: number, dstIp: number, ports: number, proto: number): number {
  let h = Math.imul(srcIp ^ 0x9e3779b9, 0xcc9e2d51);
  h = Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ dstIp;
  h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
  h ^= Math.imul(ports ^ (proto << 8), 0xcc9e2d51);
  return fmix(h) & 0x7fffffff;
}

/** Fills `table` (length M, prime) with indices into `names` by Maglev's permutation population. */
export function populate(names: readonly string[], table: Int32Array): void {
  const m = table.length;
  const n = names.length;
  if (n === 0) throw new RangeError('maglev: no backends');
  // Each backend's permutation is offset, offset + skip, ... mod m; positions and skips are below
  // m (< 2^31), so a step is an add and at most one subtraction, not a floating-point modulo (the
  // table's ~m ln m steps took ~10 ms with one).
  const cur = new Int32Array(n);
  const skip = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    cur[i] = strHash(names[i]!, 0x5bd1e995) % m;
    skip[i] = (strHash(names[i]!, 0x27d4eb2f) % (m - 1)) + 1;
  }
  table.fill(EMPTY);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      const s = skip[i]!;
      let c = cur[i]!;
      while (table[c] !== EMPTY) {
        c += s;
        if (c >= m) c -= m;
      }
      table[c] = i;
      c += s;
      cur[i] = c >= m ? c - m : c;
      if (++filled === m) return;
    }
  }
}

/** A backend set that was replaced: its table and the flows that took the direct path under it. */
interface Epoch {
  readonly table: Int32Array;
  readonly seen: Int32Array;
}

export class Maglev {
  /** Lookup table: M entries of stable backend ids. */
  readonly table: Int32Array;
  /** Per table entry: its backend while the entry has never changed, else -1 (see the header). */
  private readonly route: Int32Array;
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];
  private alive = new Uint8Array(0);
  /** The backend set as last set, in its order. */
  private current: readonly string[] = [];
  private readonly mask: number;
  /** The flow cache: SLOT_WORDS words per slot (see the header). */
  private readonly cache: Int32Array;
  /** This epoch's flows that took the direct path: one bit per flowHash bucket (h & mask). */
  private seen: Int32Array;
  /** Earlier epochs, newest first. */
  private readonly epochs: Epoch[] = [];
  private readonly scratch: Int32Array;
  private cached = 0;
  private seenBits = 0;

  constructor(backends: readonly string[], opts: { flowSlots?: number } = {}) {
    const slots = opts.flowSlots ?? DEFAULT_FLOW_SLOTS;
    if (!Number.isInteger(slots) || slots < SEEN_WORD_BITS || (slots & (slots - 1)) !== 0) throw new RangeError(`maglev: flowSlots must be a power of two >= ${SEEN_WORD_BITS}`);
    this.table = new Int32Array(MAGLEV_M);
    this.route = new Int32Array(MAGLEV_M).fill(EMPTY);
    this.scratch = new Int32Array(MAGLEV_M);
    this.mask = slots - 1;
    this.cache = new Int32Array(slots * SLOT_WORDS);
    this.seen = new Int32Array(slots / SEEN_WORD_BITS);
    this.setBackends(backends);
  }

  /**
   * Sets the backend set (control plane): builds the table; a change of the set ends the epoch (its
   * seen flows keep their backends, see the header) and cached flows of survivors stay put. The
   * first set (the constructor's) routes every entry to its backend.
   */
  setBackends(backends: readonly string[]): void {
    const first = this.names.length === 0;
    // The set it already has, in the same order (the table depends on the order): no change, so no
    // epoch ends. A control plane re-applying its state ended one each time, and after MAX_EPOCHS
    // of those, idle flows through changed entries lost their pins.
    if (!first && backends.length === this.current.length && backends.every((b, i) => b === this.current[i])) return;
    if (new Set(backends).size !== backends.length) throw new RangeError('maglev: duplicate backend names');
    // Ids are never reused (see the header), so the limit is on names ever seen: a name already
    // known takes no new id (counting the whole set refused setting a large set again).
    let fresh = 0;
    for (const b of backends) if (!this.ids.has(b)) fresh++;
    if (this.names.length + fresh > MAX_BACKENDS) throw new RangeError(`maglev: more than ${MAX_BACKENDS} backends`);
    populate(backends, this.scratch);
    for (const b of backends) if (!this.ids.has(b)) { this.ids.set(b, this.names.length); this.names.push(b); }
    const alive = new Uint8Array(this.names.length);
    const idOf = backends.map((b) => this.ids.get(b)!);
    for (const id of idOf) alive[id] = 1;
    if (!first) {
      this.epochs.unshift({ table: this.table.slice(), seen: this.seen });
      if (this.epochs.length > MAX_EPOCHS) this.epochs.pop();
      this.seen = new Int32Array(this.seen.length);
      this.seenBits = 0;
    }
    for (let i = 0; i < this.table.length; i++) {
      const id = idOf[this.scratch[i]!]!;
      if (first) this.route[i] = id;
      else if (this.table[i] !== id) this.route[i] = EMPTY;
      this.table[i] = id;
    }
    this.alive = alive;
    this.current = backends.slice();
  }

  backendName(id: number): string {
    return this.names[id]!;
  }

  /** Flows currently held by the flow cache (those through table entries that changed). */
  get cachedFlows(): number {
    return this.cached;
  }

  /**
   * Flows tracked: this epoch's seen bits plus the cache's flows. An estimate from below: flows
   * sharing a seen-bit bucket count once (1M flows in 2^21 buckets: ~0.79M).
   */
  get trackedFlows(): number {
    return this.seenBits + this.cached;
  }

  /** The backend (stable id) for a flow: its cached backend if still alive, else the table's, cached. */
  lookup(srcIp: number, dstIp: number, srcPort: number, dstPort: number, proto: number): number {
    return this.lookupHashed(flowHash(srcIp, dstIp, ((srcPort << 16) | dstPort) >>> 0, proto));
  }

  /**
   * Reads, for each of the first n hashes in `hashes` (flow keys as little-endian int32 at
   * i * 4; -1: no flow), what its lookup will read: its `route` entry, then its flow-cache line
   * (tracked path) or its `seen` word (direct path); returns a value derived from them. A batch
   * touches all its lines first, in this tight loop, so their misses overlap: taken one after
   * another, inside the lookups, each costs a DRAM access and a page walk (16 MB of cache is far
   * beyond the TLB's reach). `route` and `seen` (256 KB each) fit the CPU's L2 alone, but not
   * beside the packet buffers and the kernel's tables: touching the seen words here made maglev
   * through a crossing ~4% faster (bench/RESULTS.md, session 24), though `maglev-lookups.js`,
   * alone in its process, is slower with it. The caller keeps the value somewhere, so the loads
   * stay.
   */
  touch(hashes: DataView, n: number): number {
    const c = this.cache;
    const route = this.route;
    const seen = this.seen;
    const mask = this.mask;
    let t = 0;
    for (let i = 0; i < n; i++) {
      const h = hashes.getInt32(i * 4, true);
      if (h < 0) continue;
      if (route[h % MAGLEV_M]! < 0) t = (t + c[(h & mask) * SLOT_WORDS + 1]!) | 0;
      else t = (t + seen[(h & mask) >>> 5]!) | 0;
    }
    return t;
  }

  /** The backend for the flow of key `h` (flowHash or flowKey: see the header). */
  lookupHashed(h: number): number {
    // A constant divisor, which the JIT may turn into a multiply (touch takes this modulo too).
    const at = h % MAGLEV_M;
    const direct = this.route[at]!;
    if (direct >= 0) {
      // The flow's seen bit: word (h & mask) / SEEN_WORD_BITS, bit h % SEEN_WORD_BITS, as shifts
      // written out here and in pinned() (a helper would cost the per-frame path a deadline check).
      const w = (h & this.mask) >>> 5;
      const x = this.seen[w]!;
      const bit = 1 << (h & 31);
      if ((x & bit) === 0) {
        this.seen[w] = x | bit;
        this.seenBits++;
      }
      return direct;
    }
    return this.tracked(h, at);
  }

  /** The tracked path (see the header): the flow cache, then the kept epochs, then the table. */
  private tracked(h: number, at: number): number {
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
      if (tag >>> TAG_ID_BITS === ((key << TAG_PROBE_BITS) | p) && c[o] === h) {
        const id = (tag & TAG_ID_MASK) - 1;
        if (this.alive[id] === 1) return id;
        const nid = this.table[at]!;
        c[o + 1] = (tag & ~TAG_ID_MASK) | (nid + 1);
        return nid;
      }
    }
    const id = this.pinned(h, at);
    // Full probe window: evict the home slot.
    const s = free >= 0 ? free : home;
    const p = free >= 0 ? freeAt : 0;
    if (free >= 0) this.cached++;
    const o = s * SLOT_WORDS;
    c[o] = h;
    c[o + 1] = (((key << TAG_PROBE_BITS) | p) << TAG_ID_BITS) | (id + 1);
    return id;
  }

  /** A flow not in the cache: the backend it had in the newest kept epoch that saw it, if alive; else the table's. */
  private pinned(h: number, at: number): number {
    const w = (h & this.mask) >>> 5;
    const bit = 1 << (h & 31);
    for (const e of this.epochs) {
      if ((e.seen[w]! & bit) === 0) continue;
      const old = e.table[at]!;
      return this.alive[old] === 1 ? old : this.table[at]!;
    }
    return this.table[at]!;
  }
}
