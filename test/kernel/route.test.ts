/**
 * Routes (src/kernel/routes.ts, Supervisor.route): a shadow's calls that the kernel passes
 * straight to the driver instance, entrusting what they move to the shadow, with the shadow's
 * code run only when a call fails.
 *
 * What must hold: a routed call gives the caller the driver's answer without any of the shadow's
 * code running, and what it moved is entrusted to the shadow; a failure (the driver dies at the
 * call, with the call pending, or answers wrongly) runs the hook once, told where the call's
 * values were, and the hook's answer is the caller's; whenever the kernel cannot route (the
 * instance the shadow holds is dead) the shadow's own method serves; a hook that throws is the
 * shadow's panic; the shadow's death fails its callers and frees what the driver answers later;
 * route() refuses what it cannot route, saying why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Kernel } from '../../src/kernel/kernel.js';
import { bootMembdev, loadBlockShadow } from '../../src/host/storage.js';
import type { BDev, BlkReq } from '../../src/interfaces/index.js';
import type { RRef, RRefDeque } from '../../src/runtime/types.js';
import { TEST_ARTIFACTS, recorder, rpcFails, shadowedDomC, sleep, type Recorded } from './helpers.js';
import { any } from './kit-helpers.js';

const RSHADOW = join(TEST_ARTIFACTS, 'rshadow.rldom');
const LIAR = join(TEST_ARTIFACTS, 'liarbdev.rldom');
const HOLD_LBA = 998; // liarbdev answers such a request only after holdMs
const LIE_LBA = 999; // liarbdev keeps such a request and answers with a byte buffer

interface Setup {
  k: Kernel;
  rec: Recorded;
  bdev: BDev;
  shadowId: number;
}

/** rshadow (config `config`) in front of a driver: membdev, or liarbdev (`liar`). */
function setup(driver: 'membdev' | 'liar', config: Record<string, string | number> = {}): Setup {
  const k = new Kernel({ physBytes: 32 << 20, log: () => {} });
  if (driver === 'membdev') bootMembdev(k, { bytes: 1 << 20, name: 'drv' });
  else k.load(LIAR, { name: 'drv', config: { holdMs: 40 } });
  const rec = recorder();
  const d = k.load(RSHADOW, { name: 'rs', imports: [{ supervise: 'drv' }, { object: rec.object }], config });
  return { k, rec, bdev: k.bind<BDev>(d), shadowId: d.id };
}

function req(k: Kernel, lba: number, withData = true): RRef<BlkReq> {
  const r = any(k.kit.allocStruct(0, 'BlkReq')) as RRef<BlkReq>;
  r.lba = lba;
  r.nblocks = 1;
  if (withData) r.data = any(k.kit.allocBytes(0, 4096, 4096));
  return r;
}

function batch(k: Kernel, lbas: number[], capacity: number): { dq: RRefDeque<RRef<BlkReq>>; addrs: number[] } {
  const dq = any(k.kit.allocDeque(0, capacity)) as RRefDeque<RRef<BlkReq>>;
  const addrs: number[] = [];
  for (const lba of lbas) {
    const r = req(k, lba);
    addrs.push(r.addr);
    dq.push(r);
  }
  return { dq, addrs };
}

const own = (rec: Recorded): string[] => rec.hits.filter((h) => h.startsWith('own:'));
/** What the hooks were told, in order. */
const told = (rec: Recorded): { method: string; kind: string; sameTarget: boolean; args: unknown[]; addr: number; capacity: number; elements: number[] }[] =>
  rec.hits.flatMap((h, i) => (h.startsWith('hook:') ? [{ method: h.slice(5), ...JSON.parse(rec.hits[i + 1]!) }] : []));

test('routed calls get the driver’s answer with none of the shadow’s code run; what they move is entrusted to the shadow', async () => {
  const { k, rec, bdev, shadowId } = setup('membdev');
  try {
    assert.deepEqual(rec.hits, ['routed']);
    const w = req(k, 5);
    w.op = 1;
    w.data!.setU32(0, 0xfeedbeef);
    let r = (await bdev.submit(w)) as RRef<BlkReq>;
    assert.equal(r.status, 0);
    assert.equal(k.heap.owner[k.kit.slotOf(r)], 0, 'the answer is the caller’s');
    assert.equal(k.heap.entrustedTo(k.kit.slotOf(r)), shadowId, 'the request was entrusted to the shadow');
    r.op = 0;
    r.data!.setU32(0, 0);
    r = (await bdev.submit(r)) as RRef<BlkReq>;
    assert.equal(r.data!.getU32(0), 0xfeedbeef, 'read back through the route');
    const { dq } = batch(k, [1, 2, 3], 8);
    const back = (await bdev.submitAndPoll(dq)) as RRefDeque<RRef<BlkReq>>;
    assert.equal(back.length, 3);
    assert.equal(k.heap.owner[k.kit.slotOf(back)], 0);
    assert.deepEqual(own(rec), [], 'the shadow’s own methods never ran');
    assert.deepEqual(told(rec), []);
    assert.deepEqual(k.heap.usage(shadowId), { bytes: 0, slots: 0 }, 'the shadow holds nothing');
    back.drop();
    r.drop();
  } finally {
    k.shutdown();
  }
});

