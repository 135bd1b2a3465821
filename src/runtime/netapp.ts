/**
 * The packet-app engine shared by l2fwd and maglev (domain runtime library: pure code, no
 * authority — everything it touches comes from the Sys and Net it is handed). It owns a pool of
 * buffers and, for each of the Net's queue pairs (NetLink.queues: the NIC spreads flows over its
 * RX queues by RSS, so the app serves them all), two NetIos (RX, TX) whose deques hold one batch,
 * and runs RedLeaf's loop on each queue in turn: post free buffers and collect received frames in
 * one call, process them, send them in one call on the same queue, and take completed TX buffers
 * back into the pool. With several queues each keeps at most its share of the pool posted.
 *
 * Invariants: every buffer is, at all times, in the pool, in one of the app's NetIos, or held by
 * the Net below (outstanding()); shutdown() takes them all back (Net.drain) and frees them, so the
 * pool size can be checked against its starting size. The pool is itself an RRefDeque, so buffers
 * move between it and the NetIos' deques in bulk (RRefDeque.moveFrom), never one handle at a time.
 * The loop allocates nothing per packet and mints no handle per packet: every access to an RRef
 * is a checked kernel call, so the loop makes a few per batch and none it can do without (no
 * restarts stamp read without a seeded loop, no length read it can compute) — a NetIo's fields
 * are read once per call, its length arrays copied in and out with one read/write, and the frames'
 * headers copied out of the whole received batch with one RRefDeque.readEach and back with one
 * writeEach (the app works on a local copy through a DataView). An app that hashes flows may take
 * what the NIC reported of each frame instead (AppHooks.rxInfo: its RSS hash and type, in the RX
 * NetIo's collectInfo, read with one read per batch), and copy out fewer bytes or none (maglev).
 * The app sees the batch once (prepare) and then each frame once (process); the verdicts are kept
 * as runs while processing, and the frames go on to TX, dropped ones to the pool, one moveFrom per
 * run.
 * An RpcError from the Net import (no shadow, driver died) ends the run and is counted; the app
 * itself never panics on it.
 *
 * Nor on a malformed answer (a live, faulty driver, or one a call reached past the NIC shadow).
 * Decision (the design is silent): every answer is checked once per call, before anything in it
 * is used — no check per frame. An answer the app cannot use as it stands — a negative status, a
 * deque or length array it needs set to null (pkts, collect, collectLens; pktLens on TX), more
 * collected buffers than a batch, fewer collect lengths than buffers, an RX collectInfo too short
 * for them — is counted like an RpcError (rpcErrors), its frames are dropped: every buffer it
 * holds goes back to the pool and it is freed, and the loop carries on with a fresh NetIo (the
 * seeded loop's count, `inLoop`, is not kept for it: what such an answer held is not known).
 * A well-formed NetIo of another shape (pkts, or a TX pktLens, with room for less than a batch:
 * the NIC shadow's fresh one when a faulty driver freed the call's) is the Net's to make: its
 * frames are used, then it is replaced by one of the app's shape, uncounted. The app reads no
 * `count` (collect's length says what came back) and trusts `held` only to share out RX buffers
 * and template stale TX frames (a lie costs fairness or a template write, nothing else). A length
 * is not checked per frame: a lie over the buffer only counts wrong bytes, and a frame sent with
 * it is refused by the NIC and stays in the TX NetIo, until the frames left there fill it and are
 * dropped (unsent), or it would hold a slot for ever. The pool has room for every buffer the app
 * ever had, so a buffer that does not fit in it was handed over on top of them by a faulty Net:
 * it is freed (toPool), and the app keeps its pool's size.
 *
 * run('tx') sends a template frame (writeFrame, txFrameSize bytes) from every buffer, written once
 * per tx run that follows another use of the buffers (see `templated`), not per frame.
 *
 * run() polls for as long as it is asked to; serve() is the same loop in interrupt mode: it turns
 * the Net's RX interrupts on, and whenever an RX call collects nothing it sleeps in Net.waitRx
 * until the next frame's interrupt (or the end), so an idle link costs next to no CPU.
 *
 * A seeded loop (seed(), on loopback): the app counts the frames it handed to the Net and has not
 * received back (`inLoop`). On loopback every one of them is in the driver's rings (or was dropped
 * by the NIC), so when a NetIo comes back from the NIC shadow with a new `restarts` stamp, all of
 * them, plus the call's own frames if its NetIo died (`pktsLost`), are lost: counted in loopLost,
 * and re-seeded on the next TX calls, so the loop keeps its size and traffic carries on.
 */
import { NET_EINVAL, NET_EOPNOTSUPP, type Net, type NetApp, type NetAppStats, type NetIo, type NetLink } from '../interfaces/index.js';
import type { Sys } from './sys.js';
import type { RRef, RRefArray, RRefDeque } from './types.js';

type Buf = RRefArray<number>;
type Deque = RRefDeque<Buf>;

