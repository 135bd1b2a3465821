/**
 * The NIC model's wire side: pktgen (a UDP/IPv4 traffic generator and sink), loopback (what is
 * sent comes back) and tap (a Linux TAP interface, through the native addon of tap.ts).
 *
 * Invariants: backends never allocate per frame. pktgen precomputes one frame template and, per
 * flow, the source address, port, IPv4 header checksum and RSS hash, so generating a frame is one
 * template copy plus a 6-byte patch; paced generation follows the wall clock, and frames arriving
 * while the target ring is full are counted in MPC exactly as on the wire.
 */
import type { Backend, NicModel } from './model.js';
import { toeplitz } from './rss.js';
import { MAX_FRAME, MIN_FRAME, PTYPE_IPV4, PTYPE_UDP, RSS_TYPE_UDP_IPV4 } from './regs.js';
import type { TapAddon } from './tap.js';

export interface PktgenOptions {
  /** Bytes of each generated frame as the driver sees it (FCS stripped), 60..1514. Default 60. */
  frameSize?: number;
  /** Distinct flows (source address and port pairs), 1..2^22. Default 1024. */
  flows?: number;
  /**
   * Frames per second (above 0, at most line rate), 'line' for 10 GbE line rate (a frame occupies
   * frameSize + 4 FCS + 8 preamble + 12 gap bytes on the wire: 14.88 Mpps for minimum-size
   * frames), or 'unpaced' to fill every free descriptor as fast as the model can. Default 'unpaced'.
   */
  rate?: 'line' | 'unpaced' | number;
}

export const MAX_ETH_FRAME = 1514;
const LINE_BPS = 10e9;
/** Pktgen's source MAC (locally administered); its frames go to the NIC's own MAC. */
const SRC_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
const DST_IP = 0x0a010001; // 10.1.0.1
const DST_PORT = 9000;
const SRC_IP_BASE = 0x0a000001; // 10.0.0.1 + flow
const UNPACED_BATCH = 256;
/**
 * A paced generator that fell behind the clock (worker descheduled) catches up by at most 100 ms
 * of arrivals (and at least this many frames), so a long stall does not turn into a burst: that is
 * the device's packet buffer, and arrivals beyond it overflow and are counted missed (MPC), as on
 * a real NIC whose FIFO fills while its DMA engine stalls. So MPC + received follows the clock.
 */
const MIN_CREDIT_CAP = 4096;

export function linePps(frameSize: number): number {
  return LINE_BPS / 8 / (Math.max(frameSize, MIN_FRAME) + 24);
}

