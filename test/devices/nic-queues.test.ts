/**
 * The NIC driver's two FrameQueue kinds agree: DequeQueue (the driver domain's, over RRefDeques
 * and a NetIo-style lengths array, moving buffers in bulk with no handle per buffer) and
 * FrameDeque (the host's, over buffer references). A fast-check property runs random
 * moveFrom / rotate / setLenAt / extents sequences on both, plus DequeQueue's bind/finish at call
 * boundaries, and compares buffers (by address), lengths and the lengths written back (front at
 * index 0, as src/interfaces/net.ts requires). Ownership accounting stays exact throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ExchangeHeap } from '../../src/kernel/heap.js';
import { createHandleKit } from '../../src/kernel/rref.js';
import { FrameDeque } from '../../src/domains/nic/deque.js';
import { dequeQueue, type DequeQueue } from '../../src/domains/nic/io.js';
import type { DmaBytes, RRefArray, RRefDeque } from '../../src/runtime/types.js';

test('property: DequeQueue over RRefDeques behaves as FrameDeque (buffers, lengths, extents, lengths written back)', () => {
  // op 0: q[a].moveFrom(q[b], n); 1: q[a].rotate(); 2: q[a].setLenAt(i, len); 3: extents of q[a];
  // 4: a call boundary: finish then bind q[a] again (its lengths go through the lengths array).
  const opArb = fc.tuple(fc.nat(4), fc.nat(2), fc.nat(2), fc.nat(9), fc.nat(2000));
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 3, maxLength: 3 }), fc.array(opArb, { maxLength: 80 }), (caps, ops) => {
      const heap = new ExchangeHeap({ physBytes: 4 << 20, maxSlots: 256 });
      const kit = createHandleKit(heap, () => {});
      const deques = caps.map((c) => kit.allocDeque(1, c) as unknown as RRefDeque<RRefArray>);
      const lens = caps.map((c) => kit.allocArray(1, 'u32', c) as unknown as RRefArray);
      const model = caps.map((c) => new FrameDeque(c));
      // Queue 0 starts full: buffers of distinct sizes, lengths 1000 + i (in its lengths array).
      for (let i = 0; i < caps[0]!; i++) {
        const b = kit.allocBytes(1, 64 + i * 8) as unknown as RRefArray;
        // The model holds what extents reports of a buffer (the pushed handle is revoked).
        model[0]!.push({ addr: b.addr, byteLength: b.byteLength } as DmaBytes, 1000 + i);
        deques[0]!.push(b);
        lens[0]!.setU32(i * 4, 1000 + i);
      }
      const real = deques.map((d, i) => {
        const q = dequeQueue();
        assert.equal(q.bind(d, lens[i]!), true);
        return q;
      });
      // Which buffer a DequeQueue element is: by address (a deque element has no handle).
      const extentsOf = (q: DequeQueue | FrameDeque): [number, number][] => {
        const v = new DataView(new ArrayBuffer(8 * 9));
        q.extents(q.length, v);
        return Array.from({ length: q.length }, (_, i) => [v.getUint32(i * 8, true), v.getUint32(i * 8 + 4, true)]);
      };
      const slots = heap.usage(1).slots;
      for (const [op, a, b, i, len] of ops) {
        const q = real[a]!;
        const m = model[a]!;
        if (op === 0 && a !== b) assert.equal(q.moveFrom(real[b]!, i), m.moveFrom(model[b]!, i));
        else if (op === 1 && m.length > 0) { q.rotate(); m.rotate(); }
        else if (op === 2 && i < m.length) { q.setLenAt(i, len); m.setLenAt(i, len); }
        else if (op === 3) assert.deepEqual(extentsOf(q), extentsOf(m));
        else if (op === 4) {
          q.finish();
          const d = deques[a]!;
          for (let k = 0; k < m.length; k++) assert.equal(lens[a]!.getU32(k * 4), m.lenAt(k), `length ${k} written back, front first`);
          assert.equal(q.bind(d, lens[a]!), true);
        }
        for (let k = 0; k < 3; k++) {
          assert.equal(real[k]!.length, model[k]!.length);
          assert.equal(deques[k]!.length, model[k]!.length, 'the deque holds what the view says');
          for (let e = 0; e < model[k]!.length; e++) assert.equal(real[k]!.lenAt(e), model[k]!.lenAt(e));
        }
        assert.equal(heap.usage(1).slots, slots, 'no buffer made or lost');
      }
      for (let k = 0; k < 3; k++) assert.deepEqual(extentsOf(real[k]!), extentsOf(model[k]!), `queue ${k}: the same buffers in the same order`);
    }),
    { numRuns: 150 },
  );
});

test('property: an input view (bindInput) gives away its front and rotates as FrameDeque does, never holds more than at bind, writes lengths back front first', () => {
  // op 0: move up to k from the input's front to an output view; 1: rotate the input; 2: move up
  // to k back (bounded by what the input held at bind).
  const opArb = fc.tuple(fc.nat(2), fc.nat(9));
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 9 }), fc.nat(3), fc.boolean(), fc.array(opArb, { maxLength: 30 }), (n, spare, withLens, ops) => {
      const heap = new ExchangeHeap({ physBytes: 4 << 20, maxSlots: 256 });
      const kit = createHandleKit(heap, () => {});
      const cap = Math.max(1, n + spare);
      const d = kit.allocDeque(1, cap) as unknown as RRefDeque<RRefArray>;
      const lens = kit.allocArray(1, 'u32', cap) as unknown as RRefArray;
      const out = kit.allocDeque(1, 9) as unknown as RRefDeque<RRefArray>;
      const outLens = kit.allocArray(1, 'u32', 9) as unknown as RRefArray;
      const model = new FrameDeque(cap);
      const modelOut = new FrameDeque(9);
      for (let i = 0; i < n; i++) {
        const b = kit.allocBytes(1, 64 + i * 8) as unknown as RRefArray;
        model.push({ addr: b.addr, byteLength: b.byteLength } as DmaBytes, 1000 + i);
        d.push(b);
        lens.setU32(i * 4, 1000 + i);
      }
      const input = dequeQueue();
      const output = dequeQueue();
      assert.equal(input.bindInput(d, withLens ? lens : null), true);
      assert.equal(output.bind(out, outLens), true);
      assert.equal(input.capacity, n, "an input view's capacity is its length");
      const slots = heap.usage(1).slots;
      for (const [op, k] of ops) {
        if (op === 0) assert.equal(output.moveFrom(input, k, withLens), modelOut.moveFrom(model, k, withLens));
        else if (op === 1 && model.length > 0) { input.rotate(); model.rotate(); }
        else if (op === 2) {
          const room = Math.min(k, modelOut.length, n - model.length);
          assert.equal(input.moveFrom(output, k, withLens), room, 'an input view takes back at most what it gave');
          model.moveFrom(modelOut, room, withLens);
        }
        assert.equal(input.length, model.length);
        assert.equal(d.length, model.length, 'the deque holds what the view says');
        if (withLens) for (let e = 0; e < model.length; e++) assert.equal(input.lenAt(e), model.lenAt(e));
      }
      const v = new DataView(new ArrayBuffer(8 * 9));
      const w = new DataView(new ArrayBuffer(8 * 9));
      input.extents(input.length, v);
      model.extents(model.length, w);
      assert.deepEqual(new Uint8Array(v.buffer, 0, 8 * model.length), new Uint8Array(w.buffer, 0, 8 * model.length), 'the same buffers in the same order');
      input.finish();
      output.finish();
      for (let e = 0; e < model.length; e++) {
        // Without a lengths array nothing is written back: the array keeps what it held.
        assert.equal(lens.getU32(e * 4), withLens ? model.lenAt(e) : 1000 + e, `length ${e}`);
      }
      assert.equal(heap.usage(1).slots, slots, 'no buffer made or lost');
    }),
    { numRuns: 150 },
  );
});
