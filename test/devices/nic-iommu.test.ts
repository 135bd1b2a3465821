/**
 * The NIC model behind its IOMMU (src/devices/iommu.ts), over a real exchange heap, stepped by the
 * test on the loopback backend as domain DRIVER's driver would program it: a frame transmitted
 * from another domain's buffer never leaves (ERR_DMA, a read fault), one from the driver's own
 * does and comes back into the driver's RX buffer; an RX ring the driver freed after enabling its
 * queue is never written again: the queue is disabled at the next step (RXDCTL.ENABLE cleared,
 * ERR_DMA, a write fault), and the frame is dropped as for a disabled queue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BAR0_BYTES, BUS } from '../../src/devices/bus.js';
import { boundIommu } from '../../src/devices/iommu.js';
import { Loopback } from '../../src/devices/nic/backends.js';
import { NicModel } from '../../src/devices/nic/model.js';
import { R, rxBringUp, rxDesc, txDesc, udpFrame, writeRegs } from './nic-harness.js';
import { heapAndKit } from '../kernel/kit-helpers.js';

const DRIVER = 1;
const OTHER = 2;
const RING = 8;

function rig() {
  const { heap, kit } = heapAndKit({ physBytes: 4 << 20 });
  const { iommu, bus } = boundIommu(heap.iommuTables, DRIVER);
  const bar0 = new Int32Array(new SharedArrayBuffer(BAR0_BYTES));
  const model = new NicModel({ phys: heap.phys, bar0, irq: new Int32Array(new SharedArrayBuffer(4)), queues: 1, mac: [2, 0, 0, 0, 0, 1], iommu }, () => {});
  const slots: number[] = [];
  const alloc = (owner: number, bytes: number): number => {
    const slot = kit.slotOf(kit.allocBytes(owner, bytes, 128));
    slots.push(slot);
    return heap.off[slot]!;
  };
  const dv = heap.dv;
  const rxRing = alloc(DRIVER, RING * 16);
  const txRing = alloc(DRIVER, RING * 16);
  const rxBuf = alloc(DRIVER, 2048);
  rxDesc(dv, rxRing, 0, rxBuf);
  writeRegs(bar0, [...rxBringUp(0, rxRing, RING, { tail: 1 }), [R.TDBAL(0), txRing], [R.TDBAH(0), 0], [R.TDLEN(0), RING * 16], [R.TDH(0), 0], [R.TDT(0), 0], [R.TXDCTL(0), R.XDCTL_ENABLE], [R.DMATXCTL, R.DMATXCTL_TE]]);
  const backend = new Loopback();
  const step = (): number => model.step(backend, 0);
  step();
  /** Transmit `frame` from a buffer of `owner`'s as TX descriptor `i`; returns the buffer's address. */
  const send = (owner: number, i: number, frame: Uint8Array): number => {
    const buf = alloc(owner, 2048);
    heap.u8.set(frame, buf);
    txDesc(dv, txRing, i, buf, frame.length);
    Atomics.store(bar0, R.TDT(0), i + 1);
    step();
    return buf;
  };
  const faults = (): number[] => [bus[BUS.FAULTS]!, bus[BUS.FAULT_ADDR]! >>> 0, bus[BUS.FAULT_LEN]!, bus[BUS.FAULT_WRITE]!, bus[BUS.FAULT_DOMAIN]!];
  return { heap, bar0, step, send, faults, rxBuf, rxRing, slotAt: (addr: number) => slots.find((s) => heap.off[s] === addr)! };
}

test('NIC IOMMU: a frame from another domain\'s buffer never leaves; one from the driver\'s own loops back into its RX buffer', () => {
  const r = rig();
  const frame = udpFrame(60, 1, 2, 3, 4, 9);
  const foreign = r.send(OTHER, 0, frame);
  assert.equal(Atomics.load(r.bar0, R.GPTC), 0, 'nothing transmitted');
  assert.equal(Atomics.load(r.bar0, R.RDH(0)), 0, 'nothing received');
  assert.ok((Atomics.exchange(r.bar0, R.NIC_ERR, 0) & R.ERR_DMA) !== 0, 'NIC_ERR says ERR_DMA');
  assert.deepEqual(r.faults(), [1, foreign, 60, 0, DRIVER]);

  r.send(DRIVER, 1, frame);
  assert.equal(Atomics.load(r.bar0, R.RDH(0)), 1, 'the driver\'s own frame came back');
  assert.deepEqual(r.heap.u8.subarray(r.rxBuf, r.rxBuf + 60), frame);
  assert.equal(r.faults()[0], 1, 'no new fault');
});

test('NIC IOMMU: an RX ring freed after its queue was enabled is never written: the queue is disabled at the next step', () => {
  const r = rig();
  r.heap.free(r.slotAt(r.rxRing));
  r.step();
  assert.equal(Atomics.load(r.bar0, R.RXDCTL(0)) & R.XDCTL_ENABLE, 0, 'RXDCTL.ENABLE cleared');
  assert.ok((Atomics.exchange(r.bar0, R.NIC_ERR, 0) & R.ERR_DMA) !== 0, 'NIC_ERR says ERR_DMA');
  assert.deepEqual(r.faults(), [1, r.rxRing, RING * 16, 1, DRIVER]);
  const ring = r.heap.u8.slice(r.rxRing, r.rxRing + RING * 16);
  r.send(DRIVER, 0, udpFrame(60, 1, 2, 3, 4, 9));
  assert.deepEqual(r.heap.u8.subarray(r.rxRing, r.rxRing + RING * 16), ring, 'no write-back into the freed ring');
  assert.ok(r.heap.u8.subarray(r.rxBuf, r.rxBuf + 60).every((b) => b === 0), 'no frame in the buffer');
});
