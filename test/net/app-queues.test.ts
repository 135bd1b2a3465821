/**
 * A packet app on a NIC with several queue pairs: the NIC spreads flows over its RX queues (RSS)
 * and the app serves every queue (NetLink.queues), so nothing is missed for want of a posted
 * buffer on a queue it would not poll (an app serving only queue 0 would miss three frames in
 * four), and every frame received is forwarded — polling and in interrupt mode. (The seeded loop's exact recovery on four queues is in loopback-recovery.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootNet } from '../../src/host/net.js';
import { runUntil } from './helpers.js';

const QUEUES = 4;
/**
 * Frames per second, over 1,024 flows: every queue gets its share. Low, so that a starved app
 * misses little: a queue keeps 256 buffers posted (half the pool, shared out), which last ~200 ms
 * at this rate, where at 20,000 a run beside 16 busy processes missed 28-35% (an unserved queue
 * misses its quarter of the frames at any rate).
 */
const RATE = 5_000;

test(`l2fwd on ${QUEUES} RSS queues: every queue served, nothing missed, everything forwarded`, { timeout: 120_000 }, async () => {
  const boot = await bootNet({ backend: { kind: 'pktgen', pktgen: { frameSize: 60, flows: 1024, rate: RATE } }, queues: QUEUES, app: 'l2fwd' });
  try {
    const app = boot.app!;
    // Warm up: the app's first calls post the RX buffers (frames before them found none).
    runUntil(app, 'fwd', (n) => n > 1000);
    const before = boot.netStats();
    const polled = runUntil(app, 'fwd', (n) => n > RATE / 5);
    const served = await app.serve(32, 400);
    const after = boot.netStats();
    const s = boot.appStats()!;
    const received = after.rxPackets - before.rxPackets;
    assert.ok(polled.frames > RATE / 5 && served > 0, `forwarded ${polled.frames} polling, ${served} in interrupt mode`);
    // A frame RSS put on a queue the app did not serve would find no buffer there: missed (three
    // in four with only queue 0 served, one in four with one queue left out). Some are missed
    // while a loaded machine starves the app: 5% was exceeded (687 frames) at a load average of 8
    // on the 2 cores, so the bound sits between that and one unserved queue's 25%.
    const missed = after.rxMissed - before.rxMissed;
    assert.ok(missed < 0.15 * received, `${missed} frames missed of ${received} received over ${QUEUES} queues`);
    // What came in went out, but for the frames still on their way when the counters were read:
    // each is in a buffer the Net holds (poolSize - poolNow: posted RX buffers a frame has filled
    // since the app's last poll, TX frames the device has not sent yet) or in a TX NetIo of the
    // app's (a batch per queue at most). A starved NIC model thread or app makes that many, not
    // a fixed few; an app that left a queue's frames unsent would fall short by thousands.
    const sent = after.txPackets - before.txPackets;
    const onTheirWay = s.poolSize! - s.poolNow! + 32 * QUEUES;
    assert.ok(sent >= received - onTheirWay, `${sent} frames sent of ${received} received, ${onTheirWay} on their way at most`);
    assert.equal(s.rpcErrors, 0);
  } finally {
    await boot.stop();
  }
});
