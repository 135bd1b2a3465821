/**
 * The IOMMU's view of the exchange heap (src/devices/iommu.ts over the tables heap.ts keeps): a
 * fast-check property runs random sequences of allocations of every size class and large ones,
 * frees, moves, pushes into and pops out of deques, and loans, then asks the IOMMU about the first,
 * middle and last bytes of every live value, the bytes just past and before it, and random
 * addresses. Its answers must equal a linear search of the slot table: an access is allowed only
 * inside one live allocation, for writes only when the attached domain owns its root (a deque's
 * element by the deque's owner, whatever its own owner column says), for reads also when the value
 * or one holding it (up to its root) is lent to the attached domain (a loan to another domain
 * lends the device nothing). Stale map entries (slots freed, blocks reused by another size or owner) must match
 * nothing.
 */
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ACTIVE_EPOCH, BUS, BUS_BYTES } from '../../src/devices/bus.js';
import { boundIommu, createIommu, LOAN_COLUMNS, NO_DOMAIN, NO_LOANS } from '../../src/devices/iommu.js';
import { FREE, NO_PARENT, type ExchangeHeap } from '../../src/kernel/heap.js';
import { any, heapAndKit } from './kit-helpers.js';

/** The domain the device is attached to; the other owner values belong to someone else. */
const DRIVER = 1;
const OTHER = 2;
/** The IOMMU loan column the driver was given. */
const COLUMN = 3;
const SIZES = [8, 60, 64, 100, 2048, 4000, 4096, 5000, 70_000, (1 << 20) + 5000];

type Op =
  | { op: 'alloc'; owner: number; size: number }
  | { op: 'deque'; owner: number }
  | { op: 'move'; i: number; to: number }
  | { op: 'push'; i: number; j: number }
  | { op: 'pop'; j: number }
  | { op: 'drop'; i: number }
  | { op: 'lend'; i: number; to: number }
  | { op: 'unlend'; i: number };

const owner = fc.constantFrom(DRIVER, OTHER);
const idx = fc.nat(12);
// Weighted towards what makes owner columns stale: deques filled, then moved to the other owner.
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('alloc' as const), owner, size: fc.constantFrom(...SIZES) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('deque' as const), owner }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('move' as const), i: idx, to: owner }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('push' as const), i: idx, j: idx }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pop' as const), j: idx }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drop' as const), i: idx }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('lend' as const), i: idx, to: owner }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unlend' as const), i: idx }) },
);

/** The reference: a linear search of the slot table for the one live allocation holding the range. */
function expected(heap: ExchangeHeap, loansToDriver: Map<number, number>, addr: number, len: number, write: boolean): boolean {
  for (let s = 0; s < heap.highWater; s++) {
    if (heap.owner[s] === FREE) continue;
    const o = heap.off[s]!;
    if (addr < o || addr + len > o + heap.len[s]!) continue;
    let lent = loansToDriver.get(s)! > 0;
    for (let p = s; heap.parent[p] !== NO_PARENT; p = heap.parent[p]!) lent ||= loansToDriver.get(heap.parent[p]!)! > 0;
    return heap.ownerOf(s) === DRIVER || (!write && lent);
  }
  return false;
}

