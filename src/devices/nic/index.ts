/**
 * Kernel side of the NIC: validates a NIC configuration and starts the 82599-style model in its
 * own worker thread through the device bus (startDevice).
 *
 * Invariant: a configuration the worker could not run is refused here, synchronously, with the
 * reason (bad MAC, queue count, pktgen options; for tap: no addon, no /dev/net/tun, no
 * permission), so a worker never starts broken. The TAP descriptor is opened here, used by the
 * worker (threads share descriptors) and closed once the worker has stopped.
 */
import { startDevice, type DeviceHandle } from '../host.js';
import type { IommuTables } from '../iommu.js';
import { checkPktgenOptions, type PktgenOptions } from './backends.js';
import { checkIfname, closeTap, loadTapAddon, openTap, TUN_CLONE } from './tap.js';

export type { PktgenOptions } from './backends.js';
export { linePps } from './backends.js';

export type NicBackendConfig =
  | { kind: 'pktgen'; pktgen?: PktgenOptions }
  | { kind: 'loopback' }
  /** A Linux TAP interface (created if missing); needs the native addon, root or CAP_NET_ADMIN, /dev/net/tun. */
  | { kind: 'tap'; ifname?: string; clonePath?: string };

export const DEFAULT_TAP = 'rltap0';

/** The backend as the worker gets it: a tap comes as the descriptor the kernel side opened. */
export type NicWorkerBackend = Exclude<NicBackendConfig, { kind: 'tap' }> | { kind: 'tap'; ifname: string; fd: number };

export interface NicOptions {
  /** Device name (worker name). Default 'nic0'. */
  name?: string;
  /** Physical memory (the exchange heap's SharedArrayBuffer). */
  phys: SharedArrayBuffer;
  /** The IOMMU's tables (ExchangeHeap.iommuTables); without them the NIC reaches all of memory. */
  iommu?: IommuTables;
  backend: NicBackendConfig;
  /** RX/TX queue pairs, 1..16. Default 4. */
  queues?: number;
  /** MAC address, 6 bytes. Default 02:00:00:00:00:01. */
  mac?: readonly number[];
}

/** What the worker receives as DeviceWorkerData.config (validated, defaults filled in). */
export interface NicWorkerConfig {
  backend: NicWorkerBackend;
  queues: number;
  mac: number[];
}

export const MAX_QUEUES = 16;
export const DEFAULT_MAC: readonly number[] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/** Validates `opts`; a tap backend is checked as far as possible without attaching (name, addon). */
export function nicWorkerConfig(opts: NicOptions): Omit<NicWorkerConfig, 'backend'> {
  const queues = opts.queues ?? 4;
  if (!Number.isInteger(queues) || queues < 1 || queues > MAX_QUEUES) throw new RangeError(`nic: queues ${queues} not in 1..${MAX_QUEUES}`);
  const mac = [...(opts.mac ?? DEFAULT_MAC)];
  if (mac.length !== 6 || mac.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) throw new RangeError('nic: mac must be 6 bytes');
  if (mac[0]! & 1) throw new RangeError('nic: mac must be a unicast address');
  const be = opts.backend;
  if (be.kind === 'tap') {
    checkIfname(be.ifname ?? DEFAULT_TAP);
    loadTapAddon();
  }
  if (be.kind === 'pktgen') checkPktgenOptions(be.pktgen ?? {}); // throws on bad options, with the reason
  return { queues, mac };
}

/** Starts the NIC model; await `handle.ready` before touching its registers. */
export function startNic(opts: NicOptions): DeviceHandle {
  const cfg = nicWorkerConfig(opts);
  const start = (backend: NicWorkerBackend): DeviceHandle => startDevice({
    name: opts.name ?? 'nic0',
    workerUrl: new URL('./worker.js', import.meta.url),
    phys: opts.phys,
    ...(opts.iommu ? { iommu: opts.iommu } : {}),
    config: { ...cfg, backend } satisfies NicWorkerConfig,
  });
  const be = opts.backend;
  if (be.kind !== 'tap') return start(be);
  const tap = openTap(be.ifname ?? DEFAULT_TAP, be.clonePath ?? TUN_CLONE);
  try {
    const h = start({ kind: 'tap', ifname: tap.name, fd: tap.fd });
    let open = true;
    return {
      ...h,
      async stop() {
        try {
          await h.stop();
        } finally {
          // Once only: a descriptor number closed twice could be someone else's by then.
          if (open) closeTap(tap.fd);
          open = false;
        }
      },
    };
  } catch (e) {
    closeTap(tap.fd);
    throw e;
  }
}
