/**
 * RRefDeque.moveFromSized: moveFrom for a driver posting buffers. What it must keep: it moves
 * exactly what moveFrom would (FIFO order, bounded by n, the source's length and the free room,
 * ownership and accounting unchanged) except that it stops, without a violation, before the first
 * element that is not a scalar array of at least minBytes bytes; it reports every moved element's
 * address and size as `extents` would have; it refuses what moveFrom refuses (a corrupt entry is a
 * violation) and a DataView without room for n records or a bad minBytes, moving nothing then.
 * A fast-check property checks it against extents-then-moveFrom on random deques.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEQUE_HEADER } from '../../src/kernel/heap.js';
import type { HandleKit } from '../../src/kernel/rref.js';
import { any, dma, heapAndKit, throwsCode } from './kit-helpers.js';

/** A deque of holder 1 holding buffers of the given sizes (0: a struct, not a scalar array), buffer i's byte 0 = i. */
function dequeOf(kit: HandleKit, sizes: number[], cap = sizes.length): any {
  const dq = any(kit.allocDeque(1, Math.max(1, cap)));
  sizes.forEach((size, i) => {
    const v = size === 0 ? any(kit.allocStruct(1, 'NetLink')) : any(kit.allocBytes(1, size));
    if (size > 0) v.setU8(0, i);
    assert.equal(dq.push(v), true);
  });
  return dq;
}
const extentsOf = (dq: any, n: number): number[] => {
  const v = new DataView(new ArrayBuffer(Math.max(1, n) * 8));
  dq.extents(0, n, v, 0);
  return Array.from({ length: n * 2 }, (_, i) => v.getUint32(i * 4, true));
};

test('moveFromSized moves like moveFrom, stops before a too-small buffer or a non-array, and reports extents', () => {
  const { kit, heap, violations } = heapAndKit();
  const src = dequeOf(kit, [2048, 4096, 1024, 2048, 0, 2048]);
  const dst = any(kit.allocDeque(1, 8));
  const want = extentsOf(src, 6);
  const usage = heap.usage(1);
  const out = new DataView(new ArrayBuffer(8 * 8));
  assert.equal(dst.moveFromSized(src, 6, 2048, out, 8), 2, 'stops before the 1024-byte buffer');
  assert.deepEqual(Array.from({ length: 4 }, (_, i) => out.getUint32(8 + i * 4, true)), want.slice(0, 4));
  assert.equal(src.length, 4);
  assert.equal(dst.moveFromSized(src, 6, 2048, out, 0), 0, 'the front is too small: nothing moves');
  assert.equal(dst.moveFromSized(src, 1, 1024, out, 0), 1, 'a smaller minimum takes it');
  assert.deepEqual([out.getUint32(0, true), out.getUint32(4, true)], want.slice(4, 6));
  assert.equal(dst.moveFromSized(src, 6, 0, out, 0), 1, 'a struct never moves, whatever the minimum');
  assert.equal(src.length, 2);
  assert.deepEqual(violations, [], 'a stop is no violation');
  assert.deepEqual(heap.usage(1), usage, 'the owner keeps every element');
  const tags: number[] = [];
  for (let b = dst.pop(); b !== undefined; b = dst.pop()) tags.push(b.getU8(0));
  assert.deepEqual(tags, [0, 1, 2, 3], 'FIFO order');
  // Bounded by the free room and n.
  const full = any(kit.allocDeque(1, 1));
  const src2 = dequeOf(kit, [64, 64, 64]);
  assert.equal(full.moveFromSized(src2, 3, 64, out, 0), 1, 'bounded by the free room');
  assert.equal(dst.moveFromSized(src2, 1, 64, out, 0), 1, 'bounded by n');
});

test('moveFromSized refuses what moveFrom refuses, a short DataView and a bad minimum, moving nothing', () => {
  const { kit } = heapAndKit();
  const src = dequeOf(kit, [64, 64, 64]);
  const dst = any(kit.allocDeque(1, 4));
  const out = new DataView(new ArrayBuffer(3 * 8));
  throwsCode(() => dst.moveFromSized(src, 3, 64, new DataView(new ArrayBuffer(16)), 0), 'ERANGE', /moveFromSized/);
  throwsCode(() => dst.moveFromSized(src, 3, 64, out, 8), 'ERANGE', /moveFromSized/);
  throwsCode(() => dst.moveFromSized(src, 3, 64, {} as DataView, 0), 'EINVAL', /expected a DataView/);
  throwsCode(() => dst.moveFromSized(src, 3, Number.NaN, out, 0), 'EINVAL', /minBytes/);
  throwsCode(() => dst.moveFromSized(src, 1.5, 64, out, 0), 'EINVAL', /count 1.5/);
  throwsCode(() => dst.moveFromSized(dst, 1, 64, out, 0), 'EINVAL', /same deque/);
  assert.deepEqual([src.length, dst.length], [3, 0]);
  // A corrupt entry: the holder's device lists the first element twice.
  dma(kit, src, DEQUE_HEADER + 4, src.getU32(DEQUE_HEADER));
  throwsCode(() => dst.moveFromSized(src, 3, 64, out, 0), 'EINVAL', /corrupt element entry/);
  assert.deepEqual([src.length, dst.length], [2, 1], 'the element before the bad entry moved, nothing after it');
});

test('property: moveFromSized = extents, then moveFrom of the prefix of scalar arrays of at least minBytes', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom(0, 64, 128, 256, 1024), { maxLength: 12 }),
      fc.integer({ min: 0, max: 12 }),
      fc.integer({ min: 1, max: 12 }),
      fc.constantFrom(0, 64, 100, 256, 2048),
      fc.integer({ min: 0, max: 11 }),
      (sizes, n, room, minBytes, rotate) => {
        const { kit, heap } = heapAndKit();
        const src = any(kit.allocDeque(1, 12));
        for (let r = 0; r < rotate; r++) {
          src.push(kit.allocBytes(1, 8));
          src.pop().drop();
        }
        sizes.forEach((size) => src.push(size === 0 ? kit.allocStruct(1, 'NetLink') : kit.allocBytes(1, size)));
        const dst = any(kit.allocDeque(1, room));
        const before = extentsOf(src, sizes.length);
        let expect = 0;
        const limit = Math.min(n, room, sizes.length);
        while (expect < limit && sizes[expect]! > 0 && sizes[expect]! >= minBytes) expect++;
        const out = new DataView(new ArrayBuffer(Math.max(1, n) * 8));
        const usage = heap.usage(1);
        assert.equal(dst.moveFromSized(src, n, minBytes, out, 0), expect);
        assert.deepEqual(Array.from({ length: expect * 2 }, (_, i) => out.getUint32(i * 4, true)), before.slice(0, expect * 2));
        assert.deepEqual(extentsOf(dst, expect), before.slice(0, expect * 2), 'dst holds the moved elements in order');
        assert.deepEqual(extentsOf(src, sizes.length - expect), before.slice(expect * 2), 'src keeps the rest in order');
        assert.deepEqual(heap.usage(1), usage);
      },
    ),
    { numRuns: 200 },
  );
});
