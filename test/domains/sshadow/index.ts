/**
 * sshadow (test domain): a shadow of a `Callee` that routes the synchronous method `rref`
 * (Supervisor.route) and tells the host's Recorder what of its code runs: 'own:rref' for its own
 * method (the path of every call the kernel does not route: it passes the call on unchanged) and,
 * when the hook runs, 'hook:rref' then a JSON line of what the hook was told and what came back.
 * Its own `rref` runs only when the instance it routes to is dead: it passes the call on to a
 * freshly restarted one.
 * Config `hook`:
 *  - 'recover' (default): restart the driver, take back at once (recallNow) what the dead instance
 *    held and answer with the call's buffer found again by its address, RECOVERED written in its
 *    byte 2 (a fresh 8-byte buffer if it did not come back);
 *  - 'throw': the hook throws (this domain's panic);
 *  - 'promise': the hook answers with a promise (a synchronous method's hook must answer at once);
 *  - 'into': as 'recover', but the buffer is taken back into a deque of its own (recallNow's
 *    `into`), and the JSON line says how many the deque got.
 * Config `record`: 'try' asks for a route record too and records 'refused:<message>' (Callee has
 * no struct answer to record from).
 */
import type { Callee, Recorder } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import type { RoutedCall, Supervisor } from '../../../src/runtime/shadow.js';
import type { RRefArray } from '../../../src/runtime/types.js';

const RECOVERED = 0x77;

export function init(sys: Sys, sup: Supervisor<Callee>, rec: Recorder): Callee {
  const first = sup.current();
  const rref = (e: unknown, call: RoutedCall<Callee>): RRefArray => {
    rec.hit('hook:rref');
    const how = sys.config.hook;
    if (how === 'throw') throw new Error('hook failed on purpose');
    sup.restart();
    const dq = how === 'into' ? sys.alloc.deque<RRefArray>(4) : null;
    const back = [...(dq === null ? sup.recallNow() : sup.recallNow(dq))];
    const inDeque = dq?.length ?? 0;
    for (let v = dq?.pop(); v !== undefined; v = dq!.pop()) back.push(v);
    dq?.drop();
    const types = back.map((v) => sup.typeOf(v));
    const { args, addr, capacity, elements, lengths } = call;
    rec.hit(JSON.stringify({ kind: sys.rpcErrorKind(e), sameTarget: call.target === first, args, addr, capacity, elements, lengths, back: back.map((v) => v.addr), types, inDeque }));
    const mine = back.find((v) => v.addr === addr) as RRefArray | undefined;
    for (const v of back) if (v !== mine) v.drop();
    const out = mine ?? sys.alloc.bytes(8);
    out.setU8(2, RECOVERED);
    return (how === 'promise' ? Promise.resolve(out) : out) as RRefArray;
  };
  if (sys.config.record === 'try') {
    try {
      sup.route({ rref }, { field: 'held', into: sys.alloc.array('u32', 8), keys: 1 });
      rec.hit('routed');
    } catch (e) {
      rec.hit(`refused:${(e as Error).message}`);
    }
  } else {
    rec.hit(sup.route({ rref }) ? 'routed' : 'not routed');
  }
  return {
    noarg: () => sup.current().noarg(),
    onearg: (x) => sup.current().onearg(x),
    rref(buf) {
      rec.hit('own:rref');
      return sup.restart().rref(buf);
    },
    sum: (buf) => sup.current().sum(buf),
    mixed: (kept, lent, last) => sup.current().mixed(kept, lent, last),
    asyncEcho: (x) => sup.current().asyncEcho(x),
    count: () => sup.current().count(),
  };
}
