/**
 * Kernel side of the device bus: start a device model in its own worker thread, hand it physical
 * memory, its BAR0 and its interrupt line, and deliver its interrupts.
 *
 * Interrupt delivery: one Atomics.waitAsync per device on the interrupt word; when it fires the
 * pending bits are swapped out (Atomics.exchange) and passed to `onIrq`. The waiter is re-armed
 * after every delivery and dropped on stop, so a stopped device keeps no handle on the event loop.
 */
import { Worker } from 'node:worker_threads';
import { BAR0_BYTES, type DeviceWorkerData } from './bus.js';

export interface DeviceHandle {
  readonly name: string;
  readonly bar0: Int32Array;
  readonly irq: Int32Array;
  /** Set the interrupt sink (the kernel routes it to the driver domain that owns the device). */
  onIrq(handler: ((bits: number) => void) | null): void;
  /** Resolves once the device reported it is running (its worker posted 'ready'). */
  readonly ready: Promise<void>;
  /** Stop the device: terminate its worker and its interrupt waiter. */
  stop(): Promise<void>;
  /** Messages the model posts besides 'ready' (statistics, errors) reach here. */
  onMessage(handler: (msg: unknown) => void): void;
}

export interface StartDeviceOptions {
  name: string;
  /** URL of the compiled worker module of the device model. */
  workerUrl: URL;
  phys: SharedArrayBuffer;
  config: unknown;
}

export function startDevice(opts: StartDeviceOptions): DeviceHandle {
  const bar0 = new SharedArrayBuffer(BAR0_BYTES);
  const irqBuf = new SharedArrayBuffer(8);
  const irq = new Int32Array(irqBuf);
  const data: DeviceWorkerData = { phys: opts.phys, bar0, irq: irqBuf, config: opts.config };
  const worker = new Worker(opts.workerUrl, { workerData: data, name: opts.name });
  let handler: ((bits: number) => void) | null = null;
  let msgHandler: ((msg: unknown) => void) | null = null;
  let stopped = false;
  let armed = false;

  const arm = (): void => {
    if (stopped || armed || handler === null) return;
    const pending = Atomics.exchange(irq, 0, 0);
    if (pending !== 0) {
      queueMicrotask(() => deliver(pending));
      return;
    }
    const w = Atomics.waitAsync(irq, 0, 0);
    if (!w.async) {
      queueMicrotask(() => { armed = false; arm(); });
      armed = true;
      return;
    }
    armed = true;
    void w.value.then(() => {
      armed = false;
      if (stopped) return;
      const bits = Atomics.exchange(irq, 0, 0);
      if (bits !== 0) deliver(bits);
      else arm();
    });
  };
  const deliver = (bits: number): void => {
    try {
      handler?.(bits);
    } finally {
      arm();
    }
  };

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
    bar0: new Int32Array(bar0),
    irq,
    ready,
    onIrq(h) {
      handler = h;
      arm();
    },
    onMessage(h) {
      msgHandler = h;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // Wake the interrupt waiter so its promise settles and the event loop can exit.
      Atomics.notify(irq, 0);
      await worker.terminate();
    },
  };
}
