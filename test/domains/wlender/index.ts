/**
 * wlender: a caller that keeps using an RRef it has just moved or lent into an async call
 * (test/kernel/worker-lend.test.ts). In-thread the proxy takes the argument at the call: the
 * moved handle is revoked, the lent one cannot be written until the answer, and either use is the
 * caller's violation. A worker domain's call out must give the same.
 */
import type { Probe, WorkerProbe } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRefArray } from '../../../src/runtime/types.js';

export function init(sys: Sys, peer: WorkerProbe): Probe {
  const attempts: Record<string, () => Promise<string>> = {
    /** Moves a buffer into peer.bump, then reads it before the answer. */
    'read-after-async-move': async () => {
      const b = sys.alloc.bytes(8);
      b.setU8(0, 5);
      const p = peer.bump(b);
      const seen = b.getU8(0);
      (await p).drop();
      return `read ${seen} from the moved buffer`;
    },
    /** Lends a buffer to peer.sumLater, then writes it while the borrow lasts. */
    'write-while-async-lent': async () => {
      const b = sys.alloc.bytes(4);
      b.fill(1);
      const p = peer.sumLater(b, 20);
      b.setU8(0, 100);
      return `wrote the lent buffer; the borrower summed ${await p}`;
    },
  };
  return {
    attempt(name: string) {
      return `use attemptAsync for ${name}`;
    },
    async attemptAsync(name: string) {
      const a = attempts[name];
      return a === undefined ? `unknown attempt ${name}` : await a();
    },
    stash(buf: RRefArray) {
      return buf.getU8(0);
    },
    throwLookalike(): number {
      return 0;
    },
  };
}
