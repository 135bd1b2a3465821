/**
 * Entrusted values (what a shadow moves into its driver comes back to it when the driver dies):
 * the heap's bequeath step of reclaim, and the kernel's supervisor capability on top of it.
 *
 * Heap: an entrusted value a dead domain holds goes to its heir with what it holds, as a root
 * (detached from a holder that is not going back); the dead domain's handles stay revoked; values
 * it freed, values held by a lent one, and values of an heir the rule refuses are not given back;
 * a free clears the mark; a value that leaves an entrusted holder (pop, moveFrom) takes its mark.
 * A fast-check property runs random sequences of allocations, entrusts, moves between the heir
 * and the driver, pushes, pops, bulk moves, drops, lends and gifts to a third domain,
 * then kills the driver, and checks against a model: exactly the expected values went back,
 * every handle the driver or anyone held before a move can neither read nor write, the driver's
 * accounting is zero once the borrows end, and everything is freed once the survivors drop
 * what they hold.
 *
 * Kernel (in-thread and worker tier): supervisor.entrust refuses values the shadow does not own (foreign, moved, borrowed,
 * not an RRef), and lists a deque's element addresses in order into an array of the shadow's
 * (refusing one of the wrong type or too short); recall hands back fresh handles to exactly the entrusted values a dead instance
 * held, once; nothing comes back from an instance the capability never handed out, or to a dead
 * shadow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FREE, DEQUE_HEADER } from '../../src/kernel/heap.js';
import { HandleError } from '../../src/kernel/rref.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { isRpcError } from '../../src/kernel/errors.js';
import { bootMembdev } from '../../src/host/storage.js';
import { join } from 'node:path';
import { DOM_C, TEST_ARTIFACTS } from './helpers.js';
import { any, dma, heapAndKit } from './kit-helpers.js';

const HEIR = 1;
const DRIVER = 2;
const OTHER = 3;

/** A heap whose inheritance rule lets HEIR inherit from DRIVER only, recording what it gave. */
function setup() {
  const { heap, kit, violations } = heapAndKit({ maxSlots: 512 });
  const given: { dead: number; heir: number; roots: number[] }[] = [];
  heap.setInheritance({
    mayInherit: (dead, heir) => dead === DRIVER && heir === HEIR,
    inherited: (dead, heir, roots) => void given.push({ dead, heir, roots }),
  });
  return { heap, kit, violations, given };
}

/** `fn` must be refused (a revoked or read-only handle can neither read nor write). */
function refused(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof HandleError);
}

test('an entrusted request moved to a driver that dies goes back to its heir, whole, with fresh handles only', () => {
  const { heap, kit, given } = setup();
  const req = any(kit.allocStruct(HEIR, 'TestReq'));
  req.id = 7;
  const data = any(kit.allocBytes(HEIR, 64));
  data.setU32(0, 0xfeed);
  req.data = data;
  heap.entrust(kit.slotOf(req), HEIR);
  const inDriver = any(kit.moveTo(req, HEIR, DRIVER));
  const dataInDriver = inDriver.data;
  assert.equal(inDriver.id, 7);
  const slot = kit.slotOf(inDriver);
  assert.equal(heap.entrustedTo(slot), HEIR);

  assert.equal(heap.reclaim(DRIVER), 0, 'nothing left to free');
  assert.deepEqual(given, [{ dead: DRIVER, heir: HEIR, roots: [slot] }]);
  assert.deepEqual(heap.usage(DRIVER), { bytes: 0, slots: 0 });
  assert.equal(heap.owner[slot], HEIR);
  for (const h of [req, inDriver, dataInDriver]) {
    assert.equal(h.valid, false);
    refused(() => h.id ?? h.getU32(0));
  }
  refused(() => dataInDriver.setU32(0, 1));
  const back = any(kit.mint(slot, HEIR, false));
  assert.equal(back.id, 7);
  assert.equal(back.data.getU32(0), 0xfeed, 'the same buffer, its bytes untouched');
  back.drop();
  assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 });
});

