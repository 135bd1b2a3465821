/**
 * Probe: what one IOMMU check (src/devices/iommu.ts) costs a device thread, alone, with no other
 * thread writing the slot table: `check` (what a device model calls) over 512 packet buffers of
 * 2 KiB, each as a driver holds them when its device writes them (a root of its own: the host-linked driver's; an element of an
 * RRefDeque held in a NetIo's field: a driver domain's, two parent links to walk), against the
 * pass-through of a device without an IOMMU, in the same run. Prints ns per check, medians of
 * several rounds. What the checks cost a packet path beside this (the slot-table lines the kernel
 * thread writes as buffers move, read from the device's core) is in `bench net` (bench/RESULTS.md,
 * session 31).
 *
 *   node dist/src/bench/probes/iommu-cost.js
 */
import { performance } from 'node:perf_hooks';
import { boundIommu, NO_IOMMU, type Iommu } from '../../devices/iommu.js';
import { ExchangeHeap } from '../../kernel/heap.js';
import { createHandleKit } from '../../kernel/rref.js';
import { LAYOUTS } from '../../gen/idl.js';
import { median } from '../harness.js';

const DRIVER = 1;
const BUFFERS = 512;
const CHECKS = 4_000_000;
const ROUNDS = 7;

const heap = new ExchangeHeap({ physBytes: 64 << 20 });
const kit = createHandleKit(heap, () => {});
for (const l of LAYOUTS) kit.registerLayout(l);
const { iommu } = boundIommu(heap.iommuTables, DRIVER);

const addrOf = (h: object): number => heap.off[kit.slotOf(h)]!;
const roots = Array.from({ length: BUFFERS }, () => addrOf(kit.allocBytes(DRIVER, 2048)));
// A NetIo holding a deque of the buffers: what a driver domain holds while its device writes them.
const io = kit.allocStruct(DRIVER, 'NetIo') as { pkts: unknown };
const dq = kit.allocDeque(DRIVER, BUFFERS) as { push(v: object): boolean };
const inDeque: number[] = [];
for (let i = 0; i < BUFFERS; i++) {
  const b = kit.allocBytes(DRIVER, 2048);
  inDeque.push(addrOf(b));
  dq.push(b);
}
io.pkts = dq;

/** ns per check of `unit` over `addrs`, cycling. */
function perCheck(unit: Iommu, addrs: readonly number[]): number {
  let ok = 0;
  const t0 = performance.now();
  for (let i = 0; i < CHECKS; i++) if (unit.check(addrs[i & (BUFFERS - 1)]!, 60, true)) ok++;
  const ns = ((performance.now() - t0) * 1e6) / CHECKS;
  if (ok !== CHECKS && unit !== NO_IOMMU) throw new Error(`the IOMMU refused ${CHECKS - ok} of ${CHECKS} checks of the driver's own buffers`);
  return ns;
}

const cases: [string, Iommu, number[]][] = [
  ['no IOMMU', NO_IOMMU, roots],
  ['root buffers', iommu, roots],
  ['deque elements in a NetIo', iommu, inDeque],
];
const rows = cases.map(([name, unit, addrs]) => {
  const runs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) runs.push(perCheck(unit, addrs));
  return `${name.padEnd(28)} ${median(runs).toFixed(2)} ns a check`;
});
console.log(rows.join('\n'));
