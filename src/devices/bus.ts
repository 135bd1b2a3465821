/**
 * The device bus: the emulation conventions every device model and every driver shares.
 *
 * A device model runs in its own worker thread, like hardware beside the CPU. It meets the rest
 * of the system only through three pieces of shared memory:
 *  - physical memory: the exchange heap's SharedArrayBuffer; a "physical address" is a byte
 *    offset into it (DMA reads and writes it directly);
 *  - BAR0: a small SharedArrayBuffer holding the device's registers, accessed as 32-bit words
 *    with Atomics;
 *  - the interrupt line: an Int32Array word of pending vector bits. The device sets a vector's bit
 *    with Atomics.or and notifies; the kernel swaps the word to 0 and delivers each bit to the
 *    driver domain that registered the vector.
 *
 * Doorbells. The specifications say a doorbell write is Atomics.store followed by Atomics.notify.
 * A sleeping worker can wait on one word only, so every BAR0 reserves its last word as the WAKE
 * word: after storing doorbells (once per batch), a driver increments WAKE and notifies it; an
 * idle device spins a little, then parks in Atomics.wait on WAKE. Register writes with side
 * effects (CC.EN, CTRL.RST, ...) are followed by the same wake, so the device notices them.
 * Notification suppression: the word before WAKE (PARKED) is 1 exactly while the device sleeps
 * (set before Atomics.wait, cleared after). A driver that increments WAKE and then reads PARKED = 0
 * may skip Atomics.notify (a lock and often a system call): with sequentially consistent atomics,
 * the device's later store of PARKED = 1 is followed by its wait, which sees the new WAKE value and
 * returns at once. Notifying always stays correct, just slower. A driver that did notify a parked
 * device then sleeps a moment (wakeParked, HANDOFF_MS): a woken thread may otherwise wait for the
 * waker's CPU until the scheduler's next tick while the waker polls for the device's answer.
 *
 * Ownership: bus mastering and function-level reset. A device DMAs into memory its driver domain
 * owns (queues, buffers). When that domain dies the kernel reclaims the memory and may hand it to
 * anyone, so the device must stop first, as an OS disables bus mastering and resets a function
 * before it reassigns a device. A fourth shared buffer, the bus-control words (BUS), carries this:
 *  - BUS.MASTER: 1 = the device may DMA; 0 = it must not touch physical memory at all (it stays
 *    in its reset state whatever is written to its registers);
 *  - BUS.RESET_REQ / BUS.RESET_ACK: the kernel sets MASTER, increments RESET_REQ and rings WAKE;
 *    the device, at its next DMA boundary (between two commands or descriptors, never inside a
 *    transfer), returns to its power-on state (queues and rings forgotten, registers at their reset
 *    values, pending interrupts dropped), stores RESET_ACK = RESET_REQ and notifies it. Once the
 *    kernel sees the acknowledgement, every DMA the device started has finished and no other will
 *    start until a driver configures it again (and, with MASTER = 0, not before the next reset).
 * The kernel resets a device with MASTER = 0 when its driver domain terminates (detach), before it
 * reclaims the domain's memory, and with MASTER = 1 before a new driver instance starts (attach),
 * which also discards whatever a dead driver's leftover code wrote to the registers meanwhile.
 * Device models call serviceBus() at every DMA boundary and, after a reset, drop whatever they were
 * in the middle of (see serviceBus). A device starts with MASTER = 1 so that tests may drive it
 * without a kernel.
 *
 * The IOMMU (iommu.ts): with the exchange heap's tables, a device checks every transfer against
 * the memory of the domain it is attached to (BUS.DOMAIN) and reports the ones it refuses.
 *
 * Invariants: a device never calls driver code and a driver never calls device code; the only
 * channel is this shared memory plus the worker's lifetime (start, stop).
 */

import type { IommuTables } from './iommu.js';

/** Bytes of BAR0 for every device; the last 32-bit word is the WAKE word. */
export const BAR0_BYTES = 0x20000;
/** Word index (in Int32 units) of the WAKE word. */
export const WAKE_WORD = BAR0_BYTES / 4 - 1;
/** Word index of the PARKED word: 1 while the device sleeps on WAKE. */
export const PARKED_WORD = WAKE_WORD - 1;