test('an entrusted element the driver put in its own deque comes back detached; the deque and its own values are freed', () => {
  const { heap, kit, given } = setup();
  const mine = any(kit.allocBytes(HEIR, 64));
  const slot = kit.slotOf(mine);
  heap.entrust(slot, HEIR);
  const moved = any(kit.moveTo(mine, HEIR, DRIVER));
  const driverDeque = any(kit.allocDeque(DRIVER, 4));
  const driverOwn = any(kit.allocBytes(DRIVER, 64));
  driverDeque.push(driverOwn);
  driverDeque.push(moved);
  heap.reclaim(DRIVER);
  assert.deepEqual(given.map((g) => g.roots), [[slot]]);
  assert.equal(heap.parent[slot], -1, 'a root now');
  assert.deepEqual(heap.usage(HEIR), { bytes: 64, slots: 1 });
  assert.deepEqual(heap.usage(DRIVER), { bytes: 0, slots: 0 });
  any(kit.mint(slot, HEIR, false)).drop();
  assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 });
});

test('freed, lent, refused and never-entrusted values are not given back; a free clears the mark', () => {
  const { heap, kit, given } = setup();
  const entrust = (owner: number): any => {
    const h = any(kit.allocBytes(owner, 64));
    heap.entrust(kit.slotOf(h), owner);
    return h;
  };
  // Freed by the driver: the slot is reused by the driver for its own buffer, unmarked.
  const freed = any(kit.moveTo(entrust(HEIR), HEIR, DRIVER));
  const freedSlot = kit.slotOf(freed);
  freed.drop();
  const reused = any(kit.allocBytes(DRIVER, 64));
  assert.equal(kit.slotOf(reused), freedSlot);
  assert.equal(heap.entrustedTo(freedSlot), -1, 'alloc and free clear the mark');
  // Lent by the driver to a third domain when it dies.
  const lent = any(kit.moveTo(entrust(HEIR), HEIR, DRIVER));
  const lentSlot = kit.slotOf(lent);
  heap.beginBorrow(lentSlot);
  const ro = any(kit.mint(lentSlot, OTHER, true));
  // Entrusted by a domain the rule does not allow to inherit from the driver.
  const foreign = any(kit.moveTo(entrust(OTHER), OTHER, DRIVER));
  const foreignSlot = kit.slotOf(foreign);
  // Never entrusted.
  any(kit.moveTo(kit.allocBytes(HEIR, 64), HEIR, DRIVER));

  heap.reclaim(DRIVER);
  assert.deepEqual(given, [], 'nothing was given back');
  assert.equal(heap.owner[freedSlot], FREE);
  assert.equal(heap.owner[foreignSlot], FREE);
  assert.equal(ro.getU8(0), 0, 'the borrower still reads the lent value');
  kit.revoke(ro);
  heap.endBorrow(lentSlot);
  assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 });
});

test('entrusting marks only the value; what leaves it (pop, moveFrom into a deque of the driver’s own) takes the mark and goes back', () => {
  const { heap, kit, given } = setup();
  const dq = any(kit.allocDeque(HEIR, 4));
  const bufs = [1, 2, 3].map((id) => {
    const b = any(kit.allocBytes(HEIR, 64));
    b.setU32(0, id);
    const slot = kit.slotOf(b);
    dq.push(b);
    return slot;
  });
  heap.entrust(kit.slotOf(dq), HEIR);
  assert.equal(heap.entrustedTo(bufs[0]!), HEIR, 'held by the entrusted deque: entrusted');
  const inDriver = any(kit.moveTo(dq, HEIR, DRIVER));
  const own = any(kit.allocDeque(DRIVER, 4));
  const ownSlot = kit.slotOf(own);
  assert.equal(own.moveFrom(inDriver, 2), 2);
  assert.equal(heap.entrustedTo(bufs[1]!), HEIR, 'moved out with the mark');
  assert.equal(heap.entrustedTo(ownSlot), -1, 'the driver’s own deque is not entrusted');
  const popped = own.pop();
  assert.equal(popped.getU32(0), 1);
  inDriver.drop(); // the rest (buffer 3) is freed with it
  heap.reclaim(DRIVER);
  assert.equal(given.length, 1);
  assert.deepEqual(new Set(given[0]!.roots), new Set([bufs[0], bufs[1]]), 'the popped and the bulk-moved buffer, each a root');
  assert.equal(heap.owner[ownSlot], FREE, 'the driver’s deque itself was freed');
  for (const s of given[0]!.roots) any(kit.mint(s, HEIR, false)).drop();
  assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 });
});

