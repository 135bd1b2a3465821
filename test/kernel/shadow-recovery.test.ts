/**
 * The shadow runtime's recovery with an asynchronous onRestart (src/runtime/shadow.ts), against a
 * fake Supervisor whose instances answer whether their initialisation protocol was replayed: a
 * call that comes while onRestart runs waits until it has finished, on either restart path (a
 * failed async call's recover(), a failed synchronous call's restart), and the control's routes
 * are off meanwhile (the kernel would route straight to the fresh instance).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRpcError, makeRpcError } from '../../src/kernel/errors.js';
import { shadowControl, type Supervisor } from '../../src/runtime/shadow.js';
import type { Sys } from '../../src/runtime/sys.js';
import { turn } from './helpers.js';

/** An instance of the supervised domain: answers whether onRestart initialised it, or fails once dead. */
class Instance {
  initialised = false;
  alive = true;
  constructor(readonly n: number) {}
  private check(): void {
    if (!this.alive) throw makeRpcError('callee-dead', 'target', 'state', `instance ${this.n} is dead`);
  }
  state(): boolean {
    this.check();
    return this.initialised;
  }
  async stateAsync(): Promise<boolean> {
    return this.state();
  }
}

const sys = { rpcErrorKind: (e: unknown) => (isRpcError(e) ? e.kind : null) } as unknown as Sys;

/** A shadow control over a fake Supervisor; onRestart takes `turns` event-loop turns. */
function setup(turns: number) {
  const instances = [new Instance(0)];
  instances[0]!.initialised = true;
  const routes: object[] = [];
  const sup = {
    current: () => instances.at(-1)!,
    restart: () => {
      instances.push(new Instance(instances.length));
      return instances.at(-1)!;
    },
    relay: <R>(fn: () => Promise<R>, onFailure: (e: unknown) => R | Promise<R>) => fn().then((v) => v, onFailure),
    route: (hooks: object) => (routes.push(hooks), true),
  } as unknown as Supervisor<Instance>;
  const ctl = shadowControl(sys, sup, {
    onRestart: async (fresh) => {
      for (let i = 0; i < turns; i++) await turn();
      fresh.initialised = true;
    },
  });
  return { ctl, instances, routes };
}

test('an async call made while an async onRestart runs waits for it: it sees the initialised instance', async () => {
  const { ctl, instances } = setup(5);
  instances[0]!.alive = false;
  const first = ctl.callAsync(true, (t) => t.stateAsync());
  await turn(); // the first call has failed and the recovery is under way
  assert.equal(ctl.restarts, 1);
  const during = ctl.callAsync(true, (t) => t.stateAsync());
  assert.deepEqual(await Promise.all([first, during]), [true, true]);
  assert.equal(ctl.restarts, 1, 'one restart for the death');
});

test("a synchronous call's restart with an async onRestart: that call throws, and calls until onRestart is done wait or throw", async () => {
  const { ctl, instances } = setup(5);
  instances[0]!.alive = false;
  assert.throws(() => ctl.call(true, (t) => t.state()), /cannot wait for an asynchronous restart/);
  const during = ctl.callAsync(true, (t) => t.stateAsync());
  assert.throws(() => ctl.call(true, (t) => t.state()), /cannot wait for an asynchronous restart/, 'no synchronous call reaches the instance being initialised');
  assert.equal(await during, true);
  assert.equal(ctl.call(true, (t) => t.state()), true, 'once onRestart is done, synchronous calls go on');
  assert.equal(ctl.restarts, 1);
});

test('the routes the control set are off while an async onRestart runs, and back after', async () => {
  const { ctl, instances, routes } = setup(5);
  assert.equal(ctl.route({ stateAsync: (t) => t.stateAsync() }), true);
  const hooks = routes.at(-1)!;
  instances[0]!.alive = false;
  const recovered = ctl.recover();
  assert.deepEqual(routes.at(-1), {}, 'nothing routed to the fresh instance before it is initialised');
  await recovered;
  assert.equal(routes.at(-1), hooks);
});