/** What the kernel hands a device worker (worker_threads workerData). */
export interface DeviceWorkerData {
  /** Physical memory (the exchange heap). */
  phys: SharedArrayBuffer;
  /** The device's registers. */
  bar0: SharedArrayBuffer;
  /** Interrupt line: Int32Array word 0 holds pending vector bits. */
  irq: SharedArrayBuffer;
  /** Bus-control words (BUS): bus mastering, the function-reset handshake, the IOMMU's words. */
  bus: SharedArrayBuffer;
  /** The IOMMU's translation tables (iommu.ts); absent, the device may reach all of memory. */
  iommu?: IommuTables;
  /** Device-specific configuration (backend and its options); plain structured-clone data. */
  config: unknown;
}

/**
 * Int32 word indices of the bus-control buffer: bus mastering and the reset handshake (see
 * "Ownership" above), and the IOMMU's words (iommu.ts): the domain the device is attached to and
 * its loan column (LOANS), the count of the DMA faults it refused and the last one's address,
 * length, direction and domain; and the DMA epoch, so that the kernel knows when a transfer the
 * device may have started before a free has ended (heap.ts guardDma): odd while the device may be
 * transferring, even while it is parked (waitWake adds 1 as it parks and 1 as it wakes), and 2
 * more at every DMA boundary (serviceBus). The host starts it at 1 (ACTIVE_EPOCH): a device is
 * taken to be working until its thread first parks. The device writes it, never its driver (which
 * has BAR0, not these words), so a driver cannot fake a parked device. GONE: 1 once the device's
 * thread has ended (markGone).
 */
export const BUS = { MASTER: 0, RESET_REQ: 1, RESET_ACK: 2, DOMAIN: 3, FAULTS: 4, FAULT_ADDR: 5, FAULT_LEN: 6, FAULT_WRITE: 7, FAULT_DOMAIN: 8, EPOCH: 9, LOANS: 10, GONE: 11 } as const;
export const BUS_BYTES = 48;
/** BUS.EPOCH as a device starts: odd, working (see BUS). */
export const ACTIVE_EPOCH = 1;

/**
 * A device thread is gone, so it does no DMA any more: GONE reads 1 (a wait for its reset's
 * acknowledgement ends: host.ts), its DMA epoch reads parked (even) for good (the DMA quarantine
 * holds nothing back for it: heap.ts guardDma), and every reset requested so far reads as
 * acknowledged, whoever waits for one woken. The acknowledgement is stored, not only notified: the
 * thread's own call runs beside a host that may have read RESET_ACK and found GONE 0 just before,
 * and then waits on the value it read (host.ts waitAck), which must change for it not to sleep.
 * Written by the thread itself as it ends (deviceBus) and by the host at its worker's 'exit' event
 * (host.ts); whichever comes second finds it done (a reset requested in between, which GONE
 * answers already, also reads as acknowledged then).
 */
export function markGone(bus: Int32Array): void {
  Atomics.store(bus, BUS.GONE, 1);
  const e = Atomics.load(bus, BUS.EPOCH);
  if ((e & 1) === 1) Atomics.store(bus, BUS.EPOCH, e + 1);
  Atomics.store(bus, BUS.RESET_ACK, Atomics.load(bus, BUS.RESET_REQ));
  Atomics.notify(bus, BUS.RESET_ACK);
}

/**
 * Device side, as a device thread starts: its bus-control words (BUS), with its death announced
 * in them — once the thread ends (its model threw, or it called process.exit), it marks itself
 * gone as its last act (markGone, from its process 'exit' event, after which it runs nothing more:
 * no transfer can follow). Why the thread and not only the host: the host learns of the death
 * from the worker's 'exit' event, on the kernel's event loop, and the kernel may be waiting
 * without turning it — an allocation that found memory exhausted spins for the DMA quarantine
 * (heap.ts awaitHeld), a detach blocks for the reset's acknowledgement (host.ts) — and would
 * wait its whole bound for a device that is dead (the allocation then fails). A thread stopped
 * from outside (terminate, at a device's stop) or killed by the engine (out of memory) runs no
 * JS: the host's event covers it.
 */