/**
 * A NetIo of the caller's (`sys`'s domain) whose pkts / pktLens have room for `pcap` buffers and
 * collect / collectLens for `ccap` (what every Net caller allocates; the NIC shadow too), and with
 * `info` a collectInfo for collect too (NetIo.collectInfo: two words a frame).
 */
export function newNetIo(sys: Sys, pcap: number, ccap: number, info = false): RRef<NetIo> {
  const io = sys.alloc.struct<NetIo>('NetIo');
  io.pkts = sys.alloc.deque<Buf>(pcap);
  io.pktLens = sys.alloc.array('u32', pcap);
  io.collect = sys.alloc.deque<Buf>(ccap);
  io.collectLens = sys.alloc.array('u32', ccap);
  if (info) io.collectInfo = sys.alloc.array('u32', 2 * ccap);
  return io;
}

/** Largest batch run() takes. */
export const MAX_BATCH = 1024;
/** Shortest seed frame (NetApp.seed): writeFrame's template runs through the UDP ports, bytes 34..37. */
const SEED_MIN_FRAME = 38;
/** Longest: the NIC's largest TX frame (specs/nic-82599.md; the driver refuses a longer one). */
const SEED_MAX_FRAME = 16 * 1024;
/** Most queue pairs an app serves (a NIC's NetLink.queues beyond it: the first MAX_QUEUES). */
const MAX_QUEUES = 16;

/**
 * Works on frame i of a received batch through the local copy of its first bytes (headerBytes,
 * or rxInfo.headerBytes): `hdr` at byte `o` (= i * the copy's stride). `len` is the frame's
 * length (> 0).
 */
export type FrameHook<R> = (hdr: DataView, o: number, len: number, i: number) => R;

export interface AppHooks {
  /** Bytes at the start of every received frame the app reads (copied out of the whole batch at once). */
  headerBytes: number;
  /**
   * Bytes at the start of every frame that `process` may change in its copy (written back to the
   * batch at once). Those past the bytes read (rxInfo.headerBytes) hold no frame's bytes: process
   * writes them all in a frame it sends.
   */
  rewriteBytes: number;
  /** Processes frame i in its header copy; returns the length to send, or 0 to drop it. */
  process: FrameHook<number>;
  /**
   * Called once per received batch of n frames before any of them is processed: frame i's header
   * copy is at i * the copy's stride of `hdrs`, its length at i * 4 of `lens` (u32 little-endian;
   * 0: a receive error, no frame, and process is not called for it), and with rxInfo, what the
   * NIC reported of it at i * 8 of `info` (NetIo.collectInfo's two words; zeros for a frame the
   * Net reported nothing of). An app parses its headers here and starts the memory accesses its
   * lookups will need, so their cache misses overlap (maglev's flow cache), instead of taking them
   * one after another in process.
   */
  prepare?: (hdrs: DataView, lens: DataView, n: number, info: DataView | null) => void;
  /**
   * The app would take what the NIC reported of each received frame (NetIo.collectInfo: its RSS
   * hash and type) over reading the frame: with a Net that reports it (NetLink.rxInfo), prepare
   * gets it and only `headerBytes` bytes of each frame are copied out (0: none). Without such a
   * Net (nullnet), prepare gets null and the frames' first headerBytes, as without rxInfo. Decided
   * once, from the Net's link at start: an app sees one or the other for its whole life. An app
   * with rxInfo has a prepare (refused at load without one: nothing else sees the information).
   */
  rxInfo?: { headerBytes: number };
  /** Told once, at start: the Net's MAC address, and whether prepare gets the NIC's information. */
  link?: (mac: readonly number[], rxInfo: boolean) => void;
  flows?: () => number;
  /** NetApp.backends, for an app that balances over backends (without it: EOPNOTSUPP). */
  backends?: (n: number) => number;
  /** Seeded frame number i (of size bytes) may be customised here (e.g. one flow per frame). */
  seedFrame?: (buf: Buf, i: number, size: number) => void;
}

