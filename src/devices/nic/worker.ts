/**
 * Worker entry of the NIC model: builds the model and its backend from DeviceWorkerData, reports
 * 'ready', then runs the device loop until the worker is terminated.
 *
 * The loop: one model step per iteration (registers, TX rings, backend RX, publish). With no work
 * it adapts to how recently it last did work (like NAPI), so that a driver under traffic never pays
 * for an Atomics.notify (a system call, and a thread wake-up for the device) per doorbell:
 *  - busy (work within BUSY_POLL_MS): it polls the WAKE word and steps again;
 *  - warm (work within WARM_MS): it naps in Atomics.wait for NAP_MS at a time with PARKED still 0,
 *    so drivers skip the notify and a doorbell is seen within a nap; little CPU while the driver's
 *    thread is descheduled. Unannounced on purpose: announced naps (PARKED = 1, so doorbells
 *    notify) made a frame sent 10 ms after the last come back in ~1.4 ms instead of ~0.12 on a
 *    2-vCPU VM (`lull-latency.js 10`, without bus.ringWake's hand-off; with it, ~0.15: no
 *    better): a notified thread often waited for the polling driver's CPU until the next
 *    scheduler tick, while a timed nap ended on time;
 *  - cold: it spins briefly and parks in Atomics.wait (waitWake, PARKED = 1), so an idle NIC costs
 *    no CPU; the doorbell that notifies it also hands it the driver's CPU for a moment
 *    (bus.ringWake). A paced generator or a tap parks at most a millisecond, because frames
 *    keep arriving without a doorbell.
 * A doorbell rung during a step is never lost: a step that did work is followed by another at
 * once, and the WAKE value an idle step waits on was read before that step began.
 * Between steps (its DMA boundary) it services the bus: a function reset requested by the kernel
 * is a model reset, and right after a reset or with bus mastering off it does no step at all
 * (src/devices/bus.ts). Every DMA of the model (descriptor fetches, frame copies, write-backs,
 * TX status) happens inside step(), after the bus check: no DMA path outside it.
 */
import { workerData, parentPort } from 'node:worker_threads';
import { deviceBus, raiseIrq, serviceBus, waitWake, WAKE_WORD, type DeviceWorkerData } from '../bus.js';
import { createIommu } from '../iommu.js';
import { Loopback, Pktgen, Tap } from './backends.js';
import { NicModel, type Backend } from './model.js';
import { loadTapAddon } from './tap.js';
import type { NicWorkerConfig } from './index.js';

const SPINS = 20000;
/** Keep polling (never sleep) this long after the last step that did work. */
const BUSY_POLL_MS = 0.5;
/** WAKE polls between two steps while busy-polling. */
const POLL_CHUNK = 4096;
/** Then nap (sleep unannounced, NAP_MS at a time) until this long after the last work. */
const WARM_MS = 50;
const NAP_MS = 0.1;
const IDLE_PARK_MS = 100;
const PACED_PARK_MS = 1;

const data = workerData as DeviceWorkerData;
const cfg = data.config as NicWorkerConfig;
const bar0 = new Int32Array(data.bar0);
const irq = new Int32Array(data.irq);
const bus = deviceBus(data);
const iommu = createIommu(data.iommu, bus);
const model = new NicModel({ phys: data.phys, bar0, irq, queues: cfg.queues, mac: cfg.mac, iommu }, raiseIrq);
/** A function reset of the bus: the model to its power-on state, the IOMMU to the domain now attached. */
const resetModel = (): void => {
  model.reset();
  iommu.bind();
};

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
  } else {
    const idle = performance.now() - lastWork;
    if (idle < BUSY_POLL_MS) {
      seen = pollWake(seen); // then step again: a paced backend's frames need no doorbell
    } else if (idle < WARM_MS) {
      Atomics.wait(bar0, WAKE_WORD, seen, NAP_MS);
      seen = Atomics.load(bar0, WAKE_WORD);
    } else {
      seen = waitWake(bar0, bus, seen, SPINS, parkMs);
    }
  }
}
