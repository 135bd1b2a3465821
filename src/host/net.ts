/**
 * Host helper for the network path (issue 5): boots the NIC model on the kernel's physical memory,
 * the driver domain on it (or nullnet), optionally the NIC shadow, and optionally an app domain
 * (l2fwd, maglev) on top, and tears it all down again.
 *
 *   const net = await bootNet({ backend: { kind: 'pktgen' }, shadow: true, app: 'l2fwd' });
 *   net.app!.run('fwd', 32, 1000);
 *   await net.stop();
 *
 * Invariant: stop() shuts the app down (its buffers come back and are freed), terminates every
 * domain it loaded, stops the device, and shuts the kernel down if it created it, so node exits.
 */
import { join } from 'node:path';
import { Kernel } from '../kernel/kernel.js';
import { artifactPath } from '../kernel/paths.js';
import { startNic, type NicBackendConfig } from '../devices/nic/index.js';
import type { DeviceHandle } from '../devices/host.js';
import type { Net, NetApp, NetAppStats, NetIo, NetStats } from '../interfaces/index.js';
import type { RRef } from '../runtime/types.js';
import { ringWake } from '../devices/bus.js';
import { createNicCore, type NicCore, type NicCoreOptions } from '../domains/nic/core.js';

export interface NetBootOptions {
  /** Device backend, or 'nullnet' for the deviceless Net. */
  backend: NicBackendConfig | 'nullnet';
  /** Put nic_shadow between the driver and the app. */
  shadow?: boolean;
  app?: 'l2fwd' | 'maglev' | null;
  /** RX/TX queue pairs of the NIC and its driver (default 1). */
  queues?: number;
  /** Driver configuration (rxRing, txRing, rxBufSize, promiscuous, interrupts). */
  driver?: Record<string, string | number | boolean>;
  /** App configuration (pool, bufSize, txFrameSize, backends, flowSlots). */
  appConfig?: Record<string, string | number | boolean>;
  /** nullnet's frame size. */
  frameSize?: number;
  /** An existing kernel (otherwise one is created, and shut down by stop()). */
  kernel?: Kernel;
  physBytes?: number;
  deadlineMs?: number;
  /**
   * Directory to load the domain artifacts from (default: this build's dist/artifacts): another
   * build's, signed with the same key and built from the same interfaces and capabilities, for a
   * same-process A/B of domain code between two builds (probes/ab-net.ts).
   */
  artifacts?: string;
}

export interface NetBoot {
  kernel: Kernel;
  dev: DeviceHandle | null;
  /** Name of the domain exporting Net to the app (driver, shadow or nullnet). */
  netName: string;
  driverName: string | null;
  appName: string | null;
  /** Host-side proxies (the kernel as caller). */
  net: Net;
  app: NetApp | null;
  netStats(): Record<string, number>;
  appStats(): Record<string, number> | null;
  stop(): Promise<void>;
}

function readStruct<T>(kernel: Kernel, name: string, fn: (h: T) => T, fields: string[]): Record<string, number> {
  const h = kernel.kit.allocStruct(0, name) as T;
  const r = fn(h) as Record<string, unknown> & { drop(): void };
  const out: Record<string, number> = {};
  for (const f of fields) out[f] = Number(r[f]);
  r.drop();
  return out;
}

export const NET_STATS_FIELDS = ['rxPackets', 'rxBytes', 'txPackets', 'txBytes', 'rxMissed', 'rxErrors', 'rxRefused', 'txRefused', 'restarts', 'framesLost', 'txFramesLost', 'rxBuffersLost', 'buffersReplaced', 'lastRestartMs'];
export const APP_STATS_FIELDS = ['rxFrames', 'txFrames', 'rxBytes', 'dropped', 'poolNow', 'poolSize', 'flows', 'rpcErrors', 'loopLost', 'rxWaits'];

let seq = 0;

