/**
 * Raw writes into the memory where the kit keeps the RRefs a value holds (a struct's RRef fields,
 * a deque's header and ring): refused, as the holder's violation, in both tiers. Were they allowed
 * (they were, through every handle's byte accessors), a caller could move on a request whose
 * field names nothing valid, or a child of another type than its layout declares, and the callee
 * reading the field would be the one to panic: an rv6 program could kill the rv6 core with an
 * IoBuf whose data field it scribbled over. Values that hold no RRefs stay writable byte by byte.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isRpcError } from '../../src/kernel/errors.js';
import { FAULTY, TEST_ARTIFACTS, bootKernel, recorder } from './helpers.js';
import type { Domain } from '../../src/kernel/domain.js';

const SCRIBBLER = join(TEST_ARTIFACTS, 'scribbler.rldom');

for (const placement of ['thread', 'worker'] as const) {
  describe(`a domain (${placement}) writing raw bytes over the RRefs it holds`, () => {
    const { kernel } = bootKernel();
    after(() => kernel.shutdown());
    const victim = kernel.load(FAULTY, { name: 'victim', imports: ['dom_c', { object: recorder().object }] });
    let scribbler: Domain = kernel.load(SCRIBBLER, { imports: ['victim'], placement });

    /** Run one attempt in a live scribbler: its answer, or the fault that killed it. */
    async function attempt(name: string): Promise<string> {
      if (!scribbler.live) {
        await kernel.whenStopped(scribbler);
        scribbler = kernel.restart(scribbler.name);
      }
      try {
        return `answered: ${await kernel.bind(scribbler).attempt(name)}`;
      } catch (e) {
        assert.ok(isRpcError(e), `a non-RpcError ${String(e)}`);
        assert.equal(scribbler.state, 'dead');
        return `panicked: ${scribbler.lastFault?.message}`;
      }
    }

    test('a request whose RRef field it scribbled over never reaches the callee: the scribbler panics, the callee lives', async () => {
      assert.match(await attempt('field-garbage-to-callee'), /^panicked: .*raw write into TestReq/);
      assert.equal(victim.state, 'live', `the callee was made to fault: ${victim.lastFault?.message ?? ''}`);
    });

    test("a field cannot be made to name a child of another type than its layout's", async () => {
      assert.match(await attempt('field-wrong-type'), /^panicked: .*raw write into NetIo/);
    });

    test("a deque's header cannot be written raw", async () => {
      assert.match(await attempt('deque-header'), /^panicked: .*raw write into RRefDeque/);
    });

    test('byte arrays and structs without RRef fields are still written raw', async () => {
      assert.equal(await attempt('flat-values'), 'answered: 7 5 2');
    });
  });
}
