/**
 * Proxies and cross-domain calls (ARCHITECTURE §2–3) with dom_c/dom_d and the faulty test domain:
 * every kind of crossing (no argument, primitives, RRef moved in and back, borrowed RRef, layout
 * structs with children, async results, dom_d→dom_c chains), ownership (the caller's moved handle
 * is revoked, a borrowed handle is read-only to the callee and frozen for the lender while lent),
 * interface references as arguments and results (they become proxies to the right domain), and
 * argument checks from host code.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { HandleError } from '../../src/kernel/rref.js';
import { FREE } from '../../src/kernel/heap.js';
import { artifactPath } from '../../src/kernel/paths.js';
import { bootKernel, loadFaulty, rpcFails, info, turn, DOM_D } from './helpers.js';

const t = bootKernel();
after(() => t.kernel.shutdown());
const { kernel } = t;
kernel.load(DOM_D, { imports: ['dom_c'] });
const c = kernel.bind('dom_c');
const d = kernel.bind('dom_d');
const any = (h: object): any => h;
const bytes = (n: number): any => kernel.kit.allocBytes(0, n);

function throwsHandle(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof HandleError && e.code === code);
}

describe('dom_c / dom_d crossings', () => {
  test('no argument, primitive argument and result; proxies are frozen', () => {
    const before = c.count();
    assert.equal(c.noarg(), undefined);
    assert.equal(c.onearg(41), 42);
    assert.equal(c.count(), before + 2);
    assert.ok(Object.isFrozen(c));
  });

  test('an RRef moved in comes back; the old handle is revoked and ownership follows', () => {
    const buf = bytes(64);
    buf.setU8(0, 5);
    const cId = kernel.get('dom_c')!.id;
    const back = any(c.rref(buf));
    assert.equal(buf.valid, false, "the caller's handle is revoked");
    throwsHandle(() => buf.getU8(0), 'EREVOKED');
    assert.equal(back.getU8(0), 6, 'the callee touched the same memory');
    assert.deepEqual(kernel.heap.usage(cId), { bytes: 0, slots: 0 });
    assert.equal(kernel.heap.owner[kernel.kit.slotOf(back)], 0);
    back.drop();
  });

  test('a borrowed RRef is lent for the call only: readable, and still the caller\'s afterwards', () => {
    const buf = bytes(4);
    [1, 2, 3, 4].forEach((v, i) => buf.setU8(i, v));
    assert.equal(c.sum(buf), 10);
    assert.equal(buf.valid, true);
    buf.setU8(0, 100);
    assert.equal(c.sum(buf), 109);
    buf.drop();
  });

  test('a bad argument after others were taken: the loan ends, the moved value the callee never got is freed, what came after stays the caller\'s', () => {
    const cId = kernel.get('dom_c')!.id;
    const badArg = (n: number) => (e: unknown): boolean => (e as { kind?: string }).kind === 'bad-argument' && new RegExp(`argument ${n}`).test((e as Error).message);
    const lent = bytes(4);
    lent.setU8(0, 7);
    const lentSlot = kernel.kit.slotOf(lent);
    const kept = bytes(16);
    const keptSlot = kernel.kit.slotOf(kept);
    assert.throws(() => c.mixed(kept, lent, 42), badArg(2));
    assert.equal(kernel.heap.borrows[lentSlot], 0, 'the loan ended');
    lent.setU8(0, 8); // the lender may write it again
    assert.equal(kernel.heap.owner[keptSlot], FREE, 'the moved value is freed');

    const kept2 = bytes(16);
    const kept2Slot = kernel.kit.slotOf(kept2);
    const last = bytes(16);
    assert.throws(() => c.mixed(kept2, 'not an RRef', last), badArg(1));
    assert.equal(kernel.heap.owner[kept2Slot], FREE, 'the moved value is freed');
    assert.equal(last.valid, true, 'the argument after the bad one was never taken');
    assert.deepEqual(kernel.heap.usage(cId), { bytes: 0, slots: 0 }, 'dom_c holds nothing it never got');
    assert.equal(c.mixed(bytes(1), lent, last), 8, 'a good call goes through');
    assert.equal(kernel.heap.borrows[lentSlot], 0);
    lent.drop();
  });

  test('a bad argument from a domain calling itself through a proxy: its death reclaims the value it moved to itself, and undoing the arguments does not free that value a second time', () => {
    kernel.load(artifactPath('dom_c'), { name: 'self_c' });
    const me = kernel.get('self_c')!;
    const self = kernel.bind('self_c', me); // caller and callee: self_c (as a proxy it was handed to itself)
    const kept = any(kernel.kit.allocBytes(me.id, 16));
    const lent = any(kernel.kit.allocBytes(me.id, 16));
    assert.throws(() => self.mixed(kept, lent, 42), (e: unknown) => (e as { kind?: string }).kind === 'bad-argument');
    assert.equal(info(kernel, 'self_c').state, 'dead', 'the caller is terminated for its bad argument');
    assert.deepEqual(kernel.heap.usage(me.id), { bytes: 0, slots: 0 });
    const fresh = [0, 1, 2, 3, 4, 5].map(() => any(bytes(8)));
    const slots = fresh.map((h) => kernel.kit.slotOf(h));
    assert.equal(new Set(slots).size, slots.length, `each live value has a slot of its own (got ${slots.join(', ')})`);
    for (const h of fresh) h.drop();
  });

  test('a borrower may lend onward within its borrow (shadow_c lends the buffer on to dom_c)', () => {
    kernel.load(artifactPath('shadow_c'), { name: 'lend_shadow', imports: [{ supervise: 'dom_c' }] });
    const shadow = kernel.bind('lend_shadow');
    const buf = bytes(4);
    [1, 2, 3, 4].forEach((v, i) => buf.setU8(i, v));
    assert.equal(shadow.sum(buf), 10, 'dom_c read the bytes it was lent through the shadow');
    assert.equal(kernel.get('lend_shadow')!.faults, 0, 'the shadow was allowed to lend on');
    assert.equal(kernel.heap.borrows[kernel.kit.slotOf(buf)], 0, 'both borrows ended');
    buf.setU8(0, 9);
    assert.equal(buf.getU8(0), 9, 'the owner can write again');
    buf.drop();
    kernel.terminate('lend_shadow');
  });

  test('async results arrive as plain values', async () => {
    const p = c.asyncEcho(7);
    assert.ok(p instanceof Promise);
    assert.equal(await p, 7);
  });

  test('dom_d drives dom_c through its import: sync, RRef and async loops', async () => {
    const before = c.count();
    assert.equal(typeof d.run('noarg', 100), 'number');
    assert.equal(c.count(), before + 100);
    d.run('arg', 10);
    d.run('rref', 10);
    assert.equal(c.count(), before + 120);
    assert.equal(info(kernel, 'dom_d').heapSlots, 0, 'dom_d dropped its buffer');
    assert.equal(typeof (await d.runAsync(20)), 'number');
    assert.equal(c.count(), before + 140);
    await rpcFails(() => d.run(5, 1), 'bad-argument');
    assert.equal(info(kernel, 'dom_d').state, 'live', 'a bad argument from the kernel kills nobody');
  });
});

describe('ownership through the faulty domain', () => {
  loadFaulty(t, 'pa');
  loadFaulty(t, 'pb');
  const pa = kernel.bind('pa');
  const pb = kernel.bind('pb');

  test('a callee writing a borrowed RRef panics (read-only), the lender keeps its data', async () => {
    loadFaulty(t, 'pw');
    const buf = bytes(8);
    buf.setU8(0, 1);
    await rpcFails(() => kernel.bind('pw').writeBorrowed(buf), 'panic');
    assert.match(info(kernel, 'pw').lastFault ?? '', /read-only/);
    assert.equal(buf.valid, true);
    assert.equal(buf.getU8(0), 1);
    buf.drop();
  });

  test('while an async call holds a borrow the lender cannot write, move or drop it', async () => {
    const buf = bytes(8);
    buf.setU8(0, 9);
    const p = pb.holdBorrow(buf);
    await turn();
    assert.equal(pb.peekBorrow(), 9);
    throwsHandle(() => buf.setU8(0, 1), 'EBORROWED');
    throwsHandle(() => buf.drop(), 'EBORROWED');
    await rpcFails(() => c.rref(buf), 'bad-argument');
    assert.equal(pb.releaseBorrow(), 1);
    assert.equal(await p, 9);
    buf.setU8(0, 2);
    assert.equal(buf.getU8(0), 2);
    buf.drop();
  });

  test('a layout struct with a child buffer moves in and back with its child', () => {
    const base = kernel.heap.usage(0);
    const req = any(kernel.kit.allocStruct(0, 'TestReq'));
    req.id = 7;
    req.data = bytes(16);
    const child = req.data;
    child.setU8(0, 3);
    const back = any(pa.echoReq(req));
    assert.equal(req.valid, false);
    assert.equal(child.valid, false, 'a view of the child taken before the move is revoked');
    assert.equal(back.ok, true);
    assert.equal(back.id, 7);
    assert.equal(back.data.getU8(0), 4);
    back.drop();
    assert.deepEqual(kernel.heap.usage(0), base);
  });

  test('a struct made by the callee moves to the caller', () => {
    const paId = kernel.get('pa')!.id;
    const base = kernel.heap.usage(0);
    const r = any(pa.makeReq(5));
    assert.deepEqual([r.id, r.lba, r.tag, r.data.byteLength], [5, 40n, [1, 2, 3, 4], 16]);
    assert.deepEqual(kernel.heap.usage(paId), { bytes: 0, slots: 0 });
    assert.deepEqual(kernel.heap.usage(0), { bytes: base.bytes + 48, slots: base.slots + 2 });
    r.drop();
  });

  test('interface references passed as arguments become proxies to the right domain', () => {
    const pbCalls = kernel.get('pb')!.calls;
    assert.equal(pa.callPeer(pb, 5), 6);
    assert.equal(kernel.get('pb')!.calls, pbCalls + 1, 'the call went to pb');
    // an object implemented by host code is served by the kernel
    const seen: number[] = [];
    assert.equal(pa.callPeer({ ok: (x: number) => (seen.push(x), x * 3) }, 5), 15);
    assert.deepEqual(seen, [5]);
  });

  test('an interface reference returned by a callee is a proxy, not its object', () => {
    const exp = kernel.get('pa')!.exportsObj;
    const r = pa.self();
    assert.notEqual(r, exp);
    assert.ok(Object.isFrozen(r));
    const calls = kernel.get('pa')!.calls;
    assert.equal(r.ok(1), 2);
    assert.equal(kernel.get('pa')!.calls, calls + 1);
  });

  test('a proxy to a dead domain passed as an argument is a bad argument', async () => {
    loadFaulty(t, 'pdead');
    const dead = kernel.bind('pdead');
    kernel.terminate('pdead');
    await rpcFails(() => pa.callPeer(dead, 1), 'bad-argument');
    await rpcFails(() => dead.ok(1), 'callee-dead');
    assert.equal(info(kernel, 'pa').state, 'live');
  });

  test('the callee sees a plain value for async results, never a callee promise', async () => {
    loadFaulty(t, 'pc');
    const pc = kernel.bind('pc');
    const p = pc.pending();
    assert.ok(p instanceof Promise);
    assert.equal(Object.getPrototypeOf(p), Promise.prototype);
    assert.equal(pc.resolvePending(11), 1);
    assert.equal(await p, 11);
  });
});
