/**
 * The block shadow's zero-copy recovery of moved requests: the shadow entrusts what it moves into
 * the driver, so when the driver dies holding write requests (on a deliberately slow controller,
 * so they are in flight), the very same requests and buffers come back to the shadow and are
 * reissued — the caller gets its own structs and buffers back, bytes untouched, the device holds
 * the original data, and the heap holds nothing more than before (the dead driver nothing at all).
 * Under random batches and crashes at random moments the same holds, and reads see every write.
 * A driver that freed a request before dying cannot have it reissued: in its place the caller
 * gets a request answered -EIO, the others succeed, and nothing else is written.
 * A second death while the recall of the first still waits (a device slow to acknowledge its
 * detach), or just as it ends (before the routed hook of the second death's call has run), does
 * not make the second death's calls lose their requests: each is reissued too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { bootStorage, loadBlockShadow, type Storage } from '../../src/host/storage.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { KERNEL_OWNER } from '../../src/kernel/heap.js';
import type { BlkReq } from '../../src/interfaces/index.js';
import type { RRef, RRefDeque } from '../../src/runtime/types.js';
import { disjoint, pattern, req, runBatch, type Op } from '../storage/helpers.js';
import { TEST_ARTIFACTS, fakeDevice, turn } from '../kernel/helpers.js';

const BS = 512;

async function slowDisk(fn: (s: Storage) => Promise<void>, commandDelayMs = 4): Promise<void> {
  const s = await bootStorage({ ramBytes: 2 << 20, shadow: true, commandDelayMs, driverConfig: { spinMs: 0 } });
  try {
    // One batch first, so that what the shadow holds afterwards is its baseline (nothing of the
    // exchange heap: a call's record is pooled, the address array of an unrouted call is not).
    await runBatch(s.kernel, s.bdev, BS, [{ write: false, lba: 0, nblocks: 1, seed: 0 }], new Map());
    await fn(s);
  } finally {
    await s.stop();
  }
}

/** Slots and bytes the kernel (the caller here) and the shadow hold. */
function held(s: Storage): { kernel: number; shadow: number } {
  const k = s.kernel;
  return { kernel: k.heap.usage(KERNEL_OWNER).slots, shadow: k.heap.usage(k.get(s.shadowName!)!.id).slots };
}

/** The owner of the allocation at physical address `addr` (-1: none). */
function ownerAt(s: Storage, addr: number): number {
  const heap = s.kernel.heap;
  for (let slot = 0; slot < heap.highWater; slot++) if (heap.owner[slot] !== -1 && heap.off[slot] === addr) return heap.ownerOf(slot);
  return -1;
}

/** A deque (of capacity `cap`) of `n` one-block writes at lba0.. with pattern seeds seed0..; and the addresses of its structs and buffers. */
function writes(s: Storage, n: number, lba0: number, seed0: number, cap = n) {
  const k = s.kernel;
  const dq = k.kit.allocDeque(KERNEL_OWNER, cap) as unknown as RRefDeque<RRef<BlkReq>>;
  const addrs: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const r = req(k, 1, lba0 + i, 1, BS, seed0 + i);
    r.tag = 100 + i;
    addrs.push([r.addr, r.data!.addr]);
    dq.push(r);
  }
  return { dq, addrs };
}

/** The blocks at lba0.. hold the patterns of seeds seed0.. (`skip`: lbas not checked). */
async function expectOnDisk(s: Storage, n: number, lba0: number, seed0: number, skip = new Set<number>()): Promise<void> {
  const model = new Map<number, [number, number]>();
  for (let i = 0; i < n; i++) if (!skip.has(lba0 + i)) model.set(lba0 + i, [seed0 + i, 0]);
  const ops: Op[] = [...model.keys()].map((lba) => ({ write: false, lba, nblocks: 1, seed: 0 }));
  await runBatch(s.kernel, s.bdev, BS, ops, model);
}

