/**
 * pktgen backend: unpaced generation counted exactly (driver-side count = GPRC), valid UDP/IPv4
 * frames spread over the RSS queues, the TX sink counting frames and octets, paced generation
 * following the clock (missed frames counted in MPC, a stalled device's buffer overflow too), and
 * option validation (tap included).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pktgen, type PktgenOptions } from '../../src/devices/nic/backends.js';
import type { NicModel } from '../../src/devices/nic/model.js';
import * as R from '../../src/devices/nic/regs.js';
import { startNic, linePps } from '../../src/devices/nic/index.js';
import { emptyStats, type NicCore } from '../../src/domains/nic/core.js';
import { hostNicCore } from '../../src/host/net.js';
import { FrameDeque } from '../../src/domains/nic/deque.js';
import { withNic, until, handModel, rxBringUp, writeRegs, type Nic } from './nic-harness.js';
import { FakeHeap } from './nic-dma-fake.js';

function core(nic: Nic, queues: number, rxRingSize?: number): NicCore {
  const c = hostNicCore(nic.bar0, nic.heap.alloc, { queues, rxRingSize });
  c.init();
  return c;
}

function ipChecksumOk(f: Uint8Array): boolean {
  let s = 0;
  for (let i = 14; i < 34; i += 2) s += (f[i]! << 8) | f[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s === 0xffff;
}

test('pktgen unpaced: every received frame counted in GPRC, valid UDP/IPv4, spread over 4 queues', async () => {
  await withNic({ kind: 'pktgen', pktgen: { frameSize: 128, flows: 4096 } }, async (nic) => {
    const drv = core(nic, 4, 512);
    const free = new FrameDeque(4 * 700); // every queue's ring full, and more in hand
    for (let i = 0; i < 4 * 700; i++) free.push(nic.heap.alloc(2048, 64), 0);
    const filled = new FrameDeque(64);
    const perQ = [0, 0, 0, 0];
    const frame = new Uint8Array(128);
    const srcs = new Set<number>();
    let total = 0;
    const end = Date.now() + 10000;
    while (total < 200000 && Date.now() < end) {
      for (let q = 0; q < 4; q++) {
        drv.rxSubmitAndPoll(q, free, filled);
        while (filled.length > 0) {
          assert.equal(filled.frontLen(), 128);
          const b = filled.pop()!;
          if ((total & 1023) === 0) {
            b.read(0, frame);
            assert.ok(ipChecksumOk(frame), 'IPv4 header checksum');
            assert.equal(frame[23], 17);
            srcs.add(b.getU32(26));
          }
          perQ[q]!++;
          total++;
          free.push(b, 0);
        }
      }
    }
    assert.ok(total >= 200000, `received ${total}`);
    const s = drv.readStats(emptyStats());
    assert.ok(s.rxPackets >= total);
    for (const c of perQ) assert.ok(c > total / 8, `queues ${perQ}`);
    assert.ok(srcs.size > 10, 'many flows');
    assert.equal(s.rxMissed, 0, 'unpaced generation fills free descriptors only');
  });
});

test('pktgen sink counts transmitted frames and octets (GPTC/GOTC)', async () => {
  await withNic({ kind: 'pktgen', pktgen: { rate: 'unpaced' } }, async (nic) => {
    const drv = core(nic, 1);
    const bufs = new FrameDeque(256);
    for (let i = 0; i < 256; i++) bufs.push(nic.heap.alloc(2048, 64), 0);
    const frames = new FrameDeque(256);
    const done = new FrameDeque(256);
    let sent = 0;
    const N = 50000;
    while (sent < N || drv.txInflight(0) > 0) {
      while (sent < N && bufs.length > 0 && frames.length < 32) { frames.push(bufs.pop()!, 60 + (sent % 1455)); sent++; }
      drv.txSubmitAndPoll(0, frames, done);
      while (done.length > 0) bufs.push(done.pop()!, 0);
      if (frames.length > 0) await new Promise((r) => setImmediate(r));
    }
    let bytes = 0;
    for (let i = 0; i < N; i++) bytes += 60 + (i % 1455);
    await until(() => drv.readStats(emptyStats()).txPackets === N, 'GPTC');
    const s = drv.readStats(emptyStats());
    assert.equal(s.txBytes, bytes);
    assert.equal(bufs.length, 256, 'all TX buffers reclaimed');
  });
});

test('pktgen paced: arrivals follow the clock; with no RX descriptors they are all counted in MPC', async () => {
  const RATE = 200000;
  await withNic({ kind: 'pktgen', pktgen: { rate: RATE } }, async (nic) => {
    const drv = core(nic, 1);
    const t0 = performance.now();
    drv.readStats(emptyStats()); // clears MPC
    await new Promise((r) => setTimeout(r, 400));
    const s = drv.readStats(emptyStats());
    const expect = ((performance.now() - t0) / 1000) * RATE;
    assert.ok(s.rxMissed > expect * 0.5 && s.rxMissed < expect * 1.3, `missed ${s.rxMissed}, expected about ${expect}`);
    assert.equal(s.rxPackets, 0);
  });
});

/**
 * The model stepped by hand with a chosen clock: RX enabled on a ring with no free descriptor, so
 * every arrival is missed; `missed` reads and clears MPC.
 */