test('a driver that dies at a routed call: the hook is told where the call’s requests were and answers for the shadow', async () => {
  const { k, rec, bdev } = setup('membdev');
  try {
    const { dq, addrs } = batch(k, [7, 8, 9], 16);
    k.injectFault('drv', 'now');
    // The instance the shadow holds is dead: this call is the shadow's own (it restarts the driver).
    const first = (await bdev.submitAndPoll(dq)) as RRefDeque<RRef<BlkReq>>;
    assert.deepEqual(own(rec), ['own:submitAndPoll']);
    assert.equal(first.length, 3);
    // Routed again; the next call crashes the driver as it arrives.
    k.injectFault('drv', { afterCalls: 1 });
    const back = (await bdev.submitAndPoll(first)) as RRefDeque<RRef<BlkReq>>;
    assert.deepEqual(own(rec), ['own:submitAndPoll'], 'the failure went to the hook, not to the shadow’s method');
    const [h] = told(rec);
    assert.equal(told(rec).length, 1, 'the hook ran once');
    assert.equal(h!.method, 'submitAndPoll');
    assert.equal(h!.kind, 'panic');
    assert.equal(h!.capacity, 16);
    assert.deepEqual(h!.elements, addrs, 'the requests’ addresses, in order');
    assert.deepEqual(h!.args, [], 'submitAndPoll takes no primitive');
    assert.equal(h!.sameTarget, false, 'the instance restarted by the shadow’s own method, not the first');
    assert.equal(back.capacity, 16);
    const got: number[] = [];
    for (let r = back.pop(); r !== undefined; r = back.pop()) {
      assert.equal(r.status, -5, 'answered by the hook');
      assert.equal(k.heap.owner[k.kit.slotOf(r)], 0);
      got.push(r.addr);
      r.drop();
    }
    assert.deepEqual(got, addrs, 'the caller’s own requests came back, recalled from the dead driver');
    back.drop();
  } finally {
    k.shutdown();
  }
});

test('a driver that dies with a routed call pending: the kernel’s unwind runs the hook, with the call’s request', async () => {
  const { k, rec, bdev } = setup('liar');
  try {
    const r = req(k, HOLD_LBA);
    const addr = r.addr;
    const pending = bdev.submit(r);
    await sleep(5);
    assert.equal(r.valid, false, 'moved to the driver');
    k.injectFault('drv', 'now');
    const back = (await pending) as RRef<BlkReq>;
    assert.equal(back.addr, addr);
    assert.equal(back.status, -5);
    const [h] = told(rec);
    assert.equal(h!.method, 'submit');
    assert.equal(h!.addr, addr);
    assert.equal(h!.sameTarget, true, 'told the very proxy the shadow got from current()');
    assert.deepEqual(own(rec), []);
    back.drop();
  } finally {
    k.shutdown();
  }
});

test('a driver that answers a routed call with a value of the wrong type is terminated; the hook answers, the caller never gets that value', async () => {
  const { k, rec, bdev } = setup('liar');
  try {
    let r = req(k, 1, false);
    for (let i = 0; i < 3; i++) r = (await bdev.submit(r)) as RRef<BlkReq>;
    r.lba = LIE_LBA;
    const addr = r.addr;
    const back = (await bdev.submit(r)) as RRef<BlkReq>;
    assert.equal(k.heap.type[k.kit.slotOf(back)], k.kit.layoutType('BlkReq'));
    assert.equal(back.addr, addr, 'the caller’s own request, recalled from the terminated driver');
    assert.equal(back.status, -5);
    assert.equal(told(rec)[0]!.kind, 'bad-argument');
    assert.ok(k.get('drv')!.restarts > 0);
    back.drop();
  } finally {
    k.shutdown();
  }
});

test('a hook that throws is the shadow’s panic: its caller gets an RpcError', async () => {
  const { k, bdev } = setup('membdev', { hook: 'throw' });
  try {
    k.injectFault('drv', { afterCalls: 1 });
    const e = await rpcFails(() => bdev.submit(req(k, 3)), 'panic');
    assert.equal(e.domain, 'rs');
    assert.equal(k.get('rs')!.state, 'dead');
  } finally {
    k.shutdown();
  }
});

test('a fault injected into the routing shadow itself: its routing goes off, so the armed call reaches it and kills it', async () => {
  const { k, rec, bdev } = setup('membdev');
  try {
    k.injectFault('rs', { afterCalls: 2 });
    let r = (await bdev.submit(req(k, 4))) as RRef<BlkReq>;
    assert.equal(r.status, 0, 'the call before the armed one is served');
    assert.deepEqual(own(rec), ['own:submit'], 'by the shadow itself: the kernel no longer routes its calls');
    const e = await rpcFails(() => bdev.submit(r), 'panic');
    assert.equal(e.domain, 'rs');
    assert.equal(k.get('rs')!.state, 'dead');
    assert.equal(k.get('drv')!.state, 'live', 'the driver it supervised is not touched');
    await rpcFails(() => bdev.submit(req(k, 5)), 'panic'); // dead: later calls fail fast, with its cause
  } finally {
    k.shutdown();
  }
});

