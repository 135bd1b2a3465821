/**
 * RRefDeque batch accessors (readEach, writeEach, extents): the bytes, addresses and sizes of many
 * elements in one checked call, with no handle per element. What they must keep: they reach only
 * the elements of a deque the caller may use (a revoked, moved, lent or foreign deque is refused;
 * a read-only deque may be read, not written), only inside each element (bounds per element),
 * only scalar-array elements, only entries the slot table confirms, and only a genuine DataView
 * of the caller with room for every record; they never change ownership or accounting. A
 * fast-check property runs random push/pop/moveFrom/readEach/writeEach sequences against a model
 * of every buffer's bytes.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEQUE_HEADER } from '../../src/kernel/heap.js';
import { HandleError, type HandleKit } from '../../src/kernel/rref.js';
import { any, dma, heapAndKit, throwsCode } from './kit-helpers.js';

const setup = (): ReturnType<typeof heapAndKit> => heapAndKit();

/** A deque of holder 1 with `n` buffers of `size` bytes, buffer i's byte j = tag(i, j). */
const tag = (i: number, j: number): number => (i * 31 + j * 7 + 1) & 255;
function filled(kit: HandleKit, n: number, size: number, cap = n, rotate = 0): any {
  const dq = any(kit.allocDeque(1, cap));
  // Rotate the ring first so the elements wrap around its end.
  for (let r = 0; r < rotate; r++) {
    dq.push(kit.allocBytes(1, 8));
    dq.pop().drop();
  }
  for (let i = 0; i < n; i++) {
    const b = any(kit.allocBytes(1, size));
    for (let j = 0; j < size; j++) b.setU8(j, tag(i, j));
    assert.equal(dq.push(b), true);
  }
  return dq;
}