export function deviceBus(data: DeviceWorkerData): Int32Array {
  const bus = new Int32Array(data.bus);
  process.once('exit', () => markGone(bus));
  return bus;
}

/**
 * Device side, at every DMA boundary: performs a requested function reset (`reset` must bring the
 * model to its power-on state; the interrupt line is cleared here) and acknowledges it. Returns
 * whether the device may go on with the DMA work it is in the middle of; false means: drop it, do
 * nothing more and go back to the top of the device loop (park until WAKE).
 *
 * A call that performed a reset returns false whatever MASTER says: the work in progress (a queue
 * or ring being drained, with its base, tail and completion queue in the caller's hands) belongs
 * to the state the reset just forgot. MASTER may even read 1 there without any driver having
 * configured anything: once the acknowledgement is visible the kernel may reclaim the old driver's
 * memory and attach the next driver (MASTER = 1, next RESET_REQ) before this thread reads MASTER.
 * Going on would fetch commands from, and post completions into, reclaimed memory.
 */
export function serviceBus(bus: Int32Array, irq: Int32Array, reset: () => void): boolean {
  Atomics.add(bus, BUS.EPOCH, 2);
  const req = Atomics.load(bus, BUS.RESET_REQ);
  if (req !== Atomics.load(bus, BUS.RESET_ACK)) {
    reset();
    Atomics.store(irq, 0, 0);
    Atomics.store(bus, BUS.RESET_ACK, req);
    Atomics.notify(bus, BUS.RESET_ACK);
    return false;
  }
  return Atomics.load(bus, BUS.MASTER) === 1;
}

/** Device side: raise interrupt vector `vector` (0..31). */
export function raiseIrq(irq: Int32Array, vector: number): void {
  Atomics.or(irq, 0, 1 << vector);
  Atomics.notify(irq, 0);
}

/** Driver side: wake the device after doorbell or control-register writes. */
export function ringWake(bar0: Int32Array): void {
  Atomics.add(bar0, WAKE_WORD, 1);
  if (Atomics.load(bar0, PARKED_WORD) !== 0) wakeParked(bar0);
}

/**
 * How long a driver that woke a parked device sleeps, at most, while the device still reads as
 * parked (wakeParked). Without it, a driver (or the app above it) that goes on polling after the
 * notify kept the woken device thread from running until the next scheduler tick: on a 2-vCPU VM
 * a frame sent to the NIC model after 100 ms of quiet came back in ~4 ms instead of ~0.2
 * (`node dist/src/bench/probes/lull-latency.js 100`, bench/RESULTS.md); 10 µs was too short.
 * A device already awake costs nothing (PARKED reads 0: no sleep).
 */
export const HANDOFF_MS = 0.05;

/**
 * ringWake's notify of a device that reads as parked, then this thread's CPU handed to it for a
 * moment (at most HANDOFF_MS, less once it is up). Trusted code only (a domain may not block its
 * thread): drivers in domains reach it through DeviceCap.wake, which is ringWake.
 */
function wakeParked(bar0: Int32Array): void {
  Atomics.notify(bar0, WAKE_WORD, 1);
  Atomics.wait(bar0, PARKED_WORD, 1, HANDOFF_MS);
}

/**
 * Device side, between two passes of the device loop (no transfer in progress): returns when the
 * WAKE word differs from `seen` or `timeoutMs` has passed, after spinning `spins` times first
 * (cheap for back-to-back batches). Returns the current WAKE value. While it sleeps, PARKED reads
 * 1 and BUS.EPOCH is even (the device is parked: DMA quiet until it wakes, see BUS).
 */
export function waitWake(bar0: Int32Array, bus: Int32Array, seen: number, spins: number, timeoutMs: number): number {
  for (let i = 0; i < spins; i++) {
    const v = Atomics.load(bar0, WAKE_WORD);
    if (v !== seen) return v;
  }
  Atomics.add(bus, BUS.EPOCH, 1);
  Atomics.store(bar0, PARKED_WORD, 1);
  Atomics.wait(bar0, WAKE_WORD, seen, timeoutMs);
  Atomics.store(bar0, PARKED_WORD, 0);
  Atomics.add(bus, BUS.EPOCH, 1);
  return Atomics.load(bar0, WAKE_WORD);
}