function run(ops: Op[], probes: number[]): void {
  const { heap, kit } = heapAndKit({ physBytes: 16 << 20, maxSlots: 512 });
  const { iommu } = boundIommu(heap.iommuTables, DRIVER, COLUMN);
  /** Live root handles, and which of them are deques (index into `roots`); its loans, by column. */
  const roots: { h: any; owner: number; deque: boolean; lent: number[] }[] = [];
  /** The reference's count of loans to the driver, per slot. */
  const loansToDriver = new Map<number, number>();
  const columnOf = (to: number): number => (to === DRIVER ? COLUMN : NO_LOANS);
  for (const o of ops) {
    const r = roots.length > 0 ? roots[('i' in o ? o.i : 'j' in o ? o.j : 0) % roots.length] : undefined;
    switch (o.op) {
      case 'alloc': roots.push({ h: any(kit.allocBytes(o.owner, o.size)), owner: o.owner, deque: false, lent: [] }); break;
      case 'deque': roots.push({ h: any(kit.allocDeque(o.owner, 4)), owner: o.owner, deque: true, lent: [] }); break;
      case 'move':
        if (r && r.lent.length === 0) {
          const moved = kit.moveTyped(r.h, r.deque ? kit.dequeType : kit.bytesType, r.owner, o.to);
          assert.ok(moved, 'a move of a live root');
          r.h = any(moved);
          r.owner = o.to;
        }
        break;
      case 'push': {
        const d = roots[o.j % Math.max(1, roots.length)];
        if (r && d && d.deque && !r.deque && d !== r && d.owner === r.owner && r.lent.length === 0 && d.lent.length === 0 && d.h.length < 4) {
          d.h.push(r.h);
          roots.splice(roots.indexOf(r), 1);
        }
        break;
      }
      case 'pop':
        if (r && r.deque && r.lent.length === 0 && r.h.length > 0) roots.push({ h: r.h.pop(), owner: r.owner, deque: false, lent: [] });
        break;
      case 'drop':
        if (r && r.lent.length === 0) {
          r.h.drop();
          roots.splice(roots.indexOf(r), 1);
        }
        break;
      case 'lend':
        if (r) {
          const s = kit.slotOf(r.h);
          heap.beginBorrow(s, columnOf(o.to));
          r.lent.push(o.to);
          if (o.to === DRIVER) loansToDriver.set(s, (loansToDriver.get(s) ?? 0) + 1);
        }
        break;
      case 'unlend':
        if (r && r.lent.length > 0) {
          const s = kit.slotOf(r.h);
          const to = r.lent.pop()!;
          heap.endBorrow(s, columnOf(to));
          if (to === DRIVER) loansToDriver.set(s, loansToDriver.get(s)! - 1);
        }
        break;
    }
  }
  const addrs = [...probes];
  for (let s = 0; s < heap.highWater; s++) {
    if (heap.owner[s] === FREE) continue;
    const o = heap.off[s]!;
    const n = heap.len[s]!;
    addrs.push(o, o + (n >>> 1), o + n - 1, o + n, o - 1);
  }
  for (const a of addrs) {
    if (a < 0) continue;
    for (const len of [1, 8, 64]) {
      for (const write of [true, false]) {
        assert.equal(iommu.allows(a, len, write), expected(heap, loansToDriver, a, len, write), `${write ? 'write' : 'read'} of ${len} at ${a}`);
      }
    }
  }
  for (const r of roots) for (const to of r.lent) heap.endBorrow(kit.slotOf(r.h), columnOf(to));
  for (let c = 0; c < LOAN_COLUMNS; c++) assert.equal(heap.loansIn(c), 0, `column ${c}: every loan ended`);
}

test('the IOMMU allows exactly what a linear search of the slot table allows, through allocations, frees, moves, deques and loans', () => {
  fc.assert(fc.property(fc.array(opArb, { minLength: 30, maxLength: 100 }), fc.array(fc.nat((16 << 20) - 1), { maxLength: 20 }), (ops, probes) => run(ops, probes)), { numRuns: 150 });
});

test('the IOMMU of a device attached to no domain refuses everything, and before its first reset it has no domain', () => {
  const { heap, kit } = heapAndKit();
  const h = any(kit.allocBytes(DRIVER, 64));
  const addr = heap.off[kit.slotOf(h)]!;
  const bus = new Int32Array(new SharedArrayBuffer(BUS_BYTES));
  bus[BUS.DOMAIN] = DRIVER;
  const iommu = createIommu(heap.iommuTables, bus);
  assert.equal(iommu.allows(addr, 64, true), false, 'the domain is taken up at the reset, not before');
  iommu.bind();
  assert.equal(iommu.allows(addr, 64, true), true);
  bus[BUS.DOMAIN] = NO_DOMAIN;
  iommu.bind();
  assert.equal(iommu.allows(addr, 64, false), false);
});

test('a fault record names the domain the device was bound to, the address, length and direction', () => {
  const { heap } = heapAndKit();
  const { iommu, bus } = boundIommu(heap.iommuTables, 7);
  bus[BUS.DOMAIN] = 8; // an attach requested since: not yet the device's domain
  iommu.fault(0x12340, 60, true);
  assert.deepEqual([bus[BUS.FAULTS], bus[BUS.FAULT_ADDR], bus[BUS.FAULT_LEN], bus[BUS.FAULT_WRITE], bus[BUS.FAULT_DOMAIN]], [1, 0x12340, 60, 1, 7]);
});

