/**
 * Probe: how soon the NIC model answers a doorbell that comes after a lull. NicCore runs in the
 * host against the NIC model on the loopback backend; `rounds` times it sleeps `gapMs` (the
 * device idles: it busy-polls for 0.5 ms, then naps, and parks after 50 ms: see
 * src/devices/nic/worker.ts), sends one 60-byte frame and polls RX until it is back; prints the
 * median, 90th percentile and largest round trip in ms. Used for the device loop's sleep design
 * (worker.ts) in bench/RESULTS.md.
 *
 *   node dist/src/bench/probes/lull-latency.js [gapMs=2] [rounds=150]
 */
import { FrameDeque } from '../../domains/nic/deque.js';
import { hostNic } from '../net.js';
import { startWithV8Options } from '../../host/v8-options.js';

await startWithV8Options(); // V8's options as `redleaf` runs with them (host/v8-options.ts)

const gapMs = Number(process.argv[2] ?? 2);
const rounds = Number(process.argv[3] ?? 150);
const WARM_UP = 10;
const { core, pool: buffers, stop } = await hostNic({ kind: 'loopback' });
try {
  const pool = buffers(128, 256);
  const free = new FrameDeque(32);
  const filled = new FrameDeque(32);
  const tx = new FrameDeque(32);
  const done = new FrameDeque(32);
  const rtt: number[] = [];
  /** Keep RX buffers posted: a frame the device loops back with none is dropped (MPC). */
  const poll = (): void => {
    while (free.length < 32 && pool.length > 0) free.push(pool.pop()!, 0);
    core.rxSubmitAndPoll(0, free, filled);
  };
  poll();
  for (let i = 0; i < rounds + WARM_UP; i++) {
    await new Promise((r) => setTimeout(r, gapMs));
    tx.push(pool.pop()!, 60);
    const t0 = performance.now();
    core.txSubmitAndPoll(0, tx, done);
    while (filled.length === 0) {
      if (performance.now() - t0 > 1000) throw new Error('lull-latency: the frame did not come back within 1 s');
      poll();
    }
    if (i >= WARM_UP) rtt.push(performance.now() - t0);
    while (filled.length > 0) pool.push(filled.pop()!, 0);
    core.txSubmitAndPoll(0, tx, done); // reclaims the sent buffer
    while (done.length > 0) pool.push(done.pop()!, 0);
  }
  rtt.sort((a, b) => a - b);
  const at = (q: number): string => rtt[Math.floor(q * (rtt.length - 1))]!.toFixed(3);
  console.log(`gap ${gapMs} ms: round trip median ${at(0.5)} ms, p90 ${at(0.9)}, max ${at(1)} (${rtt.length} rounds)`);
} finally {
  await stop();
}
