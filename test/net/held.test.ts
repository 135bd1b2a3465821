/**
 * NetIo.held on every Net (src/interfaces/net.ts): after each rx/txSubmitAndPoll it is what the Net
 * holds for that queue and direction. A ring's count changes only in calls of its own direction,
 * so the last RX call's held plus the last TX call's held is outstanding() at every point of any
 * sequence of calls — on the driver domain, through the NIC shadow, and on nullnet (always 0). A
 * refused call reports held too; drain reports 0. The RX NetIo here has no pktLens: an RX call
 * does not read it (free buffers carry no lengths). The shadow routes its submits, and the kernel
 * records held per queue for it. After a crash it takes back everything the dead driver held (the
 * NetIos were entrusted to it on their way in), re-posts RX buffers on the queues held said they
 * were posted on, hands the rest back, and counts all of it lost, once. What the caller was due
 * and did not come back (a faulty driver freed it, or its device is slow to confirm its stop and
 * holds the dead instance's memory yet) is replaced, and originals that come back late are freed
 * against their replacements: the caller ends with exactly the buffers it moved in. A faulty
 * driver that claims a million buffers, beyond the rings it reported, costs the shadow nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bootNet, type NetBoot } from '../../src/host/net.js';
import type { NetIo } from '../../src/interfaces/index.js';
import type { RRef, RRefArray, RRefDeque } from '../../src/runtime/types.js';
import { hostIo } from './helpers.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { artifactPath } from '../../src/kernel/paths.js';
import { TEST_ARTIFACTS, fakeDevice, turn } from '../kernel/helpers.js';
import type { DeviceHandle } from '../../src/devices/host.js';
import type { IommuTables } from '../../src/devices/iommu.js';
import { join } from 'node:path';
import type { Net, NetStats } from '../../src/interfaces/index.js';
import type { Fault } from '../domains/faultynet/index.js';

type Buf = RRefArray<number>;
type Deque = RRefDeque<Buf>;
const POOL = 256;

/** One call of a sequence: RX posting `n` free buffers, or TX sending `n` frames of 60 bytes. */
type Step = { rx: boolean; n: number };
const step = fc.record({ rx: fc.boolean(), n: fc.integer({ min: 0, max: 8 }) });

