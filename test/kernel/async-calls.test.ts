/**
 * The async call path's bookkeeping (src/kernel/proxy.ts AsyncCall, src/kernel/domain.ts
 * InflightCalls): a fast-check property runs random add/delete/drain sequences on the intrusive
 * in-flight registry against a Set; many calls pending at once when the callee dies all reject
 * with an RpcError and leave nothing registered, borrows they held end (the lender can free its
 * buffer); calls that settle normally leave the registry empty and each gets its own result; and a
 * long chain of domain-to-domain async calls still lets the event loop turn (the sampled yield
 * check keeps shouldYield's guarantee).
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { InflightCalls, type Domain, type InflightCall } from '../../src/kernel/domain.js';
import type { Link } from '../../src/kernel/proxy.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { DOM_D, bootKernel, loadFaulty, rpcFails, turn } from './helpers.js';

const kernels: Kernel[] = [];
after(() => {
  for (const k of kernels) k.shutdown();
});

describe('InflightCalls (the intrusive in-flight registry)', () => {
  test('behaves as a set under random add / delete / drain, slots kept consistent, calls counted by caller', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('add' as const), i: fc.nat(15) }),
      fc.record({ k: fc.constant('delete' as const), i: fc.nat(15) }),
      fc.record({ k: fc.constant('drain' as const), i: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        // Two callers: even calls are made by the first, odd ones by the second.
        const callers = [{ name: 'a' }, { name: 'b' }] as unknown as Domain[];
        const calls: InflightCall[] = Array.from({ length: 16 }, (_, i) => ({ inflightSlot: -1, unwind: () => {}, link: { caller: callers[i % 2] } as Link }));
        const reg = new InflightCalls();
        const model = new Set<InflightCall>();
        for (const { k, i } of ops) {
          const c = calls[i]!;
          if (k === 'add') {
            if (model.has(c)) continue; // a call is registered once (the proxy adds each call once)
            reg.add(c);
            model.add(c);
          } else if (k === 'delete') {
            assert.equal(reg.delete(c), model.delete(c));
          } else {
            const drained = reg.drain();
            assert.deepEqual(new Set(drained), model);
            assert.equal(drained.length, model.size);
            model.clear();
          }
          assert.equal(reg.size, model.size);
          for (const caller of callers) assert.equal(reg.countFrom(caller), [...model].filter((c) => c.link.caller === caller).length);
          for (const x of calls) assert.equal(x.inflightSlot >= 0, model.has(x), 'registered iff it holds a slot');
        }
      }),
    );
  });
});

describe('async calls in flight', () => {
  test('many calls pending when the callee dies all reject with an RpcError, none stays registered', async () => {
    const t = bootKernel();
    kernels.push(t.kernel);
    const d = loadFaulty(t, 'fa');
    const fa = t.kernel.bind<any>('fa');
    const pending: Promise<number>[] = [];
    for (let i = 0; i < 200; i++) pending.push(fa.pending());
    for (const p of pending) p.catch(() => {});
    await turn();
    assert.equal(d.inflight.size, 200);
    t.kernel.injectFault('fa', 'now');
    assert.equal(d.inflight.size, 0, 'unwound at death');
    for (const p of pending) await rpcFails(() => p, 'panic');
  });

  test('borrows held by pending calls end when the callee dies: the lender frees its buffer', async () => {
    const t = bootKernel();
    kernels.push(t.kernel);
    loadFaulty(t, 'fa');
    const fa = t.kernel.bind<any>('fa');
    const buf = t.kernel.kit.allocBytes(0, 64) as unknown as { drop(): void };
    const held: Promise<number>[] = [];
    for (let i = 0; i < 20; i++) held.push(fa.holdBorrow(buf));
    for (const p of held) p.catch(() => {});
    await turn();
    t.kernel.injectFault('fa', 'now');
    for (const p of held) await rpcFails(() => p, 'panic');
    buf.drop();
    assert.deepEqual(t.kernel.heap.usage(0), { bytes: 0, slots: 0 }, 'the lent buffer is freed, nothing leaked');
  });

  test('calls that settle normally get their own results and leave the registry empty', async () => {
    const t = bootKernel();
    kernels.push(t.kernel);
    const c = t.kernel.bind<any>('dom_c');
    const n = 1000;
    const got = await Promise.all(Array.from({ length: n }, (_, i) => c.asyncEcho(i)));
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => i));
    assert.equal(t.kernel.get('dom_c')!.inflight.size, 0);
  });

  test('a long chain of domain-to-domain async calls lets the event loop turn', async () => {
    const t = bootKernel();
    kernels.push(t.kernel);
    t.kernel.load(DOM_D, { imports: ['dom_c'] });
    const dd = t.kernel.bind<any>('dom_d');
    let timerAt = -1;
    setTimeout(() => (timerAt = performance.now()), 0);
    const t0 = performance.now();
    // ~1.5 M awaited crossings: well over the 20 ms slice in which one chain may hold the loop.
    const ms = await dd.runAsync(1_500_000);
    const end = performance.now();
    assert.ok(end - t0 > 100, `the chain ran long enough to need yields (${(end - t0).toFixed(0)} ms)`);
    assert.ok(timerAt > 0 && timerAt < end - 50, `a timer fired during the chain (at ${(timerAt - t0).toFixed(0)} of ${(end - t0).toFixed(0)} ms)`);
    assert.equal(typeof ms, 'number');
    assert.equal(t.kernel.get('dom_d')!.live, true, 'no deadline fault for a chain of short steps');
  });
});
