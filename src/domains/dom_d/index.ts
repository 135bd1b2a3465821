/**
 * dom_d: the caller of the call benchmark (after RedLeaf's dom_d). `run(kind, n)` makes n calls
 * of one kind into dom_c through its proxy — or, for 'plain', into an object of its own realm,
 * the same loop with no crossing — and returns the elapsed milliseconds.
 */
import type { Callee, Caller } from '../../interfaces/index.js';
import type { Sys } from '../../runtime/sys.js';

export function init(sys: Sys, callee: Callee): Caller {
  let local = 0;
  const plain = {
    noarg() {
      local++;
    },
  };
  return {
    run(kind: string, n: number) {
      const t0 = sys.now();
      if (kind === 'plain') {
        for (let i = 0; i < n; i++) plain.noarg();
      } else if (kind === 'noarg') {
        for (let i = 0; i < n; i++) callee.noarg();
      } else if (kind === 'arg') {
        let x = 0;
        for (let i = 0; i < n; i++) x = callee.onearg(x);
      } else if (kind === 'rref') {
        let buf = sys.alloc.bytes(64);
        for (let i = 0; i < n; i++) buf = callee.rref(buf);
        buf.drop();
      } else {
        sys.panic(`unknown benchmark kind ${kind}`);
      }
      return sys.now() - t0;
    },
    async runAsync(n: number) {
      const t0 = sys.now();
      for (let i = 0; i < n; i++) await callee.asyncEcho(i);
      return sys.now() - t0;
    },
  };
}
