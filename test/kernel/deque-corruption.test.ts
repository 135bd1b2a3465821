/**
 * Deque rings under DMA corruption: a hostile driver (domain 1) has its device write arbitrary
 * words into the headers and rings of the deques it owns (its own and other domains' slot
 * numbers, the deque's own slot, duplicates, out-of-range values, huge heads/counts/capacities),
 * then uses them (pop, push, moveFrom, moveFromSized, readEach, extents, length, drop, moves to
 * domain 2, its own death). Whatever it writes: only HandleError/HeapError escape; domain 2's
 * values stay live, unchanged and its own; nothing else becomes domain 2's; domain 1 never gets a
 * handle to what is not its own; accounting adds up; and the free lists never hold a slot or a
 * block twice (checked by allocating until the slots run out).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEQUE_HEADER, FREE, HeapError, NO_PARENT } from '../../src/kernel/heap.js';
import { HandleError } from '../../src/kernel/rref.js';
import { any, heapAndKit } from './kit-helpers.js';

const EVIL = 1;
const VICTIM = 2;
const OTHER = 3;
const MAX_SLOTS = 128;

type Op = [code: number, a: number, b: number, c: number];

/** How each kind of operation ended, over all runs (to see what the runs exercise). */
export const outcomes = new Map<string, number>();

