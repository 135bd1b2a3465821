/**
 * Raw throughput harness for the NIC model: a minimal host-side "driver" that writes descriptors
 * directly (no driver core, no DmaBytes) and recycles RX buffers in batches of 32, measuring the
 * frames per second the model sustains across the worker boundary.
 *
 *   node dist/src/devices/nic/bench.js [seconds]
 *
 * Cases: pktgen RX (unpaced, 60-byte frames), pktgen TX sink, loopback TX->RX.
 */
import { ringWake } from '../bus.js';
import { startNic, type NicBackendConfig } from './index.js';
import * as R from './regs.js';

const RING = 512;
const BATCH = 32;

interface Result { name: string; frames: number; seconds: number }

async function run(name: string, backend: NicBackendConfig, seconds: number, rx: boolean, tx: boolean): Promise<Result> {
  const phys = new SharedArrayBuffer(8 << 20);
  const p32 = new Uint32Array(phys);
  const dev = startNic({ phys, backend, queues: 1 });
  await dev.ready;
  const b = dev.bar0;
  const rxr = 4096;
  const txr = rxr + RING * 16;
  const bufs = txr + RING * 16;
  for (let i = 0; i < RING; i++) { p32[(rxr + i * 16) >> 2] = bufs + i * 2048; p32[(txr + i * 16) >> 2] = bufs + (RING + i) * 2048; }
  if (backend.kind === 'loopback') {
    const u8 = new Uint8Array(phys);
    for (let i = 0; i < RING; i++) u8.set([2, 0, 0, 0, 0, 1], bufs + (RING + i) * 2048);
  }
  Atomics.store(b, R.RDBAL(0), rxr); Atomics.store(b, R.RDLEN(0), RING * 16);
  Atomics.store(b, R.SRRCTL(0), 2 | (1 << 25)); Atomics.store(b, R.RDT(0), rx ? RING - 1 : 0);
  Atomics.store(b, R.RXDCTL(0), R.XDCTL_ENABLE); Atomics.store(b, R.RXCTRL, 1); Atomics.store(b, R.FCTRL, R.FCTRL_BAM);
  Atomics.store(b, R.TDBAL(0), txr); Atomics.store(b, R.TDLEN(0), RING * 16);
  Atomics.store(b, R.TXDCTL(0), R.XDCTL_ENABLE); Atomics.store(b, R.DMATXCTL, 1);
  ringWake(b);
  let rxClean = 0;
  let rdt = RING - 1;
  let tdt = 0;
  let txClean = 0;
  let frames = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    for (let k = 0; k < 64; k++) {
      if (tx) {
        // Reclaim a batch when its last descriptor is done, then post a batch.
        const last = (txClean + BATCH - 1) % RING;
        if ((tdt - txClean + RING) % RING >= BATCH && (Atomics.load(p32, ((txr + last * 16) >> 2) + 3) & 1)) {
          if (!rx) frames += BATCH;
          txClean = (txClean + BATCH) % RING;
        }
        if ((tdt - txClean + RING) % RING < RING - BATCH) {
          for (let i = 0; i < BATCH; i++) {
            const d = (txr + tdt * 16) >> 2;
            p32[d] = bufs + (RING + tdt) * 2048;
            p32[d + 2] = 60 | (3 << 20) | R.TXD_CMD_EOP | R.TXD_CMD_RS | R.TXD_CMD_DEXT;
            p32[d + 3] = 60 << 14;
            tdt = (tdt + 1) % RING;
          }
          Atomics.store(b, R.TDT(0), tdt);
          ringWake(b);
        }
      }
      if (rx) {
        let n = 0;
        while (n < BATCH && (Atomics.load(p32, ((rxr + rxClean * 16) >> 2) + 2) & R.RXD_STAT_DD)) {
          const d = (rxr + rdt * 16) >> 2;
          p32[d] = bufs + rdt * 2048; p32[d + 1] = 0; p32[d + 2] = 0; p32[d + 3] = 0;
          rdt = (rdt + 1) % RING;
          rxClean = (rxClean + 1) % RING;
          n++;
        }
        if (n > 0) {
          frames += n;
          Atomics.store(b, R.RDT(0), rdt);
          ringWake(b);
        }
      }
    }
  }
  const secs = (performance.now() - t0) / 1000;
  await dev.stop();
  return { name, frames, seconds: secs };
}

const secs = Number(process.argv[2] ?? 2);
const results = [
  await run('pktgen rx (60 B, unpaced)', { kind: 'pktgen', pktgen: { frameSize: 60, flows: 65536 } }, secs, true, false),
  await run('pktgen tx sink (60 B)', { kind: 'pktgen' }, secs, false, true),
  await run('loopback tx->rx (60 B)', { kind: 'loopback' }, secs, true, true),
];
for (const r of results) console.log(`${r.name.padEnd(28)} ${(r.frames / r.seconds / 1e6).toFixed(2)} Mframes/s (${r.frames} in ${r.seconds.toFixed(2)} s)`);