test('strays among a dead driver’s ring entries: an entrusted one still goes back, one of its own is freed, nothing leaks', () => {
  const { heap, kit, given } = setup();
  const ring = any(kit.allocDeque(DRIVER, 4));
  const ringSlot = kit.slotOf(ring);
  const entrusted = [1, 2].map((id) => {
    const b = any(kit.allocBytes(HEIR, 64));
    b.setU32(0, id);
    const slot = kit.slotOf(b);
    heap.entrust(slot, HEIR);
    ring.push(kit.moveTo(b, HEIR, DRIVER));
    return slot;
  });
  const own = kit.slotOf(kit.allocBytes(DRIVER, 64));
  ring.push(kit.mint(own, DRIVER, false));
  // The driver's device overwrites its second and third entries: an entrusted buffer and one of its own
  // become strays (unreachable from the ring, each still naming it as parent).
  dma(kit, ring, DEQUE_HEADER + 4, 0xffff);
  dma(kit, ring, DEQUE_HEADER + 8, 0xfffe);
  heap.reclaim(DRIVER);
  assert.equal(given.length, 1);
  assert.deepEqual(new Set(given[0]!.roots), new Set(entrusted), 'both entrusted buffers go back, the stray too');
  assert.equal(heap.owner[ringSlot], FREE, 'the driver’s ring was freed');
  assert.equal(heap.owner[own], FREE, 'and its own stray buffer');
  entrusted.forEach((s, i) => {
    assert.equal(heap.parent[s], -1, 'a root now');
    const back = any(kit.mint(s, HEIR, false));
    assert.equal(back.getU32(0), i + 1, 'its bytes untouched');
    back.drop();
  });
  assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 });
});

/** The model of one allocation. */
interface Obj {
  id: number;
  slot: number;
  deque: boolean;
  owner: number;
  /** The handle of a root; null for an element of a deque. */
  handle: any;
  parent: Obj | null;
  items: Obj[];
  entrusted: boolean;
  lentTo: any;
}

type Step = [op: number, a: number, b: number];

