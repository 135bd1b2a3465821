/**
 * hookapp (test domain): a packet app on the app engine (src/runtime/netapp.ts) whose hooks come
 * from sys.config, so a test can hand the engine hooks it must refuse at load: headerBytes,
 * rewriteBytes, rxInfoBytes (AppHooks.rxInfo.headerBytes; absent: no rxInfo) and prepare (false:
 * no prepare hook). process sends every frame as it is.
 */
import type { Net, NetApp } from '../../../src/interfaces/index.js';
import type { Sys } from '../../../src/runtime/sys.js';
import { makeApp, type AppHooks } from '../../../src/runtime/netapp.js';

export function init(sys: Sys, net: Net): NetApp {
  const c = sys.config;
  const num = (k: string, d: number): number => (typeof c[k] === 'number' ? (c[k] as number) : d);
  const hooks: AppHooks = {
    headerBytes: num('headerBytes', 12),
    rewriteBytes: num('rewriteBytes', 0),
    process: (_h, _o, len) => len,
  };
  if (typeof c.rxInfoBytes === 'number') hooks.rxInfo = { headerBytes: c.rxInfoBytes };
  if (c.prepare !== false) hooks.prepare = () => {};
  return makeApp(sys, net, hooks);
}
