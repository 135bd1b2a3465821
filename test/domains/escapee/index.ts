/**
 * escapee: hostile domain code for the escape suite (test/kernel/escape.test.ts). Each attempt
 * tries one way out of the domain's isolation and reports 'ESCAPED' or 'blocked: <why>'. An
 * attempt function returns `true` when it got through, or a string saying why it did not; a throw
 * counts as blocked with the error's name and message.
 *
 * Strings the SES evaluator refuses anywhere in a source text (the dynamic-import keyword followed
 * by a parenthesis) are assembled at run time so the bundle itself stays loadable.
 */
import type { Callee, Faulty, Probe, TestReq } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RRef, RRefArray, RRefDeque } from '../../../src/runtime/types.js';

const IMP = 'imp' + 'ort';

export function init(sys: Sys, callee: Callee, victim: Faulty): Probe {
  const G = globalThis as any;
  let stashed: RRefArray | null = null;

  const errText = (e: unknown): string => {
    if (e !== null && typeof e === 'object' && 'message' in e) return `${String((e as Error).name)}: ${String((e as Error).message)}`;
    return `thrown ${typeof e}: ${String(e)}`;
  };

  /** Is F an evaluator that reaches a realm other than this domain's compartment? */
  const tryEvaluator = (F: unknown): true | string => {
    if (typeof F !== 'function') return 'no constructor';
    let g: any;
    try {
      g = (F as any)('return globalThis')();
    } catch (e) {
      return errText(e);
    }
    if (g !== globalThis || (g && typeof g.process !== 'undefined')) return true;
    try {
      if ((F as any)('return typeof process')() !== 'undefined') return true;
    } catch (e) {
      return errText(e);
    }
    return 'evaluator confined to the compartment';
  };

  /** Walk x's prototype chain; for each `constructor` and its `constructor`, try to evaluate. */
  const constructorChain = (x: unknown): true | string => {
    const seen: string[] = [];
    const candidates: unknown[] = [];
    let p: any = x;
    for (let depth = 0; p !== null && p !== undefined && depth < 8; depth++) {
      let c: any;
      try {
        c = p.constructor;
      } catch (e) {
        seen.push(errText(e));
      }
      if (typeof c === 'function') {
        candidates.push(c);
        try {
          candidates.push(c.constructor);
        } catch (e) {
          seen.push(errText(e));
        }
      }
      p = Object.getPrototypeOf(p);
    }
    if (typeof x === 'function') candidates.push(x);
    for (const F of candidates) {
      if (F === Object || F === Array || F === Promise || F === Error || F === TypeError) continue; // not evaluators
      const r = tryEvaluator(F);
      if (r === true) return true;
      seen.push(r);
    }
    return `${candidates.length} constructors, none reaches the host (${[...new Set(seen)].join('; ')})`;
  };

  const genuineRpcError = (): any => {
    try {
      victim.throwSync('boom'); // the victim panics (or is dead already): an RpcError either way
    } catch (e) {
      return e;
    }
    throw new Error('victim answered instead of failing');
  };

  const attempts: Record<string, () => true | string | Promise<true | string>> = {
    process: () => (typeof G.process !== 'undefined' ? true : `typeof process is ${typeof G.process}`),
    'process-eval': () => ((0, eval)('typeof process') !== 'undefined' ? true : 'eval sees no process'),
    require: () => (typeof G.require === 'function' || typeof G.module !== 'undefined' ? true : 'no require/module'),
    'import-eval': () => {
      (0, eval)(`${IMP}('node:fs')`);
      return true;
    },
    'import-function': () => {
      new Function(`return ${IMP}('node:child_process')`)();
      return true;
    },
    'globalThis-set': () => {
      G.leaked = 1;
      return G.leaked === 1 ? true : 'assignment ignored';
    },
    'globalThis-define': () => {
      Object.defineProperty(G, 'leaked2', { value: 1 });
      return true;
    },
    'Object.prototype': () => {
      (Object.prototype as any).polluted = 'yes';
      return true;
    },
    'Object.prototype-define': () => {
      Object.defineProperty(Object.prototype, 'polluted', { value: 'yes', configurable: true });
      return true;
    },
    // The kernel freezes these by the specification's steps rather than Object.freeze (see
    // src/kernel/lockdown.ts): they must end as frozen as any other intrinsic.
    'TypedArray.prototype': () => {
      (Object.getPrototypeOf(Uint8Array.prototype) as any).fill = function () {
        return -1;
      };
      return true;
    },
    'Uint8Array.prototype-define': () => {
      Object.defineProperty(Uint8Array.prototype, 'constructor', { value: Object, configurable: true });
      return true;
    },
    'Array.prototype': () => {
      (Array.prototype as any).push = function () {
        return -1;
      };
      return true;
    },
    'Promise.prototype.then': () => {
      (Promise.prototype as any).then = function () {
        return 'hijacked';
      };
      return true;
    },
    'Function.prototype.call': () => {
      (Function.prototype as any).call = function () {
        return 'hijacked';
      };
      return true;
    },
    'Error.prepareStackTrace': () => {
      let leaked: unknown = null;
      try {
        (Error as any).prepareStackTrace = (_e: unknown, frames: any[]) => {
          for (const f of frames) {
            const fn = f?.getFunction?.();
            const self = f?.getThis?.();
            if (typeof fn === 'function' || (self && self !== globalThis)) leaked = fn ?? self;
          }
          return 'x';
        };
      } catch (e) {
        return `cannot install prepareStackTrace (${errText(e)})`;
      }
      try {
        sys.alloc.bytes(-1);
      } catch (e) {
        void (e as Error).stack;
      }
      return leaked !== null ? true : 'no kernel frame leaked';
    },
    'ctor:sys': () => constructorChain(sys),
    'ctor:sys.log': () => constructorChain(sys.log),
    'ctor:sys.alloc': () => constructorChain(sys.alloc),
    'ctor:sys.alloc.bytes': () => constructorChain(sys.alloc.bytes),
    'ctor:sys.config': () => constructorChain(sys.config),
    'ctor:arguments': function (this: unknown) {
      // eslint-disable-next-line prefer-rest-params
      return constructorChain(arguments);
    },
    'ctor:rpc-error': () => constructorChain(genuineRpcError()),
    'ctor:proxy': () => constructorChain(callee),
    'ctor:proxy-method': () => constructorChain(callee.noarg),
    'ctor:proxy-promise': () => {
      const p = callee.asyncEcho(1);
      const a = constructorChain(p);
      if (a === true) return true;
      const b = constructorChain(p.then);
      return b === true ? true : `${a} / ${b}`;
    },
    'ctor:rref': () => {
      const h = sys.alloc.bytes(8);
      const r = constructorChain(h);
      h.drop();
      return r;
    },
    'ctor:rref-method': () => {
      const h = sys.alloc.bytes(8);
      const r = constructorChain(h.getU8);
      h.drop();
      return r;
    },
    'ctor:struct': () => {
      const h = sys.alloc.struct<TestReq>('TestReq');
      const r = constructorChain(h);
      h.drop();
      return r;
    },
    'ctor:async-function': () => constructorChain(async () => 1),
    'ctor:generator': () => constructorChain(function* () {
      yield 1;
    }),
    'ctor:getter': () => {
      const h = sys.alloc.bytes(8);
      const d = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(h), 'valid');
      h.drop();
      return constructorChain(d?.get);
    },
    'sys-mutation': () => {
      (sys as any).panic = () => 0;
      return true;
    },
    'sys.alloc-mutation': () => {
      (sys.alloc as any).bytes = () => 0;
      return true;
    },
    'proxy-mutation': () => {
      (callee as any).noarg = () => 0;
      return true;
    },
    'rref-proto-mutation': () => {
      const h = sys.alloc.bytes(8);
      try {
        (Object.getPrototypeOf(h) as any).getU8 = () => 7;
      } finally {
        h.drop();
      }
      return true;
    },
    'struct-proto-mutation': () => {
      const h = sys.alloc.struct<TestReq>('TestReq');
      try {
        Object.defineProperty(Object.getPrototypeOf(h), 'id', { get: () => 7 });
      } finally {
        h.drop();
      }
      return true;
    },
    'forge-rref-new': () => {
      const h = sys.alloc.bytes(8);
      const C = h.constructor as any;
      h.drop();
      new C(Symbol('rref-token'), 0, 0, false, 1);
      return true;
    },
    'forge-rref-reflect': () => {
      const h = sys.alloc.bytes(8);
      const C = h.constructor as any;
      h.drop();
      Reflect.construct(C, [Symbol.for('rref-token'), 1, 0, false, 1]);
      return true;
    },
    'forge-rref-proto': () => {
      const h = sys.alloc.bytes(8);
      const fake = Object.create(Object.getPrototypeOf(h));
      h.drop();
      return `read ${String(fake.getU8(0))}` && true;
    },
    /** A handle-shaped plain object passed to another domain: the caller (this domain) panics. */
    'forge-rref-pass': () => {
      const h = sys.alloc.bytes(8);
      const fake = Object.create(Object.getPrototypeOf(h));
      callee.sum(fake);
      return true;
    },
    /** A JS Proxy around a real handle is not a handle either. */
    'forge-rref-jsproxy': () => {
      const h = sys.alloc.bytes(8);
      const fake = new Proxy(h, {});
      callee.rref(fake as any);
      return true;
    },
    'forge-rpcerror-new': () => {
      const e = genuineRpcError();
      new e.constructor(Symbol('rpc-error'), 'panic', 'dom_c', 'noarg', 'forged');
      return true;
    },
    'forge-rpcerror-lookalike': () => {
      const e = genuineRpcError();
      const genuineKind = sys.rpcErrorKind(e);
      const fake = Object.create(Object.getPrototypeOf(e), {
        kind: { value: 'panic' },
        domain: { value: 'dom_c' },
        method: { value: 'noarg' },
        message: { value: 'panic: forged' },
        name: { value: 'RpcError' },
      });
      const fakeKind = sys.rpcErrorKind(fake);
      if (genuineKind === null) return 'test broken: genuine RpcError not recognised';
      return fakeKind !== null ? true : `look-alike not recognised (genuine one is '${genuineKind}')`;
    },
    'forge-rpcerror-mutate': () => {
      const e = genuineRpcError();
      e.kind = 'panic-forged';
      return e.kind === 'panic-forged' ? true : 'mutation ignored';
    },
    /** Keep a borrowed handle past its call and read it (the test stashed a kernel buffer). */
    'stale-borrow-read': () => {
      if (stashed === null) return 'test broken: nothing stashed';
      return `read ${stashed.getU8(0)}` && true;
    },
    'stale-borrow-pass': () => {
      if (stashed === null) return 'test broken: nothing stashed';
      callee.sum(stashed);
      return true;
    },
    'use-after-move': () => {
      const h = sys.alloc.bytes(8);
      const back = callee.rref(h);
      back.drop();
      return `read ${h.getU8(0)}` && true;
    },
    'write-after-move': () => {
      const h = sys.alloc.bytes(8);
      const back = callee.rref(h);
      h.setU8(0, 1);
      back.drop();
      return true;
    },
    'view-before-move': () => {
      const req = sys.alloc.struct<TestReq>('TestReq');
      req.data = sys.alloc.bytes(8);
      const view = req.data!;
      const dq = sys.alloc.deque<RRef<TestReq>>(1);
      dq.push(req);
      return `read ${view.getU8(0)}` && true;
    },
    'move-twice': () => {
      const h = sys.alloc.bytes(8);
      const back = callee.rref(h);
      back.drop();
      callee.rref(h);
      return true;
    },
    /** Bulk deque moves (RRefDeque.moveFrom) obey the same ownership rules as push and pop. */
    'movefrom-moved-source': () => {
      const src = sys.alloc.deque<RRefArray<number>>(2);
      src.push(sys.alloc.bytes(8));
      const outer = sys.alloc.deque<RRefDeque<RRefArray<number>>>(1);
      outer.push(src);
      return `moved ${sys.alloc.deque<RRefArray<number>>(2).moveFrom(src, 1)}` && true;
    },
    'movefrom-self': () => {
      const d = sys.alloc.deque<RRefArray<number>>(2);
      return `moved ${d.moveFrom(d, 1)}` && true;
    },
    'movefrom-not-deque': () => {
      const d = sys.alloc.deque<RRefArray<number>>(2);
      return `moved ${d.moveFrom(sys.alloc.bytes(8) as unknown as RRefDeque<RRefArray<number>>, 1)}` && true;
    },
    'stale-borrow-movefrom': () => {
      if (stashed === null) return 'test broken: nothing stashed';
      const d = sys.alloc.deque<RRefArray<number>>(2);
      return `moved ${d.moveFrom(stashed as unknown as RRefDeque<RRefArray<number>>, 1)}` && true;
    },
    /**
     * Caller values that run code between the kernel's check and its access: an offset whose
     * valueOf answers 0 to the bounds check and the distance to the next allocation afterwards.
     */
    'offset-valueof': () => {
      const mine = sys.alloc.bytes(8);
      const next = sys.alloc.bytes(8);
      const dist = next.addr - mine.addr;
      let calls = 0;
      const o = { valueOf: () => (calls++ < 2 ? 0 : dist) };
      mine.setU8(o as unknown as number, 0xab);
      return next.getU8(0) === 0xab ? true : `the store did not land outside (valueOf ran ${calls} times)`;
    },
    /** A value whose valueOf frees the buffer (and reallocates its block) after the address check. */
    'value-valueof': () => {
      let h = sys.alloc.bytes(8);
      let again: RRefArray<number> | null = null;
      const v = { valueOf: () => { h.drop(); again = sys.alloc.bytes(8); return 0x5a; } };
      h.setU8(0, v as unknown as number);
      return (again as RRefArray<number> | null)?.getU8(0) === 0x5a ? true : 'the store did not reach the reallocated block';
    },
    /** A look-alike destination whose `set` would be handed the kernel's view of physical memory. */
    'read-lookalike': () => {
      const h = sys.alloc.bytes(8);
      let got: unknown = null;
      h.read(0, { length: 8, set: (view: Uint8Array) => { got = view.buffer; } } as unknown as Uint8Array);
      return got !== null && (got as ArrayBufferLike).byteLength > 8 ? true : 'no view of physical memory';
    },
    /** Code made at run time would run without deadline checks: any evaluator that runs it is an escape. */
    'eval-runs-code': () => {
      const tries: [string, () => unknown][] = [
        ['eval', () => (0, eval)('for (let i = 0; i < 10; i++); 2')],
        ['Function', () => new Function('for (let i = 0; i < 10; i++); return 2')()],
        ['Compartment', () => new G.Compartment({}).evaluate('2')],
      ];
      const seen: string[] = [];
      for (const [name, t] of tries) {
        try {
          if (t() === 2) return true;
          seen.push(`${name}: ran, wrong value`);
        } catch (e) {
          seen.push(`${name}: ${errText(e)}`);
        }
      }
      return seen.join('; ');
    },
    'nested-compartment': () => {
      const C = G.Compartment;
      if (typeof C !== 'function') return 'no Compartment';
      const c = new C({});
      const r = c.evaluate('typeof process + "/" + typeof require');
      return r !== 'undefined/undefined' ? true : `nested compartment sees ${r}`;
    },
    /** A rejection nobody handles: must not take the kernel process down. */
    'unhandled-rejection': () => {
      void Promise.reject(new Error('a domain rejection nobody handles'));
      return 'queued';
    },
    /** A failing cross-domain async call whose promise is dropped. */
    'dropped-rpc-rejection': () => {
      void victim.rejectAsync('dropped');
      return 'queued';
    },
    'atomics-wait': () => {
      if (typeof Atomics?.wait !== 'function' || typeof SharedArrayBuffer !== 'function') return 'no Atomics.wait';
      const t0 = sys.now();
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 150);
      return sys.now() - t0 >= 100 ? true : 'wait returned at once';
    },
  };

  const run = (name: string): string => {
    const a = attempts[name];
    if (a === undefined) return `unknown attempt ${name}`;
    try {
      const r = a();
      if (r instanceof Promise) return 'unexpected promise';
      return r === true ? 'ESCAPED' : `blocked: ${r}`;
    } catch (e) {
      return `blocked: ${errText(e)}`;
    }
  };

  return {
    attempt(name: string) {
      return run(name);
    },
    async attemptAsync(name: string) {
      if (name === 'await-proxy-promise') {
        const p = callee.asyncEcho(7);
        const c = constructorChain(p);
        const v = await p;
        if (c === true) return 'ESCAPED';
        return v === 7 ? `blocked: ${c}` : `wrong value ${String(v)}`;
      }
      if (name === 'import-eval-async') {
        try {
          await (0, eval)(`${IMP}('node:fs')`);
          return 'ESCAPED';
        } catch (e) {
          return `blocked: ${errText(e)}`;
        }
      }
      return run(name);
    },
    stash(buf: RRefArray) {
      stashed = buf;
      return buf.getU8(0);
    },
    throwLookalike(): number {
      const e = genuineRpcError();
      throw Object.create(Object.getPrototypeOf(e), { kind: { value: 'callee-dead' }, message: { value: 'forged' } });
    },
  };
}
