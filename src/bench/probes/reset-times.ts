/**
 * Probe: how long a NIC device reset takes under traffic. NicCore runs in the host (as `bench
 * net`'s driver path does) against the NIC model on pktgen, receives for 50 ms, resets (stop then
 * init: two device resets, the buffers taken back), and again, `n` times; prints each reset's ms.
 *
 *   node dist/src/bench/probes/reset-times.js [n=20]
 */
import { FrameDeque } from '../../domains/nic/deque.js';
import { hostNic } from '../net.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const n = Number(process.argv[2] ?? 20);
const { core, pool: buffers, stop } = await hostNic();
try {
  const pool = buffers(4096, 8192);
  const free = new FrameDeque(32);
  const filled = new FrameDeque(32);
  const reclaim = new FrameDeque(8192);
  const ms: string[] = [];
  for (let r = 0; r < n; r++) {
    const end = performance.now() + 50;
    while (performance.now() < end) {
      while (free.length < 32 && pool.length > 0) free.push(pool.pop()!, 0);
      core.rxSubmitAndPoll(0, free, filled);
      while (filled.length > 0) pool.push(filled.pop()!, 0);
    }
    const t0 = performance.now();
    core.reset(reclaim);
    ms.push((performance.now() - t0).toFixed(2));
    while (reclaim.length > 0) pool.push(reclaim.pop()!, 0);
  }
  console.log(`reset ms: ${ms.join(' ')}`);
} finally {
  await stop();
}
