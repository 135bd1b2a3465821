/**
 * faulty: a test domain with one method per way a domain can fault (ARCHITECTURE §4), plus the
 * helpers the fault and proxy suites need (timers, pending calls, borrows held open, peers).
 */
import type { Callee, Faulty, Recorder, TestReq } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRef, RRefArray } from '../../../src/runtime/types.js';

/**
 * A value to throw that runs its own code when the kernel looks at it: how 0, a plain object whose
 * toString throws; 1, an Error whose `message` getter throws; 2, a Proxy of an Error whose traps
 * throw (`instanceof` walks its prototype); 3, an Error whose `message` getter never returns.
 */
function hostile(how: number): unknown {
  const trap = (): never => {
    throw new Error('trapped: the kernel ran the thrower\'s code');
  };
  if (how === 0) return { toString: trap };
  class Trapped extends Error {
    override get message(): string {
      if (how === 3) for (;;);
      return trap();
    }
  }
  if (how === 2) return new Proxy(new Error('proxied'), { getPrototypeOf: trap, get: trap, getOwnPropertyDescriptor: trap });
  return new Trapped();
}

export function init(sys: Sys, callee: Callee, rec: Recorder): Faulty {
  const held: RRefArray[] = [];
  const hoarded: number[][] = [];
  let resolvePending: ((v: number) => void) | null = null;
  let borrowed: RRefArray | null = null;
  let releaseBorrowed: ((v: number) => void) | null = null;
  let sink = 0;

  const self: Faulty = {
    ok(x: number) {
      return x + 1;
    },
    throwSync(msg: string): number {
      throw new Error(msg);
    },
    async rejectAsync(msg: string): Promise<number> {
      await sys.yield();
      throw new Error(msg);
    },
    detachRejection(msg: string) {
      sys.detach(sys.yield().then(() => Promise.reject(new Error(msg))));
      return 1;
    },
    throwHostile(how: number, where: number): Promise<number> {
      const v = hostile(how);
      if (where === 1) return Promise.reject(v);
      if (where === 2) {
        sys.setTimeout(() => {
          throw v;
        }, 1);
        return Promise.resolve(0);
      }
      throw v;
    },
    panic(reason: string) {
      sys.panic(reason);
    },
    useAfterMove() {
      const buf = sys.alloc.bytes(8);
      const dq = sys.alloc.deque<RRefArray>(2);
      dq.push(buf);
      held.push(dq as unknown as RRefArray);
      return buf.getU8(0); // revoked: panics
    },
    passRevoked() {
      const buf = sys.alloc.bytes(8);
      buf.drop();
      return callee.sum(buf);
    },
    passPlainObject() {
      const fake = { valid: true, addr: 4096, byteLength: 8, length: 8, getU8: () => 0 };
      callee.rref(fake as unknown as RRefArray);
      return 1;
    },
    badResult() {
      return { length: 1, getU8: () => 1 } as unknown as RRefArray;
    },
    async badResultAsync() {
      return 'not a number' as unknown as number;
    },
    trapPromise(how: number): Promise<number> {
      const p = Promise.resolve(1);
      const secret = { from: 'faulty' };
      if (how === 0) {
        Object.defineProperty(p, 'constructor', { get() { throw secret; } });
      } else {
        Object.setPrototypeOf(p, new Proxy(Promise.prototype, { getPrototypeOf() { throw secret; } }));
      }
      return p;
    },
    spin(catchDeadline: boolean) {
      let n = 0;
      if (!catchDeadline) {
        for (;;) n++;
      }
      for (;;) {
        try {
          for (;;) n = (n + 1) | 0;
        } catch {
          sink++;
        }
      }
    },
    deepKernelCalls(pad: number) {
      const a = sys.alloc.deque<RRefArray>(1 << 16);
      const b = sys.alloc.deque<RRefArray>(1 << 16);
      let reached = 0;
      // A buffer between the kernel calls of a level (allocated, not pushed yet; popped, not
      // dropped yet): the overflow may strand it in this frame, still ours (its handle valid).
      let loose: RRefArray | null | undefined = null;
      const down = (d: number): void => {
        reached = d;
        loose = sys.alloc.bytes(8 + (d % 7));
        a.push(loose);
        loose = null;
        if (d % pad === 0) b.moveFrom(a, 1);
        if (d % (pad + 1) === 0) {
          loose = a.pop();
          loose?.drop();
          loose = null;
        }
        down(d + 1);
      };
      try {
        down(1);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
      }
      const stranded = (loose as RRefArray | null | undefined)?.valid === true ? 1 : 0;
      held.push(a as unknown as RRefArray, b as unknown as RRefArray);
      return reached * 10_000_000 + stranded * 1_000_000 + a.length + b.length;
    },
    constructTree(depth: number) {
      class Node {
        constructor(d: number) {
          if (d > 0) {
            new Node(d - 1);
            new Node(d - 1);
          }
        }
      }
      new Node(depth);
      return depth;
    },
    backtrack(n: number) {
      return /(a+)+$/.test('a'.repeat(n) + 'b');
    },
    hoard(mib: number) {
      for (let i = 0; i < mib * 16; i++) hoarded.push(new Array<number>(8192).fill(i + 0.5));
      return hoarded.length / 16;
    },
    hold(bytes: number) {
      held.push(sys.alloc.bytes(bytes));
      return held.length;
    },
    armTimer(ms: number) {
      return sys.setTimeout(() => rec.hit('timer'), ms);
    },
    armInterval(ms: number) {
      return sys.setInterval(() => rec.hit('interval'), ms);
    },
    pending() {
      return new Promise<number>((resolve) => {
        resolvePending = resolve;
      });
    },
    resolvePending(v: number) {
      const r = resolvePending;
      resolvePending = null;
      if (r === null) return 0;
      r(v);
      return 1;
    },
    queueWork() {
      // 1. a plain promise continuation calling another domain
      // (each chain is handed to sys.detach: stopped after the death, a continuation rejects its
      // chain; an unhandled rejection is a different test, see escape.test)
      sys.detach(Promise.resolve().then(() => callee.noarg()));
      // 2. a continuation calling the kernel (log goes to the kernel's log sink)
      sys.detach(Promise.resolve().then(() => sys.log('reached-kernel')));
      // 3. an await continuation reaching a host capability
      sys.detach((async () => {
        await null;
        rec.hit('await-continuation');
      })());
      // 4. an await continuation allocating
      sys.detach((async () => {
        await sys.yield();
        held.push(sys.alloc.bytes(64));
        rec.hit('await-alloc');
      })());
      // 5. a spawned task
      sys.spawn(() => rec.hit('spawn'));
      // 6. a timer that would call another domain
      sys.setTimeout(() => callee.noarg(), 1);
      // 7. a plain continuation reaching a host capability
      sys.detach(Promise.resolve().then(() => rec.hit('then-continuation')));
      return 7;
    },
    floatOn(peer: Faulty, handOver: boolean) {
      const chain = peer.pending().then((v) => {
        for (let i = 0; i < 10_000; i++) sink += v;
        rec.hit('float-continuation');
      });
      if (handOver) sys.detach(chain);
      else void chain;
      return 1;
    },
    holdBorrow(buf: RRefArray) {
      borrowed = buf;
      return new Promise<number>((resolve) => {
        releaseBorrowed = resolve;
      });
    },
    peekBorrow() {
      return borrowed === null ? -1 : borrowed.getU8(0);
    },
    releaseBorrow() {
      const r = releaseBorrowed;
      releaseBorrowed = null;
      if (r === null) return 0;
      r(borrowed === null ? -1 : borrowed.getU8(0));
      return 1;
    },
    async lendTo(peer: Faulty, bytes: number) {
      const buf = sys.alloc.bytes(bytes);
      buf.setU8(0, 42);
      held.push(buf);
      return await peer.holdBorrow(buf);
    },
    callPeer(peer: Faulty, x: number) {
      return peer.ok(x);
    },
    self() {
      return self;
    },
    writeBorrowed(buf: RRefArray) {
      buf.setU8(0, 99);
      return 1;
    },
    echoReq(req: RRef<TestReq>) {
      req.ok = true;
      const d = req.data;
      if (d !== null) d.setU8(0, d.getU8(0) + 1);
      return req;
    },
    makeReq(id: number) {
      const req = sys.alloc.struct<TestReq>('TestReq');
      req.id = id;
      req.lba = BigInt(id) * 8n;
      req.tag = [1, 2, 3, 4];
      req.data = sys.alloc.bytes(16);
      return req;
    },
    keep(buf: RRefArray) {
      held.push(buf);
      return held.length;
    },
  };
  return self;
}
