/**
 * The network device interface (issue 5), after RedLeaf's `Net`: batched calls whose packet
 * buffers round-trip in RRefDeques, so one crossing carries a whole batch (RedLeaf: 32).
 *
 * A `NetIo` is the unit that crosses: a layout struct holding two deques and their frame lengths.
 * The caller moves it in and always gets it back (success, error value, or — through the NIC
 * shadow — after a driver crash), so no buffer is lost on any path (ARCHITECTURE §5):
 *  - `pkts` / `pktLens`: buffers going in. RX: free buffers to post (lengths ignored: pktLens is
 *    not read and may be null). TX: frames to send, `pktLens[i]` the length of the i-th frame from
 *    the front. What the driver did not take (ring full, refused) stays in `pkts`, lengths kept in
 *    the same convention.
 *  - `collect` / `collectLens`: buffers coming back, appended at the back. RX: filled buffers with
 *    their frame length (0 = a receive error: the buffer carries no frame). TX: frames whose
 *    transmission completed, with the length they were sent with (0 = not sent: a replacement the
 *    shadow handed back after a crash, see nic_shadow).
 *  - collectLens has at least the capacity of collect, a TX pktLens at least the length of pkts
 *    (a NetIo reused for both directions: give both the capacity of their deque); `status` is 0
 *    or a negative errno (NET_EINVAL: bad queue or malformed NetIo; NET_ENOSPC: see drain),
 *    and `count` the number of buffers the call appended to `collect`.
 *  - drain reports `held` too: what the Net still holds after it (0 unless status < 0).
 *  - `held` is written by every Net on every rx/txSubmitAndPoll that names a queue it has: the
 *    buffers it holds for that queue and direction after the call (RX: buffers posted on queue q;
 *    TX: frames in flight on q), 0 for nullnet, which holds nothing. The NIC shadow
 *    has the kernel record it per queue as its calls pass (a route's record), so that after a
 *    crash it knows how many of the buffers that come back to re-post on each queue;
 *  - `restarts` and `pktsLost` are written by every Net on every call it answers (the NIC driver,
 *    nullnet, and the NIC shadow on the calls it answers itself): the restarts of the driver so
 *    far (the answering instance's Sys.restarts), so a caller notices a recovery on the very
 *    call that went through it, and how many buffers
 *    that were in `pkts` at call entry the crashed driver had taken (0 on a call that went through
 *    no crash; for TX: frames lost in this call — they come back later in `collect`, length 0,
 *    like every buffer the crashed driver held).
 *  - `collectInfo` (RX, optional: null asks for nothing): what the NIC reported of each frame it
 *    received, for a Net whose link says so (NetLink.rxInfo): the 82599's RX write-back dwords 0
 *    and 1, two u32 at 8*i for the i-th buffer from the front of collect — the packet and RSS
 *    types (NET_RSS_TYPE_MASK: 0 = no hash, the frame is not IPv4 as the NIC read it) and the
 *    RSS (Toeplitz) hash of the frame's addresses, and of its ports for TCP and UDP. An RX call
 *    writes the entries of the buffers it appended, and only those; an entry of a buffer with
 *    length 0 means nothing. It must have room for 2 * collect's capacity u32 (else NET_EINVAL),
 *    as an app that hashes flows can then take the NIC's hash instead of reading the headers.
 * Buffers are RRefArray<u8> of at least the driver's rxBufSize (link().rxBufSize) for RX.
 */
import type { bool, f64, FixedArray, i32, Layout, RRef, RRefArray, RRefDeque, u8, u32 } from '../runtime/types.js';

/** Error answers of Net (NetIo.status) and NetApp: errno values, negated. */
export const NET_EINVAL = -22;
export const NET_ENOSPC = -28;
export const NET_EOPNOTSUPP = -95;

export interface NetIo extends Layout {
  pkts: RRefDeque<RRefArray<u8>> | null;
  pktLens: RRefArray<u32> | null;
  collect: RRefDeque<RRefArray<u8>> | null;
  collectLens: RRefArray<u32> | null;
  count: u32;
  status: i32;
  held: u32;
  restarts: u32;
  pktsLost: u32;
  collectInfo: RRefArray<u32> | null;
}

/** NetIo.collectInfo's first word: the RSS type in bits [3:0] (0: no hash) and the packet type above. */
export const NET_RSS_TYPE_MASK = 0xf;
/** RSS types (the 82599's): the hash covers IPv4 addresses and TCP ports, addresses only, or addresses and UDP ports. */
export const NET_RSS_TCP_IPV4 = 0x1;
export const NET_RSS_IPV4 = 0x2;
export const NET_RSS_UDP_IPV4 = 0x7;

/** Counters (f64: exact below 2^53). Device counters restart from 0 when the device is reset. */
export interface NetStats extends Layout {
  rxPackets: f64;
  rxBytes: f64;
  txPackets: f64;
  txBytes: f64;
  /** Frames dropped for want of an RX descriptor. */
  rxMissed: f64;
  rxErrors: f64;
  rxRefused: f64;
  txRefused: f64;
  /** Filled in by the NIC shadow (0 from a bare driver): the driver's restarts so far. */
  restarts: f64;
  /**
   * Upper bound on frames lost in driver crashes: txFramesLost + rxBuffersLost. The shadow cannot
   * see into a dead driver, so both parts are bounds; a caller that knows its own frames (a seeded
   * loop: NetAppStats.loopLost) can count exactly.
   */
  framesLost: f64;
  /** TX frames the dead driver held, taken back from it: not reclaimed yet, or taken from the failed call (some may have left before the crash). */
  txFramesLost: f64;
  /** RX buffers the dead driver held, taken back from it: posted (each may or may not have received a frame), or filled in the failed call. */
  rxBuffersLost: f64;
  /** Buffers the shadow allocated to replace ones the caller was due from a dead driver that did not come back (freed with a failed call's NetIo or by the driver, or still held by an instance whose device had not confirmed its stop: those are freed when they come). */
  buffersReplaced: f64;
  /**
   * The last restart, in milliseconds: for a driver that died during a call, from its death (the
   * kernel's termination of it, which the caller waited for too, included) to the reissued call
   * returning; for one found dead at a call, from that call; for one no call met, from seeing the
   * death to the driver running again with its buffers re-posted.
   */
  lastRestartMs: f64;
}

