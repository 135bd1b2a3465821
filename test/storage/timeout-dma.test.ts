/**
 * DMA safety of a command that times out: the driver gives up on a command the controller is
 * still working on (a controller slower than the driver's timeout). Until the controller is
 * stopped it may still move that command's data, so the driver must not hand its request (and
 * buffer) back before then: no DMA may land in a buffer after its caller got it back. The driver
 * treats a timeout as fatal (it panics), so the kernel detaches the device before the buffers are
 * reclaimed or, behind the shadow, recalled and reissued.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootStorage } from '../../src/host/storage.js';
import { isRpcError } from '../../src/kernel/errors.js';
import { KERNEL_OWNER } from '../../src/kernel/heap.js';
import type { BlkReq } from '../../src/interfaces/index.js';
import type { RRef, RRefDeque } from '../../src/runtime/types.js';
import { req } from './helpers.js';

const BS = 512;
/**
 * Every command takes this long in the controller, ten times the driver's timeout: a driver that
 * polls again only after the controller has answered sees the answer and succeeds, and at three
 * times (90 ms) a loaded machine's stalls let the shadow's reissued command do so now and then.
 */
const DELAY_MS = 300;
const TIMEOUT_MS = 30;
const FILL = 0x11;

for (const shadow of [false, true]) {
  test(`a command that times out: no DMA lands in its buffer once the caller has it back${shadow ? ' (behind the shadow)' : ''}`, { timeout: 60_000 }, async () => {
    const s = await bootStorage({ ramBytes: 1 << 20, shadow, commandDelayMs: DELAY_MS, driverConfig: { spinMs: 0, timeoutMs: TIMEOUT_MS } });
    try {
      const k = s.kernel;
      // Block 0 of the RAM disk is zeros: a read landing late would clear the caller's fill.
      let dq = k.kit.allocDeque(KERNEL_OWNER, 1) as unknown as RRefDeque<RRef<BlkReq>>;
      dq.push(req(k, 0, 0, 8, 8 * BS));
      let back: RRef<BlkReq> | undefined;
      try {
        dq = await s.bdev.submitAndPoll(dq);
        back = dq.pop();
      } catch (e) {
        // Without the shadow the driver's death reaches the caller; the kernel reclaimed the
        // request, after stopping the device.
        assert.ok(!shadow, `only without the shadow may the call fail (${String(e)})`);
        assert.ok(isRpcError(e), String(e));
        return;
      }
      assert.ok(back !== undefined, 'the request came back');
      assert.notEqual(back.status, 0, 'a controller that never answers in time: the read fails');
      const d = back.data!;
      d.fill(FILL);
      await sleep(3 * DELAY_MS);
      for (let i = 0; i < d.byteLength; i += BS) assert.equal(d.getU8(i), FILL, `byte ${i} of a buffer the caller owns changed under it`);
    } finally {
      await s.stop();
    }
  });
}
