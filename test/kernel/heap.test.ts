/**
 * Exchange heap and RRef handle kit, without a kernel: allocator alignment, zeroing and size-class
 * reuse, generations and revocation, ENOMEM/ENOSLOT/EINVAL errors, deques (order, capacity,
 * wrap-around, cycles, header corruption, bulk moveFrom and its refusals), layout structs (the TestReq layout from the IDL: field
 * offsets, scalar/bigint/fixed-array fields, child adoption, drop of a child refused, moves),
 * borrows (read-only, pending free), and a fast-check property test over random sequences of
 * alloc / move / borrow / unborrow / drop / push / pop / moveFrom / domain crash against a model of ownership
 * and accounting. Handle classes are shared by every kit: a kit refuses another kit's handles, and
 * one accessor per field name serves every layout. The proxies' fast move (tryMove) refuses, changing
 * nothing, whatever the reporting path (moveTyped) refuses: forged and foreign handles, stale
 * generations after slot reuse, read-only, lent and child handles. A deque moves in O(1): its
 * elements keep their owner column, belong to the deque's owner (ownerOf, usage, reclaim) and get
 * it written back when they leave; a stray is freed with its holder. Caller values run no code
 * between a check and an access: offsets, lengths and values must be numbers, read/write take only
 * genuine Uint8Arrays, a fixed-array field reads its elements before computing where they go.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ExchangeHeap, HeapError, DEQUE_HEADER, FREE } from '../../src/kernel/heap.js';
import { createHandleKit, type HandleKit } from '../../src/kernel/rref.js';
import { LAYOUTS } from '../../src/gen/idl.js';
import { any, dma, heapAndKit, throwsCode } from './kit-helpers.js';

const setup = heapAndKit;

/** A full deque of holder 1 holding two 8-byte buffers (the corrupt-header tests' subject). */
function dequeOfTwoBuffers(kit: HandleKit): any {
  const dq = any(kit.allocDeque(1, 2));
  dq.push(kit.allocBytes(1, 8));
  dq.push(kit.allocBytes(1, 8));
  return dq;
}

describe('allocator', () => {
  test('blocks are aligned to their size class (pages from 4 KiB), never at address 0, and zeroed', () => {
    const { heap, kit } = setup();
    for (const size of [1, 63, 64, 65, 100, 1000, 4095, 4096, 5000, 70_000, 1_500_000]) {
      const s = heap.alloc(1, size, kit.bytesType);
      const off = heap.off[s]!;
      const cls = Math.max(64, 2 ** Math.ceil(Math.log2(size)));
      assert.ok(off >= 4096, `size ${size}: address ${off} is in page 0`);
      assert.equal(off % Math.min(cls, 4096), 0, `size ${size} at ${off} not aligned to ${Math.min(cls, 4096)}`);
      if (size <= 1 << 20) assert.equal(off % cls, 0, `size ${size} at ${off} not aligned to its class ${cls}`);
      assert.equal(heap.len[s], size);
      assert.ok(heap.u8.subarray(off, off + size).every((b) => b === 0), `size ${size} not zeroed`);
    }
    const a = heap.alloc(1, 10, kit.bytesType, 4096);
    assert.equal(heap.off[a]! % 4096, 0, 'explicit 4096 alignment');
  });

  test('a freed block is reused by the next allocation of its size class, zeroed again', () => {
    const { heap, kit } = setup();
    const s = heap.alloc(1, 100, kit.bytesType); // class 128
    const off = heap.off[s]!;
    heap.u8.fill(0xff, off, off + 100);
    heap.free(s);
    const t = heap.alloc(1, 120, kit.bytesType); // same class
    assert.equal(heap.off[t], off, 'same class reuses the freed block');
    assert.ok(heap.u8.subarray(off, off + 120).every((b) => b === 0), 'reused block is zeroed');
    const u = heap.alloc(1, 200, kit.bytesType); // class 256: elsewhere
    assert.notEqual(heap.off[u], off);
    // Whole-page allocations above 1 MiB are reused by size too.
    const big = heap.alloc(1, (1 << 20) + 1, kit.bytesType);
    const bigOff = heap.off[big]!;
    heap.free(big);
    assert.equal(heap.off[heap.alloc(2, (1 << 20) + 100, kit.bytesType)], bigOff);
  });

  test('free bumps the generation, revokes every handle to the slot, and a reused slot does not revive them', () => {
    const { heap, kit } = setup();
    const h = any(kit.allocBytes(1, 16));
    const s = kit.slotOf(h);
    const g = heap.gen[s]!;
    assert.ok(heap.isLive(s, g));
    assert.equal(h.valid, true);
    h.setU8(3, 7);
    h.drop();
    assert.equal(heap.gen[s], g + 1);
    assert.equal(heap.isLive(s, g), false);
    assert.equal(h.valid, false);
    throwsCode(() => h.getU8(3), 'EREVOKED', /revoked RRef \(slot \d+\)/);
    const h2 = any(kit.allocBytes(1, 16));
    assert.equal(kit.slotOf(h2), s, 'the slot is reused');
    assert.equal(h2.getU8(3), 0);
    throwsCode(() => h.getU8(0), 'EREVOKED');
    throwsCode(() => h.setU8(0, 1), 'EREVOKED');
    assert.equal(h2.getU8(0), 0, 'a stale handle wrote nothing');
  });

  test('ENOMEM and ENOSLOT are clear, and recoverable after frees', () => {
    const { heap, kit } = setup({ physBytes: 1 << 20, maxSlots: 4 });
    throwsCode(() => heap.alloc(1, 2 << 20, kit.bytesType), 'ENOMEM', /out of physical memory/);
    const slots = [0, 1, 2, 3].map(() => heap.alloc(1, 8, kit.bytesType));
    throwsCode(() => heap.alloc(1, 8, kit.bytesType), 'ENOSLOT', /all 4 slots are in use/);
    heap.free(slots[2]!);
    assert.equal(heap.alloc(1, 8, kit.bytesType), slots[2]);
    const { heap: h2, kit: k2 } = setup({ physBytes: 1 << 20, maxSlots: 64 });
    const held: number[] = [];
    assert.throws(() => {
      for (;;) held.push(h2.alloc(1, 60_000, k2.bytesType));
    }, (e: unknown) => e instanceof HeapError && e.code === 'ENOMEM' && /allocating 65536 bytes/.test(e.message));
    assert.ok(held.length >= 10 && held.length < 16, `${held.length} blocks of 64 KiB fit in 1 MiB`);
    h2.reclaim(1);
    assert.deepEqual(h2.usage(1), { bytes: 0, slots: 0 });
    h2.alloc(1, 60_000, k2.bytesType);
  });

  test('invalid sizes, alignments and memory sizes are EINVAL', () => {
    const { heap, kit } = setup();
    for (const n of [0, -1, 1.5, NaN]) throwsCode(() => heap.alloc(1, n, kit.bytesType), 'EINVAL', /positive integer/);
    for (const a of [3, 8192]) throwsCode(() => heap.alloc(1, 8, kit.bytesType, a), 'EINVAL', /power of two/);
    for (const p of [1000, (1 << 20) + 1]) throwsCode(() => new ExchangeHeap({ physBytes: p }), 'EINVAL', /multiple of 4096/);
    throwsCode(() => kit.allocDeque(1, 0), 'EINVAL', /capacity/);
    throwsCode(() => kit.allocStruct(1, 'NoSuchLayout'), 'EINVAL', /unknown layout/);
  });
});

