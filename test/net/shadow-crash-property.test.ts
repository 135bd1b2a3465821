/**
 * The NIC shadow under crashes at random points (property, fast-check): any sequence of RX and TX
 * calls on two queues of the loopback backend, with driver crashes injected between calls
 * ('now': the next call meets a dead instance, the shadow's own method serves it) and inside
 * them (at the k-th next call: a routed call whose hook recovers), keeps the invariants:
 *  - no call fails: every answer has status 0 and is the caller's own NetIo (taken back from the
 *    dead driver when it died holding it);
 *  - buffers are conserved at every step: the caller's + what the Net holds or owes = the pool;
 *  - nothing is allocated to replace a buffer (every one the driver held comes back), the lost
 *    frames counted are RX + TX, and after a drain the pool is whole and the heap is back to
 *    what it was before the sequence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bootNet } from '../../src/host/net.js';
import type { NetIo } from '../../src/interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../src/runtime/types.js';
import { hostIo } from './helpers.js';

type Buf = RRefArray<number>;
type Deque = RRefDeque<Buf>;
const POOL = 128;
const QUEUES = 2;

const call = fc.record({ kind: fc.constantFrom('rx' as const, 'tx' as const), q: fc.integer({ min: 0, max: QUEUES - 1 }), n: fc.integer({ min: 0, max: 8 }) });
const crash = fc.record({ kind: fc.constant('crash' as const), afterCalls: fc.integer({ min: 0, max: 3 }) });
const steps = fc.array(fc.oneof({ arbitrary: call, weight: 4 }, { arbitrary: crash, weight: 1 }), { minLength: 1, maxLength: 16 });

test('NIC shadow, crashes anywhere in any call sequence: no call fails, buffers are conserved, nothing is replaced or leaked (property)', { timeout: 300_000 }, async () => {
  const boot = await bootNet({ backend: { kind: 'loopback' }, shadow: true, app: null, queues: QUEUES });
  const { kernel, net } = boot;
  const driver = boot.driverName!;
  try {
    const baseline = kernel.heap.totalUsage();
    fc.assert(
      fc.property(steps, (seq) => {
        const pool = kernel.kit.allocDeque(0, POOL) as unknown as Deque;
        for (let i = 0; i < POOL; i++) pool.push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
        const ios: RRef<NetIo>[] = [hostIo(kernel, 8), hostIo(kernel, 8)];
        const inIos = (): number => ios.reduce((n, io) => n + io.pkts!.length + io.collect!.length, 0);
        const before = boot.netStats();
        for (const s of seq) {
          if (s.kind === 'crash') {
            if (kernel.get(driver)?.live) kernel.injectFault(driver, s.afterCalls === 0 ? 'now' : { afterCalls: s.afterCalls });
            continue;
          }
          const slot = s.kind === 'rx' ? 0 : 1;
          let io = ios[slot]!;
          pool.moveFrom(io.collect as Deque, io.collect!.length);
          const pk = io.pkts as Deque;
          const m0 = pk.length;
          pk.moveFrom(pool, s.n - Math.min(s.n, m0));
          if (s.kind === 'tx') for (let i = m0; i < pk.length; i++) io.pktLens!.setU32(i * 4, 60);
          const addr = io.addr;
          io = s.kind === 'rx' ? net.rxSubmitAndPoll(s.q, io) : net.txSubmitAndPoll(s.q, io);
          ios[slot] = io;
          assert.equal(io.status, 0, `${JSON.stringify(s)} answered`);
          assert.equal(io.addr, addr, 'the caller’s own NetIo came back');
          assert.equal(pool.length + inIos() + net.outstanding(), POOL, `buffers conserved after ${JSON.stringify(s)}`);
        }
        const after = boot.netStats();
        assert.equal(after.buffersReplaced - before.buffersReplaced, 0, 'every buffer the dead drivers held came back');
        assert.equal(after.framesLost, after.rxBuffersLost + after.txFramesLost);
        // Everything back: drain, then the pool must be whole and the heap as it was.
        let d = hostIo(kernel, 1);
        d.collect = kernel.kit.allocDeque(0, POOL) as never;
        d.collectLens = kernel.kit.allocArray(0, 'u32', POOL) as never;
        d = net.drain(d);
        assert.equal(d.status, 0);
        for (const io of [...ios, d]) {
          for (const q of [io.pkts, io.collect] as Deque[]) pool.moveFrom(q, q.length);
          io.drop();
        }
        assert.equal(pool.length, POOL, 'the pool is whole');
        assert.equal(net.outstanding(), 0);
        for (let b = pool.pop(); b; b = pool.pop()) b.drop();
        pool.drop();
        // A crash armed for a later call that never came: disarm it (the next sequence starts clean).
        if (kernel.get(driver)?.live) {
          kernel.injectFault(driver, 'now');
          net.outstanding(); // the shadow restarts it
        }
        assert.deepEqual(kernel.heap.totalUsage(), baseline, 'the heap is back to what it was');
      }),
      { numRuns: 40 },
    );
    assert.equal(kernel.get(boot.netName)!.live, true, 'the shadow never died');
  } finally {
    await boot.stop();
  }
});
