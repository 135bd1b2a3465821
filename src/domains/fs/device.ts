/**
 * The block-device abstraction the file system uses (what a disk driver domain offers).
 *
 * A device has `blockCount` sectors of `blockSize` bytes (e.g. 512 or 4096). The fs reads and
 * writes whole fs blocks of BSIZE bytes = BSIZE / blockSize sectors, into and out of exchange-heap
 * buffers (DmaBytes) it allocates once with an `Alloc`.
 *
 * Buffer handles: a transfer may MOVE the buffer (a BDev request carries its buffer to the driver
 * and back as a fresh handle), so `read` and `write` resolve with the handle to use from then on
 * (host devices return the same one). On failure they throw; a `DeviceError` names the handle to
 * use from then on, or null when the buffer was lost (a dead driver kept it) — `afterFailure`
 * turns either case into a usable buffer. Buffers the fs no longer needs go back with `free`.
 * A write of a whole buffer (count · blockSize = its byteLength) never moves it, so the fs may
 * write a buffer it was only lent (ordered-mode file data straight from the caller's buffer).
 *
 * Invariants a device must keep for the fs's crash consistency: a write that resolved has been
 * issued in order after all writes that resolved before it; `flush()` resolves only when every
 * write that resolved before it is durable.
 */
import type { DmaBytes } from '../../runtime/types.js';

export interface BlockDevice {
  /** Sector size in bytes. */
  readonly blockSize: number;
  /** Number of sectors. */
  readonly blockCount: number;
  /** Read `count` (default 1) sectors from `lba` into `buf` from offset 0; the handle to use afterwards. */
  read(lba: number, buf: DmaBytes, count?: number): Promise<DmaBytes>;
  /** Write `count` (default 1) sectors from `buf` (offset 0) at `lba`; the handle to use afterwards. */
  write(lba: number, buf: DmaBytes, count?: number): Promise<DmaBytes>;
  /** Make every completed write durable. */
  flush(): Promise<void>;
  /** Release a buffer the fs allocated (or a handle read/write returned for it). */
  free(buf: DmaBytes): void;
}

/** Allocates an exchange-heap byte buffer. */
export type Alloc = (bytes: number) => DmaBytes;

/** A failed transfer: `buf` is the caller's buffer from now on (null: lost with the device). */
export class DeviceError extends Error {
  constructor(message: string, readonly buf: DmaBytes | null) {
    super(message);
    this.name = 'DeviceError';
  }
}

/**
 * The buffer to keep using after a transfer of `old` (`size` bytes) threw `e`: still `old`, the
 * one the error names, or a fresh one. (A revoked handle's byteLength would be an ownership
 * violation, hence `size`.)
 */
export function afterFailure(e: unknown, old: DmaBytes, size: number, alloc: Alloc): DmaBytes {
  if (old.valid) return old;
  if (e instanceof DeviceError && e.buf !== null && e.buf.valid) return e.buf;
  return alloc(size);
}
