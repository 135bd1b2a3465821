/**
 * wprobe: the worker-tier test domain. It runs unchanged in either tier; the tests place it in a
 * worker to exercise what that tier adds: allocation, struct and deque operations routed to the
 * kernel thread, results that move RRefs, every fault kind, preemption of a domain that never
 * reaches a deadline check, resource limits and parallel work. With config `failInit`, init throws;
 * with `initMs`, init computes for that many milliseconds before it returns (a slow start-up); with
 * `initGrowMb`, init first fills that many megabytes of JS arrays (a start-up past its resource limits).
 */
import type { TestReq, WorkerProbe } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRef, RRefArray, RRefDeque } from '../../../src/runtime/types.js';

export function init(sys: Sys): WorkerProbe {
  if (sys.config.failInit === true) throw new Error('init refused by configuration');
  if (typeof sys.config.initMs === 'number') {
    const until = sys.now() + sys.config.initMs;
    while (sys.now() < until);
  }
  const held: RRefArray[] = [];
  const ballast: number[][] = [];
  /** Hold `mb` more megabytes of JS arrays (1 MB each: 131072 doubles). */
  const grow = (mb: number): number => {
    for (let i = 0; i < mb; i++) ballast.push(new Array<number>(131072).fill(i + 0.5));
    return ballast.length;
  };
  if (typeof sys.config.initGrowMb === 'number') grow(sys.config.initGrowMb);

  const attempts: Record<string, () => unknown> = {
    process: () => (globalThis as unknown as { process?: unknown }).process,
    function: () => Function('return typeof process === "undefined" ? undefined : process')(),
    'handle-constructor': () => {
      const buf = sys.alloc.bytes(8);
      held.push(buf);
      const ctor = (buf as unknown as { constructor: { constructor: (src: string) => () => unknown } }).constructor.constructor;
      return ctor('return typeof process === "undefined" ? undefined : process')();
    },
    'atomics-wait': () => (Atomics as unknown as { wait?: unknown }).wait,
  };

  return {
    async echo(s) {
      return s;
    },
    async mix(a, b, flag, nothing) {
      return `${a + 1}|${b * 2n}|${!flag}|${typeof nothing}`;
    },
    async config(key) {
      return String(sys.config[key]);
    },
    async log(msg) {
      sys.log(msg);
      return 0;
    },
    async fill(n, v) {
      const buf = sys.alloc.bytes(n);
      buf.fill(v);
      return buf;
    },
    async bump(buf) {
      buf.setU8(0, (buf.getU8(0) + 1) & 0xff);
      return buf;
    },
    sumLater(buf, ms) {
      return new Promise((resolve) =>
        sys.setTimeout(() => {
          let s = 0;
          for (let i = 0; i < buf.length; i++) s += buf.getU8(i);
          resolve(s);
        }, ms),
      );
    },
    async echoReq(req: RRef<TestReq>) {
      req.ok = true;
      const data = req.data;
      if (data !== null) data.setU8(0, (data.getU8(0) + 1) & 0xff);
      return req;
    },
    async makeReq(id, bytes) {
      const req = sys.alloc.struct<TestReq>('TestReq');
      req.id = id;
      req.lba = BigInt(id) * 2n;
      req.tag = [1, 2, 3, 4];
      const data = sys.alloc.bytes(bytes);
      data.setU8(0, 7);
      req.data = data; // moves the buffer into the struct (an adopt by the kernel)
      return req;
    },
    async deque(n) {
      const dq = sys.alloc.deque<RRefArray>(n);
      for (let i = 0; i < n; i++) {
        const b = sys.alloc.bytes(16);
        b.setU8(0, i);
        dq.push(b);
      }
      const first = dq.pop();
      if (first === undefined || first.getU8(0) !== 0) sys.panic('deque lost its first element');
      first.drop();
      // A round trip through a second deque with the bulk move (system calls per element here).
      const via = sys.alloc.deque<RRefArray>(n);
      if (via.moveFrom(dq, n) !== n - 1 || dq.moveFrom(via, n) !== n - 1) sys.panic('moveFrom lost elements');
      via.drop();
      return dq as RRefDeque<RRefArray>;
    },
    async hold(bytes) {
      held.push(sys.alloc.bytes(bytes));
      return held.length;
    },
    async keep(buf) {
      held.push(buf);
      return held.length;
    },
    async crunch(n) {
      const start = sys.now();
      let x = 1;
      for (let i = 0; i < n; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
      return `${start} ${sys.now()} ${x}`;
    },
    throwSync(msg): Promise<number> {
      throw new Error(msg);
    },
    async rejectAsync(msg) {
      await sys.yield();
      throw new Error(msg);
    },
    async detachRejection(msg) {
      sys.detach(sys.yield().then(() => Promise.reject(new Error(msg))));
      return 1;
    },
    async panic(reason) {
      sys.panic(reason);
    },
    spin(catchDeadline): Promise<number> {
      let n = 0;
      if (!catchDeadline) {
        for (;;) n++;
      }
      for (;;) {
        try {
          for (;;) n = (n + 1) | 0;
        } catch {
          n = 0;
        }
      }
    },
    async regexBomb(n) {
      // The backreference keeps V8 on its backtracking engine (the kernel's linear-time fallback cannot run it).
      return /^(a+)+\1$/.test('a'.repeat(n) + 'b') ? 1 : 0;
    },
    async grow(mb) {
      return grow(mb);
    },
    async badResult() {
      return 'not a number' as unknown as number;
    },
    async returnBorrowed(buf) {
      return buf;
    },
    async useAfterMove() {
      const buf = sys.alloc.bytes(8);
      const dq = sys.alloc.deque<RRefArray>(2);
      dq.push(buf);
      held.push(dq as unknown as RRefArray);
      return buf.getU8(0); // revoked: panics
    },
    async attempt(name) {
      try {
        const got = attempts[name]?.();
        return got === undefined ? 'blocked: nothing there' : 'ESCAPED';
      } catch (e) {
        return `blocked: ${(e as Error).message}`;
      }
    },
  };
}
