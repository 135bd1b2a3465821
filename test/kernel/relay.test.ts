/**
 * Pass-through crossings (src/kernel/proxy.ts, AsyncCall): a domain that answers a call with the
 * promise of its own call onward has the answer forwarded to its caller by the kernel, and a
 * shadow's supervisor.relay(p, onValue, onFailure) runs its hooks without a promise of its own.
 *
 * Forwarding must not change what callers see: results and moved RRefs arrive (held by the
 * caller, the relay holding nothing), a failure onward is still the forwarder's unhandled
 * rejection (its panic), and a death of either end while the call is in flight ends it with an
 * RpcError, with nothing leaked. relay settles as `p.then(onValue, onFailure)` would: the hooks
 * run once, a failure's hook runs in a later microtask (never inside the callee's termination),
 * a throwing hook rejects, and a promise that is not the shadow's pending call gets a plain then.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Kernel } from '../../src/kernel/kernel.js';
import { isRpcError } from '../../src/kernel/errors.js';
import { bootMembdev } from '../../src/host/storage.js';
import type { BDev, BlkReq, TestReq, WorkerProbe } from '../../src/interfaces/index.js';
import type { RRef, RRefArray } from '../../src/runtime/types.js';
import { DOM_C, TEST_ARTIFACTS, rpcFails, sleep } from './helpers.js';
import { any } from './kit-helpers.js';

const WPROBE = join(TEST_ARTIFACTS, 'wprobe.rldom');
const WRELAY = join(TEST_ARTIFACTS, 'wrelay.rldom');

/** wprobe and wrelay (which forwards every call to it), both in this thread. */
function relayed() {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  k.load(WPROBE, { name: 'wp' });
  k.load(WRELAY, { name: 'wrelay', imports: ['wp'] });
  return { k, relay: k.bind<WorkerProbe>('wrelay') };
}

test('forwarded calls: results and moved RRefs reach the caller through the relay, which keeps nothing', async () => {
  const { k, relay } = relayed();
  try {
    const rl = k.get('wrelay')!.id;
    assert.equal(await relay.echo('through'), 'through');
    const req = any(k.kit.allocStruct(0, 'TestReq')) as RRef<TestReq>;
    req.id = 7;
    req.data = any(k.kit.allocBytes(0, 8));
    req.data!.setU8(0, 41);
    let back = (await relay.echoReq(req)) as RRef<TestReq>;
    assert.equal(req.valid, false, 'the request moved');
    assert.equal(back.id, 7);
    assert.equal(back.ok, true);
    assert.equal(back.data!.getU8(0), 42);
    // Concurrent forwarded calls each get their own answer.
    const many = await Promise.all(Array.from({ length: 8 }, (_, i) => relay.mix(i, BigInt(i), false, null)));
    assert.deepEqual(many, Array.from({ length: 8 }, (_, i) => `${i + 1}|${2 * i}|true|object`));
    for (let i = 0; i < 50; i++) back = (await relay.echoReq(back)) as RRef<TestReq>;
    assert.equal(back.data!.getU8(0), 92);
    const dq = any(await relay.deque(3)); // made of 3, the first taken out
    assert.equal(dq.length, 2);
    assert.equal(k.heap.owner[k.kit.slotOf(dq)], 0, 'the deque is the caller’s');
    assert.deepEqual(k.heap.usage(rl), { bytes: 0, slots: 0 }, 'the relay holds nothing');
    dq.drop();
    back.drop();
  } finally {
    k.shutdown();
  }
});

test('forwarded calls: a failure onward is the relay’s unhandled rejection (its panic), as without forwarding', async () => {
  const { k, relay } = relayed();
  try {
    await rpcFails(() => relay.rejectAsync('deep'), 'panic');
    assert.equal(k.get('wp')!.state, 'dead');
    assert.equal(k.get('wrelay')!.state, 'dead');
  } finally {
    k.shutdown();
  }
});