export async function bootNet(o: NetBootOptions): Promise<NetBoot> {
  const own = o.kernel === undefined;
  const kernel = o.kernel ?? new Kernel({ physBytes: o.physBytes ?? 128 << 20, log: () => {} });
  const tag = seq++ === 0 ? '' : `_${seq - 1}`;
  const artifact = (name: string): string => (o.artifacts === undefined ? artifactPath(name) : join(o.artifacts, `${name}.rldom`));
  let dev: DeviceHandle | null = null;
  const loaded: string[] = [];
  try {
    let netName: string;
    let driverName: string | null = null;
    if (o.backend === 'nullnet') {
      netName = `nullnet${tag}`;
      kernel.load(artifact('nullnet'), { name: netName, config: { frameSize: o.frameSize ?? 64 } });
      loaded.push(netName);
    } else {
      const queues = o.queues ?? 1;
      dev = startNic({ name: `nic0${tag}`, phys: kernel.heap.phys, iommu: kernel.heap.iommuTables, backend: o.backend, queues });
      await dev.ready;
      driverName = `nic${tag}`;
      kernel.load(artifact('nic'), { name: driverName, device: dev, config: { promiscuous: true, ...(o.driver ?? {}), queues }, deadlineMs: o.deadlineMs });
      loaded.push(driverName);
      netName = driverName;
      if (o.shadow) {
        netName = `nic_shadow${tag}`;
        kernel.load(artifact('nic_shadow'), { name: netName, imports: [{ supervise: driverName }], deadlineMs: o.deadlineMs });
        loaded.push(netName);
      }
    }
    let appName: string | null = null;
    if (o.app) {
      appName = `${o.app}${tag}`;
      kernel.load(artifact(o.app), { name: appName, imports: [netName], config: o.appConfig ?? {}, deadlineMs: o.deadlineMs ?? 5000 });
      loaded.push(appName);
    }
    const net = kernel.bind<Net>(netName);
    const app = appName ? kernel.bind<NetApp>(appName) : null;
    let stopped = false;
    return {
      kernel, dev, netName, driverName, appName, net, app,
      netStats: () => readStruct<NetStats>(kernel, 'NetStats', (h) => kernel.bind<Net>(netName).stats(h as never) as never, NET_STATS_FIELDS),
      appStats: () => (appName ? readStruct<NetAppStats>(kernel, 'NetAppStats', (h) => kernel.bind<NetApp>(appName!).stats(h as never) as never, APP_STATS_FIELDS) : null),
      async stop() {
        if (stopped) return;
        stopped = true;
        try {
          if (appName && kernel.get(appName)?.live) kernel.bind<NetApp>(appName).shutdown();
        } finally {
          for (const n of loaded.reverse()) kernel.terminate(n, 'shutdown');
          await dev?.stop();
          if (own) kernel.shutdown();
        }
      },
    };
  } catch (e) {
    for (const n of loaded.reverse()) kernel.terminate(n, 'shutdown');
    await dev?.stop();
    if (own) kernel.shutdown();
    throw e;
  }
}

/** A NetIo owned by the kernel (the host as caller) with deques and length arrays of `cap`. */
export function hostIo(kernel: Kernel, cap: number): RRef<NetIo> {
  const k = kernel.kit;
  const io = k.allocStruct(0, 'NetIo') as unknown as RRef<NetIo>;
  io.pkts = k.allocDeque(0, cap) as never;
  io.pktLens = k.allocArray(0, 'u32', cap) as never;
  io.collect = k.allocDeque(0, cap) as never;
  io.collectLens = k.allocArray(0, 'u32', cap) as never;
  return io;
}

/**
 * The NIC driver logic run in the host, not in a domain (the bench's driver path, device tests):
 * on BAR0 `bar0` with the bus's doorbell (bus.ringWake: a parked device is woken and handed the
 * CPU) and the host's clock; `o` sets the rest (queues, rings, ...).
 */
export function hostNicCore(bar0: Int32Array, alloc: NicCoreOptions['alloc'], o: Partial<NicCoreOptions> = {}): NicCore {
  return createNicCore({ bar0, wake: () => ringWake(bar0), alloc, now: () => performance.now(), ...o });
}
