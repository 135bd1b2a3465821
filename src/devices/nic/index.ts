/**
 * Kernel side of the NIC: validates a NIC configuration and starts the 82599-style model in its
 * own worker thread through the device bus (startDevice).
 *
 * Invariant: a configuration the worker could not run is refused here, synchronously, with the
 * reason (bad MAC, queue count, pktgen options, tap unavailable), so a worker never starts broken.
 */
import { startDevice, type DeviceHandle } from '../host.js';
import { Pktgen, tapUnavailable, type PktgenOptions } from './backends.js';

export type { PktgenOptions } from './backends.js';
export { linePps } from './backends.js';

export type NicBackendConfig =
  | { kind: 'pktgen'; pktgen?: PktgenOptions }
  | { kind: 'loopback' }
  | { kind: 'tap'; ifname?: string };

export interface NicOptions {
  /** Device name (worker name). Default 'nic0'. */
  name?: string;
  /** Physical memory (the exchange heap's SharedArrayBuffer). */
  phys: SharedArrayBuffer;
  backend: NicBackendConfig;
  /** RX/TX queue pairs, 1..16. Default 4. */
  queues?: number;
  /** MAC address, 6 bytes. Default 02:00:00:00:00:01. */
  mac?: readonly number[];
}

/** What the worker receives as DeviceWorkerData.config (validated, defaults filled in). */
export interface NicWorkerConfig {
  backend: NicBackendConfig;
  queues: number;
  mac: number[];
}

export const MAX_QUEUES = 16;
export const DEFAULT_MAC: readonly number[] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

export function nicWorkerConfig(opts: NicOptions): NicWorkerConfig {
  const queues = opts.queues ?? 4;
  if (!Number.isInteger(queues) || queues < 1 || queues > MAX_QUEUES) throw new RangeError(`nic: queues ${queues} not in 1..${MAX_QUEUES}`);
  const mac = [...(opts.mac ?? DEFAULT_MAC)];
  if (mac.length !== 6 || mac.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) throw new RangeError('nic: mac must be 6 bytes');
  if (mac[0]! & 1) throw new RangeError('nic: mac must be a unicast address');
  const be = opts.backend;
  if (be.kind === 'tap') throw new Error(tapUnavailable(be.ifname ?? 'tap0'));
  if (be.kind === 'pktgen') new Pktgen(be.pktgen ?? {}, mac); // throws on bad options, with the reason
  return { backend: be, queues, mac };
}

/** Starts the NIC model; await `handle.ready` before touching its registers. */
export function startNic(opts: NicOptions): DeviceHandle {
  return startDevice({
    name: opts.name ?? 'nic0',
    workerUrl: new URL('./worker.js', import.meta.url),
    phys: opts.phys,
    config: nicWorkerConfig(opts),
  });
}
