/**
 * An RRef moved or lent into an async call out of a worker domain is taken at the call, as
 * in-thread: the caller's handle is revoked (moved) or cannot write (lent) from the moment the
 * call is made, not from whenever the kernel thread gets to the call. Before, the worker posted
 * the call and went on with its handles intact until the kernel drained the ring: it could read
 * a buffer it had moved away, and change one it had lent read-only, under its borrower.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isRpcError } from '../../src/kernel/errors.js';
import { TEST_ARTIFACTS, bootKernel } from './helpers.js';

const WPROBE = join(TEST_ARTIFACTS, 'wprobe.rldom');
const WLENDER = join(TEST_ARTIFACTS, 'wlender.rldom');

/**
 * Keep the kernel thread busy for `ms`, so that it takes a worker's call out only afterwards: the
 * worker then meets the kernel's lateness every time (before the fix it went on with its handles
 * intact meanwhile), not only when the kernel's poll happened to come late.
 */
function holdKernelThread(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

for (const placement of ['thread', 'worker'] as const) {
  describe(`a caller (${placement}) using an RRef it moved or lent into an async call`, () => {
    const { kernel } = bootKernel();
    after(() => kernel.shutdown());
    kernel.load(WPROBE, { name: 'wprobe', placement: 'worker' });

    /** The attempt's answer, or the fault that killed the caller (loaded afresh for each). */
    async function attempt(name: string): Promise<string> {
      const d = kernel.load(WLENDER, { name: `wlender_${name}`, imports: ['wprobe'], placement });
      try {
        const answer = kernel.bind(d).attemptAsync(name);
        holdKernelThread(30);
        return `answered: ${await answer}`;
      } catch (e) {
        assert.ok(isRpcError(e), `a non-RpcError ${String(e)}`);
        assert.equal(d.state, 'dead');
        return `panicked: ${d.lastFault?.message}`;
      } finally {
        if (d.live) kernel.terminate(d);
        await kernel.whenStopped(d);
        // The call a panicked caller left behind is answered first: shut down before, wprobe's
        // death would reject it inside the dead caller, unhandled.
        assert.ok(await kernel.callsFromSettled(d, 5000), 'the dead caller\'s call was answered');
      }
    }

    test('a moved buffer is revoked at the call', async () => {
      assert.match(await attempt('read-after-async-move'), /^panicked: .*use of a revoked RRef/);
    });

    test('a lent buffer cannot be written until the answer', async () => {
      assert.match(await attempt('write-while-async-lent'), /^panicked: .*lent to a call in progress/);
    });
  });
}
