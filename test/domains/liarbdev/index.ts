/**
 * liarbdev (test domain): a faulty `BDev` that answers at once and truthfully (status 0, no data
 * moved), except for a request of LBA LIE_LBA, which it keeps, answering with a byte buffer of its
 * own in its place (a wrong type). Behind the block shadow it shows that the kernel's merged relay
 * (its direct move of the driver's answer to the caller, once learned) refuses an answer that the
 * conversions would refuse: the driver is at fault, never the caller handed a wrong value
 * (test/kernel/relay.test.ts). A request (or a batch whose first request) of LBA HOLD_LBA is
 * answered only after config `holdMs` (default 50) milliseconds: a call pending in the driver, for
 * tests of what happens meanwhile (test/kernel/route.test.ts).
 */
import type { BDev, BlkReq } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRef, RRefDeque } from '../../../src/runtime/types.js';

const LIE_LBA = 999;
const HOLD_LBA = 998;

export function init(sys: Sys): BDev {
  const kept: RRef<BlkReq>[] = [];
  const holdMs = typeof sys.config.holdMs === 'number' ? sys.config.holdMs : 50;
  const later = <T>(v: T): Promise<T> => new Promise((resolve) => sys.setTimeout(() => resolve(v), holdMs));
  return {
    blockSize: () => 4096,
    blockCount: () => 1024,
    model: () => 'liar',
    serial: () => 'liar-0',
    readOnly: () => false,
    async submit(h: RRef<BlkReq>) {
      if (h.lba === HOLD_LBA) return later(h);
      if (h.lba !== LIE_LBA) {
        h.status = 0;
        return h;
      }
      kept.push(h);
      return sys.alloc.bytes(8) as unknown as RRef<BlkReq>;
    },
    async submitAndPoll(dq: RRefDeque<RRef<BlkReq>>) {
      // One turn round the ring (order kept) to see the first request.
      const n = dq.length;
      let hold = false;
      for (let i = 0; i < n; i++) {
        const r = dq.pop()!;
        if (i === 0) hold = r.lba === HOLD_LBA;
        dq.push(r);
      }
      return hold ? later(dq) : dq;
    },
    write: async () => 0,
    flush: async () => 0,
  };
}
