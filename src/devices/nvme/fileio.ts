/**
 * The NVMe file backend's optional native batch transfer (fileio.node, compiled from fileio.c at
 * build time by fileio-build.ts): a burst of commands' preads/pwrites in one call.
 *
 * Invariants: loading never throws; when the addon is missing or does not load, loadFileIo returns
 * null with the reason, and the controller moves data with fs.readSync/writeSync as before (same
 * results, slower); the addon is loaded at most once per thread. REDLEAF_NVME_FILEIO=0 forces the
 * fallback (to measure or test it).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Where the build puts the addon: beside this module. */
export const FILEIO_ADDON = fileURLToPath(new URL('./fileio.node', import.meta.url));

/** What fileio.node exports (see fileio.c). */
export interface FileIo {
  /** Run `count` (file position, physical address, length) triples of `ops` in order; returns how many were done completely. */
  transfer(fd: number, write: boolean, phys: Uint8Array, ops: Float64Array, count: number): number;
}

let loaded: { io: FileIo | null; why: string } | null = null;

/** The addon, or null and why it is not used. */
export function loadFileIo(): { io: FileIo | null; why: string } {
  if (loaded) return loaded;
  if (process.env.REDLEAF_NVME_FILEIO === '0') return (loaded = { io: null, why: 'disabled by REDLEAF_NVME_FILEIO=0' });
  if (!existsSync(FILEIO_ADDON)) return (loaded = { io: null, why: `${FILEIO_ADDON} was not built (needs a C compiler at npm run build)` });
  try {
    return (loaded = { io: createRequire(import.meta.url)(FILEIO_ADDON) as FileIo, why: 'loaded' });
  } catch (e) {
    return (loaded = { io: null, why: `${FILEIO_ADDON} does not load (${(e as Error).message})` });
  }
}
