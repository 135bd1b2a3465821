/**
 * NetApp.seed on loopback: the seed keeps the buffers its frames need. Before it sends, it posts
 * RX buffers (so looped-back frames find descriptors), but never so many that the pool is left
 * with fewer than the n frames to send: a pool that is not the seed plus a whole number of
 * batches, or smaller than the RX ring, would otherwise go entirely into the ring, and the seed
 * sent nothing (after spinning its full second). Frame sizes the app cannot build or the driver
 * would refuse are refused with NET_EINVAL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootNet } from '../../src/host/net.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { artifactPath } from '../../src/kernel/paths.js';
import { NET_EINVAL, type NetApp, type NetAppStats } from '../../src/interfaces/index.js';
import type { RRef } from '../../src/runtime/types.js';
import { runUntil } from './helpers.js';

async function withLoopApp(pool: number, fn: (app: NetApp, stats: () => NetAppStats) => void): Promise<void> {
  const kernel = new Kernel({ physBytes: 64 << 20, log: () => {} });
  const boot = await bootNet({ kernel, backend: { kind: 'loopback' }, shadow: false });
  try {
    kernel.load(artifactPath('l2fwd'), { imports: [boot.netName], config: { pool } });
    const app = kernel.bind<NetApp>('l2fwd');
    const stats = (): NetAppStats => {
      const st = app.stats(kernel.kit.allocStruct(0, 'NetAppStats') as unknown as RRef<NetAppStats>);
      const o = { ...st } as NetAppStats;
      for (const k of ['rxFrames', 'txFrames', 'poolNow', 'poolSize'] as const) o[k] = st[k];
      st.drop();
      return o;
    };
    fn(app, stats);
    assert.equal(app.shutdown(), pool, 'the pool kept its size');
  } finally {
    await boot.stop();
    kernel.shutdown();
  }
}

for (const pool of [256, 1001]) test(`seed on loopback with a pool of ${pool}: all n frames are sent and loop`, { timeout: 60_000 }, async () => {
  await withLoopApp(pool, (app, stats) => {
    const n = 8;
    assert.equal(app.seed(n, 60), n, 'every seed frame sent');
    const run = runUntil(app, 'fwd', (f) => f > 10 * n);
    assert.ok(run.frames > 10 * n, `the loop runs: ${run.frames} frames`);
  });
});

test('seed refuses a frame size it cannot build or the driver would refuse (NET_EINVAL), and a bad count', { timeout: 60_000 }, async () => {
  await withLoopApp(256, (app) => {
    for (const size of [0, 10, 37, 2049, 4096, 60.5, Number.NaN]) assert.equal(app.seed(4, size), NET_EINVAL, `size ${size}`);
    for (const n of [-1, 1.5, Number.NaN]) assert.equal(app.seed(n, 60), NET_EINVAL, `n ${n}`);
    assert.equal(app.seed(4, 60), 4, 'a good seed still works');
  });
});
