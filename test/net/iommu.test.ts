/**
 * The IOMMU on the network path (src/devices/iommu.ts): a driver that points its NIC's RX
 * descriptors at memory it does not own — here the driver's posted descriptors are rewritten to
 * name a buffer of the kernel's, as a buggy or hostile driver would write them — gets no byte
 * into that memory. The NIC model refuses each such descriptor (ERR_DMA, written back with RXE),
 * the IOMMU reports the fault, and the kernel charges it to the driver, not to the memory's owner:
 * the driver instance is terminated with EDMA, the NIC shadow restarts it, and traffic carries on
 * with no error reaching the app. Reading is refused too, for memory the driver does not own
 * that is lent to a call into another domain: a loan lends the device of the domain it is made to
 * only, so a driver cannot have its NIC transmit what others lend each other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootNet } from '../../src/host/net.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { KERNEL_OWNER } from '../../src/kernel/heap.js';
import { artifactPath } from '../../src/kernel/paths.js';
import * as R from '../../src/devices/nic/regs.js';
import { ringWake } from '../../src/devices/bus.js';
import type { NetApp, NetAppStats } from '../../src/interfaces/index.js';
import type { RRef } from '../../src/runtime/types.js';
import { describeProgress, runUntil } from './helpers.js';

const SEED = 64;
const VICTIM = 0x5a;

interface Rig {
  kernel: Kernel;
  boot: Awaited<ReturnType<typeof bootNet>>;
  app: NetApp;
  /** Faults the kernel charged, as `domain: message`. */
  faults: string[];
  /** Resolves once the driver instance of the moment was charged a fault (or 2 s passed). */
  driverFaulted(): Promise<void>;
  /** The shadow restarts the driver: the loop, seeded again, carries on, and no error reached the app. */
  carriesOn(): void;
}

/** l2fwd over the shadowed NIC driver on loopback; `body` plays a faulty driver, then the rig is stopped. */
async function withRig(body: (rig: Rig) => Promise<void>): Promise<void> {
  const kernel = new Kernel({ physBytes: 128 << 20, log: () => {} });
  const boot = await bootNet({ kernel, backend: { kind: 'loopback' }, shadow: true });
  const faults: string[] = [];
  kernel.onFault((d, _cause, message) => faults.push(`${d.name}: ${message}`));
  try {
    kernel.load(artifactPath('l2fwd'), { imports: [boot.netName], config: { pool: 4096 } });
    const app = kernel.bind<NetApp>('l2fwd');
    const rpcErrors = (): number => {
      const st = app.stats(kernel.kit.allocStruct(0, 'NetAppStats') as unknown as RRef<NetAppStats>);
      const n = st.rpcErrors;
      st.drop();
      return n;
    };
    const driverFaulted = async (): Promise<void> => {
      const driver = boot.driverName!;
      for (let t = 0; t < 200 && !faults.some((f) => f.startsWith(driver)); t++) await sleep(10);
    };
    const carriesOn = (): void => {
      assert.equal(app.seed(SEED, 60), SEED, `the seed after the fault: ${JSON.stringify(faults)} ${JSON.stringify(boot.netStats())}`);
      const run = runUntil(app, 'fwd', (frames) => frames > 4 * SEED);
      assert.ok(run.frames > 4 * SEED, `traffic carries on: ${describeProgress(run)}`);
      assert.ok(boot.netStats().restarts >= 1, 'the shadow restarted the driver');
      assert.equal(rpcErrors(), 0, 'no error reached the app');
      assert.equal(kernel.get('l2fwd')!.faults, 0);
    };
    await body({ kernel, boot, app, faults, driverFaulted, carriesOn });
  } finally {
    await boot.stop();
    kernel.shutdown();
  }
}

/** A buffer of the kernel's filled with VICTIM: its handle and physical address. */
function victimBuffer(kernel: Kernel): { victim: { drop(): void }; slot: number; addr: number } {
  const victim = kernel.kit.allocBytes(KERNEL_OWNER, 2048) as unknown as { fill(v: number): void; drop(): void };
  victim.fill(VICTIM);
  const slot = kernel.kit.slotOf(victim);
  return { victim, slot, addr: kernel.heap.off[slot]! };
}