test('memory lent to a call into the driver is readable by its device whether the loan is of a root or of a value held in a struct field (a BlkReq\'s data), never writable; a loan to another domain lends it nothing', () => {
  const { heap, kit } = heapAndKit();
  const { iommu } = boundIommu(heap.iommuTables, DRIVER, COLUMN);
  const req = any(kit.allocStruct(OTHER, 'BlkReq'));
  req.data = kit.allocBytes(OTHER, 4096);
  const data = req.data as object;
  const slot = kit.slotOf(data);
  assert.notEqual(heap.parent[slot], NO_PARENT, 'the buffer is a field of the request');
  const addr = heap.off[slot]!;
  assert.equal(iommu.allows(addr, 4096, false), false, 'not lent: refused');
  heap.beginBorrow(slot); // lent to a call into a domain that drives no device (or another one)
  heap.beginBorrow(slot, COLUMN - 1);
  assert.equal(iommu.allows(addr, 4096, false), false, 'lent to others: refused');
  heap.beginBorrow(slot, COLUMN); // as the proxy lends a Borrow<> argument to the driver: the slot of the handle passed
  assert.equal(iommu.allows(addr, 4096, false), true, 'lent to the driver: the device may read it');
  assert.equal(iommu.allows(addr, 4096, true), false, 'lent: never written');
  assert.equal(iommu.allows(heap.off[kit.slotOf(req)]!, 8, false), false, 'the request around it was not lent');
  assert.equal(heap.loansIn(COLUMN), 1);
  heap.endBorrow(slot, COLUMN);
  assert.equal(iommu.allows(addr, 4096, false), false, 'the loan to the driver ended');
  assert.equal(heap.loansIn(COLUMN), 0);
  heap.endBorrow(slot, COLUMN - 1);
  heap.endBorrow(slot);
});

test('DMA quarantine: a block freed while a device works is reused only once that device passed two DMA boundaries, or parked, or was detached; the slot is free at once', () => {
  const { heap, kit } = heapAndKit();
  let epoch = ACTIVE_EPOCH; // odd: the device may be transferring
  heap.guardDma(DRIVER, () => epoch);
  const addr = (h: object): number => heap.off[kit.slotOf(h)]!;
  const held = any(kit.allocBytes(DRIVER, 2048));
  const at = addr(held);
  const slot = kit.slotOf(held);
  held.drop();
  assert.equal(heap.owner[slot], FREE, 'the slot is freed at once');
  assert.equal(heap.dmaHeld, 1);
  epoch += 2; // one boundary: a transfer checked just before the free may still be copying
  assert.notEqual(addr(kit.allocBytes(OTHER, 2048)), at, 'not reused after one boundary');
  epoch += 2;
  assert.equal(addr(kit.allocBytes(OTHER, 2048)), at, 'reused after two');
  assert.equal(heap.dmaHeld, 0);

  // A tree: a deque and its elements, freed with it, are all held back; detaching releases them.
  const dq = any(kit.allocDeque(DRIVER, 4));
  const elems = [any(kit.allocBytes(DRIVER, 2048)), any(kit.allocBytes(DRIVER, 2048))];
  const elemAddrs = elems.map(addr);
  for (const e of elems) dq.push(e);
  dq.drop();
  assert.equal(heap.dmaHeld, 3);
  const others = [any(kit.allocBytes(OTHER, 2048)), any(kit.allocBytes(OTHER, 2048))].map(addr);
  assert.ok(!others.some((a) => elemAddrs.includes(a)), 'no element\'s block was handed out');
  heap.unguardDma(DRIVER);
  assert.equal(heap.dmaHeld, 0, 'detached: nothing held');
  const again = [any(kit.allocBytes(OTHER, 2048)), any(kit.allocBytes(OTHER, 2048))].map(addr);
  assert.deepEqual(new Set(again), new Set(elemAddrs), 'the elements\' blocks come back');

  // No device driven: a free goes straight back.
  const o = any(kit.allocBytes(OTHER, 2048));
  const oAt = addr(o);
  o.drop();
  assert.equal(heap.dmaHeld, 0);
  assert.equal(addr(kit.allocBytes(DRIVER, 2048)), oAt);
});