async function checkHeld(path: 'domain' | 'shadow' | 'nullnet'): Promise<void> {
  const boot: NetBoot = await bootNet({ backend: path === 'nullnet' ? 'nullnet' : { kind: 'loopback' }, shadow: path === 'shadow', app: null });
  const { kernel, net } = boot;
  const pool = kernel.kit.allocDeque(0, POOL) as unknown as Deque;
  try {
    for (let i = 0; i < POOL; i++) pool.push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    let rx = kernel.kit.allocStruct(0, 'NetIo') as unknown as RRef<NetIo>;
    rx.pkts = kernel.kit.allocDeque(0, 8) as never;
    rx.collect = kernel.kit.allocDeque(0, 8) as never;
    rx.collectLens = kernel.kit.allocArray(0, 'u32', 8) as never;
    let tx = hostIo(kernel, 8);
    let rxHeld = 0;
    let txHeld = 0;
    const run = (s: Step): void => {
      if (s.rx) {
        (rx.pkts as Deque).moveFrom(pool, s.n - rx.pkts!.length);
        rx = net.rxSubmitAndPoll(0, rx);
        assert.equal(rx.status, 0);
        rxHeld = rx.held;
        pool.moveFrom(rx.collect as Deque, rx.collect!.length);
      } else {
        const pk = tx.pkts as Deque;
        const m0 = pk.length;
        pk.moveFrom(pool, s.n - m0);
        for (let i = m0; i < pk.length; i++) tx.pktLens!.setU32(i * 4, 60);
        tx = net.txSubmitAndPoll(0, tx);
        assert.equal(tx.status, 0);
        txHeld = tx.held;
        pool.moveFrom(tx.collect as Deque, tx.collect!.length);
      }
      if (path === 'nullnet') assert.equal(rxHeld + txHeld, 0, 'nullnet holds nothing');
      assert.equal(rxHeld + txHeld, net.outstanding(), `RX held ${rxHeld} + TX held ${txHeld} after ${JSON.stringify(s)}`);
    };
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), (steps) => steps.forEach(run)), { numRuns: 30 });

    // A refused call (no collectLens: malformed) still reports what the queue holds.
    const bad = kernel.kit.allocStruct(0, 'NetIo') as unknown as RRef<NetIo>;
    bad.pkts = kernel.kit.allocDeque(0, 1) as never;
    bad.collect = kernel.kit.allocDeque(0, 1) as never;
    const r = net.rxSubmitAndPoll(0, bad);
    assert.equal(r.status, -22);
    assert.equal(r.held, rxHeld, 'a refused RX call reports the posted buffers');
    // So does a TX call without pktLens (TX frames need their lengths; RX would take this NetIo).
    r.collectLens = kernel.kit.allocArray(0, 'u32', 1) as never;
    const t = net.txSubmitAndPoll(0, r);
    assert.equal(t.status, -22);
    assert.equal(t.held, txHeld, 'a refused TX call reports the frames in flight');
    t.drop();

    // Drain: every buffer comes back and held is 0.
    let d = hostIo(kernel, 1);
    d.collect = kernel.kit.allocDeque(0, POOL) as never;
    d.collectLens = kernel.kit.allocArray(0, 'u32', POOL) as never;
    d = net.drain(d);
    assert.equal(d.status, 0);
    assert.equal(d.held, 0);
    pool.moveFrom(d.collect as Deque, d.collect!.length);
    for (const io of [rx, tx, d]) {
      for (const q of [io.pkts, io.collect] as Deque[]) pool.moveFrom(q, q.length);
      io.drop();
    }
    assert.equal(pool.length, POOL, 'every buffer came back');
    assert.equal(net.outstanding(), 0);
  } finally {
    for (let b = pool.pop(); b; b = pool.pop()) b.drop();
    pool.drop();
    await boot.stop();
  }
}