describe('deques', () => {
  test('push/pop is FIFO, full deques refuse and keep the item, wrap-around keeps order', () => {
    const { kit, heap } = setup();
    const dq = any(kit.allocDeque(1, 3));
    assert.equal(dq.capacity, 3);
    assert.equal(dq.length, 0);
    assert.equal(dq.pop(), undefined);
    let next = 0;
    let expect = 0;
    const mk = () => {
      const b = any(kit.allocBytes(1, 8));
      b.setU8(0, next++);
      return b;
    };
    for (let round = 0; round < 5; round++) {
      const items = [mk(), mk(), mk()];
      for (const it of items) assert.equal(dq.push(it), true);
      for (const it of items) assert.equal(it.valid, false, 'a pushed handle is revoked');
      const extra = mk();
      assert.equal(dq.push(extra), false, 'full');
      assert.equal(extra.valid, true, 'a refused item stays valid');
      assert.equal(dq.length, 3);
      // pop two, push one (moves the ring head around)
      for (let i = 0; i < 3; i++) {
        const p = dq.pop();
        assert.equal(p.valid, true);
        assert.equal(p.getU8(0), expect++, 'FIFO order');
        assert.equal(heap.parent[kit.slotOf(p)], -1, 'a popped element is a root again');
        p.drop();
      }
      extra.drop();
      expect++;
    }
    assert.deepEqual(heap.usage(1), { bytes: heap.len[kit.slotOf(dq)]!, slots: 1 });
  });

  test('a deque moves and dies with its elements; cycles and foreign items are refused', () => {
    const { kit, heap, violations } = setup();
    const dq = any(kit.allocDeque(1, 4));
    for (let i = 0; i < 3; i++) dq.push(kit.allocBytes(1, 100));
    assert.deepEqual(heap.usage(1), { bytes: DEQUE_HEADER + 16 + 300, slots: 4 });
    const moved = any(kit.moveTo(dq, 1, 2));
    assert.deepEqual(heap.usage(1), { bytes: 0, slots: 0 });
    assert.deepEqual(heap.usage(2), { bytes: DEQUE_HEADER + 16 + 300, slots: 4 });
    throwsCode(() => dq.length, 'EREVOKED');
    throwsCode(() => moved.push(moved), 'EINVAL', /contains this deque/);
    const foreign = kit.allocBytes(3, 8);
    throwsCode(() => moved.push(foreign), 'EINVAL', /foreign RRef/);
    assert.deepEqual(violations.slice(-2), [[2, 'EINVAL'], [2, 'EINVAL']], 'violations are reported for the holder');
    heap.reclaim(2);
    assert.deepEqual(heap.totalUsage(), { bytes: 8, slots: 1 }, 'only the foreign buffer is left');
  });

  test('a parent cycle in the slot table (a kernel bug) refuses a push instead of hanging the kernel', () => {
    const { kit, heap } = setup();
    const a = any(kit.allocDeque(1, 4));
    const b = any(kit.allocDeque(1, 4));
    const inner = any(kit.allocDeque(1, 4));
    heap.parent[kit.slotOf(a)] = kit.slotOf(b);
    heap.parent[kit.slotOf(b)] = kit.slotOf(a);
    throwsCode(() => a.push(inner), 'EINVAL', /contains this deque/);
  });

  test('a corrupted deque header (capacity/head written by DMA) cannot write outside the deque', () => {
    const { kit, heap } = setup();
    const dq = any(kit.allocDeque(1, 1)); // 20 bytes in a 64-byte block
    const victim = any(kit.allocBytes(2, 64)); // another domain's buffer, next block of the class
    const distance = victim.addr - dq.addr;
    assert.ok(distance > 0 && distance < 4096, 'victim lies after the deque');
    dma(kit, dq, 8, 0x10000); // capacity
    dma(kit, dq, 0, (distance - DEQUE_HEADER) / 4); // head: the entry lands on the victim's first word
    dma(kit, dq, 4, 0); // count
    const item = kit.allocBytes(1, 8);
    try {
      dq.push(item);
    } catch {
      /* refusing is fine */
    }
    assert.equal(victim.getU32(0), 0, `the deque wrote slot number ${victim.getU32(0)} into another domain's buffer`);
    void heap;
  });

  test('a deque with a corrupt header moves with its elements; accounting walks only inside its allocation, quickly', () => {
    const { kit, heap } = setup();
    const dq = dequeOfTwoBuffers(kit);
    dma(kit, dq, 0, 1); // head: the ring now starts at the second entry and wraps to the first
    const t0 = performance.now();
    dma(kit, dq, 4, 0xffff_ffff); // count
    dma(kit, dq, 8, 0xffff_ffff); // capacity
    const moved = any(kit.moveTo(dq, 1, 2));
    assert.deepEqual(heap.usage(2), { bytes: DEQUE_HEADER + 8 + 16, slots: 3 }, 'both elements moved with their deque');
    assert.deepEqual(heap.usage(1), { bytes: 0, slots: 0 });
    assert.ok(performance.now() - t0 < 1000, 'the walks are bounded by the allocation, not by the header');
    void moved;
  });

  test('dropping a deque with a corrupt header frees its elements, walking only inside its allocation', () => {
    const { kit, heap } = setup();
    const dq = dequeOfTwoBuffers(kit);
    dma(kit, dq, 4, 0xffff_ffff); // count
    dma(kit, dq, 8, 0xffff_ffff); // capacity: entries far beyond physical memory
    dq.drop();
    assert.deepEqual(heap.usage(1), { bytes: 0, slots: 0 }, 'the deque and both elements are freed');
  });

  test('overwriting the slot numbers a deque or struct holds cannot make a dead owner leak slots', () => {
    const { kit, heap } = setup();
    const dq = any(kit.allocDeque(1, 2));
    dq.push(kit.allocBytes(1, 8));
    dma(kit, dq, DEQUE_HEADER, 0xffff); // the ring entry now names no slot: the child is unreachable
    const r = any(kit.allocStruct(1, 'TestReq'));
    r.data = kit.allocBytes(1, 8);
    dma(kit, r, 24, 0); // the struct's child field cleared behind the kernel's back
    heap.reclaim(1); // the owner dies
    assert.deepEqual(heap.usage(1), { bytes: 0, slots: 0 }, 'a dead owner holds nothing');
  });

  test('a dead domain\'s deque whose ring lists one element twice (its device wrote the entry) frees that element once: its slot is not handed to two values', () => {
    const { kit, heap } = setup();
    const dq = dequeOfTwoBuffers(kit);
    dma(kit, dq, DEQUE_HEADER + 4, dq.getU32(DEQUE_HEADER)); // the first element listed twice
    heap.reclaim(1);
    assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 });
    const slots = [0, 1, 2, 3].map(() => kit.slotOf(any(kit.allocBytes(2, 8))));
    assert.equal(new Set(slots).size, 4, `four live values, four slots (got ${slots.join(', ')})`);
  });

  test('dropping a deque whose ring no longer lists an element (its device overwrote the entry) frees that element too: it does not pass to whoever is given the deque\'s slot next', () => {
    const { kit, heap } = setup();
    const dq = dequeOfTwoBuffers(kit);
    const hidden = dq.getU32(DEQUE_HEADER);
    dma(kit, dq, DEQUE_HEADER, 0xffff); // the first element's entry overwritten
    dq.drop();
    assert.equal(heap.owner[hidden], FREE, 'the element the ring no longer listed was freed with its deque');
    const other = any(kit.allocDeque(2, 2)); // the deque's slot, reused by another domain
    assert.notEqual(heap.ownerOf(hidden), 2, 'domain 2 was given domain 1\'s element with the slot');
    assert.deepEqual(heap.usage(1), { bytes: 0, slots: 0 });
    void other;
  });

  test('a deque moves in O(1): its elements keep their owner column, belong to the deque\'s owner, and get it written back when they leave', () => {
    const { kit, heap } = setup();
    const dq = any(kit.allocDeque(1, 64));
    const inner = any(kit.allocDeque(1, 2)); // a nested container: its element too
    const deep = kit.allocBytes(1, 8);
    const deepSlot = kit.slotOf(deep);
    inner.push(deep);
    const slots = [kit.slotOf(inner), deepSlot];
    for (let i = 0; i < 40; i++) {
      const b = kit.allocBytes(1, 100);
      slots.push(kit.slotOf(b));
      dq.push(b);
    }
    dq.push(inner);
    const moved = any(kit.moveTo(dq, 1, 2));
    assert.ok(slots.every((s) => heap.owner[s] === 1), 'no element was visited by the move');
    assert.ok(slots.every((s) => heap.ownerOf(s) === 2), 'every element belongs to the deque\'s new owner');
    assert.deepEqual(heap.usage(1), { bytes: 0, slots: 0 });
    assert.equal(heap.usage(2).slots, 1 + slots.length);
    heap.reclaim(1); // the stale owner dies: nothing of the deque's goes with it
    assert.equal(heap.usage(2).slots, 1 + slots.length, 'a stale owner column does not make a value reclaimable');
    const first = moved.pop();
    assert.equal(heap.owner[kit.slotOf(first)], 2, 'a popped element is its holder\'s again');
    for (let i = 1; i < 40; i++) moved.pop().drop();
    const back = any(moved.pop());
    assert.equal(kit.slotOf(back), slots[0]);
    assert.equal(heap.owner[kit.slotOf(back)], 2);
    assert.equal(heap.owner[deepSlot], 1, 'still inside a deque: not written');
    assert.equal(kit.slotOf(back.pop()), deepSlot);
    assert.equal(heap.owner[deepSlot], 2);
  });

  test('a stray (its ring entry overwritten) is freed when its holder dies, whatever owner it still names', () => {
    const { kit, heap } = setup();
    const dq = any(kit.allocDeque(1, 2));
    dq.push(kit.allocBytes(1, 8));
    const moved = any(kit.moveTo(dq, 1, 2)); // the element still names owner 1
    dma(kit, moved, DEQUE_HEADER, 0xffff); // holder 2's device overwrites the entry: the element is a stray
    heap.reclaim(2);
    assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 }, 'neither the deque nor its stray outlives domain 2');
  });

  test('a stray naming a dead domain inside a live holder is freed with that domain; a listed element naming it stays', () => {
    const { kit, heap } = setup();
    const dq = any(kit.allocDeque(1, 4));
    const kept = kit.allocBytes(1, 8);
    const keptSlot = kit.slotOf(kept);
    const lost = kit.allocBytes(1, 8);
    const lostSlot = kit.slotOf(lost);
    dq.push(lost);
    dq.push(kept);
    const moved = any(kit.moveTo(dq, 1, 2)); // both elements still name owner 1
    dma(kit, moved, DEQUE_HEADER, 0xffff); // holder 2's device overwrites the first entry: a stray naming 1
    assert.equal(heap.reclaim(1), 1, 'domain 1 dies: its stray is freed, and nothing else');
    assert.equal(heap.owner[lostSlot], FREE);
    assert.equal(heap.owner[keptSlot], 1, 'the element its holder still lists keeps its (stale) owner column');
    assert.equal(heap.ownerOf(keptSlot), 2, 'and is domain 2\'s');
    assert.deepEqual(heap.usage(2), { bytes: heap.len[kit.slotOf(moved)]! + 8, slots: 2 });
  });
});