test('a driver whose RX descriptors name memory it does not own: nothing lands there, the driver is terminated with EDMA, its shadow restarts it, traffic carries on', { timeout: 60_000 }, () =>
  withRig(async ({ kernel, boot, app, faults, driverFaulted, carriesOn }) => {
    // On loopback nothing arrives unasked: one RX run posts the driver's buffers and leaves them posted.
    app.run('rx', 32, 20);
    const bar0 = boot.dev!.bar0;
    const base = Atomics.load(bar0, R.RDBAL(0)) >>> 0;
    const n = (Atomics.load(bar0, R.RDLEN(0)) >>> 0) / R.DESC_BYTES;
    const head = Atomics.load(bar0, R.RDH(0)) >>> 0;
    const tail = Atomics.load(bar0, R.RDT(0)) >>> 0;
    assert.ok(head !== tail, `RX buffers are posted (RDH ${head}, RDT ${tail})`);

    const { victim, addr: victimAddr } = victimBuffer(kernel);
    const u32 = kernel.heap.u32;
    for (let i = head; i !== tail; i = (i + 1) % n) u32[(base + i * R.DESC_BYTES) >>> 2] = victimAddr;

    // Frames go out and come back onto the rewritten descriptors.
    assert.equal(app.seed(SEED, 60), SEED, `the first seed: ${JSON.stringify(faults)}`);
    app.run('fwd', 32, 20);
    const driver = boot.driverName!;
    await driverFaulted();

    assert.ok(kernel.heap.u8.subarray(victimAddr, victimAddr + 2048).every((b) => b === VICTIM), 'no byte of a frame reached the memory the driver does not own');
    assert.ok(faults.some((f) => f.startsWith(`${driver}: `) && /EDMA/.test(f) && /DMA fault/.test(f) && f.includes(`0x${victimAddr.toString(16)}`)), `the fault is the driver's: ${JSON.stringify(faults)}`);
    assert.ok(!faults.some((f) => !f.startsWith(driver)), `no other domain is charged: ${JSON.stringify(faults)}`);
    carriesOn();
    victim.drop();
  }));

test('a driver whose TX descriptor names memory lent to a call into another domain: the NIC reads none of it, the driver is terminated with EDMA, and its shadow restarts it', { timeout: 60_000 }, () =>
  withRig(async ({ kernel, boot, app, faults, driverFaulted, carriesOn }) => {
    assert.equal(app.seed(SEED, 60), SEED);
    app.run('fwd', 32, 20);
    // A secret of the kernel's, lent to a call in progress into a domain that drives no device (as
    // the proxy lends a Borrow<> argument there: counted in no IOMMU loan column).
    const { victim: secret, slot, addr: secretAddr } = victimBuffer(kernel);
    kernel.heap.beginBorrow(slot);
    // The driver (its BAR0, as its code would write it) queues one frame from that memory.
    const bar0 = boot.dev!.bar0;
    const base = Atomics.load(bar0, R.TDBAL(0)) >>> 0;
    const n = (Atomics.load(bar0, R.TDLEN(0)) >>> 0) / R.DESC_BYTES;
    assert.ok(n > 0, 'the TX ring is set up');
    const tail = Atomics.load(bar0, R.TDT(0)) >>> 0;
    const u32 = kernel.heap.u32;
    const d = (base + tail * R.DESC_BYTES) >>> 2;
    u32[d] = secretAddr;
    u32[d + 1] = 0;
    u32[d + 2] = 60 | (R.TXD_DTYP_DATA << 20) | R.TXD_CMD_EOP | R.TXD_CMD_RS | R.TXD_CMD_DEXT;
    u32[d + 3] = 60 << 14;
    Atomics.store(bar0, R.TDT(0), (tail + 1) % n);
    ringWake(bar0);
    const driver = boot.driverName!;
    await driverFaulted();
    assert.ok(faults.some((f) => f.startsWith(`${driver}: `) && /EDMA/.test(f) && f.includes(`read 60 bytes at physical address 0x${secretAddr.toString(16)}`)), `the refused read is the driver's fault: ${JSON.stringify(faults)}`);
    assert.ok(!faults.some((f) => !f.startsWith(driver)), `no other domain is charged: ${JSON.stringify(faults)}`);
    kernel.heap.endBorrow(slot);
    carriesOn();
    secret.drop();
  }));
