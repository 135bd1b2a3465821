/**
 * Raw harness for NIC model tests: starts the model on a FakeHeap, programs rings and writes
 * descriptors by hand (no driver), and always stops the worker so node can exit.
 */
import { startNic, type NicBackendConfig } from '../../src/devices/nic/index.js';
import type { DeviceHandle } from '../../src/devices/host.js';
import { BAR0_BYTES, ringWake } from '../../src/devices/bus.js';
import { NicModel } from '../../src/devices/nic/model.js';
import * as R from '../../src/devices/nic/regs.js';
import { FakeHeap } from './nic-dma-fake.js';

export { R };

export interface Nic {
  dev: DeviceHandle;
  heap: FakeHeap;
  bar0: Int32Array;
  p8: Uint8Array;
  dv: DataView;
}

export async function withNic(backend: NicBackendConfig, fn: (n: Nic) => Promise<void>, queues = 4, physBytes = 8 << 20): Promise<void> {
  const heap = new FakeHeap(physBytes);
  const dev = startNic({ phys: heap.phys, backend, queues });
  try {
    await dev.ready;
    await fn({ dev, heap, bar0: dev.bar0, p8: new Uint8Array(heap.phys), dv: new DataView(heap.phys) });
  } finally {
    await dev.stop();
  }
}

export const wake = ringWake;

/**
 * Polls `pred` (yielding to the event loop) until true; throws after `ms`. A bound on progress, not
 * a performance assertion: generous, because on a loaded machine (the suite runs files two at a
 * time, beside whatever else runs) the device thread can wait long for a core.
 */
