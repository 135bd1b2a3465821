/**
 * NetApp.run('tx') sends the app's template frame (writeFrame: a UDP/IPv4 frame of txFrameSize
 * bytes to the NIC's MAC) in every run, whatever the buffers carried before: after a fwd run the
 * buffers hold received frames, in the pool, in the TX NetIo and in flight on the TX ring, and a
 * tx run once sent those again. On loopback, what a tx run sends comes back: a host-side Net
 * between the app and the driver records every frame the app receives. And a tx run sends every
 * buffer the app holds, the free ones its RX NetIo had not posted included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootNet } from '../../src/host/net.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { artifactPath } from '../../src/kernel/paths.js';
import type { Net, NetApp } from '../../src/interfaces/index.js';
import type { RRefArray, RRefDeque } from '../../src/runtime/types.js';
import { between, runUntil } from './helpers.js';

const NIC_MAC = [2, 0, 0, 0, 0, 1];
const TX_SIZE = 60;
const SEED_SIZE = 200;
/** Bytes of each received frame recorded: the MACs, the ethertype and the IPv4 total length. */
const HDR = 18;

interface Seen { len: number; hdr: Uint8Array }

/**
 * The Net `inner()` with every frame collected by rxSubmitAndPoll recorded in `seen` (a trusted
 * test object). `inner` binds the driver for the app's domain on first use, so the NetIos the app
 * moves in move on to the driver as the app's.
 */
function watch(inner: () => Net, seen: Seen[]): Net {
  const hdrs = new DataView(new ArrayBuffer(1024 * HDR));
  return between(inner, {
    rxSubmitAndPoll(q, io) {
      const r = inner().rxSubmitAndPoll(q, io);
      const co = r.collect as RRefDeque<RRefArray<number>>;
      const n = r.count;
      const from = co.length - n;
      co.readEach(from, n, 0, HDR, hdrs, 0);
      for (let i = 0; i < n; i++) {
        const len = r.collectLens!.getU32((from + i) * 4);
        if (len > 0) seen.push({ len, hdr: new Uint8Array(hdrs.buffer.slice(i * HDR, (i + 1) * HDR)) });
      }
      return r;
    },
  });
}

test('after a fwd run on loopback, a tx run sends the template frame, not the frames fwd left in its buffers', { timeout: 120_000 }, async () => {
  const kernel = new Kernel({ physBytes: 64 << 20, log: () => {} });
  const boot = await bootNet({ kernel, backend: { kind: 'loopback' }, shadow: false, driver: { rxRing: 256, txRing: 256 } });
  try {
    const seen: Seen[] = [];
    let driver: Net | null = null;
    const asApp = (): Net => (driver ??= kernel.bind<Net>(boot.netName, kernel.get('l2fwd')!));
    kernel.load(artifactPath('l2fwd'), { imports: [{ object: watch(asApp, seen) }], config: { pool: 256, txFrameSize: TX_SIZE } });
    const app = kernel.bind<NetApp>('l2fwd');
    // A seeded loop of frames unlike the template (their IPv4 length says 200 bytes), forwarded
    // (MACs swapped) until it runs: the app's buffers now hold them.
    assert.equal(app.seed(16, SEED_SIZE), 16);
    const fwd = runUntil(app, 'fwd', (f) => f > 500);
    assert.ok(fwd.frames > 500, `the loop runs: ${fwd.frames} frames`);
    const sent = runUntil(app, 'tx', (f) => f > 100);
    assert.ok(sent.frames > 100, `the tx run sent: ${sent.frames} frames`);
    seen.length = 0;
    // What the tx run sent is in the RX ring now (with what was left of the loop, 200 bytes long).
    runUntil(app, 'rx', () => seen.filter((s) => s.len === TX_SIZE).length >= 100, 10_000);
    const txFrames = seen.filter((s) => s.len === TX_SIZE);
    assert.ok(txFrames.length >= 100, `frames of the tx run came back: ${txFrames.length} (of ${seen.length})`);
    const bad = txFrames.filter(({ hdr }) => hdr.subarray(0, 6).some((b, i) => b !== NIC_MAC[i]) || hdr[12] !== 0x08 || hdr[13] !== 0 || ((hdr[16]! << 8) | hdr[17]!) !== TX_SIZE - 14);
    assert.equal(bad.length, 0, `tx sent ${bad.length} of ${txFrames.length} frames that are not the template, e.g. ${bad[0]?.hdr.join(',')}`);
    assert.equal(app.shutdown(), 256, 'the pool kept its size');
  } finally {
    await boot.stop();
    kernel.shutdown();
  }
});

test('a tx run after an rx run sends the free buffers the RX NetIo still held', { timeout: 60_000 }, async () => {
  const kernel = new Kernel({ physBytes: 64 << 20, log: () => {} });
  const boot = await bootNet({ kernel, backend: { kind: 'loopback' }, shadow: false, driver: { rxRing: 256, txRing: 256 } });
  try {
    let driver: Net | null = null;
    const asApp = (): Net => (driver ??= kernel.bind<Net>(boot.netName, kernel.get('l2fwd')!));
    // A Net whose RX side takes no buffer: the app's free buffers stay in its RX NetIo, unposted.
    const postsNothing: Net = { ...watch(asApp, []), rxSubmitAndPoll: (_q, io) => io };
    kernel.load(artifactPath('l2fwd'), { imports: [{ object: postsNothing }], config: { pool: 16, txFrameSize: TX_SIZE } });
    const app = kernel.bind<NetApp>('l2fwd');
    assert.equal(app.run('rx', 32, 20), 0, 'nothing received');
    const sent = runUntil(app, 'tx', (f) => f > 100, 10_000);
    assert.ok(sent.frames > 100, `the tx run sent the pool's 16 buffers over and over: ${sent.frames} frames`);
    assert.equal(app.shutdown(), 16, 'the pool kept its size');
  } finally {
    await boot.stop();
    kernel.shutdown();
  }
});