describe('deque batch accessors', () => {
  test('readEach copies a byte range of every element, in FIFO order, across wrap-around, with a stride', () => {
    const { kit } = setup();
    const dq = filled(kit, 5, 40, 6, 4);
    const out = new DataView(new ArrayBuffer(3 * 16 + 4));
    dq.readEach(1, 3, 5, 10, out, 4, 16);
    for (let k = 0; k < 3; k++) for (let j = 0; j < 10; j++) assert.equal(out.getUint8(4 + k * 16 + j), tag(1 + k, 5 + j), `element ${1 + k} byte ${5 + j}`);
    // Default stride: packed records.
    const packed = new DataView(new ArrayBuffer(5 * 3));
    dq.readEach(0, 5, 37, 3, packed, 0);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 3; j++) assert.equal(packed.getUint8(i * 3 + j), tag(i, 37 + j));
    dq.readEach(0, 0, 0, 0, new DataView(new ArrayBuffer(0)), 0); // nothing to do is fine
  });

  test('writeEach writes a byte range of every element; the rest of each element is untouched', () => {
    const { kit } = setup();
    const dq = filled(kit, 4, 20, 4, 3);
    const src = new DataView(new ArrayBuffer(4 * 8));
    for (let k = 0; k < 32; k++) src.setUint8(k, 200 + k);
    dq.writeEach(1, 2, 3, 5, src, 8, 8);
    for (let i = 0; i < 4; i++) {
      const b = dq.pop();
      for (let j = 0; j < 20; j++) {
        const written = i >= 1 && i <= 2 && j >= 3 && j < 8;
        assert.equal(b.getU8(j), written ? 200 + 8 + (i - 1) * 8 + (j - 3) : tag(i, j), `element ${i} byte ${j}`);
      }
    }
  });

  test('extents gives every element\'s address and size, as its handle would', () => {
    const { kit } = setup();
    const dq = any(kit.allocDeque(1, 4));
    const sizes = [60, 2048, 1, 4096];
    for (const s of sizes) dq.push(kit.allocBytes(1, s));
    const out = new DataView(new ArrayBuffer(32));
    dq.extents(0, 4, out, 0);
    for (const s of sizes) {
      const b = dq.pop();
      const k = sizes.indexOf(s);
      assert.equal(out.getUint32(k * 8, true), b.addr);
      assert.equal(out.getUint32(k * 8 + 4, true), s);
    }
  });

  test('a read-only deque may be read but not written; revoked, moved and lent deques are refused', () => {
    const { kit, heap, violations } = setup();
    const dq = filled(kit, 2, 16);
    const v = new DataView(new ArrayBuffer(64));
    const s = kit.slotOf(dq);
    heap.beginBorrow(s);
    const ro = any(kit.mint(s, 2, true));
    ro.readEach(0, 2, 0, 16, v, 0);
    assert.equal(v.getUint8(17), tag(1, 1), 'a borrower reads');
    throwsCode(() => ro.writeEach(0, 1, 0, 4, v, 0), 'EREADONLY');
    throwsCode(() => dq.writeEach(0, 1, 0, 4, v, 0), 'EBORROWED', /lent/);
    kit.revoke(ro);
    throwsCode(() => ro.readEach(0, 1, 0, 4, v, 0), 'EREVOKED');
    heap.endBorrow(s);
    const moved = any(kit.moveTo(dq, 1, 3));
    for (const f of [() => dq.readEach(0, 1, 0, 4, v, 0), () => dq.writeEach(0, 1, 0, 4, v, 0), () => dq.extents(0, 1, v, 0)]) throwsCode(f, 'EREVOKED');
    moved.readEach(0, 2, 0, 4, v, 0);
    assert.equal(v.getUint8(4), tag(1, 0), 'the new holder reads through its fresh handle');
    assert.deepEqual(violations.map(([h]) => h), [2, 1, 2, 1, 1, 1], 'each violation is reported against the handle\'s holder');
  });

  test('elements and byte ranges outside the deque or an element are refused, and so are bad arguments', () => {
    const { kit } = setup();
    const dq = filled(kit, 3, 16, 4);
    const v = new DataView(new ArrayBuffer(256));
    throwsCode(() => dq.readEach(2, 2, 0, 4, v, 0), 'ERANGE', /elements 2\+2 outside its 3/);
    throwsCode(() => dq.readEach(-1, 1, 0, 4, v, 0), 'ERANGE');
    throwsCode(() => dq.writeEach(0, 1, 13, 4, v, 0), 'ERANGE', /bytes 13\+4 outside element/);
    // readEach's first pass (it loads each element's first byte before the copy) reads nothing
    // outside an element either: an offset past every allocation is refused as the copy refuses it.
    throwsCode(() => dq.readEach(0, 1, 16, 1, v, 0), 'ERANGE', /bytes 16\+1 outside element/);
    throwsCode(() => dq.readEach(0, 2, 2 ** 31, 4, v, 0), 'ERANGE', /outside element/);
    throwsCode(() => dq.readEach(0, 1, -1, 4, v, 0), 'EINVAL', /byte range/);
    throwsCode(() => dq.readEach(0, 1, 0.5, 4, v, 0), 'EINVAL', /byte range/);
    throwsCode(() => dq.extents(1.5, 1, v, 0), 'ERANGE');
    // The caller's DataView: genuine, and with room for every record.
    throwsCode(() => dq.readEach(0, 3, 0, 16, new DataView(new ArrayBuffer(47)), 0), 'ERANGE', /outside the 47-byte DataView/);
    throwsCode(() => dq.readEach(0, 2, 0, 4, v, 250, 4), 'ERANGE');
    throwsCode(() => dq.readEach(0, 2, 0, 4, v, 0, -4), 'EINVAL', /stride/);
    throwsCode(() => dq.readEach(0, 1, 0, 4, new Uint8Array(64), 0), 'EINVAL', /expected a DataView/);
    throwsCode(() => dq.readEach(0, 1, 0, 4, new Proxy(v, {}), 0), 'EINVAL', /expected a DataView/);
    throwsCode(() => dq.readEach(0, 1, 0, 4, Object.create(DataView.prototype), 0), 'EINVAL', /expected a DataView/);
    // Not a deque.
    throwsCode(() => any(kit.allocBytes(1, 64)).readEach(0, 1, 0, 4, v, 0), 'EINVAL', /no such operation/);
    assert.equal(dq.length, 3, 'nothing changed');
  });

  test('an own `setUint32` on the caller\'s DataView is never called: the kernel writes through its own view', () => {
    const { kit } = setup();
    const dq = filled(kit, 1, 8);
    const v = new DataView(new ArrayBuffer(8));
    let called = false;
    Object.defineProperty(v, 'setUint32', { value: () => { called = true; } });
    dq.readEach(0, 1, 0, 8, v, 0);
    assert.equal(called, false);
    assert.equal(v.getUint8(7), tag(0, 7));
  });

  test('a DataView whose buffer the caller detached after a first use is refused, nothing written', () => {
    const { kit } = setup();
    const dq = filled(kit, 2, 8);
    const buf = new ArrayBuffer(16);
    const v = new DataView(buf);
    dq.readEach(0, 2, 0, 8, v, 0);
    structuredClone(buf, { transfer: [buf] });
    assert.throws(() => dq.writeEach(0, 2, 0, 8, v, 0), TypeError);
    assert.throws(() => dq.readEach(0, 2, 0, 8, v, 0), TypeError);
    const b0 = dq.pop();
    assert.equal(b0.getU8(3), tag(0, 3), 'the element is untouched');
  });

  test('elements that are not scalar arrays are refused (extents: no bytes), and entries the slot table does not confirm', () => {
    const { kit } = setup();
    const v = new DataView(new ArrayBuffer(64));
    const nested = any(kit.allocDeque(1, 2));
    nested.push(kit.allocDeque(1, 2));
    throwsCode(() => nested.readEach(0, 1, 0, 4, v, 0), 'EINVAL', /not a scalar array/);
    nested.extents(0, 1, v, 0);
    assert.deepEqual([v.getUint32(0, true), v.getUint32(4, true)], [0, 0], 'extents: no bytes for DMA in a deque');
    const structs = any(kit.allocDeque(1, 2));
    structs.push(kit.allocStruct(1, 'TestReq'));
    throwsCode(() => structs.writeEach(0, 1, 0, 4, v, 0), 'EINVAL', /not a scalar array/);
    v.setUint32(8, 7, true);
    structs.extents(0, 1, v, 8);
    assert.deepEqual([v.getUint32(8, true), v.getUint32(12, true)], [0, 0], 'extents: no bytes for DMA in a struct');
    // The holder's device overwrites an entry with the slot number of a buffer it holds outside the deque.
    const dq = filled(kit, 2, 16);
    const outside = any(kit.allocBytes(1, 16));
    dma(kit, dq, DEQUE_HEADER + 4, kit.slotOf(outside));
    throwsCode(() => dq.writeEach(0, 2, 0, 4, v, 0), 'EINVAL', /corrupt element entry/);
    throwsCode(() => dq.extents(1, 1, v, 0), 'EINVAL', /corrupt element entry/);
    assert.equal(outside.getU32(0), 0, 'the buffer outside the deque was not written');
    dma(kit, dq, 8, 1 << 20); // capacity beyond the allocation
    throwsCode(() => dq.readEach(0, 1, 0, 4, v, 0), 'EINVAL', /corrupt header/);
  });
});