export async function until(pred: () => boolean, what: string | (() => string), ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

export async function resetNic(bar0: Int32Array): Promise<void> {
  Atomics.store(bar0, R.CTRL, R.CTRL_RST);
  wake(bar0);
  await until(() => (Atomics.load(bar0, R.CTRL) & R.CTRL_RST) === 0, 'CTRL.RST to clear');
}

/** What rxBringUp may set besides the ring: RDT, BSIZEPACKET in KiB, FCTRL, RXCTRL. */
export interface RxBringUpOptions { tail?: number; kib?: number; fctrl?: number; rxctrl?: number }

/**
 * The register writes that bring up RX queue q over a ring of `n` descriptors at `base`, in the
 * order a driver makes them (the driver core's init): the ring, its head and tail, the queue
 * enable, the filter, and RXCTRL last. By default RDT 0, 2 KiB buffers, a filter that takes
 * everything, RXEN.
 */
export function rxBringUp(q: number, base: number, n: number, o: RxBringUpOptions = {}): [reg: number, value: number][] {
  return [
    [R.RDBAL(q), base],
    [R.RDBAH(q), 0],
    [R.RDLEN(q), n * 16],
    [R.SRRCTL(q), (o.kib ?? 2) | (R.SRRCTL_DESCTYPE_ADV_ONEBUF << R.SRRCTL_DESCTYPE_SHIFT)],
    [R.RDH(q), 0],
    [R.RDT(q), o.tail ?? 0],
    [R.RXDCTL(q), R.XDCTL_ENABLE],
    [R.FCTRL, o.fctrl ?? (R.FCTRL_BAM | R.FCTRL_UPE | R.FCTRL_MPE)],
    [R.RXCTRL, o.rxctrl ?? R.RXCTRL_RXEN],
  ];
}

/** Writes `writes` ([register, value], in order) to bar0. */
export function writeRegs(bar0: Int32Array, writes: readonly (readonly [number, number])[]): void {
  for (const [reg, v] of writes) Atomics.store(bar0, reg, v);
}

/** Programs RX queue q over a ring at `base` with `n` descriptors and BSIZEPACKET `kib`, enables it, wakes the device. */
export function setupRx(bar0: Int32Array, q: number, base: number, n: number, kib = 2): void {
  writeRegs(bar0, rxBringUp(q, base, n, { kib }));
  wake(bar0);
}

/** A NIC model stepped by the test itself, in its own thread (no worker), over `physBytes` of physical memory. */
export interface HandModel { model: NicModel; bar0: Int32Array; p32: Uint32Array }

export function handModel(queues = 1, physBytes = 1 << 20, mac: readonly number[] = [2, 0, 0, 0, 0, 1]): HandModel {
  const phys = new SharedArrayBuffer(physBytes);
  const bar0 = new Int32Array(new SharedArrayBuffer(BAR0_BYTES));
  const model = new NicModel({ phys, bar0, irq: new Int32Array(new SharedArrayBuffer(4)), queues, mac }, () => {});
  return { model, bar0, p32: new Uint32Array(phys) };
}

export function setupTx(bar0: Int32Array, q: number, base: number, n: number): void {
  Atomics.store(bar0, R.TDBAL(q), base);
  Atomics.store(bar0, R.TDBAH(q), 0);
  Atomics.store(bar0, R.TDLEN(q), n * 16);
  Atomics.store(bar0, R.TDH(q), 0);
  Atomics.store(bar0, R.TDT(q), 0);
  Atomics.store(bar0, R.TXDCTL(q), R.XDCTL_ENABLE);
  Atomics.store(bar0, R.DMATXCTL, R.DMATXCTL_TE);
  wake(bar0);
}

/** Writes an RX read-format descriptor (buffer address, header address 0). */
export function rxDesc(dv: DataView, ring: number, i: number, buf: number): void {
  dv.setUint32(ring + i * 16, buf % 2 ** 32, true);
  dv.setUint32(ring + i * 16 + 4, Math.floor(buf / 2 ** 32), true);
  dv.setUint32(ring + i * 16 + 8, 0, true);
  dv.setUint32(ring + i * 16 + 12, 0, true);
}

/** Writes an advanced TX data descriptor with EOP|IFCS|RS|DEXT unless `cmd` says otherwise. */
export function txDesc(dv: DataView, ring: number, i: number, buf: number, len: number, cmd = R.TXD_CMD_EOP | R.TXD_CMD_RS | R.TXD_CMD_DEXT, dtyp = R.TXD_DTYP_DATA): void {
  dv.setUint32(ring + i * 16, buf % 2 ** 32, true);
  dv.setUint32(ring + i * 16 + 4, Math.floor(buf / 2 ** 32), true);
  dv.setUint32(ring + i * 16 + 8, (len & 0xffff) | (dtyp << 20) | cmd, true);
  dv.setUint32(ring + i * 16 + 12, len << 14, true);
}

export interface RxWb { ptype: number; hash: number; status: number; len: number }

export function rxWb(dv: DataView, ring: number, i: number): RxWb {
  const o = ring + i * 16;
  return { ptype: dv.getUint32(o, true), hash: dv.getUint32(o + 4, true), status: dv.getUint32(o + 8, true), len: dv.getUint16(o + 12, true) };
}

/** A UDP/IPv4 frame of `len` bytes to `dst` MAC, flow-specific addresses and ports, payload from `seed`. */
export function udpFrame(len: number, srcIp: number, dstIp: number, sport: number, dport: number, seed: number, dst: readonly number[] = [2, 0, 0, 0, 0, 1]): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set([2, 0, 0, 0, 0, 0x22], 6);
  f[12] = 0x08; f[13] = 0x00; f[14] = 0x45; f[23] = 17;
  const dvf = new DataView(f.buffer);
  dvf.setUint16(16, len - 14);
  dvf.setUint32(26, srcIp);
  dvf.setUint32(30, dstIp);
  dvf.setUint16(34, sport);
  dvf.setUint16(36, dport);
  dvf.setUint16(38, len - 34);
  for (let i = 42; i < len; i++) f[i] = (seed * 31 + i * 7) & 255;
  return f;
}