test('property: random entrust/move/push/pop/drop/lend/gift sequences, then the driver dies: exactly the expected values go back, revoked handles are dead, accounting returns to zero', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(10), fc.nat(40), fc.nat(40)), { maxLength: 60 }), (steps: Step[]) => {
      const { heap, kit, given } = setup();
      const objs: Obj[] = [];
      /** Handles that must be dead, and whether each is a deque's. */
      const stale: [any, boolean][] = [];
      let nextId = 1;
      const live = (): Obj[] => objs.filter((o) => o.owner !== FREE);
      const roots = (owner?: number): Obj[] => live().filter((o) => o.parent === null && (owner === undefined || o.owner === owner));
      const pick = <T>(xs: T[], i: number): T | undefined => (xs.length === 0 ? undefined : xs[i % xs.length]);
      const tree = (o: Obj): Obj[] => [o, ...o.items.flatMap(tree)];
      const add = (owner: number, deque: boolean): void => {
        const h = any(deque ? kit.allocDeque(owner, 4) : kit.allocBytes(owner, 64));
        const o: Obj = { id: nextId++, slot: kit.slotOf(h), deque, owner, handle: h, parent: null, items: [], entrusted: false, lentTo: null };
        if (!deque) h.setU32(0, o.id);
        objs.push(o);
      };
      const rootOf = (o: Obj): Obj => (o.parent === null ? o : rootOf(o.parent));

      for (const [op, a, b] of steps) {
        switch (op) {
          case 0: add(HEIR, false); break;
          case 1: add(a % 2 === 0 ? HEIR : DRIVER, true); break;
          case 2: {
            // The heir entrusts one of its roots (and what it holds while it holds it).
            const o = pick(roots(HEIR), a);
            if (!o) break;
            heap.entrust(o.slot, HEIR);
            o.entrusted = true;
            break;
          }
          case 3: {
            // A root moves between the heir and the driver.
            const o = pick(roots().filter((x) => x.owner !== OTHER && x.lentTo === null), a);
            if (!o) break;
            const to = o.owner === HEIR ? DRIVER : HEIR;
            stale.push([o.handle, o.deque]);
            o.handle = kit.moveTo(o.handle, o.owner, to);
            for (const x of tree(o)) x.owner = to;
            break;
          }
          case 4: {
            // Push a root into a deque root of the same owner.
            const dq = pick(roots().filter((x) => x.deque && x.owner !== OTHER && x.lentTo === null && x.items.length < 4), a);
            const it = dq && pick(roots(dq.owner).filter((x) => x !== dq && x.lentTo === null && !tree(x).includes(dq)), b);
            if (!dq || !it) break;
            assert.equal(dq.handle.push(it.handle), true);
            stale.push([it.handle, it.deque]);
            it.handle = null;
            it.parent = dq;
            dq.items.push(it);
            break;
          }
          case 5: {
            // Pop the oldest element out of a deque root.
            const dq = pick(roots().filter((x) => x.deque && x.owner !== OTHER && x.lentTo === null && x.items.length > 0), a);
            if (!dq) break;
            const it = dq.items.shift()!;
            it.handle = dq.handle.pop();
            // A value leaving an entrusted holder takes the mark with it.
            for (let x: Obj | null = dq; x !== null && !it.entrusted; x = x.parent) if (x.entrusted) it.entrusted = true;
            it.parent = null;
            if (!it.deque) assert.equal(it.handle.getU32(0), it.id);
            break;
          }
          case 6: {
            // Drop a root: its tree is freed (and its marks with it).
            const o = pick(roots().filter((x) => x.owner !== OTHER && x.lentTo === null), a);
            if (!o) break;
            o.handle.drop();
            stale.push([o.handle, o.deque]);
            for (const x of tree(o)) x.owner = FREE;
            break;
          }
          case 7: {
            // The driver lends a root to the third domain (a call in progress when it dies).
            const o = pick(roots(DRIVER).filter((x) => x.lentTo === null), a);
            if (!o) break;
            heap.beginBorrow(o.slot);
            o.lentTo = kit.mint(o.slot, OTHER, true);
            break;
          }
          case 8: {
            // The driver gives a root away to the third domain.
            const o = pick(roots(DRIVER).filter((x) => x.lentTo === null), a);
            if (!o) break;
            stale.push([o.handle, o.deque]);
            o.handle = kit.moveTo(o.handle, DRIVER, OTHER);
            for (const x of tree(o)) x.owner = OTHER;
            break;
          }
          case 9: {
            // Bulk move (moveFrom) of up to b elements between two deque roots of one owner:
            // the elements leave src, so they take its mark if src has one.
            const dst = pick(roots().filter((x) => x.deque && x.owner !== OTHER && x.lentTo === null), a);
            const src = dst && pick(roots(dst.owner).filter((x) => x.deque && x !== dst && x.lentTo === null && x.items.length > 0), b);
            if (!dst || !src) break;
            const n = Math.min(src.items.length, 4 - dst.items.length, (b % 3) + 1);
            assert.equal(dst.handle.moveFrom(src.handle, n), n);
            for (const it of src.items.splice(0, n)) {
              if (src.entrusted) it.entrusted = true;
              it.parent = dst;
              dst.items.push(it);
            }
            break;
          }
          default: add(DRIVER, false);
        }
      }

      // What the model expects when the driver dies: a value of the driver goes back iff its root
      // is not lent and some value on the path from its root down to it is entrusted; the topmost
      // such value is a root given back.
      const driverHandles = roots(DRIVER).map((o): [any, boolean] => [o.handle, o.deque]);
      const expectBack = new Set<Obj>();
      const expectRoots = new Set<number>();
      for (const o of live().filter((x) => x.owner === DRIVER)) {
        const r = rootOf(o);
        if (r.lentTo !== null) continue;
        const path: Obj[] = [];
        for (let x: Obj | null = o; x !== null; x = x.parent) path.unshift(x);
        const top = path.find((x) => x.entrusted);
        if (top === undefined) continue;
        expectBack.add(o);
        expectRoots.add(top.slot);
      }
      const lent = roots(DRIVER).filter((o) => o.lentTo !== null);

      heap.reclaim(DRIVER);

      const gotRoots = given.flatMap((g) => {
        assert.equal(g.dead, DRIVER);
        assert.equal(g.heir, HEIR);
        return g.roots;
      });
      assert.deepEqual(new Set(gotRoots), expectRoots, 'the roots given back');
      assert.equal(gotRoots.length, expectRoots.size, 'each once');
      for (const o of objs) {
        if (o.owner !== DRIVER) continue;
        if (expectBack.has(o)) assert.equal(heap.ownerOf(o.slot), HEIR, `value ${o.id} went back`);
        else if (rootOf(o).lentTo === null) assert.equal(heap.owner[o.slot], FREE, `value ${o.id} was freed`);
      }
      for (const s of expectRoots) assert.equal(heap.parent[s], -1, 'given back as a root');
      // The borrows end: the driver holds nothing.
      for (const o of lent) {
        kit.revoke(o.lentTo);
        heap.endBorrow(o.slot);
      }
      assert.deepEqual(heap.usage(DRIVER), { bytes: 0, slots: 0 });
      // No handle from before a move, a push, a drop or the death can read or write.
      const probe = any(kit.allocBytes(OTHER, 8));
      for (const [h, deque] of [...stale, ...driverHandles]) {
        assert.equal(h.valid, false);
        refused(() => (deque ? h.pop() : h.getU8(0)));
        refused(() => (deque ? h.push(probe) : h.setU8(0, 1)));
      }
      probe.drop();
      // The heir takes what came back (its data intact) and drops everything; so does the third domain.
      for (const s of gotRoots) {
        const h = any(kit.mint(s, HEIR, false));
        const o = objs.find((x) => x.slot === s && x.owner === DRIVER)!;
        if (!o.deque) assert.equal(h.getU32(0), o.id, 'the same bytes');
        h.drop();
      }
      for (const o of roots().filter((x) => x.owner !== DRIVER)) o.handle.drop();
      assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 }, 'accounting back to zero');
    }),
    { numRuns: 300 },
  );
});

