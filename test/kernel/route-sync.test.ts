/**
 * Synchronous routes (src/kernel/routes.ts, Supervisor.route on a method that is not async): the
 * kernel passes a shadow's callers' calls straight to the driver instance and, when one fails,
 * runs the shadow's hook before the call returns.
 *
 * What must hold: a routed synchronous call gives the caller the driver's answer with none of the
 * shadow's code run, its moved RRef entrusted to the shadow; a failure (the driver panics in the
 * call, answers with the wrong type) runs the hook once, at once, told where the call's value was,
 * and the hook can take that value back at once (recallNow) and answer with it; a hook that throws
 * or answers with a promise is the shadow's fault, and its caller gets an RpcError with nothing
 * leaked; while the instance is dead the shadow's own method serves; route() refuses a synchronous
 * method that moves nothing, and a record where no routed answer has the field, saying why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Kernel } from '../../src/kernel/kernel.js';
import type { Callee } from '../../src/interfaces/index.js';
import type { RRefArray } from '../../src/runtime/types.js';
import { DOM_C, TEST_ARTIFACTS, recorder, rpcFails, type Recorded } from './helpers.js';
import { any } from './kit-helpers.js';

const SSHADOW = join(TEST_ARTIFACTS, 'sshadow.rldom');
const LIARC = join(TEST_ARTIFACTS, 'liarc.rldom');
const LIE = 0xee; // liarc answers such a buffer with a number
const PANIC = 0xdd; // liarc panics on such a buffer
const RECOVERED = 0x77; // sshadow's hook marks the buffer it answers with

interface Setup {
  k: Kernel;
  rec: Recorded;
  callee: Callee;
  shadowId: number;
}

function setup(driver: 'dom_c' | 'liarc', config: Record<string, string> = {}): Setup {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  k.load(driver === 'dom_c' ? DOM_C : LIARC, { name: 'drv' });
  const rec = recorder();
  const d = k.load(SSHADOW, { name: 'ss', imports: [{ supervise: 'drv' }, { object: rec.object }], config });
  return { k, rec, callee: k.bind<Callee>(d), shadowId: d.id };
}

function buf(k: Kernel, first = 0): RRefArray {
  const b = any(k.kit.allocBytes(0, 8)) as RRefArray;
  b.setU8(0, first);
  return b;
}

const hooked = (rec: Recorded): { kind: string; sameTarget: boolean; args: unknown[]; addr: number; capacity: number; lengths: number[]; back: number[]; types: string[]; inDeque: number }[] =>
  rec.hits.flatMap((h, i) => (h === 'hook:rref' && rec.hits[i + 1]?.startsWith('{') ? [JSON.parse(rec.hits[i + 1]!)] : []));

test('a routed synchronous call gets the driver’s answer with none of the shadow’s code run; its RRef is entrusted to the shadow', () => {
  const { k, rec, callee, shadowId } = setup('dom_c');
  try {
    assert.deepEqual(rec.hits, ['routed']);
    let b = buf(k);
    for (let i = 0; i < 5; i++) b = callee.rref(b) as RRefArray;
    assert.equal(b.getU8(0), 5, 'each call reached the driver');
    const s = k.kit.slotOf(b);
    assert.equal(k.heap.owner[s], 0, 'the answer is the caller’s');
    assert.equal(k.heap.entrustedTo(s), shadowId, 'the buffer was entrusted to the shadow on its way');
    assert.deepEqual(rec.hits, ['routed'], 'neither the shadow’s method nor its hook ran');
    assert.deepEqual(k.heap.usage(shadowId), { bytes: 0, slots: 0 }, 'the shadow holds nothing');
    b.drop();
  } finally {
    k.shutdown();
  }
});

test('a driver that panics in a routed synchronous call: the hook answers at once with the call’s buffer, taken back', () => {
  const { k, rec, callee } = setup('liarc');
  try {
    const b = buf(k, PANIC);
    const addr = b.addr;
    const base = k.heap.totalUsage();
    const out = callee.rref(b) as RRefArray;
    const [h] = hooked(rec);
    assert.equal(hooked(rec).length, 1, 'the hook ran once');
    assert.equal(h!.kind, 'panic');
    assert.equal(h!.sameTarget, true, 'told the instance it held');
    assert.equal(h!.addr, addr);
    assert.deepEqual(h!.args, [], 'rref takes no primitive');
    assert.deepEqual(h!.lengths, [], 'a byte array holds no deque');
    assert.deepEqual(h!.back, [addr], 'the dead driver’s buffer came back at once, and only it');
    assert.deepEqual(h!.types, ['RRefArray<u8>']);
    assert.equal(out.addr, addr, 'the caller got its own buffer back');
    assert.equal(out.getU8(1), 1, 'with what the driver wrote before it died');
    assert.equal(out.getU8(2), RECOVERED, 'answered by the hook');
    assert.equal(k.get('drv')!.restarts, 1);
    assert.ok(!rec.hits.includes('own:rref'));
    assert.deepEqual(k.heap.totalUsage(), base, 'nothing leaked, nothing allocated');
    // Routed again, to the new instance.
    out.setU8(0, 0);
    const again = callee.rref(out) as RRefArray;
    assert.equal(again.getU8(1), 2);
    assert.equal(hooked(rec).length, 1);
    again.drop();
  } finally {
    k.shutdown();
  }
});

test('recallNow(into): the byte arrays a dead driver held come back in the shadow’s deque, not as handles', () => {
  const { k, rec, callee } = setup('liarc', { hook: 'into' });
  try {
    const b = buf(k, PANIC);
    const addr = b.addr;
    const out = callee.rref(b) as RRefArray;
    const [h] = hooked(rec);
    assert.equal(h!.inDeque, 1, 'the buffer came back in the deque');
    assert.deepEqual(h!.back, [addr]);
    assert.equal(out.addr, addr);
    assert.equal(out.getU8(2), RECOVERED);
    out.drop();
  } finally {
    k.shutdown();
  }
});

test('a driver that answers a routed synchronous call with the wrong type is faulted; the hook answers', () => {
  const { k, rec, callee } = setup('liarc');
  try {
    const b = buf(k, LIE);
    const addr = b.addr;
    const out = callee.rref(b) as RRefArray;
    const [h] = hooked(rec);
    assert.equal(h!.kind, 'bad-argument', 'the wrong answer is the driver’s fault');
    assert.equal(k.get('drv')!.faults, 1);
    assert.equal(out.addr, addr);
    assert.equal(out.getU8(2), RECOVERED);
    out.drop();
  } finally {
    k.shutdown();
  }
});

test('a synchronous hook that throws, or answers with a promise, is the shadow’s fault: its caller gets an RpcError, nothing leaks', async () => {
  for (const hook of ['throw', 'promise']) {
    const { k, callee, shadowId } = setup('liarc', { hook });
    try {
      const base = k.heap.totalUsage().slots;
      await rpcFails(() => callee.rref(buf(k, PANIC)), hook === 'throw' ? 'panic' : 'bad-argument');
      assert.equal(k.get('ss')!.live, false, `${hook}: the shadow is dead`);
      assert.deepEqual(k.heap.usage(shadowId), { bytes: 0, slots: 0 }, `${hook}: the shadow’s memory was reclaimed`);
      assert.equal(k.heap.totalUsage().slots, base, `${hook}: the buffer was freed with the call, not leaked`);
    } finally {
      k.shutdown();
    }
  }
});

test('while the instance is dead the shadow’s own method serves; route() refuses what it cannot route, saying why', () => {
  const { k, rec, callee } = setup('dom_c');
  try {
    k.injectFault('drv', 'now');
    const out = callee.rref(buf(k)) as RRefArray;
    assert.deepEqual(rec.hits, ['routed', 'own:rref']);
    assert.equal(out.getU8(0), 1);
    out.drop();
  } finally {
    k.shutdown();
  }
  const r = setup('dom_c', { record: 'try' });
  try {
    assert.match(r.rec.hits[0]!, /^refused:.*no routed method of Callee answers with a struct that has a u32 field held/);
  } finally {
    r.k.shutdown();
  }
});
