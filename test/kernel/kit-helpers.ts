/**
 * Shared setup of the kernel tests that drive an exchange heap and its handle kit directly,
 * without a kernel (heap, deque-batch, entrust): a heap with the IDL's layouts registered and
 * its violations recorded, and an assertion on the error code a refused operation throws.
 */
import assert from 'node:assert/strict';
import { ExchangeHeap, HeapError } from '../../src/kernel/heap.js';
import { createHandleKit, HandleError, type HandleKit } from '../../src/kernel/rref.js';
import { LAYOUTS } from '../../src/gen/idl.js';

export type Violation = [holder: number, code: string];

/** A heap (4 MiB, 256 slots unless told) and a kit over it with every IDL layout registered. */
export function heapAndKit(opts: { physBytes?: number; maxSlots?: number } = {}) {
  const heap = new ExchangeHeap({ physBytes: opts.physBytes ?? 4 << 20, maxSlots: opts.maxSlots ?? 256 });
  const violations: Violation[] = [];
  const kit = createHandleKit(heap, (holder, err) => void violations.push([holder, err.code]));
  for (const l of LAYOUTS) kit.registerLayout(l);
  return { heap, kit, violations };
}

/** Assert `fn` throws a HandleError/HeapError with `code` and a message matching `msg`. */
export function throwsCode(fn: () => unknown, code: string, msg?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HandleError || e instanceof HeapError, `expected a HandleError/HeapError, got ${String(e)}`);
    assert.equal((e as HandleError).code, code, (e as Error).message);
    if (msg) assert.match((e as Error).message, msg);
    return true;
  });
}

/**
 * Write u32 `v` at byte `off` of the value `h` names, as a device's DMA would (a driver can aim
 * its device at any memory it holds): how the tests corrupt a deque's header or ring, or a
 * struct's RRef field. A handle may not write there itself (ExchangeHeap.rawLen).
 */
export function dma(kit: HandleKit, h: object, off: number, v: number): void {
  kit.heap.dv.setUint32(kit.heap.off[kit.slotOf(h)]! + off, v, true);
}

/** A handle as `any`, to reach its generated accessors (fields, getU32...) in tests. */
export const any = (h: object): any => h;
