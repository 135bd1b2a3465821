/**
 * Pass-through crossings (src/kernel/proxy.ts, AsyncCall): a domain that answers a call with the
 * promise of its own call onward has the answer forwarded to its caller by the kernel, and a
 * shadow's supervisor.relay(fn, onValue, onFailure) has its call onward merged into the call it
 * answers (one record, one promise), its hooks run by the kernel.
 *
 * Forwarding must not change what callers see: results and moved RRefs arrive (held by the
 * caller, the relay holding nothing), a failure onward is still the forwarder's unhandled
 * rejection (its panic), and a death of either end while the call is in flight ends it with an
 * RpcError, with nothing leaked. relay answers as `fn().then(onValue, onFailure)` would: the
 * hooks run once, a failure's hook runs in a later microtask (never inside the callee's
 * termination), a throwing hook is the shadow's panic, and what is not a captured call gets a
 * plain then. A shadow that does not answer with its token at once panics instead of leaving its
 * caller waiting forever; no code of a dead shadow runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Kernel } from '../../src/kernel/kernel.js';
import { isRpcError } from '../../src/kernel/errors.js';
import { bootMembdev } from '../../src/host/storage.js';
import type { BDev, BlkReq, TestReq, WorkerProbe } from '../../src/interfaces/index.js';
import type { RRef, RRefArray } from '../../src/runtime/types.js';
import { DOM_C, TEST_ARTIFACTS, recorder, rpcFails, shadowedDomC, sleep } from './helpers.js';
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

test('supervisor.relay: what is not a captured call onward is a plain then (sync throws go to onFailure)', async () => {
  const { k, shadow, sup, drv, req } = supervised();
  try {
    let done = 0;
    assert.equal(await sup.relay(() => Promise.resolve(5), () => 0, () => done++), 5, 'no call onward');
    assert.equal(done, 1, 'onDone ran');
    const boom = new Error('refused');
    assert.equal(await sup.relay(() => { throw boom; }, (e: unknown) => (e === boom ? 'failed' : 'other')), 'failed');
    // fn made the call but answered something else: the captured call's answer is relay's.
    const back = (await sup.relay(() => (drv.submit(req()), Promise.resolve(1)), () => 0, () => done++)) as RRef<BlkReq>;
    assert.equal(done, 2);
    assert.equal(back.status, 0);
    assert.equal(k.heap.owner[k.kit.slotOf(back)], shadow.id, 'the shadow’s: not answered on');
    back.drop();
    // The onward callee is dead: the call is refused at once, which onFailure gets.
    k.injectFault('drv', 'now');
    const kind = await sup.relay(() => drv.submit(req()), (e: unknown) => (isRpcError(e) ? e.kind : 'other'), () => done++);
    assert.ok(['panic', 'callee-dead'].includes(kind as string), String(kind));
    assert.equal(done, 2, 'no onDone for a failure');
    assert.throws(() => sup.relay(() => 0, 1), (e: unknown) => isRpcError(e) && e.kind === 'bad-argument' && /must be functions/.test(e.message));
    assert.throws(() => sup.relay(() => 0, () => 0, 'x'), (e: unknown) => isRpcError(e) && e.kind === 'bad-argument');
  } finally {
    k.shutdown();
  }
});

test('supervisor.relay: a token not answered with at once is the shadow’s panic; its captured call is still ended, nothing leaks', async () => {
  const { k, shadow, sup, drv, req } = supervised();
  try {
    const before = k.heap.totalUsage();
    let hooked = 0;
    const r = req();
    const t1 = sup.relay(() => drv.submit(r), () => hooked++, () => hooked++);
    assert.ok(t1 instanceof Promise, 'a token');
    assert.equal(shadow.state, 'live');
    // Relaying again (or any other call) with the first token not answered with: a panic.
    const t2 = sup.relay(() => drv.flush(), () => hooked++, () => hooked++);
    assert.equal(t2, t1, 'one token per capability');
    assert.equal(shadow.state, 'dead');
    await sleep(5);
    assert.equal(hooked, 0, 'no code of the dead shadow runs');
    assert.equal(k.heap.owner[k.kit.slotOf(r)], -1, 'the request that came back to the dead shadow is freed');
    assert.deepEqual(k.heap.totalUsage(), before, 'the request and its buffer are freed');
  } finally {
    k.shutdown();
  }
});

/**
 * A host caller, rshadow with no routes (every call relayed by its own method) over membdev `mem`:
 * the merged relay path end to end. (bdev_shadow routes its calls: test/kernel/route.test.ts.)
 */
