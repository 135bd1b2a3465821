/**
 * Kernel side of the device bus: start a device model in its own worker thread, hand it physical
 * memory, its BAR0 and its interrupt line, deliver its interrupts, and reset it between drivers.
 *
 * Interrupt delivery: one Atomics.waitAsync per device on the interrupt word; when it fires the
 * pending bits are swapped out (Atomics.exchange) and passed to `onIrq`. The waiter is re-armed
 * after every delivery and dropped on stop, so a stopped device keeps no handle on the event loop
 * (watchWord, which the fault line below shares).
 *
 * Attach and detach (the function-reset handshake of bus.ts) are synchronous: the kernel calls
 * them from domain load and termination, which are synchronous. Detach requests the reset at once
 * and hands back the wait for its acknowledgement, so that the kernel's other termination work
 * overlaps the device's answer. The device acknowledges within one command or descriptor
 * (microseconds when it runs, a futex wake when it naps or is parked), so the kernel thread polls
 * for a moment, then blocks briefly in Atomics.wait. Detach's wait is bounded by DETACH_SYNC_MS: a
 * device that has not acknowledged by then (its worker starved or stuck in a slow host I/O) gets
 * a promise instead, and the kernel reclaims the dead driver's memory only when it settles —
 * safety never depends on the bound, only the moment the memory becomes reusable does.
 * A device whose thread has ended (BUS.GONE: bus.ts markGone) does no DMA, so it counts as
 * acknowledged.
 *
 * The IOMMU (iommu.ts): attach names the domain whose memory the device may reach, before the
 * reset it requests, and detach names none; the device's DMA faults are delivered like its
 * interrupts (one Atomics.waitAsync on BUS.FAULTS, re-armed after each delivery) to the sink the
 * kernel sets, which charges them to the driver.
 */
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { ACTIVE_EPOCH, BAR0_BYTES, BUS, BUS_BYTES, WAKE_WORD, markGone, ringWake, type DeviceWorkerData } from './bus.js';
import { NO_DOMAIN, NO_LOANS, type DmaFault, type IommuTables } from './iommu.js';

/** How long detach blocks the kernel thread before it falls back to a promise. */
const DETACH_SYNC_MS = 200;
/** How long attach waits for the device before the driver's load fails. */
const ATTACH_TIMEOUT_MS = 2000;
/** How long a wait for a reset's acknowledgement polls before it sleeps (waitAck). */
const ACK_SPIN_MS = 0.05;

export interface DeviceHandle {
  readonly name: string;
  /** The IOMMU's tables the device checks its transfers against; null: none (all of memory). */
  readonly iommu: IommuTables | null;
  readonly bar0: Int32Array;
  readonly irq: Int32Array;
  /** Set the interrupt sink (the kernel routes it to the driver domain that owns the device). */
  onIrq(handler: ((bits: number) => void) | null): void;
  /** Resolves once the device reported it is running (its worker posted 'ready'). */
  readonly ready: Promise<void>;
  /** Stop the device: terminate its worker and its interrupt waiter. */
  stop(): Promise<void>;
  /**
   * Prepare the device for a new driver, the domain `domain`: its IOMMU opened to that domain's
   * memory and to what is lent to it (loan column `loans` of the IOMMU's tables; NO_LOANS: none),
   * then a function reset with bus mastering enabled. Returns once the device acknowledged;
   * throws if it did not within `timeoutMs` (default 2 s).
   */
  attach(domain: number, loans?: number, timeoutMs?: number): void;
  /**
   * Take the device from its driver: bus mastering off and a function reset, requested at once.
   * Returns the wait for the device's acknowledgement (no DMA in progress, none until the next
   * attach), which the caller runs when it needs the device quiet — after other work, which the
   * device's answer then overlaps: it returns true once the device acknowledged or, if it did not
   * within a short synchronous bound, a promise that resolves when it does or its worker exits.
   */
  detach(): DetachWait;
  /** Messages the model posts besides 'ready' (statistics, errors) reach here. */
  onMessage(handler: (msg: unknown) => void): void;
  /** The device's DMA epoch (bus.ts BUS.EPOCH): even while it is parked, 2 more at every DMA boundary. */
  dmaEpoch(): number;
  /** Set the sink of the DMA faults the device's IOMMU refuses (the kernel charges the driver). */
  onDmaFault(handler: ((fault: DmaFault) => void) | null): void;
}

