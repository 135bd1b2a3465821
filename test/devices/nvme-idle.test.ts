/**
 * The controller's idle behaviour: it polls WAKE only briefly after work and then parks on it (an
 * idle device sleeps instead of spinning), and a parked controller still serves the next doorbell
 * at once, including a stream of batches with idle gaps of every length in between.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { PARKED_WORD } from '../../src/devices/bus.js';
import { createPair, enableAdmin, startRig, until, type RawQueue, type Rig } from './nvme-harness.js';

const READ = 0x02;

/** Run `body` on a started RAM controller with I/O queue pair 1 (depth 64) and a 4 KiB buffer at `bufAddr`; stops the rig after. */
async function withIoQueue(body: (io: RawQueue, bufAddr: number, rig: Rig) => Promise<void>): Promise<void> {
  const rig = await startRig();
  try {
    const admin = await enableAdmin(rig);
    const io = await createPair(admin, 1, 64);
    await body(io, rig.heap.alloc(4096).addr, rig);
  } finally {
    await rig.stop();
  }
}

test('an idle controller parks on WAKE within milliseconds of its last command, and wakes for the next', () =>
  withIoQueue(async (io, bufAddr, rig) => {
    const parked = (): boolean => Atomics.load(rig.dev.bar0, PARKED_WORD) === 1;
    for (let round = 0; round < 3; round++) {
      const c = await io.run({ opc: READ, nsid: 1, prp1: bufAddr, cdw10: round, cdw12: 0 });
      assert.equal(c.sc, 0, `read ${round} succeeds`);
      const t0 = performance.now();
      await until(parked, 'the controller to park', 1000);
      assert.ok(performance.now() - t0 < 200, `parked ${(performance.now() - t0).toFixed(1)} ms after its last command`);
    }
  }));

test('batches separated by idle gaps from none to longer than any polling are all served', () =>
  withIoQueue(async (io, bufAddr) => {
    for (const gapMs of [0, 0, 0, 1, 0, 5, 0, 0, 20, 0, 2, 0]) {
      const cids: number[] = [];
      for (let i = 0; i < 16; i++) cids.push(io.put({ opc: READ, nsid: 1, prp1: bufAddr, cdw10: i, cdw12: 0 }));
      io.ring();
      const got = await io.reap(16, 2000);
      assert.deepEqual(got.map((c) => c.cid), cids, `all 16 commands answered in order after a ${gapMs} ms gap`);
      assert.ok(got.every((c) => c.sc === 0));
      if (gapMs > 0) await sleep(gapMs);
    }
  }));
