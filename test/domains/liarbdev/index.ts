/**
 * liarbdev (test domain): a faulty `BDev` that answers at once and truthfully (status 0, no data
 * moved), except for a request of LBA LIE_LBA, which it keeps, answering with a byte buffer of its
 * own in its place (a wrong type). Behind the block shadow it shows that the kernel's merged relay
 * (its direct move of the driver's answer to the caller, once learned) refuses an answer that the
 * conversions would refuse: the driver is at fault, never the caller handed a wrong value
 * (test/kernel/relay.test.ts).
 */
import type { BDev, BlkReq } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRef, RRefDeque } from '../../../src/runtime/types.js';

const LIE_LBA = 999;

export function init(sys: Sys): BDev {
  const kept: RRef<BlkReq>[] = [];
  return {
    blockSize: () => 4096,
    blockCount: () => 1024,
    model: () => 'liar',
    serial: () => 'liar-0',
    async submit(h: RRef<BlkReq>) {
      if (h.lba !== LIE_LBA) {
        h.status = 0;
        return h;
      }
      kept.push(h);
      return sys.alloc.bytes(8) as unknown as RRef<BlkReq>;
    },
    async submitAndPoll(dq: RRefDeque<RRef<BlkReq>>) {
      return dq;
    },
    write: async () => 0,
    flush: async () => 0,
  };
}
