/**
 * The NIC driver core's posting of TX runs (NicCore.postFrom over FrameQueue.moveFromSized): a run
 * of frames must hold its longest frame, so a buffer too small for the run's longest frame but
 * not for its own is still posted (as a run of its own), in order, and only a frame longer than
 * its own buffer (or of a bad length) is refused: rotated behind the others, posting stopped.
 * On loopback every posted frame comes back byte-exact and in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyStats, type NicCore } from '../../src/domains/nic/core.js';
import { hostNicCore } from '../../src/host/net.js';
import { FrameDeque } from '../../src/domains/nic/deque.js';
import type { DmaBytes } from '../../src/runtime/types.js';
import { withNic, udpFrame, until, type Nic } from '../devices/nic-harness.js';

const MAC = [2, 0, 0, 0, 0, 1];
const frameFor = (len: number): Uint8Array => udpFrame(len, 0x0a000000 + len, 0x0a010001, 1000 + len, 7, len, MAC);

function core(nic: Nic): NicCore {
  return hostNicCore(nic.bar0, nic.heap.alloc, { queues: 1, rxRingSize: 64, txRingSize: 64 });
}

/** A TX buffer of `size` bytes holding the test frame of `len` bytes. */
function txBuf(nic: Nic, size: number, len: number): DmaBytes {
  const b = nic.heap.alloc(size, 64);
  b.write(0, frameFor(Math.min(len, size)));
  return b;
}

/** Receives `n` frames on loopback; returns their lengths in order, each checked byte-exact. */
async function receive(drv: NicCore, rxFree: FrameDeque, n: number): Promise<number[]> {
  const filled = new FrameDeque(64);
  const lens: number[] = [];
  await until(() => {
    drv.rxSubmitAndPoll(0, rxFree, filled);
    while (filled.length > 0) {
      const len = filled.frontLen();
      const b = filled.pop()!;
      const got = new Uint8Array(len);
      b.read(0, got);
      assert.deepEqual(got, frameFor(len), `frame of ${len} bytes byte-exact`);
      lens.push(len);
      rxFree.push(b, 0);
    }
    return lens.length >= n;
  }, `${n} frames back`);
  return lens;
}

test('TX: a buffer too small for its run\'s longest frame but not for its own is posted in order; a frame longer than its buffer is refused', async () => {
  await withNic({ kind: 'loopback' }, async (nic) => {
    const drv = core(nic);
    drv.init();
    const rxFree = new FrameDeque(64);
    for (let i = 0; i < 60; i++) rxFree.push(nic.heap.alloc(2048, 64), 0);
    drv.rxSubmitAndPoll(0, rxFree, new FrameDeque(64));
    const frames = new FrameDeque(8);
    const done = new FrameDeque(64);
    // 1500 in 2048, 100 in 128 (too small for 1500, not for 100), 1400 in 2048, 90 in 128.
    frames.push(txBuf(nic, 2048, 1500), 1500);
    frames.push(txBuf(nic, 128, 100), 100);
    frames.push(txBuf(nic, 2048, 1400), 1400);
    frames.push(txBuf(nic, 128, 90), 90);
    assert.equal(drv.txSubmitAndPoll(0, frames, done), 4, 'every frame fits its own buffer: all posted');
    assert.equal(frames.length, 0);
    assert.deepEqual(await receive(drv, rxFree, 4), [1500, 100, 1400, 90], 'in order');
    // 1500 in 2048 posted; 200 in a 128-byte buffer refused and rotated behind 60 in 2048.
    const tooLong = txBuf(nic, 128, 200);
    const after = txBuf(nic, 2048, 60);
    frames.push(txBuf(nic, 2048, 1500), 1500);
    frames.push(tooLong, 200);
    frames.push(after, 60);
    assert.equal(drv.txSubmitAndPoll(0, frames, done), 1, 'posting stops at the refused frame');
    assert.equal(frames.length, 2);
    assert.equal(frames.frontLen(), 60);
    assert.equal(frames.pop(), after);
    assert.equal(frames.frontLen(), 200);
    assert.equal(frames.pop(), tooLong, 'the refused frame went behind the others, its length kept');
    assert.equal(drv.readStats(emptyStats()).txRefused, 1);
    assert.deepEqual(await receive(drv, rxFree, 1), [1500]);
    // A bad length (0) after good frames: the good ones go, the bad one is refused.
    frames.push(txBuf(nic, 2048, 64), 64);
    frames.push(txBuf(nic, 2048, 64), 0);
    assert.equal(drv.txSubmitAndPoll(0, frames, done), 1);
    assert.equal(frames.frontLen(), 0);
    assert.equal(drv.readStats(emptyStats()).txRefused, 2);
    assert.deepEqual(await receive(drv, rxFree, 1), [64]);
  });
});