describe('deque moveFrom (bulk move between two deques of one holder)', () => {
  const fill = (kit: HandleKit, dq: any, tags: number[]) => {
    for (const t of tags) {
      const b = any(kit.allocBytes(1, 8));
      b.setU8(0, t);
      assert.equal(dq.push(b), true);
    }
  };
  const drain = (dq: any): number[] => {
    const out: number[] = [];
    for (let b = dq.pop(); b !== undefined; b = dq.pop()) out.push(b.getU8(0));
    return out;
  };

  test('moves in FIFO order, bounded by n, the source length and the free room, across wrap-around', () => {
    const { kit, heap } = setup();
    const src = any(kit.allocDeque(1, 4));
    const dst = any(kit.allocDeque(1, 3));
    // Rotate both rings so the moves wrap.
    fill(kit, src, [90, 91]);
    fill(kit, dst, [92, 93]);
    drain(src);
    drain(dst);
    fill(kit, src, [1, 2, 3, 4]);
    const usage = heap.usage(1);
    assert.equal(dst.moveFrom(src, 2), 2, 'bounded by n');
    assert.deepEqual([src.length, dst.length], [2, 2]);
    assert.equal(dst.moveFrom(src, 10), 1, 'bounded by the free room');
    assert.deepEqual([src.length, dst.length], [1, 3]);
    assert.equal(dst.moveFrom(src, 10), 0, 'full: nothing moves');
    assert.equal(dst.moveFrom(src, 0), 0);
    assert.deepEqual(heap.usage(1), usage, 'the owner keeps every element');
    for (let s = 0; s < heap.highWater; s++) {
      if (heap.owner[s] === 1 && heap.parent[s] !== -1) assert.ok([kit.slotOf(src), kit.slotOf(dst)].includes(heap.parent[s]!), 'every element names its deque as parent');
    }
    assert.deepEqual(drain(dst), [1, 2, 3]);
    assert.equal(dst.moveFrom(src, 5), 1, 'bounded by the source length');
    assert.equal(src.length, 0);
    assert.deepEqual(drain(dst), [4]);
    // A moved deque takes the moved elements along.
    fill(kit, src, [7, 8]);
    dst.moveFrom(src, 2);
    const moved = any(kit.moveTo(dst, 1, 2));
    assert.deepEqual(heap.usage(2).slots, 3);
    assert.deepEqual(drain(moved), [7, 8]);
  });

  test('appendRoots (the kernel\'s push by slot): the buffers become the deque\'s last elements in order, their handles revoked; a full or lent deque takes what it has room for, or nothing', () => {
    const { kit, heap } = setup();
    const dq = any(kit.allocDeque(1, 3));
    const d = kit.slotOf(dq);
    fill(kit, dq, [1]);
    const bufs = [2, 3, 4].map((v) => {
      const b = any(kit.allocBytes(1, 8));
      b.setU8(0, v);
      return b;
    });
    const slots = bufs.map((b) => kit.slotOf(b));
    heap.beginBorrow(d);
    assert.equal(kit.appendRoots(d, slots, 1), 0, 'a lent deque cannot change');
    heap.endBorrow(d);
    assert.equal(kit.appendRoots(d, slots, 1), 2, 'as room allows: a prefix');
    assert.deepEqual(slots.map((s) => heap.parent[s]), [d, d, -1], 'the deque holds what it took; the rest stays a root');
    assert.deepEqual(bufs.map((b) => b.valid), [false, false, true], 'handles to what it took are revoked, as by a push');
    assert.equal(kit.appendRoots(d, slots.slice(2), 1), 0, 'full');
    assert.deepEqual(drain(dq), [1, 2, 3], 'in order, behind what was there');
    // Across the ring's end: the tail at its last slot (behind 6), the run wraps to the front
    // (the buffers made first, so that none reuses the slot number the popped entry left behind).
    const more = [8, 9].map((v) => {
      const b = any(kit.allocBytes(1, 8));
      b.setU8(0, v);
      return kit.slotOf(b);
    });
    fill(kit, dq, [5, 6]);
    dq.pop().drop();
    assert.equal(kit.appendRoots(d, [slots[2]!, ...more], 1), 2, 'room for two behind 6');
    assert.deepEqual(drain(dq), [6, 4, 8], 'wrapped, in order');
  });

  test('revoked, foreign, borrowed, lent, non-deque and identical deques are refused, and a bad count', () => {
    const { kit, heap, violations } = setup();
    const src = any(kit.allocDeque(1, 4));
    const dst = any(kit.allocDeque(1, 4));
    fill(kit, src, [1, 2]);
    throwsCode(() => dst.moveFrom({}, 1), 'EINVAL', /expected an RRefDeque handle, got a plain object/);
    throwsCode(() => dst.moveFrom(kit.allocBytes(1, 64), 1), 'EINVAL', /no such operation/);
    throwsCode(() => dst.moveFrom(dst, 1), 'EINVAL', /same deque/);
    throwsCode(() => dst.moveFrom(src, -1), 'EINVAL', /count -1/);
    throwsCode(() => dst.moveFrom(src, 1.5), 'EINVAL', /count 1.5/);
    const foreign = any(kit.allocDeque(2, 4));
    throwsCode(() => dst.moveFrom(foreign, 1), 'EINVAL', /not held by the domain/);
    throwsCode(() => foreign.moveFrom(src, 1), 'EINVAL', /not held by the domain/);
    // No writable handle of holder 1 to a deque owned by someone else can exist: the kernel
    // refuses to mint one (the fast moves rely on it).
    throwsCode(() => kit.mint(kit.slotOf(foreign), 1, false), 'EINVAL', /for domain 1, which does not own it/);
    // Borrowed in (read-only) or lent out (a call in progress): neither side may change.
    const s = kit.slotOf(src);
    heap.beginBorrow(s);
    const ro = any(kit.mint(s, 1, true));
    throwsCode(() => dst.moveFrom(ro, 1), 'EREADONLY');
    throwsCode(() => dst.moveFrom(src, 1), 'EBORROWED');
    throwsCode(() => src.moveFrom(dst, 1), 'EBORROWED');
    kit.revoke(ro);
    heap.endBorrow(s);
    const moved = any(kit.moveTo(src, 1, 1));
    throwsCode(() => dst.moveFrom(src, 1), 'EREVOKED');
    throwsCode(() => src.moveFrom(dst, 1), 'EREVOKED');
    assert.equal(dst.length, 0, 'nothing moved by any refused call');
    assert.equal(moved.length, 2);
    assert.ok(violations.length >= 10 && violations.every(([h]) => h === 1 || h === 2), 'violations are reported for the holder');
  });

  test('a corrupt source entry stops the move there; a corrupt header is refused', () => {
    const { kit, heap } = setup();
    const src = any(kit.allocDeque(1, 4));
    const dst = any(kit.allocDeque(1, 4));
    fill(kit, src, [1, 2, 3]);
    // The holder's device writes the first element's slot number over the second entry: listed twice.
    dma(kit, src, DEQUE_HEADER + 4, src.getU32(DEQUE_HEADER));
    throwsCode(() => dst.moveFrom(src, 3), 'EINVAL', /corrupt element entry/);
    assert.deepEqual([src.length, dst.length], [2, 1], 'the element before the bad entry moved, nothing after it');
    assert.deepEqual(drain(dst), [1]);
    dma(kit, dst, 8, 1 << 20); // capacity beyond the allocation
    throwsCode(() => dst.moveFrom(src, 1), 'EINVAL', /corrupt header/);
    heap.reclaim(1);
    assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 }, 'nothing leaks');
  });
});

