/**
 * What a route's hook is told of a moved struct's deques (RoutedCallInfo.lengths): the layout's
 * deque fields are found once per route (dequeFieldsOf) and only those are read on a call
 * (ExchangeHeap.dequeLengths).
 *
 * What must hold: the positions are those of the struct's RRef fields in field order, with only
 * the deque fields listed; a method that moves no struct, or a struct holding no deque, needs no
 * reads at all (the latter is still told a 0 per RRef field); a call reads each deque's length as it is, 0 for an empty field, and a corrupt
 * field (a slot that is not the struct's child) reads as 0 rather than some other value's header.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SIGNATURES, LAYOUTS } from '../../src/gen/idl.js';
import { dequeFieldsOf, MAX_LENGTHS } from '../../src/kernel/routes.js';
import { any, heapAndKit } from './kit-helpers.js';

const method = (iface: string, name: string) => SIGNATURES[iface]!.find((m) => m.name === name)!;

test('dequeFieldsOf lists the deque fields of the moved struct by RRef-field position and offset', () => {
  const io = LAYOUTS.find((l) => l.name === 'NetIo')!;
  const refs = io.fields.filter((f) => f.kind === 'rref');
  const d = dequeFieldsOf(method('Net', 'rxSubmitAndPoll'), LAYOUTS)!;
  assert.equal(d.fields, refs.length);
  const want = refs.flatMap((f, k) => (f.holds === 'deque' ? [k, f.offset] : []));
  assert.deepEqual([...d.at], want);
  assert.equal(want.length, 4, 'NetIo holds two deques (pkts, collect)');
  assert.equal(dequeFieldsOf(method('Callee', 'rref'), LAYOUTS), null, 'a byte array is no struct');
  const req = dequeFieldsOf(method('BDev', 'submit'), LAYOUTS)!;
  assert.deepEqual([req.fields, req.at.length], [1, 0], 'BlkReq: one RRef field (its data), no deque: a hook is told [0]');
  assert.equal(dequeFieldsOf(method('BDev', 'submitAndPoll'), LAYOUTS), null, 'a moved deque is no struct');
  assert.ok(d.fields <= MAX_LENGTHS);
});

test('dequeLengths reads each listed deque as it is, 0 for an empty field and for a corrupt one', () => {
  const { heap, kit } = heapAndKit();
  const d = dequeFieldsOf(method('Net', 'rxSubmitAndPoll'), LAYOUTS)!;
  const io = any(kit.allocStruct(1, 'NetIo'));
  io.pkts = kit.allocDeque(1, 8);
  for (let i = 0; i < 3; i++) io.pkts.push(kit.allocBytes(1, 64));
  const s = kit.slotOf(io);
  const out = new DataView(new ArrayBuffer(4 * MAX_LENGTHS));
  const read = (): number[] => {
    out.setUint32(8, 99, true); // stale, from an earlier call: must be overwritten
    heap.dequeLengths(s, d.at, out);
    return [out.getUint32(0, true), out.getUint32(8, true)];
  };
  assert.deepEqual(read(), [3, 0], 'pkts holds 3, collect is empty');
  io.collect = kit.allocDeque(1, 4);
  io.collect.push(kit.allocBytes(1, 64));
  io.pkts.pop()!.drop();
  assert.deepEqual(read(), [2, 1]);
  // A field naming some other deque's slot (memory written behind the kernel's back) reads as 0.
  const other = any(kit.allocDeque(1, 4));
  other.push(kit.allocBytes(1, 64));
  const collectAt = LAYOUTS.find((l) => l.name === 'NetIo')!.fields.find((f) => f.name === 'collect')!.offset;
  heap.dv.setUint32(heap.off[s]! + collectAt, kit.slotOf(other) + 1, true);
  assert.deepEqual(read(), [2, 0]);
});