/** Run `ops` against a fresh heap; throws (assert) when an invariant breaks. */
export function runCorruption(ops: readonly Op[]): void {
  const { heap, kit } = heapAndKit({ physBytes: 4 << 20, maxSlots: MAX_SLOTS });
  const slot = (h: object): number => kit.slotOf(h);
  // Domain 3 may inherit what domain 1 entrusted to it (a shadow); what it was given, per reclaim.
  const given: number[] = [];
  heap.setInheritance({
    mayInherit: (_dead, heir) => heir === OTHER,
    inherited: (dead, heir, roots) => {
      assert.equal(dead, EVIL);
      assert.equal(heir, OTHER);
      given.push(...roots);
    },
  });
  const lent: number[] = [];
  // In odd-length runs domain 1 drives a device doing DMA: what is freed is held back in batches
  // (quarantine) until its epoch has moved on (each read of it moves it one boundary).
  let epoch = 1;
  if (ops.length % 2 === 1) heap.guardDma(EVIL, () => (epoch += 2));

  // ---- domain 2's values: a deque of buffers, a NetIo holding a deque with a buffer, a buffer ----
  const vdq = any(kit.allocDeque(VICTIM, 4));
  vdq.push(kit.allocBytes(VICTIM, 16));
  vdq.push(kit.allocBytes(VICTIM, 32));
  const vio = any(kit.allocStruct(VICTIM, 'NetIo'));
  const vpk = any(kit.allocDeque(VICTIM, 2));
  vpk.push(kit.allocBytes(VICTIM, 8));
  vio.pkts = vpk;
  const vbuf = any(kit.allocBytes(VICTIM, 24));
  // Every slot of domain 2 now, with its generation, parent and bytes.
  const victim = new Map<number, { gen: number; parent: number; bytes: Uint8Array }>();
  for (let s = 0; s < heap.highWater; s++) {
    if (heap.owner[s] === VICTIM) {
      const off = heap.off[s]!;
      victim.set(s, { gen: heap.gen[s]!, parent: heap.parent[s]!, bytes: heap.u8.slice(off, off + heap.len[s]!) });
    }
  }
  void vbuf;

  // ---- domain 1's values: deques with buffers, a deque inside a deque, a NetIo with two deques ----
  const handles: any[] = [];
  const d0 = any(kit.allocDeque(EVIL, 5));
  for (let i = 0; i < 3; i++) d0.push(kit.allocBytes(EVIL, 8 + 8 * i));
  const d1 = any(kit.allocDeque(EVIL, 3));
  d1.push(kit.allocBytes(EVIL, 64));
  const inner = any(kit.allocDeque(EVIL, 2));
  inner.push(kit.allocBytes(EVIL, 8));
  d0.push(inner);
  const io = any(kit.allocStruct(EVIL, 'NetIo'));
  const pk = any(kit.allocDeque(EVIL, 4));
  pk.push(kit.allocBytes(EVIL, 8));
  pk.push(kit.allocBytes(EVIL, 16));
  io.pkts = pk;
  io.collect = kit.allocDeque(EVIL, 2);
  handles.push(d0, d1, io, any(kit.allocBytes(EVIL, 8)));

  // Slots that may be domain 2's: its own, and what moved to it (snapshotted at each move).
  const mayBeVictims = new Set<number>(victim.keys());
  // Slots that may be domain 3's: what it allocated, and what domain 1 held when it died.
  const mayBeOthers = new Set<number>();
  let dead = false;
  const scratch = new DataView(new ArrayBuffer(8 * 64));

  const ownerOf = (s: number): number => heap.ownerOf(s);
  const effective = (): Int32Array => (heap as any).effectiveOwners();
  const liveDeques = (): number[] => {
    const out: number[] = [];
    for (let s = 0; s < heap.highWater; s++) {
      if (heap.owner[s] !== FREE && heap.type[s] === kit.dequeType && ownerOf(s) === EVIL) out.push(s);
    }
    return out;
  };
  const vdqSlot = slot(vdq);
  const liveStructs = (): number[] => {
    const out: number[] = [];
    const netIo = kit.layoutType('NetIo');
    for (let s = 0; s < heap.highWater; s++) {
      if (heap.owner[s] !== FREE && heap.type[s] === netIo && ownerOf(s) === EVIL) out.push(s);
    }
    return out;
  };
  const dequeHandles = (): any[] => {
    const out: any[] = [];
    for (const h of handles) {
      try {
        if (!kit.isHandle(h) || heap.gen[slot(h)] !== kit.genOf(h)) continue;
        if (heap.type[slot(h)] === kit.dequeType) out.push(h);
        else if (heap.type[slot(h)] === kit.layoutType('NetIo')) {
          for (const f of [h.pkts, h.collect]) if (f) out.push(f);
        }
      } catch (e) {
        expected(e);
      }
    }
    return out;
  };
  const expected = (e: unknown): void => {
    if (!(e instanceof HandleError || e instanceof HeapError)) throw new Error(`unexpected exception: ${String((e as Error)?.stack ?? e)}`);
  };
  const attempt = (fn: () => void, what = ''): void => {
    try {
      fn();
      outcomes.set(`${what} ok`, (outcomes.get(`${what} ok`) ?? 0) + 1);
    } catch (e) {
      expected(e);
      const k = `${what} ${(e as HandleError).code}`;
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    }
  };
  const pick = <T>(xs: readonly T[], n: number): T | undefined => (xs.length === 0 ? undefined : xs[n % xs.length]);

  /** A word a device might write: chosen by `kind` from `v`. */
  const word = (ds: number, kind: number, v: number): number => {
    const base = heap.off[ds]!;
    const room = (heap.len[ds]! - DEQUE_HEADER) >>> 2;
    switch (kind % 10) {
      case 0: return pick([...victim.keys()], v)!; // another domain's slot
      case 1: return ds; // the deque's own slot
      case 2: return heap.u32[((base + DEQUE_HEADER) >>> 2) + (v % room)]!; // a duplicate entry
      case 3: return v % heap.highWater; // any slot in use
      case 4: return heap.highWater + (v % 8); // beyond the table in use
      case 5: return MAX_SLOTS + (v % 4); // beyond the table
      case 6: return 0xffff_ffff - (v % 4); // huge
      case 7: return v % 8; // small
      case 8: return pick(liveDeques(), v) ?? 0; // another deque of its own
      default: return v >>> 0;
    }
  };

  const check = (step: string): void => {
    const own = effective();
    // Domain 2's values: live, same generation and parent, its own, bytes unchanged.
    for (const [s, v] of victim) {
      assert.notEqual(heap.owner[s], FREE, `${step}: domain 2's slot ${s} was freed`);
      assert.equal(heap.gen[s], v.gen, `${step}: domain 2's slot ${s} changed generation`);
      assert.equal(heap.parent[s], v.parent, `${step}: domain 2's slot ${s} changed parent`);
      assert.equal(ownerOf(s), VICTIM, `${step}: domain 2's slot ${s} is now ${ownerOf(s)}'s`);
      assert.equal(own[s], VICTIM, `${step}: domain 2's slot ${s} counted for ${own[s]}`);
      const off = heap.off[s]!;
      assert.deepEqual(heap.u8.subarray(off, off + v.bytes.length), v.bytes, `${step}: domain 2's slot ${s} was written`);
    }
    // Nothing else is domain 2's (by its root or by accounting).
    for (let s = 0; s < heap.highWater; s++) {
      if (heap.owner[s] === FREE) continue;
      if (ownerOf(s) === VICTIM || own[s] === VICTIM) {
        assert.ok(mayBeVictims.has(s), `${step}: slot ${s} became domain 2's (ownerOf ${ownerOf(s)}, counted for ${own[s]}, parent ${heap.parent[s]})`);
      }
      if (ownerOf(s) === OTHER || own[s] === OTHER) {
        assert.ok(mayBeOthers.has(s), `${step}: slot ${s} became domain 3's (ownerOf ${ownerOf(s)}, counted for ${own[s]}, parent ${heap.parent[s]})`);
      }
      // A child names a live holder only if that is what it is (a free slot has no parent).
    }
    for (let s = heap.highWater; s < MAX_SLOTS; s++) assert.equal(heap.owner[s], FREE);
    // Parent links of live values end at a root: no cycle (push and moveFrom refuse to make one).
    for (let s = 0; s < heap.highWater; s++) {
      if (heap.owner[s] === FREE) continue;
      let c = s;
      let n = 0;
      while (heap.parent[c] !== NO_PARENT && n <= MAX_SLOTS) (c = heap.parent[c]!), n++;
      assert.ok(n <= MAX_SLOTS, `${step}: slot ${s}'s parent links form a cycle`);
    }
    // Handles domain 1 holds that are valid name its own values.
    for (const h of handles) {
      if (!kit.isHandle(h) || heap.gen[slot(h)] !== kit.genOf(h) || heap.owner[slot(h)] === FREE || kit.holderOf(h) !== EVIL) continue;
      assert.ok(!victim.has(slot(h)), `${step}: domain 1 holds a valid handle to domain 2's slot ${slot(h)}`);
      assert.equal(ownerOf(slot(h)), EVIL, `${step}: domain 1 holds a valid handle to slot ${slot(h)} of ${ownerOf(slot(h))}`);
    }
    // Accounting adds up.
    const total = heap.totalUsage();
    let slots = 0;
    let bytes = 0;
    for (const [, u] of heap.usageByOwner()) {
      slots += u.slots;
      bytes += u.bytes;
    }
    assert.deepEqual({ slots, bytes }, total, `${step}: usage by owner sums to the total`);
    if (dead) {
      // What was lent to a call in progress when it died is freed when the borrow ends.
      const waiting = (s: number): boolean => {
        for (let c = s, n = 0; c !== NO_PARENT && n <= MAX_SLOTS; c = heap.parent[c]!, n++) if (heap.isPendingFree(c) || heap.borrows[c] !== 0) return true;
        return false;
      };
      for (let s = 0; s < heap.highWater; s++) {
        if (heap.owner[s] === FREE || waiting(s)) continue;
        assert.notEqual(ownerOf(s), EVIL, `${step}: slot ${s} still the dead domain's`);
        assert.notEqual(own[s], EVIL, `${step}: slot ${s} still counted for the dead domain`);
      }
    }
    assert.equal(new Set(given).size, given.length, `${step}: a value given to the heir twice`);
    for (const s of given) assert.ok(!victim.has(s), `${step}: domain 2's slot ${s} given to domain 1's heir`);
  };

  check('setup');
  ops.forEach(([code, a, b, c], i) => {
    const step = `op ${i} [${code},${a},${b},${c}]`;
    const ds = dequeHandles();
    const dq = pick(ds, a);
    const other = pick(ds, b);
    // A dead domain runs no code, and its device was stopped: only the others act then.
    const act = dead && ![11, 13, 15].includes(code % 17) ? -1 : code % 17;
    switch (act) {
      case 0:
      case 1:
      case 2: {
        // DMA: one word of a deque of domain 1's (header or ring).
        if (dead) break;
        if (b % 7 === 6) {
          // An RRef field of one of its structs instead (a NetIo's deque or length array).
          const io = pick(liveStructs(), a);
          if (io === undefined) break;
          const v = c % 4 === 0 ? 0 : (word(pick(liveDeques(), c) ?? vdqSlot, c >>> 2, c >>> 4) + 1) >>> 0;
          heap.u32[(heap.off[io]! >>> 2) + ((c >>> 8) % 4)] = v;
          break;
        }
        const s = pick(liveDeques(), a);
        if (s === undefined) break;
        const words = heap.len[s]! >>> 2;
        const w = b % 5 < 2 ? b % 4 : b % words;
        heap.u32[(heap.off[s]! >>> 2) + w] = w === 0 || w === 1 || w === 2 ? (c % 3 === 0 ? word(s, c >>> 2, c) : c % 3 === 1 ? (c >>> 2) % 8 : 0xffff_fff0 + (c % 16)) >>> 0 : word(s, c >>> 2, c >>> 4) >>> 0;
        break;
      }
      case 3:
        if (dq) attempt(() => {
          const h = dq.pop();
          if (h) handles.push(h);
        }, 'pop');
        break;
      case 4:
        if (dq) attempt(() => {
          const v = pick(handles, b) ?? (dead ? null : kit.allocBytes(EVIL, 8));
          if (!handles.includes(v)) handles.push(v);
          dq.push(v);
        }, 'push');
        break;
      case 5:
        if (dq && other) attempt(() => void dq.moveFrom(other, c % 6), 'moveFrom');
        break;
      case 6:
        if (dq && other) attempt(() => void dq.moveFromSized(other, c % 6, c % 20, scratch, 0), 'moveFromSized');
        break;
      case 7:
        if (dq) attempt(() => dq.readEach(b % 3, c % 4, 0, 1 + (c % 9), scratch, 0, 8), 'readEach');
        if (dq) attempt(() => dq.extents(b % 3, c % 4, scratch, 0), 'extents');
        if (dq) attempt(() => void dq.length);
        break;
      case 8: {
        const h = pick(handles, a);
        if (h) attempt(() => h.drop(), 'drop');
        break;
      }
      case -1:
        break;
      case 9:
        if (!dead && c % 3 === 0) {
          const own = effective();
          for (let s = 0; s < heap.highWater; s++) if (heap.owner[s] !== FREE && (own[s] === EVIL || ownerOf(s) === EVIL)) mayBeOthers.add(s);
          // What the others hold (domain 2's own, what it was given, domain 3's) outlives domain 1.
          // (Not a stray its holder no longer lists that names domain 1, in a deque domain 1 hid it
          // in and then gave away: accounting charges it to domain 1, whose death frees it.)
          const others = new Map<number, [number, number]>();
          const charged = effective();
          for (let s = 0; s < heap.highWater; s++) {
            if (heap.owner[s] !== FREE && ownerOf(s) !== EVIL && charged[s] !== EVIL) others.set(s, [ownerOf(s), heap.gen[s]!]);
          }
          heap.reclaim(EVIL);
          for (const [s, [o, g]] of others) {
            assert.ok(heap.owner[s] !== FREE && heap.gen[s] === g && ownerOf(s) === o, `${step}: domain ${o}'s slot ${s} was freed or moved by domain 1's death`);
          }
          dead = true;
        }
        break;
      case 10: {
        const h = pick(handles, a);
        if (h) attempt(() => {
          // Domain 2 then uses what it was given too (pop, push, moveFrom...: its own handles).
          handles.push(kit.moveTo(h, EVIL, VICTIM));
          for (let s = 0; s < heap.highWater; s++) if (heap.owner[s] !== FREE && ownerOf(s) === VICTIM) mayBeVictims.add(s);
        }, 'moveTo');
        break;
      }
      case 11:
        // New values for domain 1 (and another domain): freed slots are reused.
        if (!dead) attempt(() => handles.push(c % 2 === 0 ? kit.allocBytes(EVIL, 8 + (c % 100)) : kit.allocDeque(EVIL, 1 + (c % 4))));
        attempt(() => void mayBeOthers.add(slot(kit.allocBytes(OTHER, 8))));
        break;
      case 12:
        if (dq) attempt(() => void dq.writeEach(0, c % 3, 0, 1, scratch, 0, 1), 'writeEach');
        break;
      case 16: {
        // A NetIo's deque field assigned (a new deque, one it holds, or null): drops the old one.
        const h = pick(handles.filter((x) => { try { return kit.isHandle(x) && heap.type[slot(x)] === kit.layoutType('NetIo'); } catch { return false; } }), a);
        if (h) attempt(() => {
          const v = b % 3 === 0 ? null : b % 3 === 1 ? kit.allocDeque(kit.holderOf(h), 1 + (c % 3)) : pick(handles, c);
          if (v !== null && !handles.includes(v)) handles.push(v);
          if (v !== null && kit.holderOf(h) === VICTIM) mayBeVictims.add(slot(v));
          if (c % 2 === 0) h.pkts = v;
          else h.collect = v;
        }, 'field');
        break;
      }
      case 14: {
        // The kernel entrusts one of domain 1's values to domain 3 (listing a deque's elements).
        const h = pick(handles, a);
        if (h && !dead) attempt(() => {
          const s = slot(h);
          if (heap.gen[s] !== kit.genOf(h) || heap.owner[s] === FREE || ownerOf(s) !== EVIL) return;
          if (b % 3 === 0) heap.entrust(s, OTHER, -1, scratch);
          else if (b % 3 === 1) {
            const order = heap.alloc(0, 4 + (c % 32), kit.bytesType);
            try {
              heap.entrust(s, OTHER, order);
            } finally {
              heap.free(order);
            }
          } else heap.entrust(s, OTHER);
        }, 'entrust');
        break;
      }
      case 15: {
        // One of domain 1's roots lent to a call in progress (or a loan ended).
        const h = pick(handles, a);
        if (b % 2 === 0 && lent.length > 0) heap.endBorrow(lent.splice(b % lent.length, 1)[0]!);
        else if (h && !dead) {
          const s = slot(h);
          if (heap.gen[s] === kit.genOf(h) && heap.owner[s] === EVIL && heap.parent[s] === NO_PARENT) {
            heap.beginBorrow(s);
            lent.push(s);
          }
        }
        break;
      }
      case 13:
        // A fresh deque for domain 2, from a slot that may have held one of domain 1's.
        attempt(() => {
          const h = kit.allocDeque(VICTIM, 2);
          mayBeVictims.add(slot(h));
        });
    }
    check(step);
  });

  for (const s of lent.splice(0)) heap.endBorrow(s);
  check('loans ended');

  // ---- the free lists: allocate until the slots run out; every slot and block given once ----
  const before = new Set<number>();
  for (let s = 0; s < heap.highWater; s++) if (heap.owner[s] !== FREE) before.add(s);
  const got: number[] = [];
  for (;;) {
    try {
      got.push(heap.alloc(OTHER, 8, kit.bytesType));
    } catch (e) {
      assert.ok(e instanceof HeapError && e.code === 'ENOSLOT', `draining: ${String(e)}`);
      break;
    }
    assert.ok(got.length <= MAX_SLOTS, 'more allocations than slots');
  }
  assert.equal(new Set(got).size, got.length, `a slot handed out twice: ${got.join(',')}`);
  for (const s of got) assert.ok(!before.has(s), `slot ${s} was live and handed out again`);
  assert.equal(got.length + before.size, MAX_SLOTS, 'every slot is live or was on the free list');
  const blocks: Array<[number, number, number]> = [];
  for (let s = 0; s < MAX_SLOTS; s++) if (heap.owner[s] !== FREE) blocks.push([heap.off[s]!, heap.len[s]!, s]);
  blocks.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < blocks.length; i++) {
    const [o, l, s] = blocks[i - 1]!;
    assert.ok(o + l <= blocks[i]![0], `slots ${s} and ${blocks[i]![2]} share memory`);
  }
}

const opArb = fc.tuple(fc.nat(16), fc.nat(1000), fc.nat(1000), fc.nat(0x7fff_ffff));
const RUNS = Number(process.env.DEQUE_CORRUPTION_RUNS ?? 100);

test('property: deque headers and rings written by a hostile device break no ownership, free-list or accounting invariant', () => {
  fc.assert(fc.property(fc.array(opArb, { minLength: 5, maxLength: 60 }), (ops) => runCorruption(ops)), { numRuns: RUNS });
});
