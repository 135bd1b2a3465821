/**
 * A driver's device at the driver's death (Kernel.terminate; DeviceHandle.detach in
 * src/devices/host.ts): the kernel asks the device to stop (bus mastering off, a reset) before
 * anything else of the termination, so that the device answers while the kernel unwinds the calls
 * in flight, and it reclaims the dead driver's memory only once the device has acknowledged — at
 * once when the wait answers true, later when it gives a promise (a device slow to answer), never
 * before. A fake device stands in for a model and records what the kernel asked of it, and when.
 * A device without an IOMMU over the kernel's own memory is refused before it is attached.
 * Each driver gets an IOMMU loan column of its own, reused only once that driver is gone and no
 * loan to it is left.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceHandle } from '../../src/devices/host.js';
import { LOAN_COLUMNS, type IommuTables } from '../../src/devices/iommu.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { DOM_C, FAULTY, fakeDevice, recorder, rpcFails, turn } from './helpers.js';

const kernels: Kernel[] = [];
after(() => {
  for (const k of kernels) k.shutdown();
});

/** A kernel with the faulty test domain loaded as `fa`, driving `device(state)`; `state` says how many of fa's calls are in flight and how many exchange-heap bytes fa holds. */
function setup(device: (state: () => string, iommu: IommuTables) => DeviceHandle) {
  const kernel = new Kernel({ physBytes: 16 << 20, log: () => {} });
  kernels.push(kernel);
  kernel.load(DOM_C);
  const state = (): string => {
    const d = kernel.get('fa')!;
    return `${d.inflight.size} in flight, ${kernel.heap.usage(d.id).bytes} bytes held`;
  };
  kernel.load(FAULTY, { name: 'fa', imports: ['dom_c', { object: recorder().object }], device: device(state, kernel.heap.iommuTables) });
  const fa = kernel.bind<any>('fa');
  const held = (): number => kernel.heap.usage(kernel.get('fa')!.id).bytes;
  return { kernel, fa, held };
}

test('a dying driver: its device is asked to stop before its calls in flight are unwound, its memory reclaimed after the acknowledgement', async () => {
  const log: string[] = [];
  const { fa, held } = setup((state, iommu) => fakeDevice(log, state, () => true, iommu));
  fa.hold(1000);
  const pending = fa.pending(); // an async call in flight in the driver
  assert.deepEqual(log, ['attach']);

  await rpcFails(() => fa.panic('driver bug'), 'panic');
  assert.deepEqual(log, ['attach', 'detach (1 in flight, 1000 bytes held)', 'wait (0 in flight, 1000 bytes held)']);
  assert.equal(held(), 0, 'reclaimed as soon as the device acknowledged');
  const unwound = await rpcFails(() => pending, 'panic');
  assert.match(unwound.message, /died \(panic\) before answering/);
});

test('a device slow to acknowledge: the dead driver\'s memory is reclaimed only when it does', async () => {
  const log: string[] = [];
  let acknowledge!: () => void;
  const acknowledged = new Promise<void>((r) => (acknowledge = r));
  const { fa, held } = setup((state, iommu) => fakeDevice(log, state, () => acknowledged, iommu));
  fa.hold(4096);

  await rpcFails(() => fa.panic('driver bug'), 'panic');
  assert.deepEqual(log, ['attach', 'detach (0 in flight, 4096 bytes held)', 'wait (0 in flight, 4096 bytes held)']);
  for (let i = 0; i < 5; i++) await turn();
  assert.equal(held(), 4096, 'nothing reclaimed while the device may still write into it');

  acknowledge();
  for (let i = 0; i < 5 && held() !== 0; i++) await turn();
  assert.equal(held(), 0, 'reclaimed once the device acknowledged');
});

test('a device without an IOMMU over the kernel\'s memory is refused: its driver could have it reach any domain\'s memory', () => {
  const kernel = new Kernel({ physBytes: 16 << 20, log: () => {} });
  const other = new Kernel({ physBytes: 16 << 20, log: () => {} });
  kernels.push(kernel, other);
  kernel.load(DOM_C);
  const log: string[] = [];
  for (const iommu of [null, other.heap.iommuTables]) {
    assert.throws(
      () => kernel.load(FAULTY, { name: 'fa', imports: ['dom_c', { object: recorder().object }], device: fakeDevice(log, () => '', () => true, iommu) }),
      (e: unknown) => (e as { code?: string }).code === 'EINVAL' && /has no IOMMU over this kernel's memory.*iommu: kernel\.heap\.iommuTables/.test((e as Error).message),
    );
  }
  assert.deepEqual(log, [], 'the device was never attached');
  assert.equal(kernel.get('fa')?.live ?? false, false);
});

test('each driver gets an IOMMU loan column of its own; a ninth is refused (EBUSY); a column is reused only once its driver\'s device acknowledged its detach and no loan to it is left', async () => {
  const kernel = new Kernel({ physBytes: 16 << 20, log: () => {} });
  kernels.push(kernel);
  kernel.load(DOM_C);
  const columns = new Map<string, number>();
  const load = (name: string): void => {
    const dev = fakeDevice([], () => '', () => true, kernel.heap.iommuTables);
    kernel.load(FAULTY, { name, imports: ['dom_c', { object: recorder().object }], device: { ...dev, attach: (_domain: number, loans?: number) => void columns.set(name, loans!) } });
  };
  for (let i = 0; i < LOAN_COLUMNS; i++) load(`fa${i}`);
  assert.deepEqual(new Set(columns.values()), new Set(Array.from({ length: LOAN_COLUMNS }, (_, c) => c)), 'eight drivers, eight columns');
  assert.equal(kernel.get('fa3')!.loanColumn, columns.get('fa3'));
  assert.throws(() => load('fa8'), (e: unknown) => (e as { code?: string }).code === 'EBUSY' && /IOMMU loan columns/.test((e as Error).message));

  // fa3 dies with a loan still out to it (a call that lent it a buffer has not ended yet).
  const column = columns.get('fa3')!;
  const buf = kernel.kit.allocBytes(0, 64);
  const slot = kernel.kit.slotOf(buf);
  kernel.heap.beginBorrow(slot, column);
  await rpcFails(() => kernel.bind<any>('fa3').panic('driver bug'), 'panic');
  assert.throws(() => load('fa8'), (e: unknown) => (e as { code?: string }).code === 'EBUSY', 'its column still counts a loan to the dead driver');
  kernel.heap.endBorrow(slot, column);
  load('fa8');
  assert.equal(columns.get('fa8'), column, 'the loan ended: the column goes to the next driver');
});
