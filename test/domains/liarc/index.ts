/**
 * liarc (test domain): a `Callee` like dom_c whose `rref` misbehaves on request, for the tests of
 * synchronous routes (test/kernel/route-sync.test.ts): a buffer whose first byte is LIE answers
 * with a number instead of the buffer (a wrongly typed answer: the kernel faults it), one whose
 * first byte is PANIC makes it throw (its panic) after it incremented the second byte.
 */
import type { Callee } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRefArray } from '../../../src/runtime/types.js';

const LIE = 0xee;
const PANIC = 0xdd;

export function init(_sys: Sys): Callee {
  let calls = 0;
  return {
    noarg() {
      calls++;
    },
    onearg: (x: number) => x + 1,
    rref(buf: RRefArray) {
      calls++;
      const first = buf.getU8(0);
      if (first === LIE) return 42 as unknown as RRefArray;
      buf.setU8(1, (buf.getU8(1) + 1) & 0xff);
      if (first === PANIC) throw new Error('liarc panics on purpose');
      return buf;
    },
    sum: () => 0,
    mixed: () => 0,
    asyncEcho: async (x: number) => x,
    count: () => calls,
  };
}