test('the shadow dying with a routed call pending fails its caller; what the driver answers later is freed', async () => {
  const { k, bdev } = setup('liar');
  try {
    const before = k.heap.usage(0);
    const pending = bdev.submit(req(k, HOLD_LBA));
    await sleep(5);
    k.terminate('rs');
    await rpcFails(() => pending, 'callee-dead');
    await sleep(60); // the driver answers now
    assert.deepEqual(k.heap.usage(0), before, 'the answer was freed, not left to the caller');
    assert.deepEqual(k.heap.usage(k.get('drv')!.id), { bytes: 0, slots: 0 });
  } finally {
    k.shutdown();
  }
});

test('route() refuses a method it cannot route, saying why', () => {
  const cases: [string, RegExp][] = [
    ['blockSize', /blockSize is synchronous and moves no RRef/],
    ['write', /write takes a borrowed RRef/],
    ['noSuchMethod', /BDev has no method noSuchMethod/],
    ['notAFunction', /the hook for notAFunction must be a function|has no method notAFunction/],
  ];
  for (const [method, why] of cases) {
    const { k, rec } = setup('membdev', { refuse: method });
    try {
      assert.equal(rec.hits.length, 1);
      assert.match(rec.hits[0]!, /^refused:/);
      assert.match(rec.hits[0]!, why);
    } finally {
      k.shutdown();
    }
  }
});

test('route() refuses a record it cannot keep, saying why', () => {
  const cases: [string, RegExp][] = [
    ['u8', /^refused:.*record\.into must be an RRefArray<u32>/],
    ['small', /^refused:.*record\.into needs room for 20 entries \(4 for each method of BDev up to submit\)/],
    ['nosuch', /^refused:.*no routed method of BDev answers with a struct that has a u32 field nosuch/],
    ['tag', /^routed$/],
  ];
  for (const [record, why] of cases) {
    const { k, rec } = setup('membdev', { record });
    try {
      assert.equal(rec.hits.length, 1);
      assert.match(rec.hits[0]!, why);
    } finally {
      k.shutdown();
    }
  }
});

test('bdev_shadow routes: reads and writes pass with no recovery, and a lying driver cannot hand its caller a wrong value', async () => {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  try {
    k.load(LIAR, { name: 'liar' });
    const bdev = loadBlockShadow(k, 'liar');
    let r = req(k, 0);
    for (let i = 0; i < 5; i++) {
      r.lba = i;
      r = (await bdev.submit(r)) as RRef<BlkReq>;
      assert.equal(r.status, 0);
      assert.equal(k.heap.owner[k.kit.slotOf(r)], 0, 'the caller’s');
    }
    r.lba = LIE_LBA; // liarbdev keeps it and answers with a byte buffer of its own
    r = (await bdev.submit(r)) as RRef<BlkReq>;
    assert.equal(k.heap.type[k.kit.slotOf(r)], k.kit.layoutType('BlkReq'), 'the caller’s own request came back');
    assert.equal(r.status, -5, 'given up (EIO) after the lying driver was restarted again and again');
    assert.ok(k.get('liar')!.restarts > 0);
    assert.equal(k.get('liar_shadow')!.state, 'live');
    r.lba = 3;
    r = (await bdev.submit(r)) as RRef<BlkReq>;
    assert.equal(r.status, 0, 'and the shadow goes on');
  } finally {
    k.shutdown();
  }
});

test('bdev_shadow routes: the driver dying with a write in flight is recovered by its hook, the caller sees nothing', async () => {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  try {
    bootMembdev(k, { bytes: 1 << 20, blockSize: 4096, name: 'mem' });
    const bdev = loadBlockShadow(k, 'mem');
    const w = req(k, 5);
    w.op = 1;
    w.data!.fill(7);
    const call = bdev.submit(w);
    k.injectFault('mem', 'now'); // before its answer is taken: the leg is unwound, the hook runs
    const back = (await call) as RRef<BlkReq>;
    assert.equal(back.status, 0);
    assert.equal(k.get('mem')!.restarts, 1, 'restarted once');
    const r = (await bdev.submit(req(k, 5))) as RRef<BlkReq>;
    assert.equal(r.data!.getU8(0), 7, 'the write was reissued on the fresh driver');
    r.drop();
    back.drop();
  } finally {
    k.shutdown();
  }
});

test('generated shadows route their async methods of primitives: answers, and a reissue by the hook after the target died in flight', async () => {
  const { k, sh } = shadowedDomC();
  try {
    assert.deepEqual(await Promise.all([1, 2, 3].map((x) => sh.asyncEcho(x))), [1, 2, 3]);
    const call = sh.asyncEcho(6);
    k.injectFault('dom_c', 'now');
    assert.equal(await call, 6, 'reissued on a fresh instance');
    assert.equal(k.get('dom_c')!.restarts, 1);
    assert.equal(k.get('shadow_c')!.state, 'live');
    assert.equal(await sh.asyncEcho(7), 7);
  } finally {
    k.shutdown();
  }
});