test('a driver dies holding moved write requests: the same requests and buffers are reissued, data intact, nothing leaks', async () => {
  await slowDisk(async (s) => {
    const k = s.kernel;
    const before = held(s);
    const n = 16;
    const { dq, addrs } = writes(s, n, 10, 500);
    const result = s.bdev.submitAndPoll(dq);
    await sleep(6); // some writes done, the rest queued on the controller
    const dead = k.get(s.driverName)!;
    assert.ok(addrs.every(([, data]) => ownerAt(s, data) === dead.id), 'the driver holds every request');
    k.injectFault(s.driverName, 'now');
    assert.deepEqual(k.heap.usage(dead.id), { bytes: 0, slots: 0 }, 'the dead driver holds nothing');
    const out = await result;
    assert.equal(out.length, n);
    for (let i = 0; i < n; i++) {
      const r = out.pop()!;
      assert.equal(r.status, 0, `write ${i}`);
      assert.equal(r.tag, 100 + i, 'in order');
      assert.equal(r.op, 1);
      assert.equal(r.lba, 10 + i);
      assert.deepEqual([r.addr, r.data!.addr], addrs[i], `write ${i}: the caller's own request and buffer (zero copy)`);
      for (let off = 0; off < BS; off += 4) assert.equal(r.data!.getU32(off), pattern(500 + i, off));
      r.drop();
    }
    out.drop();
    assert.equal(k.get(s.driverName)!.restarts, 1);
    assert.equal(k.get(s.shadowName!)!.faults, 0);
    await expectOnDisk(s, n, 10, 500);
    assert.deepEqual(held(s), before, 'the caller and the shadow hold what they held before');
  });
});

test('a batch larger than any before, in a deque with room to spare: every request is reissued in order from its own buffers, and the caller gets a deque as large as its own', async () => {
  await slowDisk(async (s) => {
    const k = s.kernel;
    const n = 40;
    const { dq, addrs } = writes(s, n, 200, 900, 64);
    const result = s.bdev.submitAndPoll(dq);
    await sleep(6);
    k.injectFault(s.driverName, 'now');
    const out = await result;
    assert.equal(out.length, n);
    assert.equal(out.capacity, 64);
    for (let i = 0; i < n; i++) {
      const r = out.pop()!;
      assert.equal(r.status, 0, `write ${i}`);
      assert.equal(r.tag, 100 + i, 'in order');
      assert.deepEqual([r.addr, r.data!.addr], addrs[i], `write ${i}: the caller's own request and buffer`);
      r.drop();
    }
    out.drop();
    assert.equal(k.get(s.driverName)!.restarts, 1);
    await expectOnDisk(s, n, 200, 900);
  });
});

test('submit: a single moved write in flight when the driver dies is reissued from the same buffer', async () => {
  await slowDisk(async (s) => {
    const k = s.kernel;
    const before = held(s);
    const r0 = req(k, 1, 40, 1, BS, 77);
    const addrs = [r0.addr, r0.data!.addr];
    const result = s.bdev.submit(r0);
    const driver = k.get(s.driverName)!.id;
    while (ownerAt(s, addrs[1]!) !== driver) await sleep(0);
    k.injectFault(s.driverName, 'now');
    const r = await result;
    assert.equal(r.status, 0);
    assert.deepEqual([r.addr, r.data!.addr], addrs);
    r.drop();
    assert.equal(k.get(s.driverName)!.restarts, 1);
    await expectOnDisk(s, 1, 40, 77);
    assert.deepEqual(held(s), before);
  }, 20);
});