test('DMA quarantine: a buffer the driver hands to another domain mid-transfer, which that domain frees, is held back too; a parked device holds nothing back', () => {
  const { heap, kit } = heapAndKit();
  let epoch = ACTIVE_EPOCH;
  heap.guardDma(DRIVER, () => epoch);
  const addr = (h: object): number => heap.off[kit.slotOf(h)]!;
  // The driver's buffer, posted to its device (checked: the driver owns it), then moved away.
  const { iommu } = boundIommu(heap.iommuTables, DRIVER);
  const buf = any(kit.allocBytes(DRIVER, 2048));
  const at = addr(buf);
  assert.equal(iommu.allows(at, 2048, true), true, 'checked while the driver owns it');
  const given = any(kit.moveTyped(buf, kit.bytesType, DRIVER, OTHER)!);
  given.drop(); // the other domain frees it while the device may still be copying into it
  assert.equal(heap.dmaHeld, 1, 'another domain\'s free is held back while the device works');
  assert.notEqual(addr(kit.allocBytes(OTHER, 2048)), at, 'not reused mid-transfer');
  assert.equal(iommu.allows(at, 2048, true), false, 'a transfer checked after the free is refused');

  // The device parks (even epoch): every transfer it checked has ended, so nothing waits.
  epoch += 1;
  assert.equal(addr(kit.allocBytes(OTHER, 2048)), at, 'parked: reused at once');
  const mine = any(kit.allocBytes(DRIVER, 2048));
  const mineAt = addr(mine);
  mine.drop();
  assert.equal(heap.dmaHeld, 0, 'freed while the device is parked: not held');
  assert.equal(addr(kit.allocBytes(OTHER, 2048)), mineAt);

  // A dead domain's memory (reclaim) is held back like a free, while the device works.
  epoch += 1; // awake again
  const dying = any(kit.allocBytes(OTHER, 2048));
  const dyingAt = addr(dying);
  heap.reclaim(OTHER);
  assert.ok(heap.dmaHeld >= 1, 'a reclaim\'s blocks are held back');
  assert.notEqual(addr(kit.allocBytes(DRIVER, 2048)), dyingAt);
  heap.unguardDma(DRIVER);
  assert.equal(heap.dmaHeld, 0);
});

test('a value lent while its holder is freed (or reclaimed) leaves the holder: once the holder\'s slot is reused by the driver, its device may neither write nor read the lent value, nor can the driver list it as a field', () => {
  for (const how of ['free', 'reclaim'] as const) {
    const { heap, kit } = heapAndKit();
    const { iommu } = boundIommu(heap.iommuTables, DRIVER, COLUMN);
    const req = any(kit.allocStruct(OTHER, 'BlkReq'));
    req.data = kit.allocBytes(OTHER, 4096);
    const c = kit.slotOf(req.data as object);
    const r = kit.slotOf(req);
    heap.beginBorrow(c); // the field's value is lent (alone) to a call into a domain that is not the driver
    if (how === 'free') req.drop();
    else heap.reclaim(OTHER);
    assert.equal(heap.owner[r], FREE, `${how}: the holder is freed`);
    assert.ok(heap.isPendingFree(c), `${how}: the lent value waits for its loan to end`);
    // The driver's next allocation takes the holder's slot.
    const mine = any(kit.allocStruct(DRIVER, 'BlkReq'));
    assert.equal(kit.slotOf(mine), r, `${how}: the holder's slot was reused`);
    const at = heap.off[c]!;
    assert.notEqual(heap.ownerOf(c), DRIVER, `${how}: the lent value is not the driver's`);
    assert.equal(iommu.allows(at, 4096, true), false, `${how}: the driver's device may not write the lent value`);
    assert.equal(iommu.allows(at, 4096, false), false, `${how}: nor read it (not lent to the driver)`);
    assert.equal(heap.validChild(r, c), false, `${how}: the driver cannot name it as a field of its own request`);
    heap.endBorrow(c);
    assert.equal(heap.owner[c], FREE, `${how}: freed when the loan ends`);
  }
});

