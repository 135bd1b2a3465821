/**
 * The block-device abstraction the file system uses (what a disk driver domain offers).
 *
 * A device has `blockCount` sectors of `blockSize` bytes (e.g. 512 or 4096). The fs reads and
 * writes whole fs blocks of BSIZE bytes = BSIZE / blockSize sectors, into and out of exchange-heap
 * buffers (DmaBytes) it allocates once with an `Alloc`.
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
  /** Read `count` (default 1) sectors from `lba` into `buf` from offset 0. */
  read(lba: number, buf: DmaBytes, count?: number): Promise<void>;
  /** Write `count` (default 1) sectors from `buf` (offset 0) at `lba`. */
  write(lba: number, buf: DmaBytes, count?: number): Promise<void>;
  /** Make every completed write durable. */
  flush(): Promise<void>;
}

/** Allocates an exchange-heap byte buffer. */
export type Alloc = (bytes: number) => DmaBytes;