describe('layout structs', () => {
  const spec = LAYOUTS.find((l) => l.name === 'TestReq');

  test('the IDL computed the C-like layout of TestReq', () => {
    assert.ok(spec, 'TestReq layout generated');
    const off = Object.fromEntries(spec.fields.map((f) => [f.name, [f.kind, f.offset]]));
    assert.deepEqual(off, { id: ['u32', 0], lba: ['u64', 8], ok: ['bool', 16], tag: ['array', 17], data: ['rref', 24] });
    assert.equal(spec.size, 32);
    assert.equal(spec.align, 8);
  });

  test('scalar, bigint, bool and fixed-array fields read back; wrong value types are refused', () => {
    const { kit } = setup();
    const r = any(kit.allocStruct(1, 'TestReq'));
    assert.equal(r.byteLength, 32);
    assert.equal(r.addr % 8, 0);
    assert.deepEqual([r.id, r.lba, r.ok, r.tag, r.data], [0, 0n, false, [0, 0, 0, 0], null], 'zeroed');
    r.id = 0xdeadbeef;
    r.lba = 2n ** 63n + 5n;
    r.ok = true;
    r.tag = [9, 8, 7, 6];
    assert.deepEqual([r.id, r.lba, r.ok, r.tag], [0xdeadbeef, 2n ** 63n + 5n, true, [9, 8, 7, 6]]);
    assert.ok(Object.isFrozen(r.tag));
    assert.equal(r.getU32(0), 0xdeadbeef, 'fields live at their offsets');
    assert.equal(r.getU8(17), 9);
    throwsCode(() => (r.lba = 5), 'EINVAL', /bigint/);
    throwsCode(() => (r.tag = [1, 2]), 'EINVAL', /exactly 4/);
  });

  test('an RRef field holds only its declared type: another kind of RRef is refused and stays with its holder', () => {
    const { kit, heap, violations } = setup();
    const io = any(kit.allocStruct(1, 'NetIo'));
    const bytes = any(kit.allocBytes(1, 64));
    throwsCode(() => (io.pkts = bytes), 'EINVAL', /field pkts holds RRefDeque, not RRefArray<u8>/);
    assert.deepEqual(violations.at(-1), [1, 'EINVAL']);
    assert.equal(bytes.valid, true, 'the refused value was not moved');
    assert.equal(heap.parent[kit.slotOf(bytes)], -1);
    assert.equal(io.pkts, null);
    throwsCode(() => (io.pktLens = kit.allocArray(1, 'u8', 4)), 'EINVAL', /holds RRefArray<u32>, not RRefArray<u8>/);
    throwsCode(() => (io.collect = kit.allocStruct(1, 'NetIo')), 'EINVAL', /holds RRefDeque, not NetIo/);
    io.pkts = kit.allocDeque(1, 4);
    io.pktLens = kit.allocArray(1, 'u32', 4);
    assert.equal(io.pkts.capacity, 4, 'the declared types are accepted');
    const req = any(kit.allocStruct(1, 'TestReq'));
    throwsCode(() => (req.data = kit.allocDeque(1, 2)), 'EINVAL', /holds RRefArray<u8>, not RRefDeque/);
  });

  test('an RRef field adopts its child: moved in, accounted with the parent, dropped on reassignment, never dropped alone', () => {
    const { kit, heap, violations } = setup();
    const r = any(kit.allocStruct(1, 'TestReq'));
    const b = any(kit.allocBytes(1, 16));
    b.setU8(0, 77);
    r.data = b;
    assert.equal(b.valid, false, 'the assigned handle is moved into the struct');
    const child = r.data;
    assert.equal(child.getU8(0), 77);
    assert.equal(heap.parent[kit.slotOf(child)], kit.slotOf(r));
    assert.deepEqual(heap.usage(1), { bytes: 48, slots: 2 });
    throwsCode(() => child.drop(), 'EINVAL', /lives inside another one.*take it out first/);
    assert.deepEqual(violations.at(-1), [1, 'EINVAL']);
    throwsCode(() => kit.moveTo(child, 1, 2), 'EINVAL', /inside another one/);
    // reassignment drops the old child (as in Rust)
    r.data = kit.allocBytes(1, 100);
    assert.deepEqual(heap.usage(1), { bytes: 132, slots: 2 });
    throwsCode(() => child.getU8(0), 'EREVOKED');
    throwsCode(() => (r.data = kit.allocBytes(2, 8)), 'EINVAL', /foreign/);
    throwsCode(() => (r.data = r), 'EINVAL');
    // moving the struct moves its child and revokes views taken before the move
    const view = r.data;
    const moved = any(kit.moveTo(r, 1, 3));
    throwsCode(() => view.getU8(0), 'EREVOKED');
    assert.deepEqual(heap.usage(3), { bytes: 132, slots: 2 });
    assert.equal(moved.data.byteLength, 100);
    moved.data = null;
    assert.deepEqual(heap.usage(3), { bytes: 32, slots: 1 });
    moved.data = kit.allocBytes(3, 10);
    moved.drop();
    assert.deepEqual(heap.usage(3), { bytes: 0, slots: 0 }, 'freeing the struct frees its child');
  });
});