test('DMA quarantine: the slot of a value freed while a device works is reused only with its memory (an IOMMU lookup in flight never sees it given to another value); an allocation that finds memory exhausted waits for what is held back', () => {
  const { heap, kit } = heapAndKit({ physBytes: 4 << 20, maxSlots: 64 });
  let epoch = (): number => ACTIVE_EPOCH;
  heap.guardDma(DRIVER, () => epoch());
  const a = any(kit.allocBytes(OTHER, 64));
  const slot = kit.slotOf(a);
  a.drop();
  const b = any(kit.allocBytes(DRIVER, 64));
  assert.notEqual(kit.slotOf(b), slot, 'the freed slot is held back with its memory');
  epoch = () => ACTIVE_EPOCH + 4;
  const c = any(kit.allocBytes(DRIVER, 64));
  assert.equal(kit.slotOf(c), slot, 'released after two boundaries');

  // Memory runs out while a large block is held back: the allocation waits for the device.
  const BIG = 3 << 20;
  any(kit.allocBytes(OTHER, BIG)).drop();
  assert.equal(heap.dmaHeld, 1);
  const t0 = performance.now();
  epoch = () => (performance.now() - t0 > 5 ? ACTIVE_EPOCH + 8 : ACTIVE_EPOCH + 4); // two boundaries 5 ms from now
  const again = any(kit.allocBytes(DRIVER, BIG));
  assert.ok(performance.now() - t0 >= 5, 'it waited for the boundaries');
  assert.equal(heap.dmaHeld, 0);
  again.drop(); // held again: the device is working (odd), and makes no progress any more
  assert.equal(heap.dmaHeld, 1);
  const t1 = performance.now();
  assert.throws(() => kit.allocBytes(DRIVER, BIG), (e: unknown) => (e as { code?: string }).code === 'ENOMEM' && /out of physical memory/.test((e as Error).message), 'a device that never passes its boundaries: ENOMEM');
  assert.ok(performance.now() - t1 < 1000, 'after a bounded wait');
});

/** The quarantine property's operations: an allocation, a free, and devices moving on. */
type QOp =
  | { op: 'alloc'; size: number }
  | { op: 'drop'; i: number }
  | { op: 'boundary'; dev: number }
  | { op: 'park'; dev: number }
  | { op: 'wake'; dev: number }
  | { op: 'detach'; dev: number };

const qOpArb: fc.Arbitrary<QOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('alloc' as const), size: fc.constantFrom(64, 100, 2048, 5000, 70_000) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('drop' as const), i: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('boundary' as const), dev: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('park' as const), dev: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('wake' as const), dev: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('detach' as const), dev: fc.nat(1) }) },
);

test('DMA quarantine property: no block or slot freed while a device works is reused before that device passed two boundaries, parked or was detached', () => {
  fc.assert(
    fc.property(fc.array(qOpArb, { minLength: 20, maxLength: 120 }), (ops) => {
      const { heap, kit } = heapAndKit({ physBytes: 4 << 20, maxSlots: 512 });
      // Two devices, driven by domains 1 and 2, both working at first (odd epochs).
      const epochs = [ACTIVE_EPOCH, ACTIVE_EPOCH];
      const guarded = [true, true];
      for (let d = 0; d < 2; d++) heap.guardDma(d + 1, () => epochs[d]!);
      const live: any[] = [];
      /** What must not be handed out yet: a freed block and slot, and each device's epoch at the free (-1: no wait for it). */
      const waiting: { off: number; end: number; slot: number; at: number[] }[] = [];
      const mayReuse = (w: { at: number[] }): boolean =>
        w.at.every((e, d) => e < 0 || !guarded[d] || (epochs[d]! & 1) === 0 || epochs[d]! - e >= 4);
      for (const o of ops) {
        // A free whose devices all parked or passed two boundaries at some moment since is safe from then on.
        for (let i = waiting.length - 1; i >= 0; i--) if (mayReuse(waiting[i]!)) waiting.splice(i, 1);
        switch (o.op) {
          case 'alloc': {
            const h = any(kit.allocBytes(1 + (live.length % 3), o.size));
            const s = kit.slotOf(h);
            const off = heap.off[s]!;
            for (const w of waiting) {
              assert.ok(off + o.size <= w.off || off >= w.end, `a block handed out overlaps one still held (${off}..${off + o.size} over ${w.off}..${w.end})`);
              assert.notEqual(s, w.slot, `slot ${s} handed out while still held`);
            }
            live.push(h);
            break;
          }
          case 'drop': {
            if (live.length === 0) break;
            const h = live.splice(o.i % live.length, 1)[0]!;
            const s = kit.slotOf(h);
            const off = heap.off[s]!;
            waiting.push({ off, end: off + heap.len[s]!, slot: s, at: epochs.map((e, d) => (guarded[d] && (e & 1) === 1 ? e : -1)) });
            h.drop();
            break;
          }
          case 'boundary': if ((epochs[o.dev]! & 1) === 1) epochs[o.dev]! += 2; break;
          case 'park': if ((epochs[o.dev]! & 1) === 1) epochs[o.dev]! += 1; break;
          case 'wake': if ((epochs[o.dev]! & 1) === 0) epochs[o.dev]! += 1; break;
          case 'detach':
            if (guarded[o.dev]) {
              guarded[o.dev] = false;
              heap.unguardDma(o.dev + 1);
            }
            break;
        }
      }
      // Once every device is parked or detached, nothing stays held.
      for (let d = 0; d < 2; d++) if ((epochs[d]! & 1) === 1) epochs[d]! += 1;
      kit.allocBytes(1, 64);
      assert.equal(heap.dmaHeld, 0, 'every device parked: everything held came back');
    }),
    { numRuns: 200 },
  );
});

