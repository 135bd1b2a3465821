/**
 * Kernel side of the NVMe controller model: start it in its worker thread and read its statistics.
 *
 * Conventions beyond shared/specs/nvme.md that a host of this model relies on:
 *  - INTMS is the live interrupt mask word: set bits with Atomics.or(bar0, INTMS, bits); clear them
 *    by Atomics.or(bar0, INTMC, bits) and ringing WAKE (the device consumes INTMC, clears those mask
 *    bits and raises any vector that completed while masked).
 *  - Statistics: u32 words at BAR0 byte STATS_OFFSET (0x8000), in STAT_NAMES order; NvmeDevice.stats()
 *    reads them.
 *  - Test hooks: NvmeDevice.failEnables(n) breaks the next n bring-ups (controller fatal status);
 *    the commandDelayMs option makes every Read/Write slow, holding commands in flight.
 *  - Bus ownership (attach/detach, function reset) as for every device: src/devices/bus.ts.
 *  - A file image the process may not write (EACCES, EPERM, EROFS on opening it for writing), or
 *    any backend with the readOnly option, is a write-protected namespace (NvmeConfig.readOnly):
 *    the image is then opened read-only, so no write can reach it whatever the model does.
 * Invariant: startNvme either resolves with a running controller or rejects with a message naming
 * the backend and the problem, having stopped the worker; it never waits forever.
 */
import { closeSync, openSync } from 'node:fs';
import { startDevice, type DeviceHandle } from '../host.js';
import type { IommuTables } from '../iommu.js';
import { WAKE_WORD } from '../bus.js';
import { FAIL_ENABLES_WORD, STAT_NAMES, STATS_WORD, type NvmeBackend, type NvmeConfig, type NvmeStats } from './regs.js';

export * from './regs.js';

export interface StartNvmeOptions extends NvmeConfig {
  /** Physical memory (the exchange heap's SharedArrayBuffer). */
  phys: SharedArrayBuffer;
  /** The IOMMU's tables (ExchangeHeap.iommuTables); without them the controller reaches all of memory. */
  iommu?: IommuTables;
  backend: NvmeBackend;
  /** Device name (worker thread name); default 'nvme0'. */
  name?: string;
  /** How long the worker may take to come up; default 10 s. */
  startTimeoutMs?: number;
}

export interface NvmeDevice extends DeviceHandle {
  /** Word index of BAR0's WAKE word, for the driver. */
  readonly wakeWord: number;
  /** Snapshot of the controller's counters (u32, wrapping). */
  stats(): NvmeStats;
  /** The namespace is write protected (asked for, or the image file may not be written). */
  readonly readOnly: boolean;
  /** Test hook: the next `n` enables (Infinity: all) fail with controller fatal status (see FAIL_ENABLES_OFFSET). */
  failEnables(n: number): void;
}

export async function startNvme(opts: StartNvmeOptions): Promise<NvmeDevice> {
  const name = opts.name ?? 'nvme0';
  const config: NvmeConfig = { backend: opts.backend };
  if (opts.powerCutAfterWrites !== undefined) config.powerCutAfterWrites = opts.powerCutAfterWrites;
  if (opts.serial !== undefined) config.serial = opts.serial;
  if (opts.commandDelayMs !== undefined) {
    if (!(opts.commandDelayMs >= 0 && opts.commandDelayMs < 60_000)) throw new RangeError(`${name}: commandDelayMs ${opts.commandDelayMs} is not a delay in ms below 60000`);
    config.commandDelayMs = opts.commandDelayMs;
  }
  const what = opts.backend.kind === 'file' ? `image ${opts.backend.path}` : 'RAM disk';
  let readOnly = opts.readOnly ?? false;
  if (opts.backend.kind === 'file') {
    try {
      ({ fd: config.fd, readOnly } = openImage(opts.backend.path, readOnly));
    } catch (e) {
      throw new Error(`${name} (${what}): cannot open image file ${opts.backend.path}: ${(e as Error).message}`);
    }
  }
  if (readOnly) config.readOnly = true;
  const fd = config.fd;
  const handle = startDevice({ name, workerUrl: new URL('./worker.js', import.meta.url), phys: opts.phys, ...(opts.iommu ? { iommu: opts.iommu } : {}), config });
  const stop = async (): Promise<void> => {
    await handle.stop();
    if (fd !== undefined) closeSync(fd);
  };
  let timer: NodeJS.Timeout | undefined;
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not become ready within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([handle.ready, timeout]);
  } catch (e) {
    await stop();
    throw new Error(`${name} (${what}): ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  return {
    ...handle,
    stop: (() => {
      let stopping: Promise<void> | null = null;
      return () => (stopping ??= stop()); // the descriptor is closed exactly once
    })(),
    wakeWord: WAKE_WORD,
    readOnly,
    failEnables(n) {
      if (!(n >= 0) || (n !== Infinity && !Number.isInteger(n))) throw new RangeError(`failEnables: ${n} is not a count`);
      Atomics.store(handle.bar0, FAIL_ENABLES_WORD, Math.min(n, 0x7fffffff));
    },
    stats() {
      const s = {} as NvmeStats;
      STAT_NAMES.forEach((n, i) => { s[n] = Atomics.load(handle.bar0, STATS_WORD + i) >>> 0; });
      return s;
    },
  };
}

/** Why opening a file for writing fails where opening it for reading may not: no write permission
 *  (EPERM also for an immutable file), a read-only file system. */
const WRITE_REFUSED = new Set(['EACCES', 'EPERM', 'EROFS']);

/** Open image `path` read-write, or read-only when `readOnly` or when writing is refused; says which. */
function openImage(path: string, readOnly: boolean): { fd: number; readOnly: boolean } {
  if (!readOnly) {
    try {
      return { fd: openSync(path, 'r+'), readOnly: false };
    } catch (e) {
      if (!WRITE_REFUSED.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
    }
  }
  return { fd: openSync(path, 'r'), readOnly: true };
}
