/**
 * NVMe controller model: register map, limits, status codes and configuration shared by the
 * device worker and its kernel-side starter (src/devices/nvme/index.ts). Driver code never
 * imports this file (a driver may not import device code); it copies what it needs from the spec.
 *
 * Everything here follows /work/shared/specs/nvme.md. Additions: the vendor statistics block in
 * BAR0 at STATS_OFFSET, beyond the registers and doorbells of the spec; and a write-protected
 * namespace (NvmeConfig.readOnly), which the subset is silent on and which follows the NVMe base
 * specification (1.4, Namespace Write Protection; Linux's nvme.h and libnvme name the same fields):
 * Identify Namespace byte 99 NSATTR bit 0 "write protected", and a command that would change data
 * completes with generic status 20h "Namespace is Write Protected" (SC.NS_WRITE_PROTECTED). The
 * Namespace Write Protection Config feature (FID 84h) is not implemented, so Identify Controller
 * NWPC (byte 531) stays 0: the protection is the medium's (the image file), not host-settable.
 */

/** BAR0 32-bit word indices of the controller registers (byte offset / 4). */
export const REG = {
  CAP_LO: 0x00 / 4,
  CAP_HI: 0x04 / 4,
  VS: 0x08 / 4,
  INTMS: 0x0c / 4,
  INTMC: 0x10 / 4,
  CC: 0x14 / 4,
  CSTS: 0x1c / 4,
  AQA: 0x24 / 4,
  ASQ_LO: 0x28 / 4,
  ASQ_HI: 0x2c / 4,
  ACQ_LO: 0x30 / 4,
  ACQ_HI: 0x34 / 4,
} as const;

/** CSTS bits: ready, controller fatal status, shutdown status (SHST, 2 bits) and its "complete" value. */
export const CSTS_RDY = 1 << 0;
export const CSTS_CFS = 1 << 1;
export const CSTS_SHST_MASK = 3 << 2;
export const CSTS_SHST_COMPLETE = 2 << 2;

/** Doorbells start at 0x1000; with DSTRD = 0 each is one word: SQyTDBL then CQyHDBL. */
export const DOORBELL_WORD = 0x1000 / 4;
export const sqTailDoorbell = (qid: number): number => DOORBELL_WORD + 2 * qid;
export const cqHeadDoorbell = (qid: number): number => DOORBELL_WORD + 2 * qid + 1;

export const PAGE = 4096;
/** CAP.MQES: at most 1024 entries per queue (0-based). */
export const MQES = 1023;
/** CAP.TO in 500 ms units. The model is ready at once; the generous value covers a busy host. */
export const CAP_TO = 20;
/** I/O queue pairs the controller can allocate (qids 1..MAX_IO_QUEUES). */
export const MAX_IO_QUEUES = 64;
/** Identify controller MDTS: a transfer is at most 2^MDTS pages (4 MiB). */
export const MDTS = 10;
export const VERSION_1_4 = 0x00010400;

/** Status as the 15-bit CQE status field value: SC [7:0] | SCT [10:8]. */
export const SC = {
  SUCCESS: 0x00,
  INVALID_OPCODE: 0x01,
  INVALID_FIELD: 0x02,
  DATA_TRANSFER_ERROR: 0x04,
  INTERNAL_ERROR: 0x06,
  INVALID_NAMESPACE: 0x0b,
  /** NVMe 1.4 "Command Sequence Error" (outside the subset's table): Set Features Number of
   *  Queues after I/O queues were created. */
  COMMAND_SEQUENCE_ERROR: 0x0c,
  /** NVMe 1.4 "PRP Offset Invalid" (outside the subset's table): a PRP entry other than PRP1 and
   *  the list pointer in PRP2 with a non-zero offset in its page. */
  PRP_OFFSET_INVALID: 0x13,
  /** Generic 20h (NVMe 1.4, outside the subset): a Write to a write-protected namespace. */
  NS_WRITE_PROTECTED: 0x20,
  LBA_OUT_OF_RANGE: 0x80,
  /** SCT 1 (command specific). */
  INVALID_CQ: 0x100,
  INVALID_QID: 0x101,
  INVALID_QUEUE_SIZE: 0x102,
  /** SCT 1 0x0C, NVMe 1.4 "Invalid Queue Deletion": deleting a CQ that still has SQs. Outside the
   *  subset; any non-zero status is a failure to the driver. */
  INVALID_QUEUE_DELETION: 0x10c,
} as const;