test('forwarded calls: either end dying with the call in flight ends it with an RpcError; nothing leaks', async () => {
  for (const dies of ['wp', 'wrelay']) {
    const { k, relay } = relayed();
    try {
      const buf = any(k.kit.allocBytes(0, 4)) as RRefArray;
      const call = relay.sumLater(buf, 20);
      await sleep(2);
      k.injectFault(dies, 'now');
      await rpcFails(() => call, 'panic');
      assert.equal(k.get('wrelay')!.state, 'dead', `${dies} died: the relay is dead too (its own panic or the fault)`);
      await sleep(30); // the onward call's timer fires into dead domains: ignored
      assert.equal(k.heap.borrows[k.kit.slotOf(buf)], 0, 'the lent buffer is no longer lent');
      assert.deepEqual(k.heap.usage(k.get('wrelay')!.id), { bytes: 0, slots: 0 });
      buf.drop();
    } finally {
      k.shutdown();
    }
  }
});

/** dom_c (standing in for a shadow) with its supervisor capability over a membdev instance `drv`. */
function supervised() {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  const shadow = k.load(DOM_C);
  bootMembdev(k, { bytes: 64 << 10, name: 'drv' });
  const sup = any((k as any).supervisor(shadow, 'drv', 'BDev'));
  const drv = sup.current() as BDev;
  /** A one-block read request of the shadow's. */
  const req = (): RRef<BlkReq> => {
    const r = any(k.kit.allocStruct(shadow.id, 'BlkReq')) as RRef<BlkReq>;
    r.op = 0;
    r.nblocks = 1;
    r.data = any(k.kit.allocBytes(shadow.id, 512));
    return r;
  };
  return { k, shadow, sup, drv, req };
}

test('supervisor.relay: the hooks run once, without a promise of the shadow’s, and settle the call’s own promise', async () => {
  const { k, shadow, sup, drv, req } = supervised();
  try {
    const seen: unknown[] = [];
    const p = drv.submit(req());
    const q = sup.relay(p, (v: RRef<BlkReq>) => (seen.push(v), v), () => assert.fail('no failure'));
    assert.equal(q, p, 'the pending call’s own promise');
    const r = (await q) as RRef<BlkReq>;
    assert.deepEqual(seen, [r]);
    assert.equal(r.status, 0);
    assert.equal(k.heap.owner[k.kit.slotOf(r)], shadow.id);
    // A hook that throws rejects with what it threw.
    const boom = new Error('hook');
    await assert.rejects(sup.relay(drv.submit(r), () => { throw boom; }, () => 0), (e: unknown) => e === boom);
    // Anything else is a plain then: a new promise, the same answer.
    const other = Promise.resolve(5);
    const q2 = sup.relay(other, (v: number) => v + 1, () => 0);
    assert.notEqual(q2, other);
    assert.equal(await q2, 6);
    const settled = drv.submit(req());
    await settled;
    assert.equal(await sup.relay(settled, () => 'late', () => 0), 'late', 'a settled call: a plain then');
    assert.throws(() => sup.relay(p, 1, () => 0), (e: unknown) => isRpcError(e) && e.kind === 'bad-argument' && /must be functions/.test(e.message));
  } finally {
    k.shutdown();
  }
});

test('supervisor.relay: a death in flight goes to onFailure in a later microtask, whose answer settles the call', async () => {
  const { k, sup, drv, req } = supervised();
  try {
    let failure: unknown = undefined;
    const p = sup.relay(drv.submit(req()), () => assert.fail('no value'), (e: unknown) => ((failure = e), Promise.resolve('recovered')));
    k.injectFault('drv', 'now');
    assert.equal(failure, undefined, 'not run inside the termination');
    assert.equal(await p, 'recovered');
    assert.ok(isRpcError(failure) && ['panic', 'callee-dead'].includes((failure as { kind: string }).kind), String(failure));
    // A failure hook that throws rejects the call with what it threw.
    const fresh = sup.restart() as BDev;
    const boom = new Error('gave up');
    const q = sup.relay(fresh.submit(req()), (v: unknown) => v, () => { throw boom; });
    k.injectFault('drv', 'now');
    await assert.rejects(q, (e: unknown) => e === boom);
  } finally {
    k.shutdown();
  }
});
