/**
 * scribbler: a caller that writes raw bytes where the kit keeps the RRefs a value holds — a
 * struct's RRef field, a deque's header and ring — then moves the value on or reads it back
 * (test/kernel/scribble.test.ts). Were such writes allowed, the receiver would find a field that
 * names nothing valid, or a child of another type than its layout declares, and be the one to
 * fault. Each attempt answers what happened; a refused raw write panics the scribbler.
 */
import type { Faulty, NetIo, NetStats, Probe, TestReq } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRefArray } from '../../../src/runtime/types.js';

/** Byte offsets of the RRef fields written below (src/gen/idl.ts LAYOUTS). */
const TESTREQ_DATA = 24;
const NETIO_PKTS = 0;
const NETIO_PKTLENS = 4;

export function init(sys: Sys, victim: Faulty): Probe {
  /** The raw byte accessors every handle has, whatever its type. */
  const raw = (h: unknown): RRefArray => h as RRefArray;
  const attempts: Record<string, () => string> = {
    /** A request whose data field names no valid RRef, moved to the victim, which reads the field. */
    'field-garbage-to-callee': () => {
      const req = sys.alloc.struct<TestReq>('TestReq');
      req.data = sys.alloc.bytes(8);
      raw(req).setU32(TESTREQ_DATA, 0x7fff);
      const back = victim.echoReq(req);
      return `the victim answered (ok ${String(back.ok)})`;
    },
    /** NetIo.pkts (a deque field) made to name the struct's own u32 array child. */
    'field-wrong-type': () => {
      const io = sys.alloc.struct<NetIo>('NetIo');
      io.pkts = sys.alloc.deque<RRefArray>(4);
      io.pktLens = sys.alloc.array('u32', 4);
      raw(io).setU32(NETIO_PKTS, raw(io).getU32(NETIO_PKTLENS));
      return `pkts reads as a value of length ${(io.pkts as unknown as { length: number }).length}`;
    },
    /** A deque's count raised past what it holds. */
    'deque-header': () => {
      const dq = sys.alloc.deque<RRefArray>(4);
      raw(dq).setU32(4, 3);
      return `the deque now says it holds ${dq.length}`;
    },
    /** Values that hold no RRefs stay writable byte by byte: a byte array, a struct of scalars. */
    'flat-values': () => {
      const b = sys.alloc.bytes(8);
      b.fill(7);
      const st = sys.alloc.struct<NetStats>('NetStats');
      raw(st).setU32(0, 5);
      raw(st).write(8, new Uint8Array([1, 2]));
      const r = `${b.getU8(7)} ${raw(st).getU32(0)} ${raw(st).getU8(9)}`;
      b.drop();
      st.drop();
      return r;
    },
  };
  const run = (name: string): string => {
    const a = attempts[name];
    if (a === undefined) return `unknown attempt ${name}`;
    return a();
  };
  return {
    attempt: run,
    async attemptAsync(name: string) {
      return run(name);
    },
    stash(buf: RRefArray) {
      return buf.getU8(0);
    },
    throwLookalike(): number {
      return 0;
    },
  };
}
