/**
 * The NVMe file backend's optional native data path (fileio.node, compiled from fileio.c at build
 * time by fileio-build.ts): a burst of reads copied from the memory-mapped image in one call and a
 * burst of writes as pwritev calls (preadv too where the image does not map).
 *
 * Invariants: loading never throws; when the addon is missing or does not load, loadFileIo returns
 * null with the reason, and the controller moves data with fs.readSync/writeSync as before (same
 * results, slower); the addon is loaded at most once per thread. REDLEAF_NVME_FILEIO=0 forces that
 * fallback, REDLEAF_NVME_FILEIO=pread the addon's preadv/pwritev path without mapping (to measure
 * or test them).
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
  /** Map the file's first `bytes` bytes shared, read-only; or why it does not map. */
  map(fd: number, bytes: number): FileMapping | string;
  /** Reads as transfer does them, as copies from the mapping to phys (an access the file no longer backs fails the op). */
  copy(mapping: FileMapping, phys: Uint8Array, ops: Float64Array, count: number): number;
}

/** An image file mapping made by FileIo.map (opaque; unmapped when collected). */
export type FileMapping = { readonly __brand: 'FileMapping' };

/** Whether the controller may map image files (the addon loaded and REDLEAF_NVME_FILEIO is not `pread`). */
export function mappingAllowed(): boolean {
  return process.env.REDLEAF_NVME_FILEIO !== 'pread';
}

/** One line for reports: how the controller moves a file image's data on this machine and setting. */
export function describeDataPath(): string {
  const { io, why } = loadFileIo();
  if (!io) return `fs.readSync/writeSync (${why})`;
  if (!mappingAllowed()) return 'batched native preadv/pwritev (fileio.node; mapping disabled by REDLEAF_NVME_FILEIO=pread)';
  return 'reads copied from the memory-mapped image, writes by pwritev, batched (fileio.node; preadv where the image does not map)';
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
