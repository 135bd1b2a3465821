/**
 * NetApp.serve: an app domain forwarding in interrupt mode. On pktgen paced at a low rate, l2fwd
 * forwards every frame the generator sends while it sleeps between them (Net.waitRx: rxWaits
 * counts the sleeps), leaves the Net in poll mode afterwards, and polls again with run(). Through
 * the NIC shadow a driver crash in the middle of serve() is invisible to the app; without a shadow
 * it ends serve() with the RpcError counted instead of a hang or a panic. A bad batch is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootNet } from '../../src/host/net.js';
import { NET_EINVAL, type NetLink } from '../../src/interfaces/index.js';
import type { RRef } from '../../src/runtime/types.js';

const RATE = 2000; // frames per second: a quiet link, so the app sleeps between frames
const pktgen = { kind: 'pktgen' as const, pktgen: { frameSize: 60, flows: 64, rate: RATE } };

test('serve(): forwards a paced link while sleeping between frames, then poll mode again', { timeout: 120_000 }, async () => {
  const boot = await bootNet({ backend: pktgen, app: 'l2fwd' });
  try {
    const app = boot.app!;
    assert.equal(await app.serve(0, 100), -22, 'batch 0 refused');
    // A first serve() posts the RX buffers (frames before it found none: missed by the NIC).
    const first = await app.serve(32, 200);
    const before = boot.netStats();
    const n = await app.serve(32, 800);
    const s = boot.appStats()!;
    assert.ok(n > RATE * 0.2, `forwarded ${n} frames in 800 ms at ${RATE}/s`);
    assert.equal(s.rxFrames, first + n, 'every frame received was forwarded');
    assert.ok(s.rxWaits > 10, `slept for interrupts: rxWaits ${s.rxWaits}`);
    assert.equal(s.rpcErrors, 0);
    const after = boot.netStats();
    assert.equal(after.rxMissed - before.rxMissed, 0, 'no frame missed for want of a posted buffer');
    const l = boot.net.link(boot.kernel.kit.allocStruct(0, 'NetLink') as never) as RRef<NetLink>;
    assert.equal(l.interrupts, 0, 'serve() left the Net in poll mode');
    l.drop();
    assert.ok(app.run('fwd', 32, 300) > 0, 'polling forwards again');
  } finally {
    await boot.stop();
  }
});

test('serve() behind the NIC shadow: a driver crash in the middle is invisible to the app', { timeout: 120_000 }, async () => {
  const boot = await bootNet({ backend: pktgen, shadow: true, app: 'l2fwd' });
  try {
    const app = boot.app!;
    await app.serve(32, 200);
    // The fault hits the driver's next call: one the app makes when the next frame wakes it.
    boot.kernel.injectFault(boot.driverName!, { afterCalls: 1 });
    const n = await app.serve(32, 800);
    const s = boot.appStats()!;
    assert.equal(boot.netStats().restarts, 1, 'the driver was restarted');
    assert.equal(s.rpcErrors, 0, 'the app never saw the crash');
    assert.ok(n > RATE * 0.2, `forwarded ${n} frames across the restart`);
  } finally {
    await boot.stop();
  }
});

test('serve() behind the NIC shadow: a driver dying while the app waits for an interrupt, revived by another call meanwhile, is restarted once', { timeout: 120_000 }, async () => {
  const boot = await bootNet({ backend: { kind: 'loopback' }, shadow: true, app: 'l2fwd' });
  try {
    const app = boot.app!;
    const served = app.serve(32, 600); // an idle link: the app soon waits in Net.waitRx
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(boot.appStats()!.rxWaits >= 1, 'the app is waiting for an interrupt');
    boot.kernel.injectFault(boot.driverName!, 'now');
    assert.equal(boot.netStats().restarts, 1, 'the stats call met the death and revived the driver');
    await served;
    const s = boot.netStats();
    assert.equal(s.restarts, 1, 'the wait that met the same death did not restart the new instance again');
    assert.equal(boot.kernel.get(boot.driverName!)!.faults, 1);
    assert.equal(boot.appStats()!.rpcErrors, 0);
  } finally {
    await boot.stop();
  }
});

test('serve() refuses a NaN time (NET_EINVAL) at once instead of waiting for interrupts for ever', { timeout: 120_000 }, async () => {
  const boot = await bootNet({ backend: { kind: 'loopback' }, app: 'l2fwd' });
  try {
    const app = boot.app!;
    const t0 = performance.now();
    const r = await Promise.race([app.serve(32, Number.NaN), new Promise<string>((res) => setTimeout(() => res('still serving'), 2000))]);
    assert.equal(r, NET_EINVAL);
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(boot.appStats()!.rxWaits, 0, 'it never waited');
    assert.equal(await app.serve(32, 0), 0, 'no time: nothing forwarded, no error');
  } finally {
    await boot.stop();
  }
});

test('serve() with no shadow: the driver dying ends it, the RpcError counted', { timeout: 120_000 }, async () => {
  const boot = await bootNet({ backend: pktgen, app: 'l2fwd' });
  try {
    const app = boot.app!;
    boot.kernel.injectFault(boot.driverName!, { afterCalls: 3 });
    const t0 = performance.now();
    await app.serve(32, 5000);
    assert.ok(performance.now() - t0 < 4000, 'serve() returned at the failure, not at its end');
    assert.ok(boot.appStats()!.rpcErrors >= 1, 'the RpcError was counted');
  } finally {
    await boot.stop();
  }
});