/** A kernel with dom_c (the heir) and a membdev instance `drv`, and dom_c's supervisor capability over drv. */
function supervised() {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  const heir = k.load(DOM_C);
  bootMembdev(k, { bytes: 64 << 10, name: 'drv' });
  const sup = any((k as any).supervisor(heir, 'drv', 'BDev'));
  return { k, heir, sup };
}

test('supervisor.entrust refuses what the shadow does not own; recall gives back exactly the entrusted values the dead instance held, once', async () => {
  const { k, heir, sup } = supervised();
  try {
    const badArg = (v: unknown, why: RegExp): void =>
      assert.throws(() => sup.entrust(v), (e: unknown) => isRpcError(e) && e.kind === 'bad-argument' && why.test(e.message));
    badArg({}, /expected an RRef, got object/);
    badArg(null, /expected an RRef, got null/);
    const kernels = any(k.kit.allocBytes(0, 64));
    badArg(kernels, /only a valid RRef you own/);
    kernels.drop();
    const mine = any(k.kit.allocBytes(heir.id, 64));
    const s = k.kit.slotOf(mine);
    k.heap.beginBorrow(s);
    badArg(k.kit.mint(s, heir.id, true), /only a valid RRef you own/);
    k.heap.endBorrow(s);

    sup.current(); // hands out the instance: the shadow may inherit from it
    mine.setU32(0, 0xabcd);
    sup.entrust(mine);
    const drv = k.get('drv')!;
    const inDriver = any(k.kit.moveTo(mine, heir.id, drv.id));
    const addr = inDriver.addr;
    badArg(mine, /only a valid RRef you own/);
    const kept = any(k.kit.moveTo(k.kit.allocBytes(heir.id, 64), heir.id, drv.id)); // not entrusted
    assert.deepEqual(await sup.recall(), [], 'nothing while the instance lives');

    k.injectFault('drv', 'now');
    assert.equal(inDriver.valid, false);
    assert.equal(kept.valid, false);
    assert.deepEqual(k.heap.usage(drv.id), { bytes: 0, slots: 0 });
    const back = await sup.recall();
    assert.equal(back.length, 1);
    assert.ok(Object.isFrozen(back));
    // The list is frozen, its handles are not: a frozen handle would have a hidden class of its
    // own, and every handle operation the JIT had specialised would deoptimize (kernel.ts).
    assert.equal(Object.isFrozen(back[0]), false);
    assert.equal(Object.isFrozen(mine), false, 'as no other handle is');
    assert.equal(back[0].addr, addr, 'the same allocation');
    assert.equal(back[0].getU32(0), 0xabcd);
    assert.deepEqual(await sup.recall(), [], 'each value comes back once');
    back[0].drop();
    assert.deepEqual(k.heap.usage(heir.id), { bytes: 0, slots: 0 });

    // An instance never handed out (restarted behind the capability's back) leaves nothing behind.
    k.restart('drv');
    const other = k.get('drv')!;
    const x = any(k.kit.allocBytes(heir.id, 64));
    sup.entrust(x);
    k.kit.moveTo(x, heir.id, other.id);
    k.injectFault('drv', 'now');
    assert.deepEqual(await sup.recall(), []);
    assert.deepEqual(k.heap.totalUsage(), { bytes: 0, slots: 0 });
  } finally {
    k.shutdown();
  }
});