test('DMA quarantine: an allocation that finds memory exhausted keeps waiting (within its bound) when what comes back first does not fit it', () => {
  const { heap, kit } = heapAndKit({ physBytes: 4 << 20, maxSlots: 64 });
  let epoch = (): number => ACTIVE_EPOCH;
  heap.guardDma(DRIVER, () => epoch());
  const BIG = 3 << 20;
  any(kit.allocBytes(OTHER, 64)).drop(); // a small block held back at epoch 1
  epoch = () => ACTIVE_EPOCH + 2;
  any(kit.allocBytes(OTHER, BIG)).drop(); // the large one held back at epoch 3
  assert.equal(heap.dmaHeld, 2);
  const t0 = performance.now();
  // One boundary a while from now frees the small block (epoch 5), the next one the large (epoch 7).
  epoch = () => { const t = performance.now() - t0; return t > 20 ? 7 : t > 5 ? 5 : 3; };
  const again = any(kit.allocBytes(DRIVER, BIG));
  assert.ok(performance.now() - t0 >= 20, 'it waited until the large block came back');
  assert.equal(heap.dmaHeld, 0);
  again.drop();
});

test('a device thread\'s lookup ends while the kernel detaches a value from its holder at the same time (the loan walk does not run off the top of a chain that changed under it)', async () => {
  const { heap, kit } = heapAndKit({ physBytes: 4 << 20, maxSlots: 64 });
  const req = any(kit.allocStruct(OTHER, 'BlkReq'));
  req.data = kit.allocBytes(OTHER, 512); // not lent: the device's reads of it are refused, after the loan walk
  const data = kit.slotOf(req.data as object);
  const holder = kit.slotOf(req);
  const progress = new Int32Array(new SharedArrayBuffer(4));
  const iommuUrl = new URL('../../src/devices/iommu.js', import.meta.url).href;
  const device = new Worker(
    `const { workerData: w } = require('node:worker_threads');
     import(${JSON.stringify(iommuUrl)}).then(({ boundIommu }) => {
       const { iommu } = boundIommu(w.tables, ${DRIVER}, ${COLUMN});
       for (let n = 1; ; n++) { iommu.allows(w.addr, 8, false); Atomics.store(w.progress, 0, n); }
     });`,
    { eval: true, workerData: { tables: heap.iommuTables, addr: heap.off[data]!, progress } },
  );
  try {
    while (Atomics.load(progress, 0) === 0) await new Promise((r) => setTimeout(r, 1));
    // The kernel releasing the field and putting it back, as fast as it can, for a while.
    const end = performance.now() + 300;
    while (performance.now() < end) for (let i = 0; i < 100_000; i++) { heap.parent[data] = NO_PARENT; heap.parent[data] = holder; }
    const at = Atomics.load(progress, 0);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(Atomics.load(progress, 0) > at, 'the device thread still answers lookups');
  } finally {
    await device.terminate();
  }
});