function ipChecksum(h: Uint8Array, off: number): number {
  let s = 0;
  for (let i = 0; i < 20; i += 2) if (i !== 10) s += (h[off + i]! << 8) | h[off + i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Validates pktgen options (throws a RangeError naming the bad one); returns them resolved. */
export function checkPktgenOptions(opts: PktgenOptions): { size: number; flows: number; pps: number } {
  const size = opts.frameSize ?? MIN_FRAME;
  const flows = opts.flows ?? 1024;
  if (!Number.isInteger(size) || size < MIN_FRAME || size > MAX_ETH_FRAME) throw new RangeError(`pktgen frameSize ${size} not in ${MIN_FRAME}..${MAX_ETH_FRAME}`);
  if (!Number.isInteger(flows) || flows < 1 || flows > 1 << 22) throw new RangeError(`pktgen flows ${flows} not in 1..2^22`);
  const rate = opts.rate ?? 'unpaced';
  if (rate === 'unpaced') return { size, flows, pps: 0 };
  const line = linePps(size);
  if (rate === 'line') return { size, flows, pps: line };
  // A number is a paced rate: 0 would read as unpaced (pps 0), the opposite of what was asked;
  // above line rate the link cannot carry it, and a step would generate a 100 ms credit of it
  // (creditCap) in one loop: at absurd rates, hours with the device deaf to its driver.
  if (!(typeof rate === 'number' && rate > 0)) throw new RangeError(`pktgen rate ${String(rate)} invalid: frames per second above 0, 'line' or 'unpaced'`);
  if (rate > line) throw new RangeError(`pktgen rate ${rate} is above 10 GbE line rate for ${size}-byte frames (${Math.floor(line)} frames per second); ask for 'line' or 'unpaced'`);
  return { size, flows, pps: rate };
}

export class Pktgen implements Backend {
  readonly busy: boolean;
  readonly size: number;
  private readonly flows: number;
  private readonly template: Uint8Array;
  private readonly srcIp: Uint32Array;
  private readonly sport: Uint16Array;
  private readonly cksum: Uint16Array;
  private readonly hash: Uint32Array;
  private readonly ppms: number;
  private readonly creditCap: number;
  private flow = 0;
  private credit = 0;
  /**
   * The clock at the last poll; -1 before the first. Paced frames arrive from the first poll on:
   * the worker's clock starts at its own start, and a worker slow to boot (a loaded machine)
   * whose first step already found RX enabled once counted its whole boot as frames missed.
   */
  private last = -1;

  constructor(opts: PktgenOptions, mac: readonly number[]) {
    const { size, flows, pps } = checkPktgenOptions(opts);
    this.size = size;
    this.flows = flows;
    this.ppms = pps / 1000;
    this.creditCap = Math.max(MIN_CREDIT_CAP, this.ppms * 100);
    this.busy = pps > 0;

    const t = new Uint8Array(size);
    t.set(mac, 0);
    t.set(SRC_MAC, 6);
    t[12] = 0x08; // IPv4
    t[14] = 0x45;
    t[16] = (size - 14) >>> 8;
    t[17] = (size - 14) & 255;
    t[22] = 64; // TTL
    t[23] = 17; // UDP
    t[30] = DST_IP >>> 24; t[31] = (DST_IP >>> 16) & 255; t[32] = (DST_IP >>> 8) & 255; t[33] = DST_IP & 255;
    t[36] = DST_PORT >>> 8; t[37] = DST_PORT & 255;
    t[38] = (size - 34) >>> 8; t[39] = (size - 34) & 255; // UDP length; checksum 0 = none
    for (let i = 42; i < size; i++) t[i] = i & 255;
    this.template = t;

    this.srcIp = new Uint32Array(flows);
    this.sport = new Uint16Array(flows);
    this.cksum = new Uint16Array(flows);
    this.hash = new Uint32Array(flows);
    for (let f = 0; f < flows; f++) {
      const ip = (SRC_IP_BASE + f) >>> 0;
      const port = 1024 + (f & 0x7fff);
      t[26] = ip >>> 24; t[27] = (ip >>> 16) & 255; t[28] = (ip >>> 8) & 255; t[29] = ip & 255;
      this.srcIp[f] = ip;
      this.sport[f] = port;
      this.cksum[f] = ipChecksum(t, 14);
      this.hash[f] = toeplitz(ip, DST_IP, port, DST_PORT, true);
    }
  }

  poll(m: NicModel, now: number): number {
    if (!m.rxReady || !m.accepts(this.template, 0)) {
      this.last = now;
      this.credit = 0;
      return 0;
    }
    const paced = this.ppms > 0;
    let n = UNPACED_BATCH;
    if (paced) {
      if (this.last < 0) this.last = now;
      this.credit += (now - this.last) * this.ppms;
      this.last = now;
      if (this.credit > this.creditCap) {
        const overflow = Math.floor(this.credit - this.creditCap);
        m.missed(overflow);
        this.credit -= overflow;
      }
      n = Math.floor(this.credit);
      this.credit -= n;
    }
    const p = m.phys8;
    const size = this.size;
    const ptype = RSS_TYPE_UDP_IPV4 | PTYPE_IPV4 | PTYPE_UDP;
    let made = 0;
    for (let i = 0; i < n; i++) {
      const f = this.flow;
      const h = this.hash[f]!;
      const q = m.queueFor(h);
      if (!paced && m.rxFree(q) === 0) break;
      this.flow = f + 1 === this.flows ? 0 : f + 1;
      const a = m.rxClaim(q, size);
      if (a < 0) continue;
      p.set(this.template, a);
      const ip = this.srcIp[f]!;
      const ck = this.cksum[f]!;
      const sp = this.sport[f]!;
      p[a + 24] = ck >>> 8; p[a + 25] = ck & 255;
      p[a + 26] = ip >>> 24; p[a + 27] = (ip >>> 16) & 255; p[a + 28] = (ip >>> 8) & 255; p[a + 29] = ip & 255;
      p[a + 34] = sp >>> 8; p[a + 35] = sp & 255;
      m.rxCommit(q, size, h, ptype);
      made++;
    }
    return paced ? n : made;
  }

  /** The sink: the model already counted the frame in GPTC/GOTC (a runt as padded to MIN_FRAME). */
  transmit(): void {}
}

export class Loopback implements Backend {
  readonly busy = false;
  poll(): number {
    return 0;
  }
  transmit(m: NicModel, b: Uint8Array, off: number, len: number): void {
    m.receive(b, off, len);
  }
}

/** Frames read from the TAP descriptor per model step, at most. */
const TAP_BATCH = 64;

/**
 * A Linux TAP interface as the wire: frames the host sends to the interface arrive on RX (padded
 * to the 60-byte minimum, as an Ethernet wire pads them), frames the NIC transmits are written to
 * it. The descriptor is non-blocking: an empty read ends the poll, a write the host refuses
 * (queue full, interface down) drops the frame and is counted in txDropped, like a wire without
 * carrier. Frames arrive without a doorbell, so the worker must poll (busy).
 */
export class Tap implements Backend {
  readonly busy = true;
  txDropped = 0;
  private readonly frame = new Uint8Array(MAX_FRAME);

  constructor(private readonly io: TapAddon, private readonly fd: number) {}

  poll(m: NicModel): number {
    let n = 0;
    while (n < TAP_BATCH) {
      const len = this.io.read(this.fd, this.frame, 0, this.frame.length);
      if (len <= 0) break; // -EAGAIN: nothing waiting (other errors: try again next step)
      if (len < MIN_FRAME) this.frame.fill(0, len, MIN_FRAME);
      m.receive(this.frame, 0, Math.max(len, MIN_FRAME));
      n++;
    }
    return n;
  }

  transmit(_m: NicModel, b: Uint8Array, off: number, len: number): void {
    if (this.io.write(this.fd, b, off, len) !== len) this.txDropped++;
  }
}