test('property: random batches with the driver crashed at a random moment: every request comes back in its own buffers, reads see every write, nothing leaks', async () => {
  await slowDisk(async (s) => {
    const k = s.kernel;
    const model = new Map<number, [number, number]>();
    const before = held(s);
    const opArb = fc.record({ write: fc.boolean(), lba: fc.integer({ min: 0, max: 120 }), nblocks: fc.integer({ min: 1, max: 3 }), seed: fc.integer({ min: 1, max: 1 << 30 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 24 }), fc.integer({ min: 0, max: 12 }), async (raw, crashAfterMs) => {
        const ops = disjoint(raw as Op[]);
        const timer = setTimeout(() => k.get(s.driverName)?.live && k.injectFault(s.driverName, 'now'), crashAfterMs);
        try {
          // runBatch checks statuses, order and reads against the model; the addresses are checked here.
          let dq = k.kit.allocDeque(KERNEL_OWNER, ops.length) as unknown as RRefDeque<RRef<BlkReq>>;
          const addrs: number[] = [];
          for (const o of ops) {
            const r = req(k, o.write ? 1 : 0, o.lba, o.nblocks, o.nblocks * BS, o.write ? o.seed : undefined);
            addrs.push(r.data!.addr);
            dq.push(r);
          }
          dq = await s.bdev.submitAndPoll(dq);
          for (let i = 0; i < ops.length; i++) {
            const r = dq.pop()!;
            assert.equal(r.status, 0);
            assert.equal(r.data!.addr, addrs[i], 'the caller\'s own buffer');
            r.drop();
          }
          dq.drop();
          await runBatch(k, s.bdev, BS, ops, model);
        } finally {
          clearTimeout(timer);
        }
      }),
      { numRuns: 15 },
    );
    assert.ok(k.get(s.driverName)!.restarts > 0);
    assert.equal(k.get(s.shadowName!)!.faults, 0);
    assert.deepEqual(held(s), before);
  });
});

test('a request the driver freed before dying cannot be reissued: -EIO in its place, the others succeed, nothing else is written', async () => {
  await slowDisk(async (s) => {
    const k = s.kernel;
    const n = 8;
    await runBatch(k, s.bdev, BS, Array.from({ length: n }, (_, i) => ({ write: true, lba: 60 + i, nblocks: 1, seed: 900 + i })), new Map());
    const { dq, addrs } = writes(s, n, 60, 300);
    const result = s.bdev.submitAndPoll(dq);
    await sleep(1);
    // The driver (simulated by the kernel's hand) drops the last request: struct and buffer freed.
    const dead = k.get(s.driverName)!;
    let victim = -1;
    for (let slot = 0; slot < k.heap.highWater; slot++) {
      if (k.heap.ownerOf(slot) === dead.id && k.heap.off[slot] === addrs[n - 1]![0]) victim = slot;
    }
    assert.ok(victim >= 0, 'the driver holds the last request');
    assert.equal(k.heap.parent[victim], -1, 'the driver took it out of the deque');
    k.heap.free(victim);
    k.injectFault(s.driverName, 'now');
    const out = await result;
    for (let i = 0; i < n - 1; i++) {
      const r = out.pop()!;
      assert.equal(r.status, 0, `write ${i}`);
      assert.equal(r.tag, 100 + i);
      assert.deepEqual([r.addr, r.data!.addr], addrs[i]);
      r.drop();
    }
    const lost = out.pop()!;
    assert.equal(lost.status, -5, 'in the place of the lost write: -EIO');
    assert.equal(lost.data, null);
    lost.drop();
    out.drop();
    await expectOnDisk(s, n - 1, 60, 300);
    // The lost write's block holds either its old or its new bytes (the controller may have run
    // it before the driver died), nothing else.
    const r = await s.bdev.submit(req(k, 0, 60 + n - 1, 1, BS));
    const first = r.data!.getU32(0);
    assert.ok(first === pattern(900 + n - 1, 0) || first === pattern(300 + n - 1, 0), `block ${60 + n - 1} holds ${first}`);
    r.drop();
  }, 10);
});