test('property: readEach/writeEach/extents agree with a model of every buffer\'s bytes; ownership and accounting unchanged', () => {
  // op 0: push a fresh buffer onto deque a; 1: pop deque a, check and drop it; 2: a.moveFrom(b);
  // 3: readEach on a; 4: writeEach on a; 5: extents on a. x, y, z pick the range (clamped or not).
  const opArb = fc.tuple(fc.nat(5), fc.nat(1), fc.nat(7), fc.nat(7), fc.nat(40), fc.nat(40));
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 10, maxLength: 100 }), (ops) => {
      const { kit, heap, violations } = setup();
      const SIZE = 32;
      const dqs = [any(kit.allocDeque(1, 6)), any(kit.allocDeque(1, 5))];
      const model: Uint8Array[][] = [[], []];
      const v = new DataView(new ArrayBuffer(8 * 48));
      let seq = 0;
      let refused = 0;
      for (const [op, a, x, y, off, n] of ops) {
        const dq = dqs[a]!;
        const m = model[a]!;
        const usage = heap.usage(1);
        const from = x;
        const count = y;
        const inRange = from + count <= m.length;
        const bytesOk = off + n <= SIZE;
        if (op === 0) {
          const b = any(kit.allocBytes(1, SIZE));
          const bytes = new Uint8Array(SIZE).map((_, j) => (seq * 13 + j) & 255);
          seq++;
          b.write(0, bytes);
          if (dq.push(b)) m.push(bytes);
          else b.drop();
          continue;
        }
        if (op === 1) {
          const b = dq.pop();
          const want = m.shift();
          if (want === undefined) assert.equal(b, undefined);
          else {
            const got = new Uint8Array(SIZE);
            b.read(0, got);
            assert.deepEqual(got, want);
            b.drop();
          }
          continue;
        }
        if (op === 2) {
          const other = 1 - a;
          const moved = dq.moveFrom(dqs[other], x);
          m.push(...model[other]!.splice(0, moved));
          continue;
        }
        const stride = n + (x & 3);
        const run = (): void => {
          if (op === 3) dq.readEach(from, count, off, n, v, 0, stride);
          else if (op === 4) dq.writeEach(from, count, off, n, v, 0, stride);
          else dq.extents(from, count, v, 0);
        };
        // Bytes outside an element are found at the first element touched (none when count is 0).
        if (!inRange || (op !== 5 && !bytesOk && count > 0)) {
          const before = violations.length;
          assert.throws(run, HandleError);
          assert.equal(violations.length, before + 1, 'a refused access is a violation of the holder');
          refused++;
        } else {
          if (op === 4) for (let k = 0; k < v.byteLength; k++) v.setUint8(k, (k * 5 + seq) & 255);
          run();
          for (let i = 0; i < count; i++) {
            const e = m[from + i]!;
            if (op === 3) for (let j = 0; j < n; j++) assert.equal(v.getUint8(i * stride + j), e[off + j]);
            else if (op === 4) for (let j = 0; j < n; j++) e[off + j] = v.getUint8(i * stride + j);
            else assert.equal(v.getUint32(i * 8 + 4, true), SIZE);
          }
        }
        assert.deepEqual(heap.usage(1), usage, 'accounting unchanged by a batch access');
        assert.equal(dq.length, m.length);
      }
      assert.equal(violations.length, refused);
      for (let a = 0; a < 2; a++) {
        for (let b = dqs[a].pop(); b !== undefined; b = dqs[a].pop()) {
          const got = new Uint8Array(SIZE);
          b.read(0, got);
          assert.deepEqual(got, model[a]!.shift(), 'bytes written by writeEach, untouched elsewhere');
          b.drop();
        }
        dqs[a].drop();
      }
      assert.deepEqual(heap.totalUsage(), { bytes: 0, slots: 0 }, 'back to baseline');
    }),
    { numRuns: 200 },
  );
});
