/**
 * The packet-app engine shared by l2fwd and maglev (domain runtime library: pure code, no
 * authority — everything it touches comes from the Sys and Net it is handed). It owns a pool of buffers and two NetIos (RX, TX) whose deques hold one batch, and runs
 * RedLeaf's loop: post free buffers and collect received frames in one call, process them, send
 * them in one call, and take completed TX buffers back into the pool.
 *
 * Invariants: every buffer is, at all times, in the pool, in one of the app's NetIos, or held by
 * the Net below (outstanding()) — or, within the handling of one received batch, in the engine's
 * hands between `prepare` and `process`; shutdown() takes them all back (Net.drain) and frees them, so the
 * pool size can be checked against its starting size. The loop allocates nothing per packet
 * beyond the handles the deques mint; frame bytes are read and written with DmaBytes accessors.
 * Every access to an RRef is a checked kernel call, so the loop makes few: a NetIo's fields are
 * read once per call, and its length arrays are copied in and out with one read/write per batch
 * (a local scratch array, written through a DataView: typed-array stores are slow under lockdown).
 * Buffers the Net hands back unprocessed (TX completions; RX frames in rx-only mode) go straight
 * into the pkts of the next call with one bulk RRefDeque.moveFrom instead of through the pool.
 * An RpcError from the Net import (no shadow, driver died) ends the run and is counted; the app
 * itself never panics on it.
 *
 * A seeded loop (seed(), on loopback): the app counts the frames it handed to the Net and has not
 * received back (`inLoop`). On loopback every one of them is in the driver's rings (or was dropped
 * by the NIC), so when a NetIo comes back from the NIC shadow with a new `restarts` stamp, all of
 * them, plus the call's own frames if its NetIo died (`pktsLost`), are lost: counted in loopLost,
 * and re-seeded on the next TX calls, so the loop keeps its size and traffic carries on.
 */
import type { Net, NetApp, NetAppStats, NetIo, NetLink } from '../interfaces/index.js';
import type { Sys } from './sys.js';
import type { RRef, RRefArray, RRefDeque } from './types.js';

type Buf = RRefArray<number>;
type Deque = RRefDeque<Buf>;

/** Largest batch run() takes. */
export const MAX_BATCH = 1024;

/**
 * Processes one received frame in place; returns the length to send, or 0 to drop it. `i` is the
 * frame's index in its batch (what `prepare` saw it as).
 */
export type Process = (buf: Buf, len: number, i: number) => number;

export interface AppHooks {
  process: Process;
  /**
   * Called for every frame of a received batch (index i) before any of them is processed, so an
   * app can start the memory accesses its lookups will need and let their cache misses overlap
   * (maglev's flow cache), instead of taking them one after another.
   */
  prepare?: (buf: Buf, len: number, i: number) => void;
  flows?: () => number;
  /** Seeded frame number i (of size bytes) may be customised here (e.g. one flow per frame). */
  seedFrame?: (buf: Buf, i: number, size: number) => void;
}

/**
 * The free-buffer pool: a stack whose entries live in small objects. Under SES lockdown an array
 * element store takes a slow path (~15 ns; Array push/pop ~10 ns a pair), a property store does not.
 */
class BufPool {
  private readonly slots: { buf: Buf | undefined }[] = [];
  length = 0;
  push(b: Buf): void {
    if (this.length === this.slots.length) this.slots.push({ buf: undefined });
    this.slots[this.length++]!.buf = b;
  }
  pop(): Buf | undefined {
    if (this.length === 0) return undefined;
    const s = this.slots[--this.length]!;
    const b = s.buf;
    s.buf = undefined;
    return b;
  }
  /** The i-th buffer from the bottom (0 <= i < length). */
  at(i: number): Buf {
    return this.slots[i]!.buf!;
  }
}