function shadowed() {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  bootMembdev(k, { bytes: 1 << 20, blockSize: 4096, name: 'mem' });
  const rec = recorder();
  const bdev = k.bind<BDev>(k.load(join(TEST_ARTIFACTS, 'rshadow.rldom'), { name: 'rs', imports: [{ supervise: 'mem' }, { object: rec.object }], config: { route: 'off' } }));
  const req = (lba: number, op = 0): RRef<BlkReq> => {
    const r = any(k.kit.allocStruct(0, 'BlkReq')) as RRef<BlkReq>;
    r.op = op;
    r.lba = lba;
    r.nblocks = 1;
    r.data = any(k.kit.allocBytes(0, 4096, 4096));
    return r;
  };
  return { k, bdev, req };
}

test('merged relay: answers and moved requests reach the caller through the shadow, concurrent calls each get theirs', async () => {
  const { k, bdev, req } = shadowed();
  try {
    const w = req(3, 1);
    w.data!.fill(0x5a);
    const back = (await bdev.submit(w)) as RRef<BlkReq>;
    assert.equal(w.valid, false, 'moved in');
    assert.equal(back.status, 0);
    assert.equal(k.heap.owner[k.kit.slotOf(back)], 0, 'the caller’s again');
    const reads = await Promise.all(Array.from({ length: 16 }, (_, i) => bdev.submit(req(i % 2 === 0 ? 3 : 4))));
    reads.forEach((r, i) => {
      assert.equal(r.status, 0);
      assert.equal(r.data!.getU8(100), i % 2 === 0 ? 0x5a : 0, `read ${i}`);
      r.drop();
    });
    back.drop();
  } finally {
    k.shutdown();
  }
});

test('merged relay: the shadow dying with the call in flight fails the caller with an RpcError; nothing leaks', async () => {
  const { k, bdev, req } = shadowed();
  try {
    const shadowId = k.get('rs')!.id;
    const r = req(1);
    const call = bdev.submit(r);
    k.injectFault('rs', 'now');
    await rpcFails(() => call, 'panic');
    await sleep(5);
    assert.deepEqual(k.heap.usage(shadowId), { bytes: 0, slots: 0 });
    assert.deepEqual(k.heap.usage(k.get('mem')!.id), { bytes: 0, slots: 0 }, 'the driver kept nothing of it');
  } finally {
    k.shutdown();
  }
});

test('merged relay: once the direct move of answers is learned, a wrong-typed answer is still the driver’s fault, never the caller’s value', async () => {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  try {
    k.load(join(TEST_ARTIFACTS, 'liarbdev.rldom'), { name: 'liar' });
    // rshadow with no routes relays every call (supervisor.relay), a failure passed on.
    const rec = recorder();
    const bdev = k.bind<BDev>(k.load(join(TEST_ARTIFACTS, 'rshadow.rldom'), { name: 'rs', imports: [{ supervise: 'liar' }, { object: rec.object }], config: { route: 'off' } }));
    let r = any(k.kit.allocStruct(0, 'BlkReq')) as RRef<BlkReq>;
    r.nblocks = 1;
    for (let i = 0; i < 5; i++) {
      r.lba = i;
      r = (await bdev.submit(r)) as RRef<BlkReq>;
      assert.equal(r.status, 0);
      assert.equal(k.heap.owner[k.kit.slotOf(r)], 0, 'the caller’s');
    }
    assert.equal(rec.hits.filter((h) => h === 'own:submit').length, 5, 'relayed by the shadow’s own method');
    r.lba = 999; // liarbdev keeps it and answers with a byte buffer of its own
    const back = (await bdev.submit(r)) as RRef<BlkReq>;
    assert.equal(k.heap.type[k.kit.slotOf(back)], k.kit.layoutType('BlkReq'), 'the shadow’s answer, not the driver’s buffer');
    assert.equal(back.status, -5);
    assert.ok(rec.hits.includes('relay-failed:bad-argument'), 'onFailure told of the driver’s bad result');
    assert.equal(k.get('liar')!.state, 'dead', 'the driver was terminated for its answer');
    assert.equal(k.get('rs')!.state, 'live', 'the relaying shadow is not at fault');
    back.drop();
    assert.deepEqual(k.heap.usage(0), { bytes: 0, slots: 0 }, 'no byte buffer reached the caller');
  } finally {
    k.shutdown();
  }
});

test('generated shadows: a call made while the target is dead reaches the shadow’s own method (callAsync, a relay) and is reissued on a fresh instance', async () => {
  const { k, sh } = shadowedDomC();
  try {
    assert.equal(await sh.asyncEcho(1), 1);
    k.injectFault('dom_c', 'now'); // no call in flight: the route's instance is dead, not routed
    assert.equal(await sh.asyncEcho(9), 9, 'relayed, refused at once, restarted and reissued');
    assert.equal(k.get('dom_c')!.restarts, 1);
    assert.equal(await sh.asyncEcho(10), 10, 'routed again to the fresh instance');
    assert.equal(k.get('dom_c')!.restarts, 1);
  } finally {
    k.shutdown();
  }
});