export const ADMIN = {
  DELETE_SQ: 0x00,
  CREATE_SQ: 0x01,
  DELETE_CQ: 0x04,
  CREATE_CQ: 0x05,
  IDENTIFY: 0x06,
  SET_FEATURES: 0x09,
  GET_FEATURES: 0x0a,
} as const;

export const NVM = { FLUSH: 0x00, WRITE: 0x01, READ: 0x02 } as const;

export const FID_NUMBER_OF_QUEUES = 0x07;

/** Identify Namespace byte NSATTR (namespace attributes); bit 0: the namespace is write protected. */
export const ID_NS_NSATTR = 99;
export const NSATTR_WRITE_PROTECTED = 0x01;

/**
 * Vendor statistics, BAR0 bytes STATS_OFFSET.. (one u32 word each, wrapping), far above the last
 * doorbell (0x1000 + 8 * (MAX_IO_QUEUES + 1)). The device publishes them after every batch; the
 * kernel side reads them with Atomics.load (NvmeDevice.stats()).
 */
export const STATS_OFFSET = 0x8000;
export const STAT_NAMES = [
  'commands', // completions posted, admin and I/O
  'errors', // completions with non-zero status
  'reads', // Read commands completed successfully
  'writes', // Write commands acknowledged successfully (applied or dropped)
  'writesApplied', // Writes that reached the backend
  'writesDropped', // Writes acknowledged but lost to the simulated power cut
  'flushes', // Flush commands (a no-op after the power cut)
  'blocksRead',
  'blocksWritten', // blocks of applied writes
  'wakeups', // times the device loop left its park
  'transfers', // Read/Write data transfers with the backend (a coalesced run of commands is one)
] as const;
export type NvmeStatName = (typeof STAT_NAMES)[number];
export type NvmeStats = Record<NvmeStatName, number>;
export const STATS_WORD = STATS_OFFSET / 4;

/**
 * Test hook (vendor word, BAR0 byte FAIL_ENABLES_OFFSET, below the statistics): while it is
 * positive, each enable (CC.EN 0 -> 1) decrements it and fails with controller fatal status
 * (CSTS.CFS), as a controller that breaks during bring-up. A function reset leaves it alone (it
 * is the test bench's, not the function's). NvmeDevice.failEnables() sets it.
 */
export const FAIL_ENABLES_OFFSET = 0x7f00;
export const FAIL_ENABLES_WORD = FAIL_ENABLES_OFFSET / 4;

/** Backing store of the namespace. */
export type NvmeBackend =
  | { kind: 'file'; path: string; blockSize?: 512 | 4096 }
  | { kind: 'ram'; bytes: number; blockSize?: 512 | 4096 };

/** What the worker receives as DeviceWorkerData.config. */
export interface NvmeConfig {
  backend: NvmeBackend;
  /** After this many Write commands were applied, later Writes are acknowledged but lost and
   *  Flush does nothing (a power cut for crash-consistency tests). */
  powerCutAfterWrites?: number;
  /** Test hook: every Read and Write takes at least this many ms before its transfer (a slow
   *  device), so tests can hold commands in flight. */
  commandDelayMs?: number;
  /** A write-protected namespace: reads work, Writes complete with SC.NS_WRITE_PROTECTED and change
   *  nothing, Flush succeeds, Identify Namespace sets NSATTR_WRITE_PROTECTED. startNvme sets it when
   *  asked, or when the image file may not be opened for writing (it is then opened read-only). */
  readOnly?: boolean;
  /** Serial number reported by Identify controller (ASCII, at most 20 bytes). */
  serial?: string;
  /** File backend: the image's descriptor, opened by startNvme. File descriptors belong to the
   *  process, not the worker, so the kernel side opens and closes it (terminate would leak it). */
  fd?: number;
}