export function makeApp(sys: Sys, net: Net, hooks: AppHooks): NetApp {
  const cfg = sys.config;
  const poolSize = typeof cfg.pool === 'number' ? cfg.pool : 2048;
  const bufSize = typeof cfg.bufSize === 'number' ? cfg.bufSize : 2048;
  const txSize = typeof cfg.txFrameSize === 'number' ? cfg.txFrameSize : 60;
  const pool = new BufPool();
  for (let i = 0; i < poolSize; i++) pool.push(sys.alloc.bytes(bufSize));
  let rxIo: RRef<NetIo> | null = null;
  let txIo: RRef<NetIo> | null = null;
  let cap = 0;
  let rxFrames = 0;
  let txFrames = 0;
  let rxBytes = 0;
  let dropped = 0;
  let rpcErrors = 0;
  let mac: readonly number[] = [2, 0, 0, 0, 0, 1];
  let templated = false;
  /** Seeded loop: its frame size (0: no loop), frames in flight, the Net's restarts seen, losses. */
  let loopSize = 0;
  let inLoop = 0;
  let restartsSeen = 0;
  let loopLost = 0;
  let reseedOwed = 0;
  let seedSeq = 0;
  /** Scratch copies of a length array (RX lengths in, TX lengths out), sized to the batch. */
  let inBytes = new Uint8Array(0);
  let outBytes = new Uint8Array(0);
  let lensIn = new DataView(inBytes.buffer);
  let lensOut = new DataView(outBytes.buffer);
  /** A received batch between `prepare` and `process` (slot objects: element stores are slow under lockdown). */
  let held: { buf: Buf | undefined }[] = [];
  const prepare = hooks.prepare;

  const newIo = (n: number): RRef<NetIo> => {
    const io = sys.alloc.struct<NetIo>('NetIo');
    io.pkts = sys.alloc.deque<Buf>(n);
    io.pktLens = sys.alloc.array('u32', n);
    io.collect = sys.alloc.deque<Buf>(n);
    io.collectLens = sys.alloc.array('u32', n);
    return io;
  };
  /** Move every buffer of io back into the pool. */
  const empty = (io: RRef<NetIo>): void => {
    for (const d of [io.pkts, io.collect] as (Deque | null)[]) {
      if (d === null) continue;
      for (let b = d.pop(); b !== undefined; b = d.pop()) pool.push(b);
    }
  };
  const ensure = (batch: number): void => {
    if (rxIo !== null && txIo !== null && cap === batch) return;
    if (rxIo !== null) { empty(rxIo); rxIo.drop(); }
    if (txIo !== null) { empty(txIo); txIo.drop(); }
    rxIo = newIo(batch);
    txIo = newIo(batch);
    cap = batch;
    inBytes = new Uint8Array(batch * 4);
    outBytes = new Uint8Array(batch * 4);
    lensIn = new DataView(inBytes.buffer);
    lensOut = new DataView(outBytes.buffer);
    held = Array.from({ length: batch }, () => ({ buf: undefined }));
  };
  try {
    const l = net.link(sys.alloc.struct<NetLink>('NetLink'));
    mac = l.mac;
    l.drop();
  } catch (e) {
    if (sys.rpcErrorKind(e) === null) throw e;
    rpcErrors++;
  }

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

  /** A call into the Net; on an RpcError (the Net below died) count it and return null. */
  const call = (rx: boolean, io: RRef<NetIo>): RRef<NetIo> | null => {
    try {
      return rx ? net.rxSubmitAndPoll(0, io) : net.txSubmitAndPoll(0, io);
    } catch (e) {
      if (sys.rpcErrorKind(e) === null) throw e;
      rpcErrors++;
      return null;
    }
  };
  const lost = (io: RRef<NetIo>): RRef<NetIo> => (io.valid ? io : newIo(cap));

  /**
   * Loop bookkeeping after a call that returned `r`: `before` frames were in flight at its entry,
   * `sent` frames were in its pkts (0 for RX, whose pkts are free buffers). A new restarts stamp
   * means every frame in flight died with the driver, and so did the call's own frames if its
   * NetIo did; what the new driver took is in flight again.
   */
  const account = (r: RRef<NetIo>, before: number, sent: number): void => {
    const dead = sent > 0 ? r.pktsLost : 0;
    if (r.restarts !== restartsSeen) {
      restartsSeen = r.restarts;
      if (loopSize > 0) {
        loopLost += before + dead;
        reseedOwed += before + dead;
        inLoop = 0;
      }
    }
    if (sent > 0) inLoop += sent - dead - r.pkts!.length;
  };
  /** Owed loop frames written into free pool buffers and queued on tx's pkts (m already there). */
  const reseed = (tio: RRef<NetIo>, m: number, batch: number): number => {
    const tpk = tio.pkts as Deque;
    const tl = tio.pktLens!;
    while (reseedOwed > 0 && m < batch && pool.length > 0) {
      const b = pool.pop()!;
      writeFrame(b, seedSeq++, loopSize);
      tpk.push(b);
      tl.setU32(m * 4, loopSize);
      m++;
      reseedOwed--;
    }
    return m;
  };

  /** Reads the lengths of `io`'s first n collected buffers into lensIn (one read). */
  const readCollectLens = (io: RRef<NetIo>, n: number): void => {
    if (n > 0) io.collectLens!.read(0, inBytes, 0, n * 4);
  };
  /** Writes lensOut's entries [from, to) into `io`'s pktLens at the same indices (one write). */
  const writePktLens = (io: RRef<NetIo>, from: number, to: number): void => {
    if (to > from) io.pktLens!.write(from * 4, outBytes, from * 4, (to - from) * 4);
  };

  /**
   * Every buffer of `co` (a NetIo's collect, its lengths already read) goes back to where the next
   * call takes buffers: `io`'s pkts — as free RX buffers, or (`asFrames`) as TX frames of txSize
   * bytes, template intact — with one bulk move (no handle per buffer); what does not fit goes to
   * the pool.
   */
  const recycle = (co: Deque, io: RRef<NetIo>, asFrames: boolean): void => {
    const n = co.length;
    if (n === 0) return;
    const pk = io.pkts as Deque;
    const m0 = pk.length;
    const back = pk.moveFrom(co, cap - m0);
    if (asFrames) {
      for (let m = m0; m < m0 + back; m++) lensOut.setUint32(m * 4, txSize, true);
      writePktLens(io, m0, m0 + back);
    }
    for (let i = back; i < n; i++) pool.push(co.pop()!);
  };

  return {
    run(mode: string, batch: number, ms: number) {
      const rxOn = mode === 'rx' || mode === 'fwd';
      const txOn = mode === 'tx' || mode === 'fwd';
      if (!rxOn && !txOn) return -22;
      if (!(batch >= 1 && batch <= MAX_BATCH)) return -22;
      ensure(batch);
      if (mode === 'tx' && !templated) {
        for (let i = 0; i < pool.length; i++) writeFrame(pool.at(i), i, txSize);
        templated = true;
      }
      if (mode !== 'tx') templated = false;
      let rio = rxIo!;
      let tio = txIo!;
      let frames = 0;
      const end = sys.now() + ms;
      let failed = false;
      while (!failed && sys.now() < end) {
        for (let k = 0; k < 64; k++) {
          if (rxOn) {
            const pk = rio.pkts as Deque;
            let n = pk.length;
            while (n < batch && pool.length > 0) { pk.push(pool.pop()!); n++; }
            const flying = inLoop;
            const r = call(true, rio);
            if (r === null) { rio = lost(rio); failed = true; break; }
            rio = r;
            account(r, flying, 0);
            const rx0 = rxFrames;
            const co = r.collect as Deque;
            const got = co.length;
            readCollectLens(r, got);
            if (!txOn) {
              for (let i = 0; i < got; i++) {
                const len = lensIn.getUint32(i * 4, true);
                if (len > 0) { rxFrames++; rxBytes += len; frames++; }
              }
              recycle(co, r, false);
            } else if (got > 0) {
              const tpk = tio.pkts as Deque;
              const m0 = tpk.length;
              let m = m0;
              if (prepare !== undefined) {
                for (let i = 0; i < got; i++) {
                  const buf = co.pop()!;
                  held[i]!.buf = buf;
                  const len = lensIn.getUint32(i * 4, true);
                  if (len > 0) prepare(buf, len, i);
                }
              }
              for (let i = 0; i < got; i++) {
                let buf: Buf;
                if (prepare !== undefined) {
                  const h = held[i]!;
                  buf = h.buf!;
                  h.buf = undefined;
                } else {
                  buf = co.pop()!;
                }
                const len = lensIn.getUint32(i * 4, true);
                if (len === 0) { pool.push(buf); continue; }
                rxFrames++;
                rxBytes += len;
                const out = m < batch ? hooks.process(buf, len, i) : 0;
                if (out > 0) {
                  tpk.push(buf);
                  lensOut.setUint32(m * 4, out, true);
                  m++;
                  frames++;
                } else {
                  dropped++;
                  pool.push(buf);
                }
              }
              writePktLens(tio, m0, m);
            }
            inLoop -= rxFrames - rx0;
          }
          if (txOn) {
            const tpk = tio.pkts as Deque;
            if (!rxOn) {
              const m0 = tpk.length;
              let m = m0;
              while (m < batch && pool.length > 0) { tpk.push(pool.pop()!); lensOut.setUint32(m * 4, txSize, true); m++; }
              writePktLens(tio, m0, m);
            } else if (reseedOwed > 0) {
              reseed(tio, tpk.length, batch);
            }
            const flying = inLoop;
            const sent = tpk.length;
            const r = call(false, tio);
            if (r === null) { tio = lost(tio); failed = true; break; }
            tio = r;
            account(r, flying, sent);
            const co = r.collect as Deque;
            const done = co.length;
            readCollectLens(r, done);
            for (let i = 0; i < done; i++) if (lensIn.getUint32(i * 4, true) > 0) txFrames++;
            recycle(co, rxOn ? rio : r, !rxOn);
            if (!rxOn) frames += done;
          }
        }
      }
      rxIo = rio;
      txIo = tio;
      return frames;
    },
    seed(n: number, size: number) {
      ensure(cap === 0 ? 32 : cap);
      if (loopSize === 0) inLoop = 0;
      loopSize = size;
      // Post RX buffers first, so looped-back frames find descriptors.
      let rio = rxIo!;
      for (let k = 0; k < 64 && pool.length > 0; k++) {
        const pk = rio.pkts as Deque;
        while (pk.length < cap && pool.length > 0) pk.push(pool.pop()!);
        const flying = inLoop;
        const r = call(true, rio);
        if (r === null) { rio = lost(rio); break; }
        rio = r;
        account(r, flying, 0);
        const co = r.collect as Deque;
        const cl = r.collectLens!;
        for (let i = 0, got = co.length; i < got; i++) {
          if (cl.getU32(i * 4) > 0) inLoop--; // a frame of an earlier seed came round
          pool.push(co.pop()!);
        }
      }
      rxIo = rio;
      let sent = 0;
      let tio = txIo!;
      const end = sys.now() + 1000;
      while (sent < n && pool.length > 0 && sys.now() < end) {
        const tpk = tio.pkts as Deque;
        const tl = tio.pktLens!;
        let m = tpk.length;
        while (m < cap && sent < n && pool.length > 0) {
          const b = pool.pop()!;
          writeFrame(b, seedSeq++, size);
          tpk.push(b);
          tl.setU32(m * 4, size);
          m++;
          sent++;
        }
        const flying = inLoop;
        const queued = tpk.length;
        const r = call(false, tio);
        if (r === null) { tio = lost(tio); break; }
        tio = r;
        account(r, flying, queued);
        const co = r.collect as Deque;
        for (let b = co.pop(); b !== undefined; b = co.pop()) pool.push(b);
      }
      txIo = tio;
      return sent;
    },
    stats(out: RRef<NetAppStats>) {
      out.rxFrames = rxFrames;
      out.txFrames = txFrames;
      out.rxBytes = rxBytes;
      out.dropped = dropped;
      let inIo = 0;
      for (const io of [rxIo, txIo]) if (io !== null) inIo += (io.pkts?.length ?? 0) + (io.collect?.length ?? 0);
      out.poolNow = pool.length + inIo;
      out.poolSize = poolSize;
      out.flows = hooks.flows?.() ?? 0;
      out.rpcErrors = rpcErrors;
      out.loopLost = loopLost;
      return out;
    },
    shutdown() {
      if (rxIo !== null) { empty(rxIo); rxIo.drop(); rxIo = null; }
      if (txIo !== null) { empty(txIo); txIo.drop(); txIo = null; }
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
        if (sys.rpcErrorKind(e) === null) throw e;
        rpcErrors++;
      }
      const freed = pool.length;
      for (let b = pool.pop(); b !== undefined; b = pool.pop()) b.drop();
      return freed;
    },
  };
}