describe('handle classes shared by every kit', () => {
  test('a kit refuses the handles of another kit (another kernel), even for the same slot number', () => {
    const a = setup();
    const b = setup();
    const ha = any(a.kit.allocBytes(1, 16));
    const hb = any(b.kit.allocBytes(1, 16));
    assert.equal(a.kit.slotOf(ha), b.kit.slotOf(hb), 'same slot in both heaps');
    assert.equal(b.kit.isHandle(ha), false);
    assert.equal(b.kit.moveTyped(ha, b.kit.bytesType, 1, 2), null);
    throwsCode(() => b.kit.moveTo(ha, 1, 2), 'EINVAL', /expected an RRef handle/);
    throwsCode(() => b.kit.slotOf(ha), 'EINVAL', /not an RRef handle of this kernel/);
    const dq = any(b.kit.allocDeque(1, 4));
    throwsCode(() => dq.push(ha), 'EINVAL', /expected an RRef handle/);
    throwsCode(() => hb.copyFrom(ha, 0, 0, 4), 'EINVAL');
    assert.equal(ha.valid, true, 'refused, not moved');
    assert.equal(hb.valid, true);
  });

  test('one accessor per field name serves every layout that has it; other layouts have no such field', () => {
    const { kit } = setup();
    const io = any(kit.allocStruct(1, 'NetIo'));
    const blk = any(kit.allocStruct(1, 'BlkReq'));
    io.status = -22;
    blk.status = -5;
    assert.deepEqual([io.status, blk.status], [-22, -5], 'status is at offset 20 in NetIo and in BlkReq, each its own');
    assert.equal(io.getU32(20) | 0, -22);
    assert.equal(io.op, undefined, 'NetIo has no op (a BlkReq field)');
    throwsCode(() => (io.op = 1), 'EINVAL', /RRef<NetIo> has no field op/);
    assert.equal(Object.isFrozen(Object.getPrototypeOf(io)), true, 'hardened before the first struct handle left the kit');
    throwsCode(
      () => kit.registerLayout({ name: 'Late', size: 8, align: 4, fields: [{ name: 'brandNewField', kind: 'u32', offset: 0 }] }),
      'EINVAL',
      /brandNewField is new after the first RRef handle/,
    );
    const late = kit.registerLayout({ name: 'Late2', size: 8, align: 4, fields: [{ name: 'status', kind: 'u32', offset: 4 }] });
    const l = any(kit.allocStruct(1, 'Late2'));
    l.status = 7;
    assert.equal(l.getU32(4), 7, 'a known field name at a new offset');
    assert.equal(kit.layoutType('Late2'), late);
  });

  test('handles of every kind are one class: a non-struct handle has no layout field to read or write', () => {
    const { kit } = setup();
    const io = any(kit.allocStruct(1, 'NetIo'));
    const buf = any(kit.allocBytes(1, 64));
    const dq = any(kit.allocDeque(1, 4));
    assert.equal(Object.getPrototypeOf(buf), Object.getPrototypeOf(io), 'one prototype (one hidden class at every handle access site)');
    buf.setU32(20, 7);
    assert.equal(buf.status, undefined, 'a byte buffer has no status field, though its bytes 20..23 hold 7');
    throwsCode(() => (buf.status = -22), 'EINVAL', /has no field status/);
    throwsCode(() => (dq.pkts = null), 'EINVAL', /has no field pkts/);
    assert.equal(buf.getU32(20), 7, 'the refused write changed nothing');
    assert.equal(Object.isFrozen(Object.getPrototypeOf(buf)), true);
  });
});

