/**
 * ishadow (test domain): a shadow of a `Callee` whose restarts replay an asynchronous
 * initialisation (ShadowOptions.onRestart of src/runtime/shadow.ts) — how the tests see, in a
 * kernel, what a caller gets when that replay fails. Config `replay`: 'ok' (default: it takes a
 * turn and succeeds) or 'throw' (it takes a turn and throws 'bring-up failed': the shadow's own
 * replay fails, the fresh instance is alive). asyncEcho goes through callAsync, every other
 * method through call (reissued; rref and mixed, which move buffers in, are not).
 */
import type { Callee } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import { shadowControl, type Supervisor } from '../../../src/runtime/shadow.js';

export function init(sys: Sys, sup: Supervisor<Callee>): Callee {
  const ctl = shadowControl(sys, sup, {
    onRestart: async () => {
      await sys.yield();
      if (sys.config.replay === 'throw') throw new Error('bring-up failed');
    },
  });
  return {
    noarg: () => ctl.call(true, (t) => t.noarg()),
    onearg: (x) => ctl.call(true, (t) => t.onearg(x)),
    rref: (buf) => ctl.call(false, (t) => t.rref(buf)),
    sum: (buf) => ctl.call(true, (t) => t.sum(buf)),
    mixed: (kept, lent, last) => ctl.call(false, (t) => t.mixed(kept, lent, last)),
    asyncEcho: (x) => ctl.callAsync(true, (t) => t.asyncEcho(x)),
    count: () => ctl.call(true, (t) => t.count()),
  };
}