/** DeviceHandle.detach's wait for the acknowledgement: true, or a promise if it is slow to come. */
export type DetachWait = () => true | Promise<void>;

export interface StartDeviceOptions {
  name: string;
  /** URL of the compiled worker module of the device model. */
  workerUrl: URL;
  phys: SharedArrayBuffer;
  /** The IOMMU's tables (ExchangeHeap.iommuTables); without them the device reaches all of memory. */
  iommu?: IommuTables;
  config: unknown;
}

export function startDevice(opts: StartDeviceOptions): DeviceHandle {
  const bar0 = new SharedArrayBuffer(BAR0_BYTES);
  const bar0i = new Int32Array(bar0);
  const irqBuf = new SharedArrayBuffer(8);
  const irq = new Int32Array(irqBuf);
  const busBuf = new SharedArrayBuffer(BUS_BYTES);
  const bus = new Int32Array(busBuf);
  Atomics.store(bus, BUS.MASTER, 1);
  Atomics.store(bus, BUS.DOMAIN, NO_DOMAIN);
  Atomics.store(bus, BUS.LOANS, NO_LOANS);
  Atomics.store(bus, BUS.EPOCH, ACTIVE_EPOCH);
  const data: DeviceWorkerData = { phys: opts.phys, bar0, irq: irqBuf, bus: busBuf, config: opts.config, ...(opts.iommu ? { iommu: opts.iommu } : {}) };
  const worker = new Worker(opts.workerUrl, { workerData: data, name: opts.name });
  let handler: ((bits: number) => void) | null = null;
  let msgHandler: ((msg: unknown) => void) | null = null;
  let faultHandler: ((fault: DmaFault) => void) | null = null;
  let faultsSeen = 0;
  let stopped = false;
  // A device whose thread is gone transfers nothing: the thread itself said so as it ended
  // (bus.ts deviceBus), unless it was stopped from outside.
  worker.once('exit', () => markGone(bus));
  /** The device's thread has ended (BUS.GONE: by the thread's own word or at its exit event). */
  const gone = (): boolean => Atomics.load(bus, BUS.GONE) === 1;

  /**
   * Request a function reset with bus mastering `master`, for `domain` and its loan column
   * `loans` (the IOMMU takes them up at the reset); returns the request number. The device
   * is woken even from a nap (ringWake notifies only a parked one): a reset is rare, and the
   * kernel waits for its acknowledgement.
   */
  const requestReset = (master: 0 | 1, domain: number, loans: number): number => {
    Atomics.store(bus, BUS.MASTER, master);
    Atomics.store(bus, BUS.DOMAIN, domain);
    Atomics.store(bus, BUS.LOANS, loans);
    const req = (Atomics.add(bus, BUS.RESET_REQ, 1) + 1) | 0;
    ringWake(bar0i);
    Atomics.notify(bar0i, WAKE_WORD);
    return req;
  };
  /** The device acknowledged request `req` or a later one (wrap-safe), or can do nothing more. */
  const acked = (req: number): boolean => gone() || ((Atomics.load(bus, BUS.RESET_ACK) - req) | 0) >= 0;
  /**
   * Block until acked(req) or `ms` passed; returns acked(req). It polls for ACK_SPIN_MS first: a
   * running device answers within microseconds, sooner than this thread would wake from a futex.
   */
  const waitAck = (req: number, ms: number): boolean => {
    const start = performance.now();
    const end = start + ms;
    while (!acked(req) && performance.now() - start < ACK_SPIN_MS);
    for (;;) {
      const ack = Atomics.load(bus, BUS.RESET_ACK);
      if (acked(req)) return true;
      const left = end - performance.now();
      if (left <= 0) return false;
      Atomics.wait(bus, BUS.RESET_ACK, ack, left);
    }
  };
  const ackLater = (req: number): Promise<void> => new Promise<void>((resolve) => {
    const check = (): void => {
      const ack = Atomics.load(bus, BUS.RESET_ACK);
      if (acked(req)) return resolve();
      const w = Atomics.waitAsync(bus, BUS.RESET_ACK, ack);
      if (w.async) void w.value.then(check);
      else queueMicrotask(check);
    };
    check();
  });

  /** The interrupt line: pending bits swapped out and handed to the handler; then wait while 0. */
  const armIrq = watchWord(irq, 0, () => stopped, () => {
    if (handler === null) return null;
    const bits = Atomics.exchange(irq, 0, 0);
    if (bits !== 0) handler(bits);
    return 0;
  });
  /** The fault line: the last fault's record, once per change of the count; then wait while it stays. */
  const armFaults = watchWord(bus, BUS.FAULTS, () => stopped, () => {
    if (faultHandler === null) return null;
    const count = Atomics.load(bus, BUS.FAULTS);
    if (count !== faultsSeen) {
      faultsSeen = count;
      faultHandler({ addr: Atomics.load(bus, BUS.FAULT_ADDR) >>> 0, len: Atomics.load(bus, BUS.FAULT_LEN) >>> 0, write: Atomics.load(bus, BUS.FAULT_WRITE) === 1, domain: Atomics.load(bus, BUS.FAULT_DOMAIN) });
    }
    return count;
  });

  const ready = new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: unknown) => {
      if (m === 'ready') resolve();
      else msgHandler?.(m);
    });
    worker.once('exit', (code) => reject(new Error(`device ${opts.name} exited with code ${code} before it was ready`)));
  });
  // A device that fails later must not become an unhandled rejection of a promise nobody awaits.
  ready.catch(() => undefined);

  return {
    name: opts.name,
    iommu: opts.iommu ?? null,
    bar0: bar0i,
    irq,
    ready,
    onIrq(h) {
      handler = h;
      armIrq();
    },
    onMessage(h) {
      msgHandler = h;
    },
    dmaEpoch: () => Atomics.load(bus, BUS.EPOCH),
    onDmaFault(h) {
      faultHandler = h;
      armFaults();
    },
    attach(domain, loans = NO_LOANS, timeoutMs = ATTACH_TIMEOUT_MS) {
      if (stopped || gone()) throw new Error(`device ${opts.name} is stopped`);
      if (!waitAck(requestReset(1, domain, loans), timeoutMs)) {
        throw new Error(`device ${opts.name} did not acknowledge its reset within ${timeoutMs} ms`);
      }
    },
    detach() {
      const req = requestReset(0, NO_DOMAIN, NO_LOANS);
      return () => (waitAck(req, DETACH_SYNC_MS) ? true : ackLater(req));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // Wake the interrupt and fault waiters so their promises settle and the event loop can exit.
      Atomics.notify(irq, 0);
      Atomics.notify(bus, BUS.FAULTS);
      await worker.terminate(); // its exit event marked it gone
    },
  };
}

/**
 * The kernel's watch of one word of a device's shared memory (its interrupt line, its fault
 * line): `visit` runs in a microtask after arm() and again after every change of `arr[index]` from
 * the value it returned, one Atomics.waitAsync at a time; it delivers what it finds and returns
 * the value to wait on, or null to stop watching (no handler: arm() starts again). Nothing runs
 * once `stopped()` (stop notifies the word, so the pending wait settles and holds no handle on
 * the event loop). A `visit` that throws is run again in a microtask, its error left to propagate.
 * Returns arm(), which does nothing while a visit or a wait is pending.
 */
function watchWord(arr: Int32Array, index: number, stopped: () => boolean, visit: () => number | null): () => void {
  let armed = false;
  const run = (): void => {
    armed = false;
    if (stopped()) return;
    let expect: number | null | undefined;
    try {
      expect = visit();
    } finally {
      if (expect === undefined) {
        armed = true;
        queueMicrotask(run);
      } else if (expect !== null) {
        armed = true;
        const w = Atomics.waitAsync(arr, index, expect);
        if (w.async) void w.value.then(run);
        else queueMicrotask(run);
      }
    }
  };
  return () => {
    if (armed) return;
    armed = true;
    queueMicrotask(run);
  };
}