describe("the proxies' fast move (tryMove)", () => {
  /** The slot table row tryMove would change, to show that a refusal changed nothing. */
  const row = (heap: ExchangeHeap, s: number) => [heap.gen[s], heap.owner[s], heap.parent[s], heap.borrows[s]];

  /**
   * tryMove refuses `h` with null and changes nothing; moveTyped, the reporting path, throws `code`
   * (or, for what is no handle of the kit at all, returns null: the proxy reports "must be an RRef").
   */
  function refuses(t: ReturnType<typeof setup>, h: unknown, typeId: number, from: number, code: string | null, slot: number): void {
    const before = row(t.heap, slot);
    assert.equal(t.kit.fastMove(t.kit.state, h, typeId, from, 2), null);
    assert.equal(t.kit.fastMove(t.kit.state, h, typeId, from, 2), null);
    assert.equal(t.kit.fastMoveFlat(t.kit.state, h, typeId, from, 2), null);
    assert.deepEqual(row(t.heap, slot), before, 'a refused move changes nothing');
    if (code === null) assert.equal(t.kit.moveTyped(h, typeId, from, 2), null);
    else throwsCode(() => t.kit.moveTyped(h, typeId, from, 2), code);
  }

  test('moves a buffer: a fresh handle for the receiver, the sender\'s and its views revoked, data and accounting follow', () => {
    const { heap, kit } = setup();
    const h = any(kit.allocBytes(1, 64));
    h.setU8(5, 42);
    const s = kit.slotOf(h);
    const g = heap.gen[s]!;
    const moved = any(kit.fastMove(kit.state, h, kit.bytesType, 1, 2)!);
    assert.notEqual(moved, null);
    assert.notEqual(moved, h, 'a fresh handle, never the sender\'s object');
    assert.equal(h.valid, false);
    throwsCode(() => h.getU8(5), 'EREVOKED');
    assert.deepEqual([heap.gen[s], heap.owner[s], kit.holderOf(moved), kit.isReadOnly(moved)], [g + 1, 2, 2, false]);
    assert.equal(moved.getU8(5), 42);
    assert.deepEqual(heap.usage(1), { bytes: 0, slots: 0 });
    assert.deepEqual(heap.usage(2), { bytes: 64, slots: 1 });
    // The same handle cannot move twice, and the receiver's handle moves on.
    assert.equal(kit.fastMove(kit.state, h, kit.bytesType, 1, 2), null);
    assert.equal(kit.fastMove(kit.state, moved, kit.bytesType, 3, 1), null, 'only its holder (2) moves it');
    const back = any(kit.fastMoveFlat(kit.state, moved, kit.bytesType, 2, 1)!);
    assert.equal(back.getU8(5), 42);
    assert.equal(moved.valid, false);
  });

  test('refuses non-handles, forged objects and another kit\'s handles', () => {
    const t = setup();
    const other = setup();
    const h = any(t.kit.allocBytes(1, 16));
    const s = t.kit.slotOf(h);
    const theirs = any(other.kit.allocBytes(1, 16));
    assert.equal(other.kit.slotOf(theirs), s, 'the same slot number in the other heap');
    for (const v of [undefined, null, 0, s, 'slot', {}, [s], () => h]) refuses(t, v, t.kit.bytesType, 1, null, s);
    refuses(t, Object.create(Object.getPrototypeOf(h)), t.kit.bytesType, 1, null, s);
    refuses(t, { slot: s, gen: t.heap.gen[s], holder: 1 }, t.kit.bytesType, 1, null, s);
    refuses(t, new Proxy(h, {}), t.kit.bytesType, 1, null, s);
    refuses(t, theirs, t.kit.bytesType, 1, null, s);
    assert.equal(h.valid, true);
    assert.equal(theirs.valid, true);
  });

  test('refuses a stale handle after its slot was reused, leaving the new allocation alone', () => {
    const t = setup();
    const old = any(t.kit.allocBytes(1, 16));
    const s = t.kit.slotOf(old);
    old.drop();
    const fresh = any(t.kit.allocBytes(1, 16));
    assert.equal(t.kit.slotOf(fresh), s, 'the slot was reused');
    fresh.setU8(0, 9);
    refuses(t, old, t.kit.bytesType, 1, 'EREVOKED', s);
    assert.equal(fresh.getU8(0), 9);
    assert.equal(t.heap.owner[s], 1);
  });

  test('a handle keeps the type and root-ness of its mint: a reused slot of another type or a child taken out refuses the old handle', () => {
    const t = setup();
    const old = any(t.kit.allocBytes(1, 16));
    const s = t.kit.slotOf(old);
    old.drop();
    const dq = any(t.kit.allocDeque(1, 4));
    assert.equal(t.kit.slotOf(dq), s, 'the slot was reused for a deque');
    refuses(t, old, t.kit.bytesType, 1, null, s); // the slot is no byte array now
    refuses(t, old, t.kit.dequeType, 1, 'EREVOKED', s); // the deque's type, an old generation
    // An element pushed and popped comes back as a root: the fresh handle moves, the old one not.
    const item = any(t.kit.allocBytes(1, 8));
    dq.push(item);
    const popped = any(dq.pop());
    refuses(t, item, t.kit.bytesType, 1, 'EREVOKED', t.kit.slotOf(popped));
    assert.notEqual(t.kit.fastMoveFlat(t.kit.state, popped, t.kit.bytesType, 1, 2), null);
  });

  test('refuses a wrong type, a foreign holder, a read-only (borrowed-in) handle, a lent value and a child', () => {
    const t = setup();
    const h = any(t.kit.allocBytes(1, 16));
    const s = t.kit.slotOf(h);
    assert.equal(t.kit.fastMove(t.kit.state, h, t.kit.dequeType, 1, 2), null, 'not a deque');
    assert.equal(t.kit.moveTyped(h, t.kit.dequeType, 1, 2), null);
    refuses(t, h, t.kit.bytesType, 3, 'EINVAL', s);
    t.heap.beginBorrow(s);
    const ro = t.kit.mint(s, 3, true);
    refuses(t, ro, t.kit.bytesType, 3, 'EREADONLY', s);
    refuses(t, h, t.kit.bytesType, 1, 'EBORROWED', s);
    t.kit.revoke(ro);
    t.heap.endBorrow(s);
    const req = any(t.kit.allocStruct(1, 'TestReq'));
    req.data = h;
    const child = req.data;
    refuses(t, child, t.kit.bytesType, 1, 'EINVAL', t.kit.slotOf(child));
    // A struct and its child move together; a view of the child taken before is revoked.
    const moved = any(t.kit.fastMove(t.kit.state, req, t.kit.layoutType('TestReq')!, 1, 2)!);
    assert.equal(child.valid, false);
    assert.equal(t.kit.holderOf(moved.data), 2);
    assert.equal(t.heap.usage(2).slots, 2);
  });

  test('the flat move given a type that is not an array moves like the general one (a deque with its elements)', () => {
    const { heap, kit } = setup();
    const dq = any(kit.allocDeque(1, 4));
    const item = any(kit.allocBytes(1, 8));
    item.setU8(0, 7);
    dq.push(item);
    const moved = any(kit.fastMoveFlat(kit.state, dq, kit.dequeType, 1, 2)!);
    assert.equal(dq.valid, false);
    assert.deepEqual(heap.usage(1), { bytes: 0, slots: 0 });
    assert.equal(heap.usage(2).slots, 2, 'the element went with its deque');
    assert.equal(moved.pop().getU8(0), 7);
  });

  test('a kit over a heap that is not the kernel\'s (a worker domain\'s view) moves nothing itself', () => {
    const heap = new ExchangeHeap({ physBytes: 1 << 20, maxSlots: 16 });
    const cols = ['phys', 'u8', 'dv', 'owner', 'gen', 'borrows', 'type', 'off', 'len', 'parent', 'hasChildren'] as const;
    const ops = ['registerType', 'typeInfo', 'validChild', 'alloc', 'free', 'move', 'adopt', 'release', 'transfer'] as const;
    const view = Object.fromEntries([...cols.map((c) => [c, heap[c]]), ...ops.map((o) => [o, (heap[o] as Function).bind(heap)])]);
    const kit = createHandleKit(view as unknown as ExchangeHeap, () => {});
    const h = any(kit.allocBytes(1, 16));
    const s = kit.slotOf(h);
    assert.equal(kit.fastMove(kit.state, h, kit.bytesType, 1, 2), null);
    assert.deepEqual([heap.owner[s], h.valid], [1, true]);
  });
});

describe('caller values run no code between a check and an access', () => {
  test('offsets, lengths and values must be numbers: a valueOf never runs after an address is computed', () => {
    const { kit } = setup();
    const h = any(kit.allocBytes(1, 16));
    let ran = 0;
    const sneaky = { valueOf: () => (ran++, 0) };
    for (const op of [
      () => h.setU8(sneaky, 1), () => h.getU32(sneaky), () => h.read(sneaky, new Uint8Array(4)), () => h.write(0, new Uint8Array(4), 0, sneaky),
      () => h.read(0, new Uint8Array(4), sneaky), () => h.fill(0, sneaky, 4), () => h.copyFrom(h, 0, sneaky, 4),
    ]) {
      assert.throws(op, /must be numbers|outside/);
    }
    for (const op of [() => h.setU8(0, sneaky), () => h.setU16(0, sneaky), () => h.setU32(0, sneaky), () => h.storeU32(0, sneaky), () => h.setU64(0, sneaky), () => h.fill(sneaky)]) {
      throwsCode(op, 'EINVAL', /expected a number/);
    }
    assert.equal(ran, 0, 'no valueOf ran after a check');
  });

  test('read and write take only genuine Uint8Arrays, through the intrinsics', () => {
    const { kit } = setup();
    const h = any(kit.allocBytes(1, 16));
    h.setU32(0, 0x04030201);
    let handed: unknown = null;
    const lookalike = { length: 16, set: (v: unknown) => void (handed = v), subarray: () => new Uint8Array(16) };
    const real = new Uint8Array(16);
    const trapped = new Proxy(real, { get: (t, p) => (p === 'set' ? (v: unknown) => void (handed = v) : Reflect.get(t, p)) });
    for (const dst of [lookalike, trapped, new Uint16Array(8), new DataView(new ArrayBuffer(16)), null]) {
      throwsCode(() => h.read(0, dst), 'EINVAL', /read: expected a Uint8Array/);
      throwsCode(() => h.write(0, dst), 'EINVAL', /write: expected a Uint8Array/);
    }
    assert.equal(handed, null, 'no caller code was handed a view of physical memory');
    // A genuine array with an own `set` or `length` is still read through the intrinsics.
    const shadowed = new Uint8Array(8);
    Object.defineProperty(shadowed, 'set', { value: (v: unknown) => void (handed = v) });
    Object.defineProperty(shadowed, 'length', { value: 2 });
    h.read(0, shadowed);
    assert.deepEqual([...new Uint8Array(shadowed.buffer).subarray(0, 4)], [1, 2, 3, 4]);
    assert.equal(handed, null);
    const src = new Uint8Array([9, 8, 7, 6, 5]);
    h.write(4, src, 1, 3);
    assert.deepEqual([h.getU8(4), h.getU8(5), h.getU8(6), h.getU8(7)], [8, 7, 6, 0]);
    throwsCode(() => h.write(0, src, 3, 3), 'ERANGE', /write: source range 3\+3 outside 5 bytes/);
    throwsCode(() => h.read(0, new Uint8Array(2), 1, 2), 'ERANGE', /read: destination range 1\+2 outside 2 bytes/);
  });

  test('a fixed-array field reads its elements before it computes where they go', () => {
    const { kit, heap } = setup();
    const r = any(kit.allocStruct(1, 'TestReq'));
    const elems = {
      length: 4,
      get 0() {
        kit.moveTo(r, 1, 2); // the struct leaves its holder while the caller's getter runs
        return 1;
      },
      1: 2, 2: 3, 3: 4,
    };
    throwsCode(() => (r.tag = elems), 'EREVOKED');
    assert.equal(heap.usage(2).slots, 1, 'the struct moved; nothing was stored through the revoked handle');
  });
});