export interface NetLink extends Layout {
  up: bool;
  speedMbps: u32;
  mac: FixedArray<u8, 6>;
  queues: u32;
  rxRingSize: u32;
  txRingSize: u32;
  rxBufSize: u32;
  /** 1 when RX interrupts are enabled (interrupt mode), 0 in poll mode. */
  interrupts: u32;
  /** 1 when RX calls fill a NetIo's collectInfo (the NIC driver), 0 when they leave it (nullnet). */
  rxInfo: u32;
}

export interface Net {
  /** RX on queue q: collect received frames into io.collect, then post io.pkts into the ring. */
  rxSubmitAndPoll(q: number, io: RRef<NetIo>): RRef<NetIo>;
  /** TX on queue q: reclaim completed frames into io.collect (batches of 32), then post io.pkts. */
  txSubmitAndPoll(q: number, io: RRef<NetIo>): RRef<NetIo>;
  /** Buffers currently held by the driver (posted RX buffers, TX frames in flight). */
  outstanding(): number;
  /**
   * Reset the device and move every buffer it held into io.collect (RX buffers with length 0, TX
   * frames with their length), then bring it up again. NET_ENOSPC in status, nothing moved,
   * if collect has no room for outstanding() buffers.
   */
  drain(io: RRef<NetIo>): RRef<NetIo>;
  stats(out: RRef<NetStats>): RRef<NetStats>;
  link(out: RRef<NetLink>): RRef<NetLink>;
  /** Interrupt mode (true) or poll mode (false). Returns 0. */
  setInterrupts(on: boolean): number;
  /** Interrupt mode: resolves with the mask of RX queues with work, or 0 after timeoutMs. */
  waitRx(timeoutMs: number): Promise<number>;
}

/** Statistics of a packet-processing app. */
export interface NetAppStats extends Layout {
  rxFrames: f64;
  txFrames: f64;
  rxBytes: f64;
  /** Frames dropped by the app (no TX room, error frames). */
  dropped: f64;
  /** Buffers the app owns (pool + its NetIos), and the size it started with. */
  poolNow: f64;
  poolSize: f64;
  /** maglev: flows tracked (seen on the direct path this epoch, plus those in the flow cache; see maglev.ts). */
  flows: f64;
  /** RpcErrors the app saw from its Net import (0 behind a working shadow). */
  rpcErrors: f64;
  /**
   * A seeded loop (loopback): frames of the loop that died with a crashed driver (exact: every
   * frame the app had handed to the Net and not received back), each re-seeded so the loop keeps
   * its size.
   */
  loopLost: f64;
  /** serve(): times the app found nothing to receive and slept until an RX interrupt (Net.waitRx). */
  rxWaits: f64;
}

/** A packet-processing app domain (l2fwd, maglev) on a Net import. */
export interface NetApp {
  /**
   * Run for `ms` milliseconds (synchronously, polling) in `mode` ('rx' | 'tx' | 'fwd'; fwd is
   * the app's own function: l2fwd swaps MACs, maglev picks a backend) with batches of `batch`.
   * Returns frames processed.
   */
  run(mode: string, batch: number, ms: number): number;
  /**
   * Forward ('fwd') for `ms` milliseconds with batches of `batch` in interrupt mode: the Net's RX
   * interrupts are on for the duration (setInterrupts), and whenever a poll finds nothing the app
   * sleeps in Net.waitRx until a frame arrives instead of polling on (stats: rxWaits), so a quiet
   * link costs next to no CPU. Returns frames forwarded (NET_EINVAL for a bad batch or a NaN ms).
   */
  serve(batch: number, ms: number): Promise<number>;
  /**
   * Send `n` frames of `size` bytes (to the NIC's own MAC) to seed a loopback; returns frames sent,
   * or NET_EINVAL for an n that is not a whole number >= 0 or a size that is not a whole number
   * from 38 (the template's UDP ports) to the app's buffer size (and at most 16 KiB).
   * From then on the app keeps the loop's size: frames lost in a driver restart behind a shadow are
   * re-seeded (stats: loopLost).
   */
  seed(n: number, size: number): number;
  stats(out: RRef<NetAppStats>): RRef<NetAppStats>;
  /**
   * The control plane of an app that balances over backends (maglev): from now on balance over
   * the first `n` of the backends it was configured with — a backend-set change, after which
   * flows of the backends that stay keep them and flows of the others move. Returns `n`; NET_EINVAL
   * for an n that is not a whole number from 1 to the configured count, NET_EOPNOTSUPP
   * for an app without backends (l2fwd).
   */
  backends(n: number): number;
  /** Take every buffer back from the driver (Net.drain) and free the pool; returns buffers freed. */
  shutdown(): number;
}