test('supervisor.entrust with an order array writes the addresses of a deque\'s elements in deque order (across wrap-around), and refuses a wrong or short one', () => {
  const { k, heir, sup } = supervised();
  try {
    const dq = any(k.kit.allocDeque(heir.id, 4));
    // Wrap the ring: head moves to 3 after three push/pop pairs.
    for (let i = 0; i < 3; i++) {
      dq.push(k.kit.allocBytes(heir.id, 64));
      dq.pop().drop();
    }
    const els = [0, 1, 2].map(() => any(k.kit.allocBytes(heir.id, 64)));
    const addrs = els.map((e) => e.addr);
    for (const e of els) dq.push(e);
    const order = any(k.kit.allocArray(heir.id, 'u32', 4));
    assert.equal(sup.entrust(dq, order), 3);
    assert.deepEqual([0, 1, 2].map((i) => order.get(i)), addrs);
    const badArg = (o: unknown, why: RegExp): void =>
      assert.throws(() => sup.entrust(dq, o), (e: unknown) => isRpcError(e) && e.kind === 'bad-argument' && why.test(e.message));
    badArg(k.kit.allocBytes(heir.id, 64), /order must be an RRefArray<u32>/);
    badArg(k.kit.allocArray(heir.id, 'u32', 2), /3 element addresses do not fit in 8 bytes/);
    badArg(k.kit.allocArray(0, 'u32', 4), /order: only a valid RRef you own/);
    assert.equal(sup.entrust(k.kit.allocBytes(heir.id, 8), order), 0, 'not a deque: nothing listed');
  } finally {
    k.shutdown();
  }
});

test('supervisor.diedAt: -1 while the instance lives, the time of its death on sys.now()\'s clock once it died, -1 again after a restart', () => {
  const { k, sup } = supervised();
  try {
    sup.current();
    assert.equal(sup.diedAt(), -1);
    const before = performance.now();
    k.injectFault('drv', 'now');
    const after = performance.now();
    const at = sup.diedAt();
    assert.ok(at >= before && at <= after, `died at ${at}, between ${before} and ${after}`);
    assert.equal(sup.diedAt(), at, 'the same stamp when asked again');
    sup.restart();
    assert.equal(sup.diedAt(), -1, 'the new instance lives');
  } finally {
    k.shutdown();
  }
});

test('a dead shadow inherits nothing: what its driver held is freed', async () => {
  const { k, heir, sup } = supervised();
  try {
    sup.current();
    const drv = k.get('drv')!;
    const v = any(k.kit.allocBytes(heir.id, 64));
    sup.entrust(v);
    k.kit.moveTo(v, heir.id, drv.id);
    k.terminate(heir);
    assert.throws(() => sup.entrust({}), /is dead/);
    k.injectFault('drv', 'now');
    assert.deepEqual(await sup.recall(), []);
    assert.deepEqual(k.heap.totalUsage(), { bytes: 0, slots: 0 });
  } finally {
    k.shutdown();
  }
});

test('worker tier: what a worker driver held when it died comes back once its thread is gone', async () => {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  try {
    const heir = k.load(DOM_C);
    k.load(join(TEST_ARTIFACTS, 'wprobe.rldom'), { name: 'wdrv', placement: 'worker' });
    const sup = any((k as any).supervisor(heir, 'wdrv', 'WorkerProbe'));
    const drv = sup.current();
    const buf = any(k.kit.allocBytes(heir.id, 256));
    buf.setU32(0, 0x5eed);
    const addr = buf.addr;
    sup.entrust(buf);
    assert.equal(await drv.keep(buf), 1, 'moved into the worker, which keeps it');
    const dead = k.get('wdrv')!;
    k.terminate(dead);
    const back = await sup.recall(); // waits for the thread to exit and its slots to be reclaimed
    assert.deepEqual(k.heap.usage(dead.id), { bytes: 0, slots: 0 });
    assert.equal(back.length, 1);
    assert.equal(back[0].addr, addr);
    assert.equal(back[0].getU32(0), 0x5eed);
    back[0].drop();
    assert.deepEqual(k.heap.totalUsage(), { bytes: 0, slots: 0 });
  } finally {
    k.shutdown();
  }
});