describe('borrows', () => {
  test('what a lent value holds outlives its owner\'s death until the borrow ends (fast-check counterexample)', () => {
    const { heap, kit } = setup();
    const dq = any(kit.allocDeque(2, 1));
    const buf = any(kit.allocBytes(2, 1));
    assert.equal(dq.push(buf), true);
    const moved = any(kit.moveTo(dq, 2, 1));
    const s = kit.slotOf(moved);
    heap.beginBorrow(s);
    heap.reclaim(1);
    assert.deepEqual(heap.usage(1), { bytes: 21, slots: 2 }, 'the deque (pending free) and its element');
    heap.endBorrow(s);
    assert.deepEqual(heap.usage(1), { bytes: 0, slots: 0 }, 'both freed when the borrow ends');
  });

  test('a borrowed handle is read-only, the lender cannot write, move or drop, and a free waits for the borrow', () => {
    const { kit, heap } = setup();
    const h = any(kit.allocBytes(1, 32));
    h.setU8(0, 5);
    const s = kit.slotOf(h);
    heap.beginBorrow(s);
    const ro = any(kit.mint(s, 2, true));
    assert.equal(ro.getU8(0), 5);
    throwsCode(() => ro.setU8(0, 1), 'EREADONLY', /read-only/);
    throwsCode(() => h.setU8(0, 1), 'EBORROWED', /lent to a call/);
    throwsCode(() => h.drop(), 'EBORROWED');
    throwsCode(() => kit.moveTo(h, 1, 3), 'EBORROWED');
    throwsCode(() => kit.moveTo(ro, 2, 3), 'EREADONLY');
    assert.equal(heap.reclaim(1), 1, 'the owner dies');
    assert.ok(heap.isPendingFree(s));
    assert.deepEqual(heap.usage(1), { bytes: 32, slots: 1 }, 'still accounted while borrowed');
    assert.equal(ro.getU8(0), 5, 'the borrower can still read');
    kit.revoke(ro);
    heap.endBorrow(s);
    assert.deepEqual(heap.usage(1), { bytes: 0, slots: 0 }, 'freed when the borrow ends');
    throwsCode(() => ro.getU8(0), 'EREVOKED');
    throwsCode(() => h.getU8(0), 'EREVOKED');
  });
});

// ---- property test ------------------------------------------------------------------------------

interface Obj {
  id: number;
  slot: number;
  bytes: number;
  owner: number;
  tag: number;
  deque: boolean;
  cap: number;
  items: Obj[];
  parent: Obj | null;
  handle: any | null;
  borrows: number;
  pending: boolean;
}

const MAX_SLOTS = 48;
const OWNERS = [1, 2, 3];

