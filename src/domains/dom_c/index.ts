/**
 * dom_c: the callee of the call benchmark (after RedLeaf's dom_c). Each method does the least
 * work that still shows the crossing: count the call, touch the argument.
 */
import type { Callee } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';
import type { RRefArray } from '../../runtime/types.js';

function sumOf(buf: RRefArray): number {
  let s = 0;
  for (let i = 0; i < buf.length; i++) s += buf.getU8(i);
  return s;
}

export function init(_sys: Sys): Callee {
  let calls = 0;
  return {
    noarg() {
      calls++;
    },
    onearg(x: number) {
      calls++;
      return x + 1;
    },
    rref(buf: RRefArray) {
      calls++;
      buf.setU8(0, (buf.getU8(0) + 1) & 0xff);
      return buf;
    },
    sum(buf: RRefArray) {
      calls++;
      return sumOf(buf);
    },
    mixed(kept: RRefArray, lent: RRefArray, last: RRefArray) {
      calls++;
      kept.drop();
      last.drop();
      return sumOf(lent);
    },
    async asyncEcho(x: number) {
      calls++;
      return x;
    },
    count() {
      return calls;
    },
  };
}
