/**
 * Host helper: boot the storage stack — an NVMe controller model on an image file or RAM, the
 * nvme driver domain, optionally the block shadow in front of it — and hand back proxies. Used by
 * the `disk` CLI, the nvme benchmark and the storage tests.
 *
 * Invariants: on any failure the controller is stopped and (if this helper made it) the kernel
 * shut down before the error is thrown, so a caller never has to clean up a half-booted stack;
 * `stop()` is idempotent and leaves nothing holding the event loop.
 */
import { statSync } from 'node:fs';
import { Kernel } from '../kernel/kernel.js';
import { artifactPath } from '../kernel/paths.js';
import { startNvme, type NvmeDevice } from '../devices/nvme/index.js';
import type { BDev } from '../interfaces/index.js';
import type { RamDiskMemory } from '../domains/membdev/index.js';
import { formatSize } from './sizes.js';

export interface StorageOptions {
  /** Disk image file (raw blocks, no header). */
  image?: string;
  /** RAM disk of this many bytes (when no image). */
  ramBytes?: number;
  blockSize?: 512 | 4096;
  /** Refuse an image smaller than this many bytes. */
  minBytes?: number;
  mode?: 'poll' | 'interrupt';
  /** Load the block shadow in front of the driver (default false). */
  shadow?: boolean;
  queueDepth?: number;
  /** Further driver configuration (sys.config of the nvme domain, e.g. spinMs, timeoutMs). */
  driverConfig?: Record<string, string | number | boolean>;
  /** Test hook of the controller model: ms every Read/Write takes (see NvmeConfig). */
  commandDelayMs?: number;
  /** Test hook of the controller model: a power cut after this many Writes (see NvmeConfig). */
  powerCutAfterWrites?: number;
  /** A write-protected namespace even on a writable image (see NvmeConfig.readOnly); an image the
   *  process may not write is one anyway. */
  readOnly?: boolean;
  /** An existing kernel (else one is made, and shut down by stop()). */
  kernel?: Kernel;
  /** Physical memory for a kernel made here (default 256 MiB). */
  physBytes?: number;
  /** Driver domain instance name (default 'nvme'). */
  name?: string;
  deadlineMs?: number;
  log?: (domain: string, line: string) => void;
}

export interface Storage {
  kernel: Kernel;
  dev: NvmeDevice;
  /** Driver domain name (for kernel.injectFault / restart). */
  driverName: string;
  shadowName: string | null;
  /** The driver's BDev (one crossing). */
  driver: BDev;
  /** The shadow's BDev, or null without a shadow. */
  shadow: BDev | null;
  /** What callers should use: the shadow if loaded, else the driver. */
  bdev: BDev;
  stop(): Promise<void>;
}

export class StorageError extends Error {}


/** Check an image file before the controller sees it: clear errors for the usual mistakes. */
export function checkImage(path: string, blockSize: number, minBytes = 0): number {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new StorageError(code === 'ENOENT' ? `disk image ${path} does not exist (create one with: redleaf disk create ${path} --size 1G)` : `cannot read disk image ${path}: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new StorageError(`disk image ${path} is not a regular file`);
  if (st.size === 0) throw new StorageError(`disk image ${path} is empty`);
  if (st.size % blockSize !== 0) {
    throw new StorageError(`disk image ${path} is malformed or truncated: its size ${st.size} is not a multiple of the ${blockSize}-byte block size`);
  }
  if (st.size < minBytes) throw new StorageError(`disk image ${path} is too small: ${formatSize(st.size)}, at least ${formatSize(minBytes)} needed`);
  return st.size;
}

export async function bootStorage(o: StorageOptions = {}): Promise<Storage> {
  const blockSize = o.blockSize ?? 512;
  if (o.image !== undefined) checkImage(o.image, blockSize, o.minBytes ?? 0);
  const ownKernel = o.kernel === undefined;
  const kernel = o.kernel ?? new Kernel({ physBytes: o.physBytes ?? 256 << 20, ...(o.log ? { log: o.log } : {}) });
  let dev: NvmeDevice | null = null;
  const name = o.name ?? 'nvme';
  const shadowName = o.shadow ? `${name}_shadow` : null;
  const cleanup = async (): Promise<void> => {
    for (const n of [shadowName, name]) if (n !== null && kernel.get(n)?.live) kernel.terminate(n, 'stopped');
    await dev?.stop();
    if (ownKernel) kernel.shutdown();
  };
  try {
    dev = await startNvme({
      phys: kernel.heap.phys,
      iommu: kernel.heap.iommuTables,
      backend: o.image !== undefined ? { kind: 'file', path: o.image, blockSize } : { kind: 'ram', bytes: o.ramBytes ?? 16 << 20, blockSize },
      name: `${name}-dev`,
      ...(o.powerCutAfterWrites !== undefined ? { powerCutAfterWrites: o.powerCutAfterWrites } : {}),
      ...(o.commandDelayMs !== undefined ? { commandDelayMs: o.commandDelayMs } : {}),
      ...(o.readOnly !== undefined ? { readOnly: o.readOnly } : {}),
    });
    const config: Record<string, string | number | boolean> = { ...o.driverConfig, mode: o.mode ?? 'poll' };
    if (o.queueDepth !== undefined) config.queueDepth = o.queueDepth;
    kernel.load(artifactPath('nvme'), { name, device: dev, config, ...(o.deadlineMs ? { deadlineMs: o.deadlineMs } : {}) });
    if (shadowName !== null) loadBlockShadow(kernel, name, shadowName);
  } catch (e) {
    await cleanup();
    throw e instanceof StorageError ? e : new StorageError((e as Error).message);
  }
  const driver = kernel.bind<BDev>(name);
  const shadow = shadowName !== null ? kernel.bind<BDev>(shadowName) : null;
  let stopped: Promise<void> | null = null;
  return {
    kernel, dev, driverName: name, shadowName, driver, shadow, bdev: shadow ?? driver,
    stop: () => (stopped ??= cleanup()),
  };
}

/**
 * Boot the in-memory block device domain (no controller) on `memory` (the whole buffer is the
 * disk, used in place) or on a fresh zeroed disk of `bytes` (default 16 MiB). The memory outlives
 * the domain: an instance restarted after a crash sees the same disk.
 */
export function bootMembdev(kernel: Kernel, opts: { bytes?: number; memory?: ArrayBuffer; blockSize?: 512 | 4096; name?: string } = {}): BDev {
  const config: Record<string, number> = {};
  if (opts.blockSize !== undefined) config.blockSize = opts.blockSize;
  const memory: RamDiskMemory = { buffer: opts.memory ?? new ArrayBuffer(opts.bytes ?? 16 << 20) };
  const d = kernel.load(artifactPath('membdev'), { name: opts.name ?? 'membdev', imports: [{ object: memory }], config });
  return kernel.bind<BDev>(d);
}

/** Load the block shadow (instance `shadowName`) in front of the live BDev driver domain `driverName`. */
export function loadBlockShadow(kernel: Kernel, driverName: string, shadowName = `${driverName}_shadow`): BDev {
  const d = kernel.load(artifactPath('bdev_shadow'), { name: shadowName, imports: [{ supervise: driverName }] });
  return kernel.bind<BDev>(d);
}
