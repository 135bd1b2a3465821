/**
 * Register map and descriptor fields of the emulated 82599-style NIC (specs/nic-82599.md), as
 * BAR0 word indices for the device model. The driver keeps its own copy (a driver may not import
 * device code); both follow the spec table.
 *
 * Emulation conventions beyond the spec (the spec defers to nvme.md's, plus these):
 *  - Clear-on-read registers (EICR, MPC, NIC_ERR) are read with Atomics.exchange(bar0, i, 0):
 *    the model cannot observe a plain read, so the reader clears what it read in one atomic step;
 *    the model only ever adds (Atomics.add / Atomics.or) to them.
 *  - EIMS holds the interrupt mask; software sets bits with Atomics.or(EIMS, bits). It clears them
 *    with Atomics.or(EIMC, bits), which the model folds into EIMS before its next interrupt
 *    decision, or, to have the effect at once (no race with a later EIMS set), directly with
 *    Atomics.and(EIMS, ~bits), as the driver does.
 *  - Model-specific registers at 0x10000 (outside the 82599 map) report refused driver input:
 *    NIC_ERR (cause bits below, clear on read), NIC_ERRCNT (cumulative count of refusals) and
 *    NIC_NQUEUES (queue pairs the model has, read-only).
 */

/** Byte offset to BAR0 word index. */
const w = (byteOff: number): number => byteOff >>> 2;

export const CTRL = w(0x00000);
export const CTRL_RST = 1 << 26;
export const STATUS = w(0x00008);
export const STATUS_LU = 1 << 7;
export const EICR = w(0x00800);
export const EIMS = w(0x00880);
export const EIMC = w(0x00888);

export const RDBAL = (n: number): number => w(0x01000 + 0x40 * n);
export const RDBAH = (n: number): number => w(0x01004 + 0x40 * n);
export const RDLEN = (n: number): number => w(0x01008 + 0x40 * n);
export const RDH = (n: number): number => w(0x01010 + 0x40 * n);
export const SRRCTL = (n: number): number => w(0x01014 + 0x40 * n);
export const RDT = (n: number): number => w(0x01018 + 0x40 * n);
export const RXDCTL = (n: number): number => w(0x01028 + 0x40 * n);
export const SRRCTL_BSIZE_MASK = 0x1f;
export const SRRCTL_DESCTYPE_SHIFT = 25;
export const SRRCTL_DESCTYPE_ADV_ONEBUF = 1;
export const XDCTL_ENABLE = 1 << 25;

export const RXCTRL = w(0x03000);
export const RXCTRL_RXEN = 1;
export const MPC = w(0x03fa0);
export const GPRC = w(0x04074);
export const GPTC = w(0x04080);
/** The 64-bit octet counters: low word here, high word at the next (published as a pair: model.ts publishCounter64). */
export const GORCL = w(0x04088);
export const GOTCL = w(0x04090);
export const DMATXCTL = w(0x04a80);
export const DMATXCTL_TE = 1;
export const FCTRL = w(0x05080);
export const FCTRL_MPE = 1 << 8;
export const FCTRL_UPE = 1 << 9;
export const FCTRL_BAM = 1 << 10;

export const TDBAL = (n: number): number => w(0x06000 + 0x40 * n);
export const TDBAH = (n: number): number => w(0x06004 + 0x40 * n);
export const TDLEN = (n: number): number => w(0x06008 + 0x40 * n);
export const TDH = (n: number): number => w(0x06010 + 0x40 * n);
export const TDT = (n: number): number => w(0x06018 + 0x40 * n);
export const TXDCTL = (n: number): number => w(0x06028 + 0x40 * n);

export const RAL0 = w(0x0a200);
export const RAH0 = w(0x0a204);
export const RAH_AV = 1 << 31;

export const NIC_ERR = w(0x10000);
export const NIC_ERRCNT = w(0x10004);
export const NIC_NQUEUES = w(0x10008);

/** NIC_ERR cause bits: what the model refused. */
export const ERR_RXQ_CFG = 1 << 0; // RX ring base not 128-aligned, RDLEN 0 / not a multiple of 128 / ring outside memory, SRRCTL invalid: RXDCTL.ENABLE cleared; or RDBAL/RDBAH/RDLEN/SRRCTL written while the queue is enabled: the ring in use is kept
export const ERR_TXQ_CFG = 1 << 1; // same for a TX ring (TDBAL/TDBAH/TDLEN): TXDCTL.ENABLE cleared, or the ring in use kept
export const ERR_RDT_RANGE = 1 << 2; // RDT beyond the ring: the write is ignored
export const ERR_TDT_RANGE = 1 << 3; // TDT beyond the ring: the write is ignored
export const ERR_RX_ADDR = 1 << 4; // RX buffer outside physical memory: write-back with RXE, PKT_LEN 0
export const ERR_RX_SIZE = 1 << 5; // frame larger than the RX buffer: write-back with RXE, PKT_LEN 0
export const ERR_TX_ADDR = 1 << 6; // TX buffer outside physical memory: frame dropped, DD still set
export const ERR_TX_LEN = 1 << 7; // DTALEN 0, or frame over 16 KiB: frame dropped, DD still set
export const ERR_TX_DESC = 1 << 8; // not an advanced data descriptor (DEXT 0 or DTYP != 0011)
export const ERR_DMA = 1 << 9; // the IOMMU refused a ring or buffer (not the driver's memory): as the *_CFG / *_ADDR causes, and a DMA fault to the kernel
export const ERR_INTERNAL = 1 << 15; // the model caught an exception of its own and kept running

/** Largest frame (and largest TX data buffer) the model accepts. */
export const MAX_FRAME = 16 * 1024;
/**
 * Shortest Ethernet frame on the wire, FCS excluded: a shorter transmitted frame is padded to it
 * with zeros (HLREG0.TXPADEN, set by default on the 82599), and frames arrive at least this long.
 */
export const MIN_FRAME = 60;
export const DESC_BYTES = 16;
export const RING_ALIGN = 128;

/** RX write-back, dword 2: extended status [19:0] and extended error [31:20]. */
export const RXD_STAT_DD = 1 << 0;
export const RXD_STAT_EOP = 1 << 1;
export const RXD_ERR_RXE = 1 << 29;
/** RX write-back, dword 0: RSS type [3:0] and packet type [16:4]. */
export const RSS_TYPE_TCP_IPV4 = 0x1;
export const RSS_TYPE_IPV4 = 0x2;
export const RSS_TYPE_UDP_IPV4 = 0x7;
export const PTYPE_IPV4 = 1 << 4;
export const PTYPE_TCP = 1 << 8;
export const PTYPE_UDP = 1 << 9;

/** TX read format, dword 2. */
export const TXD_DTYP_DATA = 0x3;
export const TXD_CMD_EOP = 1 << 24;
export const TXD_CMD_RS = 1 << 27;
export const TXD_CMD_DEXT = 1 << 29;
/** TX write-back, dword 3. */
export const TXD_STAT_DD = 1;