export function makeApp(sys: Sys, net: Net, hooks: AppHooks): NetApp {
  const cfg = sys.config;
  const poolSize = typeof cfg.pool === 'number' ? cfg.pool : 2048;
  const bufSize = typeof cfg.bufSize === 'number' ? cfg.bufSize : 2048;
  const txSize = typeof cfg.txFrameSize === 'number' ? cfg.txFrameSize : 60;
  const { headerBytes, rewriteBytes } = hooks;
  if (!(poolSize >= 1 && poolSize <= 65536)) return sys.panic(`netapp: pool ${poolSize} must be 1..65536`);
  // Byte counts are whole numbers: the kernel's readEach/writeEach refuse any other (a stride of
  // 12.5 bytes), which would panic the app at its first batch instead of here, at load.
  if (!(Number.isInteger(rewriteBytes) && Number.isInteger(headerBytes) && rewriteBytes <= headerBytes && headerBytes <= bufSize)) return sys.panic(`netapp: header bytes ${headerBytes} (rewrite ${rewriteBytes}) must be whole numbers within the ${bufSize}-byte buffers, rewrite at most header`);
  if (hooks.rxInfo !== undefined) {
    const n = hooks.rxInfo.headerBytes;
    if (!(Number.isInteger(n) && n >= 0 && n <= headerBytes)) return sys.panic(`netapp: rxInfo header bytes ${n} must be a whole number in 0..${headerBytes}`);
    // prepare is where the NIC's information goes: without it the app would see none, and
    // process only the rxInfo.headerBytes copied (none, for maglev's 0).
    if (hooks.prepare === undefined) return sys.panic('netapp: rxInfo without prepare: nothing would see what the NIC reported');
  }
  const pool = sys.alloc.deque<Buf>(poolSize);
  for (let i = 0; i < poolSize; i++) pool.push(sys.alloc.bytes(bufSize));
  /** The Net's queue pairs (NetLink.queues): the app serves every one, each with its RX and TX NetIo. */
  let queues = 1;
  /** With several queues: RX buffers each keeps posted at most (half the pool, shared out). */
  let rxShare = poolSize;
  /**
   * Rounds (an RX and a TX call) the loop makes on a queue before the next (and, over all queues,
   * between two reads of the clock): 64 with one queue; a few with several, so that no queue waits
   * long enough for its posted buffers to run out.
   */
  let roundsPerQueue = 64;
  let rxIos: RRef<NetIo>[] = [];
  let txIos: RRef<NetIo>[] = [];
  let cap = 0;
  let rxFrames = 0;
  let txFrames = 0;
  let rxBytes = 0;
  let dropped = 0;
  let rpcErrors = 0;
  let rxWaits = 0;
  let mac: readonly number[] = [2, 0, 0, 0, 0, 1];
  /**
   * tx mode sends its buffers as they are, with no write per frame: `templated` says that every
   * buffer the app holds is a template frame (writeFrame, txSize bytes). Any other use of the
   * buffers (rx, fwd, serve, seed) fills them with received or seeded frames and clears it; the
   * next tx run then writes the template into every buffer it holds, and, as they complete, into
   * the frames that were still in flight on TX queue q then (`staleTx[q]`: its NetIo.held), or
   * it would send those again as they came back.
   */
  let templated = false;
  const staleTx = new Uint32Array(MAX_QUEUES);
  /**
   * Seeded loop: its frame size (0: no loop), frames in flight, the Net's restarts seen (-1: none
   * yet, the loop's first call adopts its stamp), losses.
   */
  let loopSize = 0;
  let inLoop = 0;
  let restartsSeen = -1;
  let loopLost = 0;
  let reseedOwed = 0;
  let seedSeq = 0;
  /** Scratch copies of a length array (RX lengths in, TX lengths out), sized to the batch. */
  let inBytes = new Uint8Array(0);
  let outBytes = new Uint8Array(0);
  let lensIn = new DataView(inBytes.buffer);
  let lensOut = new DataView(outBytes.buffer);
  /**
   * Per received frame: bytes copied out of it, and the stride of their copies in hdrs (room for
   * what process may rewrite too): headerBytes, or rxInfo's when the app takes the NIC's
   * information (useInfo, from the link at start).
   */
  let useInfo = false;
  let readBytes = headerBytes;
  let stride = headerBytes;
  /** A received batch's NetIo.collectInfo, copied out with one read (useInfo). */
  let infoBytes = new Uint8Array(0);
  let infoV = new DataView(infoBytes.buffer);
  /** A received batch's headers (frame i's at i * stride). */
  let hdrs = new DataView(new ArrayBuffer(0));
  /** forward's runs of frames to send and to drop: u16 lengths, alternating, a send run first. */
  let runs = new DataView(new ArrayBuffer(0));
  const { prepare, process } = hooks;

  /** A NetIo of batch n; an RX one (`rx`) with a collectInfo when the app takes the NIC's information. */
  const newIo = (n: number, rx = false): RRef<NetIo> => newNetIo(sys, n, n, rx && useInfo);
  /**
   * The n buffers at the front of `d` into the pool; one that does not fit is more than the app
   * ever had (see malformed answers, above): freed. One compare per call on the common path.
   */
  const toPool = (d: Deque, n: number): void => {
    for (let k = n - pool.moveFrom(d, n); k > 0; k--) d.pop()!.drop();
  };
  /** Move every buffer of io back into the pool. */
  const empty = (io: RRef<NetIo>): void => {
    for (const d of [io.pkts, io.collect] as (Deque | null)[]) if (d !== null) toPool(d, d.length);
  };
  /** Every NetIo's buffers back to the pool, and the NetIos freed. */
  const dropIos = (): void => {
    for (const io of [...rxIos, ...txIos]) {
      empty(io);
      io.drop();
    }
    rxIos = [];
    txIos = [];
  };
  const ensure = (batch: number): void => {
    if (rxIos.length === queues && cap === batch) return;
    dropIos();
    for (let q = 0; q < queues; q++) {
      rxIos.push(newIo(batch, true));
      txIos.push(newIo(batch));
    }
    cap = batch;
    inBytes = new Uint8Array(batch * 4);
    outBytes = new Uint8Array(batch * 4);
    lensIn = new DataView(inBytes.buffer);
    lensOut = new DataView(outBytes.buffer);
    hdrs = new DataView(new ArrayBuffer(batch * stride));
    infoBytes = new Uint8Array(useInfo ? batch * 8 : 0);
    infoV = new DataView(infoBytes.buffer);
    runs = new DataView(new ArrayBuffer((batch + 1) * 2));
  };
  /** An error from a Net call: an RpcError (the Net below died) is counted, anything else thrown on. */
  const countRpcError = (e: unknown): void => {
    if (sys.rpcErrorKind(e) === null) throw e;
    rpcErrors++;
  };
  try {
    const l = net.link(sys.alloc.struct<NetLink>('NetLink'));
    mac = l.mac;
    queues = Math.max(1, Math.min(MAX_QUEUES, l.queues));
    rxShare = Math.max(1, Math.floor(poolSize / (2 * queues)));
    roundsPerQueue = queues === 1 ? 64 : 4;
    useInfo = hooks.rxInfo !== undefined && l.rxInfo === 1;
    l.drop();
  } catch (e) {
    countRpcError(e);
  }
  if (useInfo) {
    readBytes = hooks.rxInfo!.headerBytes;
    stride = Math.max(readBytes, rewriteBytes);
  }
  hooks.link?.(mac, useInfo);

  /** A UDP/IPv4 frame of `size` bytes to our NIC's MAC. */
  const writeFrame = (b: Buf, i: number, size: number): void => {
    for (let k = 0; k < 6; k++) b.setU8(k, mac[k]!);
    b.setU32(6, 0x00000002); // 02:00:00:00:00:22
    b.setU16(10, 0x2200);
    b.setU16(12, 0x0008); // ethertype 0x0800 (big-endian on the wire)
    b.setU8(14, 0x45);
    b.setU8(16, (size - 14) >>> 8);
    b.setU8(17, (size - 14) & 255);
    b.setU8(22, 64);
    b.setU8(23, 17);
    const ip = (0x0a000001 + i) >>> 0;
    b.setU8(26, ip >>> 24); b.setU8(27, (ip >>> 16) & 255); b.setU8(28, (ip >>> 8) & 255); b.setU8(29, ip & 255);
    b.setU32(30, 0x0100010a); // 10.1.0.1
    const sp = 1024 + (i & 0x7fff);
    b.setU8(34, sp >>> 8); b.setU8(35, sp & 255);
    b.setU8(36, 0x23); b.setU8(37, 0x28); // 9000
    hooks.seedFrame?.(b, i, size);
  };
  /** The n buffers at the front of `d` rewritten as tx mode's template frames, moved to its back. */
  const template = (d: Deque, n: number): void => {
    for (let i = 0; i < n; i++) {
      const b = d.pop()!;
      writeFrame(b, i, txSize);
      d.push(b);
    }
  };
  /**
   * Up to `n` pool buffers written as frames of `size` bytes (seed numbers from seedSeq) and queued
   * on `d`, their lengths in `lens` from index m on; returns how many.
   */
  const queueFrames = (d: Deque, lens: Buf, m: number, n: number, size: number): number => {
    let k = 0;
    for (; k < n; k++) {
      const b = pool.pop();
      if (b === undefined) break;
      writeFrame(b, seedSeq++, size);
      d.push(b);
      lens.setU32((m + k) * 4, size);
    }
    return k;
  };

  /**
   * Whether RX NetIo `io`'s queue may take more free buffers to post. With several queues each
   * keeps at most its share of the pool posted (NetIo.held: what the driver holds there, as its
   * last answer said), or the RX rings would take the whole pool and leave none for frames to send
   * (a seeded loop's re-seeding). One queue takes what it gets (no field read on its path).
   */
  const rxRoom = (io: RRef<NetIo>): boolean => queues === 1 || io.held < rxShare;
  /**
   * A call into the Net on queue q; on an RpcError (the Net below died) count it and return null.
   * netCall's work written out: this is the loop's call, which should not make a closure each time.
   */
  const call = (rx: boolean, q: number, io: RRef<NetIo>): RRef<NetIo> | null => {
    try {
      return rx ? net.rxSubmitAndPoll(q, io) : net.txSubmitAndPoll(q, io);
    } catch (e) {
      countRpcError(e);
      return null;
    }
  };
  const lost = (io: RRef<NetIo>, rx: boolean): RRef<NetIo> => (io.valid ? io : newIo(cap, rx));

  /**
   * The pkts of the RX NetIo handle `rxSeen`, and the pkts and pktLens of the TX one `txSeen`, as
   * last read. A field read mints a handle (a kernel call), and the loop reads them on one handle
   * several times: to check an answer (collected), then to fill or forward into it on the next
   * round. A NetIo comes back from every call as a new handle, and the app sets neither field of a
   * NetIo it holds, so a handle that is the one seen still has these.
   */
  let rxSeen: RRef<NetIo> | null = null;
  let rxPk = pool;
  let txSeen: RRef<NetIo> | null = null;
  let txPk = pool;
  let txPl: Buf | null = null;
  /** RX NetIo `io`'s pkts, read once per handle. */
  const rxPkts = (io: RRef<NetIo>): Deque => {
    if (io !== rxSeen) {
      rxPk = io.pkts as Deque;
      rxSeen = io;
    }
    return rxPk;
  };
  /** TX NetIo `io`'s pkts (its pktLens in txPl), read once per handle. */
  const txPkts = (io: RRef<NetIo>): Deque => {
    if (io !== txSeen) {
      txPk = io.pkts as Deque;
      txPl = io.pktLens;
      txSeen = io;
    }
    return txPk;
  };

  /** Collected buffers of the answer `collected` last took (their lengths in lensIn). */
  let inN = 0;
  /** Whether that answer is a NetIo of another shape than the app's, to be replaced once used. */
  let misfit = false;
  /**
   * The collect of answer `r` of an RX (`rx`) or TX call, with its length in inN and their
   * lengths read into lensIn (one read), or null if the app cannot use the answer (see malformed
   * answers, above). A few field reads per call, none per frame.
   */
  const collected = (r: RRef<NetIo>, rx: boolean): Deque | null => {
    const co = r.collect;
    const cl = r.collectLens;
    const pk = r.pkts;
    const pl = rx ? null : r.pktLens;
    if (co === null || cl === null || pk === null || (!rx && pl === null) || r.status < 0) return null;
    const n = co.length;
    if (n > cap || cl.length < n) return null;
    if (n > 0) cl.read(0, inBytes, 0, n * 4);
    inN = n;
    misfit = pk.capacity < cap || (pl !== null && pl.length < cap);
    if (rx) {
      rxSeen = r;
      rxPk = pk;
    } else {
      txSeen = r;
      txPk = pk;
      txPl = pl;
    }
    return co;
  };
  /** `r` emptied into the pool and freed, and a fresh NetIo of the app's in its place. */
  const replace = (r: RRef<NetIo>, rx: boolean): RRef<NetIo> => {
    empty(r);
    r.drop();
    return newIo(cap, rx);
  };
  /** A malformed answer: counted, its buffers back in the pool, a fresh NetIo in its place. */
  const salvage = (r: RRef<NetIo>, rx: boolean): RRef<NetIo> => {
    rpcErrors++;
    return replace(r, rx);
  };

  /**
   * Loop bookkeeping after a call that returned `r`: `before` frames were in flight at its entry,
   * `sent` frames were in its pkts (0 for RX, whose pkts are free buffers). A new restarts stamp
   * means every frame in flight died with the driver, and so did the call's own frames if its
   * NetIo did; what the new driver took is in flight again. With no seeded loop nothing is read
   * (every read is a kernel call): a loop seeded later adopts the stamp of its first call, when
   * none of its frames can be in flight yet.
   */
  const account = (r: RRef<NetIo>, before: number, sent: number): void => {
    if (loopSize === 0) return;
    const restarts = r.restarts;
    if (restartsSeen < 0) restartsSeen = restarts;
    const dead = sent > 0 ? r.pktsLost : 0;
    if (restarts !== restartsSeen) {
      restartsSeen = restarts;
      loopLost += before + dead;
      reseedOwed += before + dead;
      inLoop = 0;
    }
    if (sent > 0) inLoop += sent - dead - txPkts(r).length;
  };

  /**
   * Reads what the NIC reported of `io`'s first n (> 0) collected buffers into infoV (one read);
   * false if its collectInfo is too short for them (a malformed answer). A NetIo back without
   * collectInfo (a faulty Net dropped it; the NIC shadow gives the fresh NetIos it makes after a
   * crash one) has none to read: its frames get zeros (no hash), and it gets one for its next call.
   */
  const readInfo = (io: RRef<NetIo>, n: number): boolean => {
    const ci = io.collectInfo;
    if (ci !== null) {
      if (ci.length < 2 * n) return false;
      ci.read(0, infoBytes, 0, n * 8);
      return true;
    }
    infoBytes.fill(0, 0, n * 8);
    io.collectInfo = sys.alloc.array('u32', 2 * (io.collect as Deque).capacity);
    return true;
  };
  /** Writes lensOut's entries [from, to) into a TX NetIo's pktLens `pl` at the same indices (one write). */
  const writePktLens = (pl: Buf, from: number, to: number): void => {
    if (to > from) pl.write(from * 4, outBytes, from * 4, (to - from) * 4);
  };
  /**
   * Buffers from the front of `src` onto `io`'s pkts (one bulk move) until it holds `upTo` — as
   * free RX buffers (`io` an RX NetIo), or (`asFrames`, `io` a TX one) as TX frames of txSize
   * bytes, template intact. Returns how many it moved.
   */
  const fill = (io: RRef<NetIo>, src: Deque, upTo: number, asFrames: boolean): number => {
    const pk = asFrames ? txPkts(io) : rxPkts(io);
    const m0 = pk.length;
    if (m0 >= upTo) return 0;
    const m = m0 + pk.moveFrom(src, upTo - m0);
    if (asFrames) {
      for (let k = m0; k < m; k++) lensOut.setUint32(k * 4, txSize, true);
      writePktLens(txPl!, m0, m);
    }
    return m - m0;
  };
  /**
   * The frames in a TX NetIo's pkts `tpk` that the last TX call left, which the next frames queue
   * behind. When they fill it (`limit`: a batch), they are dropped first (back to the pool, oldest
   * first, counted in `dropped`): the TX ring is full, and the new frames would be dropped instead,
   * or they are frames the Net refuses (a length a faulty driver lied about, over the buffer: the
   * NIC driver refuses such a frame, rotating it behind the others), which would otherwise hold
   * the NetIo's room for ever. One compare per call.
   */
  const unsent = (tpk: Deque, limit: number): number => {
    const m0 = tpk.length;
    if (m0 < limit) return m0;
    dropped += m0;
    toPool(tpk, m0);
    return 0;
  };
  /**
   * Every buffer of `co` (a NetIo's collect holding `n` buffers, their lengths already read) goes
   * back to where the next call takes buffers: `io`'s pkts (see fill), and what does not fit to
   * the pool (bulk moves: no handle per buffer).
   */
  const recycle = (co: Deque, n: number, io: RRef<NetIo>, asFrames: boolean): void => {
    if (n === 0) return;
    const left = n - (asFrames || rxRoom(io) ? fill(io, co, cap, asFrames) : 0);
    if (left > 0) toPool(co, left);
  };
  /**
   * The received batch in `co` (`got` frames, lengths in lensIn): headers out, prepared and
   * processed, headers back; frames to send go onto `tio`'s pkts (at most `batch` there), the rest
   * to the pool, in order: the frames' verdicts are kept as runs of frames to send and to drop
   * (mostly a single run), each moved with one RRefDeque.moveFrom. Returns frames queued to send.
   */
  const forward = (co: Deque, tio: RRef<NetIo>, got: number, batch: number): number => {
    if (readBytes > 0) co.readEach(0, got, 0, readBytes, hdrs, 0, stride);
    if (prepare !== undefined) prepare(hdrs, lensIn, got, useInfo ? infoV : null);
    const tpk = txPkts(tio);
    const tpl = txPl!;
    const m0 = unsent(tpk, batch);
    let m = m0;
    let frames = 0;
    let bytes = 0;
    let nRuns = 0;
    let run = 0;
    let sending = true;
    for (let i = 0; i < got; i++) {
      const len = lensIn.getUint32(i * 4, true);
      let out = 0;
      if (len > 0) {
        frames++;
        bytes += len;
        if (m < batch) out = process(hdrs, i * stride, len, i);
        if (out > 0) lensOut.setUint32(m++ * 4, out, true);
      }
      if (out > 0 !== sending) {
        runs.setUint16(nRuns++ * 2, run, true);
        run = 0;
        sending = !sending;
      }
      run++;
    }
    runs.setUint16(nRuns++ * 2, run, true);
    rxFrames += frames;
    rxBytes += bytes;
    dropped += frames - (m - m0);
    if (rewriteBytes > 0) co.writeEach(0, got, 0, rewriteBytes, hdrs, 0, stride);
    for (let r = 0; r < nRuns; r++) {
      const n = runs.getUint16(r * 2, true);
      if (n > 0) {
        if ((r & 1) === 0) tpk.moveFrom(co, n);
        else toPool(co, n);
      }
    }
    writePktLens(tpl, m0, m);
    return m - m0;
  };

  /**
   * The loop of run and serve: rounds of an RX call (rxOn: post free buffers, collect frames,
   * forward them if txOn) and a TX call (txOn) for `ms`, in batches of `batch`. With `untilIdle`
   * it returns after the first round whose RX call collected nothing. Returns frames processed; an
   * RpcError from the Net (no shadow, the driver died) ends it, counted in rpcErrors.
   */
  const pump = (rxOn: boolean, txOn: boolean, batch: number, ms: number, untilIdle: boolean): number => {
    let frames = 0;
    const end = sys.now() + ms;
    let idle = false;
    passes: while (!idle && sys.now() < end) {
      let received = 0;
      for (let q = 0; q < queues; q++) {
        // The queue's NetIos stay in locals for its rounds (a NetIo comes back as a new handle
        // from every call): one queue runs exactly the loop it ran before there were several.
        let rio = rxIos[q]!;
        let tio = txIos[q]!;
        for (let k = 0; k < roundsPerQueue; k++) {
          let got = 0;
          if (rxOn) {
            if (rxRoom(rio)) fill(rio, pool, batch, false);
            const flying = inLoop;
            const r = call(true, q, rio);
            if (r === null) { rxIos[q] = lost(rio, true); txIos[q] = tio; break passes; }
            const co = collected(r, true);
            if (co === null || (txOn && useInfo && inN > 0 && !readInfo(r, inN))) {
              rio = salvage(r, true);
            } else {
              account(r, flying, 0);
              const rx0 = rxFrames;
              got = inN;
              received += got;
              if (!txOn) {
                for (let i = 0; i < got; i++) {
                  const len = lensIn.getUint32(i * 4, true);
                  if (len > 0) { rxFrames++; rxBytes += len; frames++; }
                }
                recycle(co, got, r, false);
              } else if (got > 0) {
                frames += forward(co, tio, got, batch);
              }
              inLoop -= rxFrames - rx0;
              rio = misfit ? replace(r, true) : r;
            }
          }
          // A seeded loop's frames that died in a crash are re-seeded into the room a TX batch
          // leaves. Once the loop runs full batches every received batch fills it, so while frames
          // are owed they also get a TX call of their own (a second pass, at most one per round), or
          // the loop would stay short until traffic happened to leave room.
          if (txOn) {
            let passes = 0;
            do {
              if (!rxOn) fill(tio, pool, batch, true);
              else if (reseedOwed > 0) {
                const tpk = txPkts(tio);
                const done = queueFrames(tpk, txPl!, tpk.length, Math.min(reseedOwed, batch - tpk.length), loopSize);
                reseedOwed -= done;
              }
              const flying = inLoop;
              const sent = loopSize > 0 ? txPkts(tio).length : 0; // only a seeded loop counts it
              const r = call(false, q, tio);
              if (r === null) { rxIos[q] = rio; txIos[q] = lost(tio, false); break passes; }
              const co = collected(r, false);
              if (co === null) {
                tio = salvage(r, false);
                continue;
              }
              account(r, flying, sent);
              const done = inN;
              for (let i = 0; i < done; i++) if (lensIn.getUint32(i * 4, true) > 0) txFrames++;
              const stale = rxOn ? 0 : staleTx[q]!; // frames of an earlier run, back to be sent as templates
              if (stale > 0) {
                const k = Math.min(stale, done);
                template(co, k);
                staleTx[q] = stale - k;
              }
              // A NetIo of another shape would not take the next batch: its buffers go to the pool.
              if (misfit) tio = replace(r, false);
              else {
                recycle(co, done, rxOn ? rio : r, !rxOn);
                tio = r;
              }
              if (!rxOn) frames += done;
            } while (++passes < 2 && rxOn && reseedOwed > 0);
          }
          if (untilIdle && got === 0) break; // this queue is quiet: on to the next
        }
        rxIos[q] = rio;
        txIos[q] = tio;
      }
      if (untilIdle && received === 0) idle = true;
    }
    return frames;
  };
  /** A Net call outside the loop: an RpcError from it is counted (null), anything else thrown on. */
  const netCall = <T>(fn: () => T): T | null => {
    try {
      return fn();
    } catch (e) {
      countRpcError(e);
      return null;
    }
  };

  return {
    run(mode: string, batch: number, ms: number) {
      const rxOn = mode === 'rx' || mode === 'fwd';
      const txOn = mode === 'tx' || mode === 'fwd';
      if (!rxOn && !txOn) return NET_EINVAL;
      if (!(batch >= 1 && batch <= MAX_BATCH)) return NET_EINVAL;
      const retemplate = mode === 'tx' && !templated;
      // Frames in flight on each TX queue, read before ensure may replace its NetIo (see templated).
      if (retemplate) for (let q = 0; q < txIos.length; q++) staleTx[q] = txIos[q]!.held;
      ensure(batch);
      if (retemplate) {
        // Every buffer the app holds becomes a template frame: the TX NetIos' (frames a fwd run
        // left unsent) and the RX NetIos' (free buffers an rx or fwd run had not posted yet: a tx
        // run makes no RX call, and with the rest posted on RX they were all it had) go to the
        // pool, and the pool is rewritten (rotated: front to back).
        for (const io of txIos) empty(io);
        for (const io of rxIos) empty(io);
        template(pool, pool.length);
        templated = true;
      }
      if (mode !== 'tx') templated = false;
      return pump(rxOn, txOn, batch, ms, false);
    },
    async serve(batch: number, ms: number) {
      // A NaN time never compares as up: the loop would wait for interrupts for ever.
      if (!(batch >= 1 && batch <= MAX_BATCH) || Number.isNaN(ms)) return NET_EINVAL;
      ensure(batch);
      templated = false;
      const end = sys.now() + ms;
      let frames = 0;
      if (netCall(() => net.setInterrupts(true)) === null) return 0;
      try {
        for (;;) {
          const errors = rpcErrors;
          frames += pump(true, true, batch, end - sys.now(), true);
          const left = end - sys.now();
          if (rpcErrors !== errors || left <= 0) break; // the Net died under the pump, or time is up
          rxWaits++;
          // A frame that came in since the last poll has raised its interrupt already: no wait then.
          try {
            await net.waitRx(left);
          } catch (e) {
            countRpcError(e);
            break;
          }
        }
      } finally {
        netCall(() => net.setInterrupts(false));
      }
      return frames;
    },
    seed(n: number, size: number) {
      // A frame is the template writeFrame builds (through its ports, byte 37) in one buffer: a
      // longer one the driver refuses and a shorter one is not that frame, so either would stall
      // the loop instead of seeding it.
      if (!Number.isInteger(n) || n < 0 || !Number.isInteger(size) || size < SEED_MIN_FRAME || size > Math.min(bufSize, SEED_MAX_FRAME)) return NET_EINVAL;
      ensure(cap === 0 ? 32 : cap);
      templated = false; // seed frames go out of and back into the pool
      if (loopSize === 0) inLoop = 0;
      loopSize = size;
      // Post RX buffers first, so looped-back frames find descriptors: on every queue in turn (RSS
      // spreads the loop over them), a batch at a time, so the pool is shared out evenly, and
      // keeping the n buffers the seed itself needs: a batch never takes the pool below n (with
      // a pool short of the ring, whole batches took it all, and the seed had nothing to send).
      posting: for (let k = 0; k < 64 && pool.length > n; k++) {
        for (let q = 0; q < queues; q++) {
          const rio = rxIos[q]!;
          const spare = pool.length - n;
          if (spare > 0 && rxRoom(rio)) fill(rio, pool, Math.min(cap, rxPkts(rio).length + spare), false);
          const flying = inLoop;
          const r = call(true, q, rio);
          if (r === null) { rxIos[q] = lost(rio, true); break posting; }
          const co = collected(r, true);
          if (co === null) {
            rxIos[q] = salvage(r, true);
            continue;
          }
          account(r, flying, 0);
          for (let i = 0; i < inN; i++) if (lensIn.getUint32(i * 4, true) > 0) inLoop--; // a frame of an earlier seed came round
          toPool(co, inN);
          rxIos[q] = misfit ? replace(r, true) : r;
        }
      }
      let sent = 0;
      let tio = txIos[0]!;
      const end = sys.now() + 1000;
      // Until all are sent (or a second passed): an empty pool fills again as TX calls reclaim.
      while (sent < n && sys.now() < end) {
        const tpk = txPkts(tio);
        const m0 = unsent(tpk, cap);
        sent += queueFrames(tpk, txPl!, m0, Math.min(n - sent, cap - m0), size);
        const flying = inLoop;
        const queued = tpk.length;
        const r = call(false, 0, tio);
        if (r === null) { tio = lost(tio, false); break; }
        const co = collected(r, false);
        if (co === null) {
          tio = salvage(r, false);
          continue;
        }
        account(r, flying, queued);
        toPool(co, inN);
        tio = misfit ? replace(r, false) : r;
      }
      txIos[0] = tio;
      return sent;
    },
    stats(out: RRef<NetAppStats>) {
      out.rxFrames = rxFrames;
      out.txFrames = txFrames;
      out.rxBytes = rxBytes;
      out.dropped = dropped;
      let inIo = 0;
      for (const io of [...rxIos, ...txIos]) inIo += (io.pkts?.length ?? 0) + (io.collect?.length ?? 0);
      out.poolNow = pool.length + inIo;
      out.poolSize = poolSize;
      out.flows = hooks.flows?.() ?? 0;
      out.rpcErrors = rpcErrors;
      out.loopLost = loopLost;
      out.rxWaits = rxWaits;
      return out;
    },
    backends(n: number) {
      return hooks.backends?.(n) ?? NET_EOPNOTSUPP;
    },
    shutdown() {
      dropIos();
      cap = 0;
      try {
        const n = net.outstanding();
        let io = newIo(1);
        io.collect = sys.alloc.deque<Buf>(Math.max(1, Math.min(65536, n)));
        io.collectLens = sys.alloc.array('u32', Math.max(1, Math.min(65536, n)));
        io = net.drain(io);
        empty(io);
        io.drop();
      } catch (e) {
        countRpcError(e);
      }
      const freed = pool.length;
      for (let b = pool.pop(); b !== undefined; b = pool.pop()) b.drop();
      return freed;
    },
  };
}
