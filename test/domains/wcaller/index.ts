/**
 * wcaller: calls its Callee import (dom_c) with RRefs moved, lent and lent onward, with a revoked
 * handle and with a plain object, and uses, keeps, passes on and hands out interface references;
 * test/kernel/worker-tier.test.ts places it in a worker, where each call is a call out through
 * the kernel thread, and checks it behaves as in-thread. With config `passRevokedInInit`, init
 * itself passes the revoked handle (a fault the kernel finds while the load waits for init).
 */
import type { Callee, CallerProbe } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRefArray } from '../../../src/runtime/types.js';

export function init(sys: Sys, callee: Callee): CallerProbe {
  let kept: Callee | null = null;
  const passRevoked = (): number => {
    const buf = sys.alloc.bytes(8);
    callee.rref(buf).drop();
    callee.rref(buf);
    return 0;
  };
  if (sys.config.passRevokedInInit === true) passRevoked();
  return {
    lendSum(n, v) {
      const buf = sys.alloc.bytes(n);
      buf.fill(v);
      const s = callee.sum(buf);
      const kept = buf.valid && buf.getU8(0) === v;
      buf.drop();
      return kept ? s : -1;
    },
    bounce(k) {
      let buf = sys.alloc.bytes(8);
      for (let i = 0; i < k; i++) buf = callee.rref(buf);
      const first = buf.getU8(0);
      buf.drop();
      return first;
    },
    oneargOrKind(x) {
      try {
        return String(callee.onearg(x));
      } catch (e) {
        return sys.rpcErrorKind(e) ?? 'not an RpcError';
      }
    },
    lendOnward(buf) {
      return callee.sum(buf);
    },
    passRevoked,
    passPlainObject() {
      callee.rref({} as RRefArray);
      return 0;
    },
    async echoLater(x) {
      return await callee.asyncEcho(x);
    },
    viaPeer(peer, x) {
      return String(peer.onearg(x));
    },
    keep(peer) {
      kept = peer;
      return 1;
    },
    callKept(x) {
      if (kept === null) return 'nothing kept';
      try {
        return String(kept.onearg(x));
      } catch (e) {
        return sys.rpcErrorKind(e) ?? 'not an RpcError';
      }
    },
    forward(other, peer, x) {
      return other.viaPeer(peer, x);
    },
    handOut() {
      return callee;
    },
    handOutOwn() {
      return { noarg() {}, onearg: (x: number) => x, rref: (b: RRefArray) => b, sum: () => 0, mixed: () => 0, asyncEcho: async (x: number) => x, count: () => 0 };
    },
    churn(mb) {
      let kept = 0;
      for (let i = 0; i < mb * 16; i++) kept += new Array(8192).fill(i).length;
      return kept;
    },
  };
}