function handStepped(): { model: NicModel; mac: number[]; missed: () => number } {
  const mac = [2, 0, 0, 0, 0, 1];
  const { model, bar0 } = handModel(1, 1 << 20, mac);
  writeRegs(bar0, rxBringUp(0, 4096, 64, { fctrl: R.FCTRL_BAM | R.FCTRL_UPE }));
  return { model, mac, missed: () => Atomics.exchange(bar0, R.MPC, 0) };
}

test('pktgen paced: frames arrive from its first poll on, whatever the clock reads then (a worker slow to boot)', () => {
  const r = handStepped();
  const gen = new Pktgen({ rate: 100_000 }, r.mac);
  r.model.step(gen, 1470); // the first step, 1.47 s after the worker's clock began, RX already on
  assert.equal(r.missed(), 0);
  r.model.step(gen, 1480);
  assert.equal(r.missed(), 1000);
});

test('pktgen paced, device stalled: arrivals beyond its 100 ms buffer are counted in MPC, so MPC + received follows the clock exactly', () => {
  // A stall of 1 s at 100,000 frames/s is 10x the 100 ms buffer.
  const { model, mac, missed } = handStepped();
  const gen = new Pktgen({ rate: 100_000 }, mac);
  model.step(gen, 0);
  missed();
  model.step(gen, 10); // 10 ms: 1000 arrivals, within the buffer
  assert.equal(missed(), 1000);
  model.step(gen, 1010); // a 1 s stall: 100,000 arrivals, 90,000 beyond the buffer
  assert.equal(missed(), 100_000);
  model.step(gen, 1010.5);
  assert.equal(missed(), 50, 'and pacing carries on from there');
});

test('startNic validates its configuration (tap: see nic-tap.test.ts)', () => {
  const phys = new FakeHeap(1 << 16).phys;
  assert.throws(() => startNic({ phys, backend: { kind: 'pktgen', pktgen: { frameSize: 59 } } }), /frameSize/);
  assert.throws(() => startNic({ phys, backend: { kind: 'loopback' }, queues: 0 }), /queues/);
  assert.ok(Math.abs(linePps(60) - 14.88e6) < 0.01e6, 'minimum frames at 10 GbE line rate');
});

test('pktgen refuses a rate of 0 (it once ran unpaced) and one above 10 GbE line rate for its frame size (a step then generated for hours)', () => {
  // The constructor checks as startNic does (checkPktgenOptions), with no worker to stop.
  const start = (o: PktgenOptions): Pktgen => new Pktgen(o, [2, 0, 0, 0, 0, 1]);
  assert.throws(() => start({ rate: 0 }), /pktgen rate 0 invalid: frames per second above 0/);
  assert.throws(() => start({ rate: -1 }), /pktgen rate -1 invalid/);
  assert.throws(() => start({ rate: 1e15 }), /pktgen rate 1000000000000000 is above 10 GbE line rate for 60-byte frames \(14880952 frames per second\)/);
  assert.throws(() => start({ frameSize: 1514, rate: 1e6 }), /above 10 GbE line rate for 1514-byte frames \(812743 frames per second\)/);
  // Line rate itself, named or as a number, is fine.
  assert.equal(start({ rate: 'line' }).busy, true);
  assert.equal(start({ rate: Math.floor(linePps(60)) }).busy, true);
});
