/**
 * rshadow (test domain): a block shadow that routes submit and submitAndPoll (Supervisor.route)
 * and tells the host's Recorder what of its code runs: 'own:<method>' for its own methods (the
 * path of every call the kernel does not route) and, when a hook runs, 'hook:<method>' then a
 * JSON line of what the hook was told. Config:
 *  - `hook`: 'recover' (default: restart the driver, recall what the dead instance held and
 *    answer with the call's requests found again by address, status -5, in order, in a deque of
 *    the call's capacity) or 'throw' (the hook throws: this domain's panic);
 *  - `refuse`: a method name; init then asks to route it (as well as the two above) and records
 *    'refused:<message>' — how the tests see route()'s refusals;
 *  - `record`: 'u8' | 'small' | 'nosuch' | 'tag': init asks for a route record too (field `tag`,
 *    4 keys) into a u8 array, a u32 array too small, of a field no answer has, or as it should be,
 *    and records 'routed' or 'refused:<message>';
 *  - `route`: 'off' to route nothing: its own methods then relay every call to the instance it
 *    holds (Supervisor.relay) — a plain relaying shadow; a failure is recorded
 *    ('relay-failed:<kind>') and answered with a request of its own of status -5 (submit) or an
 *    empty deque (submitAndPoll).
 * With routes, its own methods pass the call on to a freshly restarted instance (they run only
 * when the instance it routes to is dead).
 */
import type { BDev, BlkReq, Recorder } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RoutedCall, Supervisor } from '../../../src/runtime/shadow.js';
import type { RRef, RRefBase, RRefDeque } from '../../../src/runtime/types.js';

const EIO = -5;


export function init(sys: Sys, sup: Supervisor<BDev>, rec: Recorder): BDev {
  const first = sup.current();
  const told = (method: string, e: unknown, call: RoutedCall<BDev>): void => {
    rec.hit(`hook:${method}`);
    const { args, addr, capacity, elements } = call;
    rec.hit(JSON.stringify({ kind: sys.rpcErrorKind(e), sameTarget: call.target === first, args, addr, capacity, elements }));
    if (sys.config.hook === 'throw') throw new Error('hook failed on purpose');
  };
  /**
   * Restart the driver and take back, by address, what the dead instance held of ours (the
   * requests of the call's deque at `dq`, if it came back whole, taken out of it).
   */
  const recalled = async (dq = -1): Promise<Map<number, RRef<BlkReq>>> => {
    sup.restart();
    const byAddr = new Map<number, RRef<BlkReq>>();
    const keep = (v: RRefBase): void => void byAddr.set(v.addr, v as RRef<BlkReq>);
    for (const v of await sup.recall()) {
      if (v.addr !== dq) keep(v);
      else {
        const dq = v as RRefDeque<RRefBase>;
        for (let e = dq.pop(); e !== undefined; e = dq.pop()) keep(e);
        dq.drop();
      }
    }
    return byAddr;
  };
  const relayFailed = (e: unknown): void => rec.hit(`relay-failed:${sys.rpcErrorKind(e)}`);
  const failed = (h: RRef<BlkReq>): RRef<BlkReq> => {
    h.status = EIO;
    return h;
  };

  const hooks = {
    submit: async (e: unknown, call: RoutedCall<BDev>) => {
      told('submit', e, call);
      return failed((await recalled()).get(call.addr)!);
    },
    submitAndPoll: async (e: unknown, call: RoutedCall<BDev>) => {
      told('submitAndPoll', e, call);
      const found = await recalled(call.addr);
      const out = sys.alloc.deque<RRef<BlkReq>>(call.capacity);
      for (const a of call.elements) out.push(failed(found.get(a)!));
      return out;
    },
  };
  const refuse = sys.config.refuse;
  const routing = sys.config.route !== 'off';
  if (!routing) {
    rec.hit('not routed');
  } else if (typeof sys.config.record === 'string') {
    const how = sys.config.record;
    const into = how === 'u8' ? sys.alloc.bytes(64) : sys.alloc.array('u32', how === 'small' ? 4 : 64);
    try {
      sup.route(hooks, { field: how === 'nosuch' ? 'nosuch' : 'tag', into: into as never, keys: 4 });
      rec.hit('routed');
    } catch (e) {
      rec.hit(`refused:${(e as Error).message}`);
    }
  } else if (typeof refuse === 'string') {
    try {
      sup.route({ ...hooks, [refuse]: refuse === 'notAFunction' ? 42 : hooks.submit } as never);
      rec.hit('routed');
    } catch (e) {
      rec.hit(`refused:${(e as Error).message}`);
    }
  } else {
    rec.hit(sup.route(hooks) ? 'routed' : 'not routed');
  }

  return {
    blockSize: () => sup.current().blockSize(),
    blockCount: () => sup.current().blockCount(),
    model: () => sup.current().model(),
    serial: () => sup.current().serial(),
    readOnly: () => sup.current().readOnly(),
    submit(h) {
      rec.hit('own:submit');
      if (!routing) return sup.relay(() => first.submit(h), (e) => (relayFailed(e), failed(sys.alloc.struct<BlkReq>('BlkReq'))));
      return sup.restart().submit(h);
    },
    submitAndPoll(dq) {
      rec.hit('own:submitAndPoll');
      if (!routing) return sup.relay(() => first.submitAndPoll(dq), (e) => (relayFailed(e), sys.alloc.deque<RRef<BlkReq>>(1)));
      return sup.restart().submitAndPoll(dq);
    },
    write: (lba, data) => sup.current().write(lba, data),
    flush: () => sup.current().flush(),
  };
}
