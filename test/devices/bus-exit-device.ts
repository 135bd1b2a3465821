/**
 * A minimal device for bus-exit.test.ts: takes its bus words as every device model does
 * (deviceBus), says it is ready, and stays in the middle of its work (its DMA epoch odd: it never
 * parks) until word 0 of BAR0 reads 1; then its model throws (a bug), which ends its thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { deviceBus, type DeviceWorkerData } from '../../src/devices/bus.js';

const data = workerData as DeviceWorkerData;
deviceBus(data);
const bar0 = new Int32Array(data.bar0);
parentPort!.postMessage('ready');
while (Atomics.load(bar0, 0) !== 1) Atomics.wait(bar0, 0, 0);
throw new Error('device model bug');
