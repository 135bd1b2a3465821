/**
 * Worker entry of the NIC model: builds the model and its backend from DeviceWorkerData, reports
 * 'ready', then runs the device loop until the worker is terminated.
 *
 * The loop: one model step per iteration (registers, TX rings, backend RX, publish). With no work
 * it first polls the WAKE word for as long as it did work within the last BUSY_POLL_MS (a driver
 * under traffic rings again within microseconds: parked, every doorbell would cost the driver an
 * Atomics.notify, a system call, and the device a wake-up); only then does it spin briefly and park
 * in Atomics.wait (waitWake), so an idle NIC costs no CPU. A paced generator or a tap parks at
 * most a millisecond, because frames keep arriving without a doorbell.
 * The WAKE value is read before the step, so a doorbell rung during the step is never lost.
 * Between steps (its DMA boundary) it services the bus: a function reset requested by the kernel
 * is a model reset, and right after a reset or with bus mastering off it does no step at all
 * (src/devices/bus.ts). Every DMA of the model (descriptor fetches, frame copies, write-backs,
 * TX status) happens inside step(), after the bus check: no DMA path outside it.
 */
import { workerData, parentPort } from 'node:worker_threads';
import { raiseIrq, serviceBus, waitWake, WAKE_WORD, type DeviceWorkerData } from '../bus.js';
import { Loopback, Pktgen, Tap } from './backends.js';
import { NicModel, type Backend } from './model.js';
import { loadTapAddon } from './tap.js';
import type { NicWorkerConfig } from './index.js';

const SPINS = 20000;
/** Keep polling (never park) this long after the last step that did work. */
const BUSY_POLL_MS = 0.5;
/** WAKE polls between two steps while busy-polling. */
const POLL_CHUNK = 4096;
const IDLE_PARK_MS = 100;
const PACED_PARK_MS = 1;

const data = workerData as DeviceWorkerData;
const cfg = data.config as NicWorkerConfig;
const bar0 = new Int32Array(data.bar0);
const irq = new Int32Array(data.irq);
const bus = new Int32Array(data.bus);
const model = new NicModel({ phys: data.phys, bar0, irq, queues: cfg.queues, mac: cfg.mac }, raiseIrq);
const resetModel = (): void => model.reset();

function makeBackend(c: NicWorkerConfig['backend']): Backend {
  switch (c.kind) {
    case 'pktgen': return new Pktgen(c.pktgen ?? {}, cfg.mac);
    case 'loopback': return new Loopback();
    case 'tap': return new Tap(loadTapAddon(), c.fd);
  }
}
const backend = makeBackend(cfg.backend);
const parkMs = backend.busy ? PACED_PARK_MS : IDLE_PARK_MS;

parentPort!.postMessage('ready');

/** Polls WAKE up to POLL_CHUNK times for a value other than `seen`; returns WAKE's value. */
function pollWake(seen: number): number {
  for (let i = 0; i < POLL_CHUNK; i++) {
    const v = Atomics.load(bar0, WAKE_WORD);
    if (v !== seen) return v;
  }
  return seen;
}

let seen = Atomics.load(bar0, WAKE_WORD);
let lastWork = performance.now();
for (;;) {
  let work = 0;
  try {
    if (serviceBus(bus, irq, resetModel)) work = model.step(backend, performance.now());
  } catch (e) {
    // A model bug must not take the device down: record it, report it, keep serving.
    model.internalError();
    parentPort!.postMessage({ type: 'error', message: String((e as Error)?.stack ?? e) });
  }
  if (work !== 0) {
    lastWork = performance.now();
    seen = Atomics.load(bar0, WAKE_WORD);
  } else if (performance.now() - lastWork < BUSY_POLL_MS) {
    seen = pollWake(seen); // then step again: a paced backend's frames need no doorbell
  } else {
    seen = waitWake(bar0, seen, SPINS, parkMs);
  }
}