function runModel(ops: Array<[number, number, number, number]>): void {
  const { heap, kit } = setup({ physBytes: 4 << 20, maxSlots: MAX_SLOTS });
  const live: Obj[] = [];
  const stale: any[] = [];
  const ros: Array<{ obj: Obj; h: any }> = [];
  let nextId = 1;

  const subtree = (o: Obj): Obj[] => [o, ...o.items.flatMap(subtree)];
  const slotCount = () => live.length;
  const freeTree = (o: Obj) => {
    for (const x of subtree(o)) {
      live.splice(live.indexOf(x), 1);
      if (x.handle) stale.push(x.handle);
      x.handle = null;
    }
  };
  const roots = () => live.filter((o) => o.parent === null);
  const pick = <T>(xs: T[], n: number): T | undefined => (xs.length === 0 ? undefined : xs[n % xs.length]);
  const expectCode = (fn: () => unknown, code: string) => throwsCode(fn, code);

  for (const [op, a, b, c] of ops) {
    switch (op % 10) {
      case 0:
      case 1: {
        // alloc a buffer or a deque
        const owner = OWNERS[a % 3]!;
        const deque = op % 10 === 1;
        const size = 1 + (b % 3000);
        if (slotCount() === MAX_SLOTS) {
          assert.throws(() => (deque ? kit.allocDeque(owner, 1 + (b % 4)) : kit.allocBytes(owner, size)), (e: unknown) => e instanceof HeapError && e.code === 'ENOSLOT');
          break;
        }
        const h = any(deque ? kit.allocDeque(owner, 1 + (b % 4)) : kit.allocBytes(owner, size));
        const o: Obj = { id: nextId++, slot: kit.slotOf(h), bytes: heap.len[kit.slotOf(h)]!, owner, tag: 1 + (c % 250), deque, cap: 1 + (b % 4), items: [], parent: null, handle: h, borrows: 0, pending: false };
        if (deque) {
          assert.equal(h.length, 0);
        } else {
          const buf = new Uint8Array(size);
          h.read(0, buf);
          assert.ok(buf.every((x) => x === 0), 'fresh allocation is zeroed');
          h.setU8(0, o.tag);
        }
        live.push(o);
        break;
      }
      case 2: {
        // move a root to another owner
        const o = pick(roots(), a);
        if (!o) break;
        const to = OWNERS[b % 3]!;
        const type = o.deque ? kit.dequeType : kit.bytesType;
        // The proxies' fast path refuses exactly what moveTo refuses, and changes nothing then.
        assert.equal(kit.fastMove(kit.state, o.handle, type, OWNERS.find((x) => x !== o.owner)!, to), null, 'not the holder');
        if (o.borrows > 0) {
          assert.equal(kit.fastMove(kit.state, o.handle, type, o.owner, to), null, 'lent');
          expectCode(() => kit.moveTo(o.handle, o.owner, to), 'EBORROWED');
          break;
        }
        const nh = c % 2 === 0 ? kit.moveTo(o.handle, o.owner, to) : kit.fastMove(kit.state, o.handle, type, o.owner, to);
        assert.notEqual(nh, null);
        stale.push(o.handle);
        o.handle = nh;
        for (const x of subtree(o)) x.owner = to;
        break;
      }
      case 3: {
        // borrow (not of a pending-free allocation: its owner is dead and cannot lend)
        const o = pick(roots().filter((x) => !x.pending), a);
        if (!o) break;
        const s = kit.slotOf(o.handle);
        heap.beginBorrow(s);
        o.borrows++;
        ros.push({ obj: o, h: kit.mint(s, 9, true) });
        const r = ros.at(-1)!.h;
        if (!o.deque) expectCode(() => r.setU8(0, 1), 'EREADONLY');
        assert.equal(kit.fastMove(kit.state, r, o.deque ? kit.dequeType : kit.bytesType, 9, o.owner), null, 'a borrowed-in handle cannot move');
        break;
      }
      case 4: {
        // end a borrow
        if (ros.length === 0) break;
        const [{ obj, h }] = ros.splice(a % ros.length, 1);
        if (!obj.deque) assert.equal(h.getU8(0), obj.tag, 'borrowed view reads the data');
        kit.revoke(h);
        heap.endBorrow(kit.slotOf(h));
        stale.push(h);
        obj.borrows--;
        if (obj.borrows === 0 && obj.pending) freeTree(obj);
        break;
      }
      case 5: {
        // drop a root
        const o = pick(roots(), a);
        if (!o) break;
        if (o.borrows > 0) {
          expectCode(() => o.handle.drop(), 'EBORROWED');
          break;
        }
        o.handle.drop();
        freeTree(o);
        break;
      }
      case 6: {
        // push a root into a deque root
        const dq = pick(roots().filter((x) => x.deque), a);
        const it = pick(roots(), b);
        if (!dq || !it) break;
        let expected: string | null = null;
        if (dq.borrows > 0) expected = 'EBORROWED';
        else if (it === dq) expected = 'EINVAL';
        else if (it.borrows > 0) expected = 'EBORROWED';
        else if (it.owner !== dq.owner) expected = 'EINVAL';
        if (expected) {
          expectCode(() => dq.handle.push(it.handle), expected);
          break;
        }
        const pushed = dq.handle.push(it.handle);
        if (dq.items.length === dq.cap) {
          assert.equal(pushed, false);
          assert.equal(it.handle.valid, true);
          break;
        }
        assert.equal(pushed, true);
        stale.push(it.handle);
        it.handle = null;
        it.parent = dq;
        dq.items.push(it);
        break;
      }
      case 7: {
        // pop from a deque root
        const dq = pick(roots().filter((x) => x.deque), a);
        if (!dq) break;
        if (dq.borrows > 0) {
          expectCode(() => dq.handle.pop(), 'EBORROWED');
          break;
        }
        const h = dq.handle.pop();
        if (dq.items.length === 0) {
          assert.equal(h, undefined);
          break;
        }
        const it = dq.items.shift()!;
        it.parent = null;
        it.handle = h;
        if (!it.deque) assert.equal(h.getU8(0), it.tag, 'FIFO: the oldest element with its data');
        break;
      }
      case 9: {
        // bulk move between two deque roots
        const ds = roots().filter((x) => x.deque);
        const dq = pick(ds, a);
        const src = pick(ds, b);
        if (!dq || !src) break;
        const n = c % 5;
        let expected: string | null = null;
        if (dq.borrows > 0) expected = 'EBORROWED';
        else if (src.owner !== dq.owner) expected = 'EINVAL';
        else if (src.borrows > 0) expected = 'EBORROWED';
        else if (src === dq) expected = 'EINVAL';
        if (expected) {
          expectCode(() => dq.handle.moveFrom(src.handle, n), expected);
          break;
        }
        const moving = Math.min(n, src.items.length, dq.cap - dq.items.length);
        assert.equal(dq.handle.moveFrom(src.handle, n), moving);
        for (const it of src.items.splice(0, moving)) {
          it.parent = dq;
          dq.items.push(it);
        }
        break;
      }
      case 8: {
        // a domain crash
        const owner = OWNERS[a % 3]!;
        heap.reclaim(owner);
        for (const o of roots().filter((x) => x.owner === owner && !x.pending)) {
          if (o.borrows > 0) o.pending = true;
          else freeTree(o);
        }
        break;
      }
    }
    // invariants after every step
    for (const owner of OWNERS) {
      const want = live.filter((o) => o.owner === owner);
      assert.deepEqual(heap.usage(owner), { bytes: want.reduce((s, o) => s + o.bytes, 0), slots: want.length }, `accounting of owner ${owner}`);
    }
    assert.equal(heap.totalUsage().slots, live.length);
    for (const o of live) {
      if (o.handle) assert.equal(heap.owner[o.slot], o.owner, 'the owner column of a value with a handle is exact');
      assert.equal(heap.ownerOf(o.slot), o.owner, `value ${o.id} belongs to its root's owner`);
    }
    const probe = stale[(c >>> 0) % Math.max(1, stale.length)];
    if (probe) {
      for (const from of OWNERS) for (const type of [kit.bytesType, kit.dequeType]) assert.equal(kit.fastMove(kit.state, probe, type, from, 1), null, 'a stale handle cannot move');
      expectCode(() => probe.getU32(0), 'EREVOKED');
      expectCode(() => probe.setU8(0, 1), 'EREVOKED');
    }
    for (const o of live) if (o.handle && !o.deque) assert.equal(o.handle.getU8(0), o.tag, 'data follows its allocation');
  }

  // Cleanup: end every borrow, every owner dies; everything returns to baseline.
  for (const { h } of ros) {
    kit.revoke(h);
    heap.endBorrow(kit.slotOf(h));
    stale.push(h);
  }
  for (const owner of OWNERS) heap.reclaim(owner);
  for (const o of live) if (o.handle) stale.push(o.handle);
  assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 }, 'back to baseline');
  for (const h of stale) expectCode(() => h.getU8(0), 'EREVOKED');
  // No slot leaked: all of them can be allocated again.
  for (let i = 0; i < MAX_SLOTS; i++) heap.alloc(1, 8, kit.bytesType);
  assert.throws(() => heap.alloc(1, 8, kit.bytesType), (e: unknown) => e instanceof HeapError && e.code === 'ENOSLOT');
}

test('property: random alloc/move/borrow/drop/push/pop/moveFrom/crash sequences keep ownership and accounting exact', () => {
  const opArb = fc.tuple(fc.nat(9), fc.nat(1000), fc.nat(100_000), fc.nat(1 << 30));
  fc.assert(fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => runModel(ops)), { numRuns: 300 });
});

test('property: moveFrom between deques of one owner behaves as pop-then-push against a model of FIFOs', () => {
  // op: 0 push a fresh tagged buffer onto deque a, 1 pop deque a, 2..4 deque a.moveFrom(deque b, n).
  const opArb = fc.tuple(fc.nat(4), fc.nat(3), fc.nat(3), fc.nat(6));
  const capsArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 4, maxLength: 4 });
  fc.assert(
    fc.property(capsArb, fc.array(opArb, { minLength: 20, maxLength: 150 }), (caps, ops) => {
      const { kit, heap, violations } = setup({ maxSlots: 64 });
      const dqs = caps.map((cap) => any(kit.allocDeque(1, cap)));
      const model: number[][] = caps.map(() => []);
      let tag = 0;
      for (const [op, a, b, n] of ops) {
        if (op === 0) {
          const buf = any(kit.allocBytes(1, 8));
          buf.setU8(0, ++tag & 255);
          const pushed = dqs[a].push(buf);
          assert.equal(pushed, model[a]!.length < caps[a]!);
          if (pushed) model[a]!.push(tag & 255);
          else buf.drop();
        } else if (op === 1) {
          const h = dqs[a].pop();
          const want = model[a]!.shift();
          assert.equal(h?.getU8(0), want);
          h?.drop();
        } else if (a === b) {
          throwsCode(() => dqs[a].moveFrom(dqs[b], n), 'EINVAL', /same deque/);
        } else {
          const moving = Math.min(n, model[b]!.length, caps[a]! - model[a]!.length);
          assert.equal(dqs[a].moveFrom(dqs[b], n), moving);
          model[a]!.push(...model[b]!.splice(0, moving));
        }
        model.forEach((m, i) => assert.equal(dqs[i].length, m.length, `length of deque ${i}`));
        const held = model.reduce((sum, m) => sum + m.length, 0);
        assert.equal(heap.usage(1).slots, dqs.length + held, 'accounting: every element is counted once');
      }
      assert.equal(violations.length, ops.filter(([op, a, b]) => op >= 2 && a === b).length, 'only the refused self-moves are violations');
      for (let i = 0; i < dqs.length; i++) {
        const out: number[] = [];
        for (let h = dqs[i].pop(); h !== undefined; h = dqs[i].pop()) {
          out.push(h.getU8(0));
          h.drop();
        }
        assert.deepEqual(out, model[i], `contents of deque ${i} in FIFO order`);
        dqs[i].drop();
      }
      assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 }, 'back to baseline');
    }),
    { numRuns: 200 },
  );
});

void ({} as HandleKit);