test('a second driver death while the first death\'s recall still waits (its device slow to acknowledge the detach): the calls of each death get their own requests back, reissued', async () => {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  try {
    // liarbdev holds a request of lba 998 for holdMs before answering: in flight when it dies.
    // Each instance's device acknowledges its detach only when the test says (acks[i]).
    const acks: (() => void)[] = [];
    const device = fakeDevice([], () => '', () => new Promise<void>((r) => acks.push(r)), k.heap.iommuTables);
    k.load(join(TEST_ARTIFACTS, 'liarbdev.rldom'), { name: 'liar', config: { holdMs: 20 }, device });
    const bdev = loadBlockShadow(k, 'liar');
    const shadow = k.get('liar_shadow')!.id;
    const before = k.heap.usage(shadow).slots;
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 10; i++) await turn();
    };
    const inFlight = (seed: number) => {
      const r = req(k, 1, 998, 1, BS, seed);
      const addrs = [r.addr, r.data!.addr];
      return { addrs, result: bdev.submit(r) };
    };

    const a = inFlight(1);
    k.injectFault('liar', 'now');
    await settle(); // A's recovery restarted the driver and waits for the first instance's memory
    assert.equal(k.get('liar')!.restarts, 1);
    const b = inFlight(2);
    k.injectFault('liar', 'now');
    await settle();
    assert.equal(k.get('liar')!.restarts, 2, 'B\'s recovery restarted the driver again');
    assert.equal(acks.length, 2, 'neither dead instance\'s memory is reclaimed yet');

    acks[0]!();
    await settle();
    acks[1]!();
    for (const [name, { addrs, result }] of [['A', a], ['B', b]] as const) {
      const r = await result;
      assert.equal(r.status, 0, `${name}: reissued, not lost`);
      assert.deepEqual([r.addr, r.data?.addr], addrs, `${name}: the caller's own request and buffer`);
      r.drop();
    }
    await settle();
    assert.equal(k.heap.usage(shadow).slots, before, 'the shadow holds nothing more than before');
    assert.equal(k.heap.usage(KERNEL_OWNER).slots, 0, 'the caller holds nothing more (nothing doubled)');
    assert.equal(k.get('liar_shadow')!.faults, 0);
  } finally {
    k.shutdown();
  }
});

test('a second death just as the first death\'s recall ends (the routed call that died with it not yet told, its hook one microtask away): that call gets its own request back, reissued', async () => {
  // The first recall's end and the second death, `ticks` microtasks apart. Among them (3 when
  // written) is the moment where the kernel's recall takes what the second death left before the
  // shadow has run that death's routed hook: the shadow must still find B's request (see collect).
  for (let ticks = 0; ticks <= 6; ticks++) {
    const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
    try {
      // The first instance's device acknowledges its detach when the test says; the others at once.
      let ack: (() => void) | null = null;
      const device = fakeDevice([], () => '', () => (ack === null ? new Promise<void>((r) => (ack = r)) : true), k.heap.iommuTables);
      k.load(join(TEST_ARTIFACTS, 'liarbdev.rldom'), { name: 'liar', config: { holdMs: 20 }, device });
      const bdev = loadBlockShadow(k, 'liar');
      const inFlight = (seed: number) => {
        const r = req(k, 1, 998, 1, BS, seed);
        return { addrs: [r.addr, r.data!.addr], result: bdev.submit(r) };
      };
      const a = inFlight(1);
      k.injectFault('liar', 'now');
      for (let i = 0; i < 10; i++) await turn(); // A's recovery restarted the driver; its recall waits
      assert.equal(k.get('liar')!.restarts, 1);
      const b = inFlight(2); // routed to the new instance
      ack!();
      for (let i = 0; i < ticks; i++) await Promise.resolve();
      k.injectFault('liar', 'now');
      for (const [name, { addrs, result }] of [['A', a], ['B', b]] as const) {
        const r = await result;
        assert.equal(r.status, 0, `${ticks} microtasks apart: ${name} reissued, not lost`);
        assert.deepEqual([r.addr, r.data?.addr], addrs, `${ticks} microtasks apart: ${name} gets the caller's own request and buffer`);
        r.drop();
      }
      assert.equal(k.heap.usage(KERNEL_OWNER).slots, 0, 'the caller holds nothing more (nothing doubled)');
      assert.equal(k.get('liar_shadow')!.faults, 0);
    } finally {
      k.shutdown();
    }
  }
});