/** Loopback with two queues behind the NIC shadow, and a host pool of POOL buffers for `fn`. */
async function withPool(fn: (boot: NetBoot, pool: Deque) => Promise<void>): Promise<void> {
  const boot = await bootNet({ backend: { kind: 'loopback' }, shadow: true, app: null, queues: 2 });
  const pool = boot.kernel.kit.allocDeque(0, POOL) as unknown as Deque;
  try {
    for (let i = 0; i < POOL; i++) pool.push(boot.kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    await fn(boot, pool);
  } finally {
    await boot.stop();
    for (let b = pool.pop(); b; b = pool.pop()) b.drop();
    pool.drop();
  }
}

/** TX of `n` 60-byte frames from the pool on queue q; what the call reclaimed goes back to the pool. */
function send(boot: NetBoot, pool: Deque, q: number, n: number): RRef<NetIo> {
  let tx = hostIo(boot.kernel, 16);
  (tx.pkts as Deque).moveFrom(pool, n);
  for (let i = 0; i < n; i++) tx.pktLens!.setU32(i * 4, 60);
  tx = boot.net.txSubmitAndPoll(q, tx);
  pool.moveFrom(tx.collect as Deque, tx.collect!.length);
  return tx;
}

/** Everything back: drain the Net, take every buffer of `ios` and of the drain into the pool, which must be whole (`size`). */
function takeAllBack(boot: { kernel: Kernel; net: Net }, pool: Deque, ios: RRef<NetIo>[], size = POOL): void {
  let d = hostIo(boot.kernel, 1);
  d.collect = boot.kernel.kit.allocDeque(0, POOL) as never;
  d.collectLens = boot.kernel.kit.allocArray(0, 'u32', POOL) as never;
  d = boot.net.drain(d);
  assert.equal(d.status, 0);
  for (const io of [...ios, d]) {
    for (const q of [io.pkts, io.collect] as Deque[]) pool.moveFrom(q, q.length);
    io.drop();
  }
  assert.equal(pool.length, size, 'the pool kept its size');
}

test('NetIo.held: driver domain: RX held + TX held = outstanding() after every call', () => checkHeld('domain'));
test('NetIo.held: through the NIC shadow, the same', () => checkHeld('shadow'));
test('NetIo.held: nullnet holds nothing', () => checkHeld('nullnet'));

test('NIC shadow, two queues: what a crash kills comes back, RX buffers re-posted on the queue held reported for them, TX frames handed back', async () => {
  await withPool(async (boot, pool) => {
    const { kernel, net } = boot;
    const post = (q: number, n: number): RRef<NetIo> => {
      let io = hostIo(kernel, 16);
      (io.pkts as Deque).moveFrom(pool, n);
      io = net.rxSubmitAndPoll(q, io);
      assert.equal(io.held, n, `all ${n} free buffers posted on queue ${q}`);
      return io;
    };
    let rx0 = post(0, 12);
    const rx1 = post(1, 4);
    // Frames in flight on queue 1: how many are unreclaimed at the crash does not matter, held says.
    const tx = send(boot, pool, 1, 5);
    const txHeld = tx.held;
    const before = boot.netStats();
    kernel.injectFault(boot.driverName!, 'now');
    rx0 = net.rxSubmitAndPoll(0, rx0); // goes through the recovery: the NetIo was not moved in, so it lives
    assert.equal(rx0.status, 0);
    assert.equal(rx0.restarts, 1);
    assert.equal(rx0.pktsLost, 0);
    const after = boot.netStats();
    assert.equal(after.rxBuffersLost - before.rxBuffersLost, 16, 'the buffers posted on both queues are counted lost');
    assert.equal(after.txFramesLost - before.txFramesLost, txHeld, 'the frames in flight on queue 1 are counted lost');
    // Every buffer the dead driver held came back to the shadow (the NetIos were entrusted on their
    // way in): the 16 RX buffers re-posted on their queues (no traffic since), the TX frames handed
    // back in this call's collect (length 0) or still owed. None was allocated anew.
    assert.equal(rx0.held, 12, 'queue 0 got its posted buffers back');
    assert.equal(net.outstanding() + rx0.collect!.length, 16 + txHeld, 'every buffer the dead driver held came back once');
    for (let i = 0; i < rx0.collect!.length; i++) assert.equal(rx0.collectLens!.getU32(i * 4), 0, 'a buffer handed back carries no frame');
    assert.equal(after.buffersReplaced, 0, 'nothing replaced');
    takeAllBack(boot, pool, [rx0, rx1, tx]);
  });
});

test('NIC shadow: owed buffers are paid into a malformed NetIo (collectLens shorter than collect) only as far as its lengths go: the call is refused, the shadow lives', async () => {
  await withPool(async (boot, pool) => {
    const { kernel, net } = boot;
    const tx = send(boot, pool, 0, 5); // frames in flight at the crash: owed to the caller after it
    kernel.injectFault(boot.driverName!, 'now');
    let bad = kernel.kit.allocStruct(0, 'NetIo') as unknown as RRef<NetIo>;
    bad.pkts = kernel.kit.allocDeque(0, 1) as never;
    bad.collect = kernel.kit.allocDeque(0, 8) as never;
    bad.collectLens = kernel.kit.allocArray(0, 'u32', 1) as never;
    bad = net.rxSubmitAndPoll(0, bad);
    assert.equal(bad.status, -22, 'refused by the driver');
    assert.ok(bad.collect!.length <= 1, 'paid no more than its lengths can describe');
    assert.equal(bad.count, bad.collect!.length);
    assert.ok(kernel.get(boot.netName)!.live, 'the shadow lives');
    assert.equal(boot.netStats().restarts, 1);
    takeAllBack(boot, pool, [tx, bad]);
  });
});


/**
 * A kernel with the NIC shadow over faultynet with `fault` (test/domains/faultynet), driving
 * `device` if given, and a host pool of POOL buffers for `fn`; shut down after it.
 */
async function withFaultyNet(fault: Fault, fn: (kernel: Kernel, net: Net, pool: Deque) => void | Promise<void>, device?: (iommu: IommuTables) => DeviceHandle): Promise<void> {
  const kernel = new Kernel({ physBytes: 32 << 20, log: () => {} });
  const pool = kernel.kit.allocDeque(0, POOL) as unknown as Deque;
  try {
    for (let i = 0; i < POOL; i++) pool.push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    kernel.load(join(TEST_ARTIFACTS, 'faultynet.rldom'), { config: { fault }, device: device?.(kernel.heap.iommuTables) });
    kernel.load(artifactPath('nic_shadow'), { imports: [{ supervise: 'faultynet' }] });
    await fn(kernel, kernel.bind<Net>('nic_shadow'), pool);
  } finally {
    kernel.shutdown();
  }
}

/** The shadow's stats, in a struct of the host's. */
const statsOf = (kernel: Kernel, net: Net): RRef<NetStats> => net.stats(kernel.kit.allocStruct(0, 'NetStats') as never);

test('NIC shadow: a faulty driver claiming a million held buffers, beyond the rings it reported (none), is not believed: a crash re-posts, counts and replaces only what came back', () => {
  return withFaultyNet('liar', (kernel, net) => {
    let rx = hostIo(kernel, 8);
    for (let i = 0; i < 4; i++) (rx.pkts as Deque).push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    rx = net.rxSubmitAndPoll(0, rx);
    assert.equal(rx.held, 1_000_000, 'the caller sees what the driver said');
    kernel.injectFault('faultynet', 'now');
    rx = net.rxSubmitAndPoll(0, rx); // through the recovery
    assert.equal(rx.status, 0, 'the shadow survived the restart');
    const s = statsOf(kernel, net);
    assert.equal(s.restarts, 1);
    assert.equal(s.rxBuffersLost, 0, 'nothing counted lost: the driver took none of the four buffers (they are still in pkts)');
    assert.equal(s.buffersReplaced, 0, 'nothing allocated on the claim');
    assert.equal(rx.pkts!.length, 4, 'the four buffers are still the caller’s');
    s.drop();
    assert.equal(kernel.get('nic_shadow')!.state, 'live');
    rx.drop();
  });
});

test('NIC shadow: a crash inside a routed call: the hook takes back its NetIo and what the driver held, re-posts, answers; routes stay off until every buffer is back', async () => {
  await withPool(async (boot, pool) => {
    const { kernel, net } = boot;
    const shadow = kernel.get(boot.netName)!;
    const routed = (): boolean => shadow.routes !== null && shadow.routes.hooks.some((h) => h !== null);
    assert.ok(routed(), 'routed from the start');
    let rx1 = hostIo(kernel, 16);
    (rx1.pkts as Deque).moveFrom(pool, 4);
    rx1 = net.rxSubmitAndPoll(1, rx1);
    assert.equal(rx1.held, 4, 'the routed call answered: four posted on queue 1');
    const tx = send(boot, pool, 0, 6);
    const txHeld = tx.held;
    // The next call crashes the driver as it arrives: a routed call, so the shadow's hook recovers.
    let rx0 = hostIo(kernel, 16);
    rx0.collect = kernel.kit.allocDeque(0, 1) as never; // room for one buffer handed back per call
    (rx0.pkts as Deque).moveFrom(pool, 3);
    const addr = rx0.addr;
    kernel.injectFault(boot.driverName!, { afterCalls: 1 });
    rx0 = net.rxSubmitAndPoll(0, rx0);
    assert.equal(rx0.addr, addr, 'the caller got its own NetIo back, taken back from the dead driver');
    assert.equal(rx0.status, 0);
    assert.equal(rx0.restarts, 1, 'the answer says the driver was restarted');
    assert.equal(rx0.pktsLost, 0);
    assert.equal(rx0.held, 3, 'the call was reissued: its three free buffers posted on queue 0');
    const s = boot.netStats();
    assert.equal(s.restarts, 1);
    assert.equal(s.rxBuffersLost, 4, 'the four posted on queue 1');
    assert.equal(s.txFramesLost, txHeld, 'the TX frames in flight');
    assert.equal(s.buffersReplaced, 0);
    // The TX frames the dead driver held are owed: one per call (collect has room for one), with
    // routes off until all are back.
    let owed = net.outstanding() - 4 - 3;
    assert.equal(owed + rx0.collect!.length, txHeld, 'every TX frame in flight came back once');
    assert.equal(routed(), owed === 0, 'routes are off while buffers are owed');
    while (owed > 0) {
      pool.moveFrom(rx0.collect as Deque, rx0.collect!.length);
      rx0 = net.rxSubmitAndPoll(0, rx0);
      assert.equal(rx0.collect!.length, 1);
      assert.equal(rx0.collectLens!.getU32(0), 0, 'handed back with no frame');
      owed--;
      assert.equal(net.outstanding(), 7 + owed);
    }
    assert.ok(routed(), 'routed again once every buffer is back');
    takeAllBack(boot, pool, [rx0, rx1, tx]);
  });
});

test('NIC shadow: a faulty driver that frees the call’s NetIo but kept some of its buffers: only the buffers that did not come back are replaced, and counted lost once', () => {
  return withFaultyNet('dropper', (kernel, net) => {
    let rx = hostIo(kernel, 8);
    for (let i = 0; i < 5; i++) (rx.pkts as Deque).push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    rx = net.rxSubmitAndPoll(0, rx); // faultynet keeps 3, frees the NetIo with the other 2, dies
    assert.equal(rx.status, 0);
    assert.equal(rx.restarts, 1);
    assert.equal(rx.collect!.length + net.outstanding(), 5, 'the caller gets back the five buffers it moved in: the three that came back and two replacements');
    const s = statsOf(kernel, net);
    assert.equal(s.buffersReplaced, 2, 'the two freed with the NetIo');
    assert.equal(s.framesLost, 5, 'each of the five counted lost once');
    s.drop();
    rx.drop();
  });
});

test('NIC shadow: an RX call whose NetIo a faulty driver freed is answered in a fresh NetIo that has a collectInfo with room for its collect, so the reissued call reports what the NIC read of its frames (maglev drops frames without it)', () =>
  withFaultyNet('dropper', (kernel, net) => {
    let rx = hostIo(kernel, 8);
    rx.collectInfo = kernel.kit.allocArray(0, 'u32', 16) as never;
    for (let i = 0; i < 5; i++) (rx.pkts as Deque).push(kernel.kit.allocBytes(0, 2048) as unknown as Buf);
    rx = net.rxSubmitAndPoll(0, rx); // faultynet keeps 3, frees the NetIo (its collectInfo with it), dies
    assert.equal(rx.restarts, 1, 'answered after the recovery');
    const ci = rx.collectInfo;
    assert.ok(ci !== null, 'the fresh NetIo carries a collectInfo');
    assert.ok(ci.byteLength >= rx.collect!.capacity * 8, `room for 2 u32 per collect entry: ${ci.byteLength} bytes for ${rx.collect!.capacity}`);
    rx.drop();
  }));

/** The caller's buffers: its pool, `io`'s, and what the Net holds or owes it. */
const callersOf = (net: Net, pool: Deque, io: RRef<NetIo>): number => pool.length + io.pkts!.length + io.collect!.length + net.outstanding();

/**
 * Four buffers posted on queue 0, then the RX call faultynet's first instance fails in (its
 * second), bringing two more free buffers and `collect` of the caller's in its collect: the
 * shadow's answer to it, after the restart.
 */
function failSecondCall(kernel: Kernel, net: Net, pool: Deque, collect = 0): RRef<NetIo> {
  let rx = hostIo(kernel, 8);
  (rx.pkts as Deque).moveFrom(pool, 4);
  rx = net.rxSubmitAndPoll(0, rx);
  assert.equal(rx.held, 4, 'four posted');
  (rx.pkts as Deque).moveFrom(pool, 2);
  (rx.collect as Deque).moveFrom(pool, collect);
  rx = net.rxSubmitAndPoll(0, rx);
  assert.equal(rx.status, 0);
  assert.equal(rx.restarts, 1);
  return rx;
}

test('NIC shadow: a driver dies with a call in it while its device is slow to confirm its stop: what it held is replaced at once, and when the originals come back later they are freed against the replacements, not handed back again', async () => {
  let confirm!: () => void;
  const confirmed = new Promise<void>((r) => (confirm = r));
  let stops = 0;
  // The first instance's device confirms its stop only when the test says (past detach's 200 ms wait); later ones at once.
  const device = (iommu: IommuTables): DeviceHandle => fakeDevice([], () => '', () => (stops++ === 0 ? confirmed : true), iommu);
  await withFaultyNet(
    'holder',
    async (kernel, net, pool) => {
      let rx = hostIo(kernel, 8);
      (rx.pkts as Deque).moveFrom(pool, 4);
      rx = net.rxSubmitAndPoll(0, rx);
      assert.equal(rx.held, 4, 'four posted');
      const first = kernel.get('faultynet')!;
      kernel.injectFault('faultynet', { afterCalls: 1 });
      (rx.pkts as Deque).moveFrom(pool, 3);
      rx = net.rxSubmitAndPoll(0, rx); // dies with the NetIo and its three buffers in it
      assert.equal(rx.status, 0);
      assert.equal(rx.restarts, 1);
      assert.ok(kernel.heap.usage(first.id).bytes > 0, 'the dead instance is not reclaimed yet: nothing of it came back');
      assert.equal(callersOf(net, pool, rx), POOL, 'the caller has every buffer it moved in: the seven are replaced');
      let s = statsOf(kernel, net);
      assert.equal(s.framesLost, 7, 'the four posted and the call\'s three, each counted lost once');
      assert.equal(s.buffersReplaced, 7);
      s.drop();

      confirm();
      for (let i = 0; i < 20 && kernel.heap.usage(first.id).bytes > 0; i++) await turn();
      assert.equal(kernel.heap.usage(first.id).bytes, 0, 'reclaimed once its device confirmed: the originals went to the shadow');
      await turn();
      assert.equal(callersOf(net, pool, rx), POOL, 'the originals, back, were freed against their replacements, not owed on top of them');
      const posted = net.outstanding();
      kernel.injectFault('faultynet', 'now'); // the second death: the originals came back to the shadow at reclamation, freed then
      rx = net.rxSubmitAndPoll(0, rx);
      assert.equal(rx.restarts, 2);
      assert.equal(callersOf(net, pool, rx), POOL, 'the originals paid back the replacements: the caller has no more than it moved in');
      s = statsOf(kernel, net);
      assert.equal(s.framesLost, 7 + posted, 'the second death counts what that instance held, not the originals again');
      assert.equal(s.buffersReplaced, 7, 'nothing replaced at the second death');
      s.drop();
      takeAllBack({ kernel, net }, pool, [rx]);
    },
    device,
  );
});

test('NIC shadow: a faulty driver that moves more filled buffers into collect than it took from pkts and frees the NetIo: the caller still gets back exactly the buffers it moved in', () =>
  withFaultyNet('overfiller', (kernel, net, pool) => {
    const rx = failSecondCall(kernel, net, pool); // takes one, moves three of its ring into collect, frees the NetIo, dies
    assert.equal(callersOf(net, pool, rx), POOL, 'six moved in, six back: the two left in its ring and four replacements');
    const s = statsOf(kernel, net);
    assert.equal(s.buffersReplaced, 4, 'the one left in pkts and the three moved into collect, freed with the NetIo');
    assert.equal(s.framesLost, 6, 'each of the six counted lost once');
    s.drop();
    takeAllBack({ kernel, net }, pool, [rx]);
  }));

test('NIC shadow: a faulty driver that moves buffers of its ring into the call’s pkts and dies: they come back with the NetIo, and are not replaced as well', () =>
  withFaultyNet('stuffer', (kernel, net, pool) => {
    const rx = failSecondCall(kernel, net, pool); // takes none, moves two of its ring into pkts, dies
    assert.equal(callersOf(net, pool, rx), POOL, 'six moved in, six back');
    const s = statsOf(kernel, net);
    assert.equal(s.buffersReplaced, 0, 'every buffer came back: the two in its ring, the two it moved into pkts, the call\'s two');
    assert.equal(s.framesLost, 4, 'the four posted, each counted lost once');
    s.drop();
    takeAllBack({ kernel, net }, pool, [rx]);
  }));

test('NIC shadow: a drain the driver refuses leaves the record of what it holds: at the next death those buffers go back to the caller, not freed against an open advance', () =>
  withFaultyNet('overfiller', (kernel, net, pool) => {
    let rx = failSecondCall(kernel, net, pool); // four replaced, whose originals it freed (the advance stays open)
    (rx.pkts as Deque).moveFrom(rx.collect as Deque, rx.collect!.length);
    rx = net.rxSubmitAndPoll(0, rx); // the new instance posts them
    const posted = net.outstanding();
    assert.ok(posted > 0);
    let bad = hostIo(kernel, 1);
    bad.collect = null;
    bad = net.drain(bad);
    assert.ok(bad.status < 0, 'refused: no collect');
    assert.equal(net.outstanding(), posted, 'the driver still holds them');
    bad.drop();
    kernel.injectFault('faultynet', 'now');
    rx = net.rxSubmitAndPoll(0, rx);
    assert.equal(rx.restarts, 2);
    assert.equal(callersOf(net, pool, rx), POOL, 'what it held came back to the caller');
    takeAllBack({ kernel, net }, pool, [rx]);
  }));

test('NIC shadow: a faulty driver that frees one of the caller’s collect entries and dies (the NetIo kept): that buffer is replaced, and the caller has all it moved in', () =>
  withFaultyNet('thief', (kernel, net, pool) => {
    const rx = failSecondCall(kernel, net, pool, 2); // two frames in collect the caller has not taken out yet: frees one, dies
    assert.equal(callersOf(net, pool, rx), POOL, 'eight moved in, eight back');
    const s = statsOf(kernel, net);
    assert.equal(s.buffersReplaced, 1, 'the one it freed');
    s.drop();
    takeAllBack({ kernel, net }, pool, [rx]);
  }));

test('NIC shadow: a faulty driver that sets the call’s collect to null (freeing the caller’s entries) and dies: the caller gets its NetIo back well-formed, collect of the capacity it had, and all it moved in', () =>
  withFaultyNet('nuller', (kernel, net, pool) => {
    const rx = failSecondCall(kernel, net, pool, 2); // two frames in collect the caller has not taken out yet: freed with it
    assert.notEqual(rx.collect, null, 'the NetIo has a collect again');
    assert.equal(rx.collect!.capacity, 8, 'of the capacity its lengths give');
    assert.equal(callersOf(net, pool, rx), POOL, 'eight moved in, eight back');
    const s = statsOf(kernel, net);
    assert.equal(s.buffersReplaced, 2, 'the two freed with collect');
    s.drop();
    takeAllBack({ kernel, net }, pool, [rx]);
  }));

test('NIC shadow: a faulty driver that sets a TX call’s pktLens to null and dies: the caller gets its NetIo back with lengths again, of the capacity its pkts has', () =>
  withFaultyNet('nuller', (kernel, net, pool) => {
    let tx = hostIo(kernel, 8);
    (tx.pkts as Deque).moveFrom(pool, 3);
    for (let i = 0; i < 3; i++) tx.pktLens!.setU32(i * 4, 60);
    tx = net.txSubmitAndPoll(0, tx); // sets pktLens to null, dies
    assert.equal(tx.restarts, 1);
    assert.notEqual(tx.pktLens, null, 'a TX NetIo has its lengths again: the caller can send with it');
    assert.equal(tx.pktLens!.byteLength, 4 * tx.pkts!.capacity);
    takeAllBack({ kernel, net }, pool, [tx]);
  }));

test('NIC shadow: an advance left by a NetIo a faulty driver freed (its originals never come) is closed once every dead instance is reclaimed: a later death’s surplus goes back to the caller, not freed against it', () =>
  withFaultyNet('overfiller', async (kernel, net, pool) => {
    const rx = failSecondCall(kernel, net, pool); // four replaced, whose originals it freed with the NetIo
    await turn();
    // Three buffers on queue 1, which the driver said it does not have: it holds them, and the
    // record of that queue is not believed (no ring there): at its death they are a surplus.
    let q1 = hostIo(kernel, 8);
    (q1.pkts as Deque).moveFrom(pool, 3);
    q1 = net.rxSubmitAndPoll(1, q1);
    assert.equal(q1.pkts!.length, 0, 'it took them');
    kernel.injectFault('faultynet', 'now');
    const r = net.rxSubmitAndPoll(0, rx);
    assert.equal(r.restarts, 2);
    assert.equal(callersOf(net, pool, r) + q1.collect!.length, POOL, 'the surplus came back to the caller');
    takeAllBack({ kernel, net }, pool, [r, q1]);
  }));

test('NIC shadow: the buffers replaced after a crash are of the size the caller gave, not the driver’s rxBufSize: TX frames in 128-byte buffers come back in 128-byte buffers', () =>
  withFaultyNet('dropper', (kernel, net) => {
    let tx = hostIo(kernel, 8);
    for (let i = 0; i < 5; i++) {
      (tx.pkts as Deque).push(kernel.kit.allocBytes(0, 128) as unknown as Buf);
      tx.pktLens!.setU32(i * 4, 60);
    }
    tx = net.txSubmitAndPoll(0, tx); // faultynet keeps 3, frees the NetIo with the other 2, dies
    assert.equal(tx.restarts, 1);
    const back = kernel.kit.allocDeque(0, POOL) as unknown as Deque;
    takeAllBack({ kernel, net }, back, [tx], 5);
    const s = statsOf(kernel, net);
    assert.equal(s.buffersReplaced, 2, 'the two freed with the NetIo');
    s.drop();
    for (let b = back.pop(); b; b = back.pop()) {
      assert.equal(b.byteLength, 128, 'every buffer handed back is as large as those the caller gave');
      b.drop();
    }
    back.drop();
  }));

test('NIC shadow: a driver that dies again on every re-post: after its retries the shadow gives up — it panics (the caller sees an RpcError), and with it goes its record, nothing of it left in the heap', () =>
  withFaultyNet('relapser', async (kernel, net, pool) => {
    let rx = hostIo(kernel, 8);
    (rx.pkts as Deque).moveFrom(pool, 4);
    rx = net.rxSubmitAndPoll(0, rx);
    assert.equal(rx.held, 4);
    kernel.injectFault('faultynet', 'now');
    assert.throws(() => net.rxSubmitAndPoll(0, rx), /panic/);
    const shadow = kernel.get('nic_shadow')!;
    assert.equal(shadow.live, false, 'the shadow panicked');
    await turn();
    assert.equal(kernel.heap.usage(shadow.id).bytes, 0, 'the shadow\'s memory, its record with it, is reclaimed');
  }));
