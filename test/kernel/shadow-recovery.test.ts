/**
 * The shadow runtime's recovery with an asynchronous onRestart (src/runtime/shadow.ts), against a
 * fake Supervisor whose instances answer whether their initialisation protocol was replayed: a
 * call that comes while onRestart runs waits until it has finished, on either restart path (a
 * failed async call's recover(), a failed synchronous call's restart), and again for the next
 * recovery when the fresh instance dies at once, and the control's routes are off meanwhile (the
 * kernel would route straight to the fresh instance).
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
  /** Throws at once when dead, as the kernel's proxy does for a call into a dead callee. */
  stateAsync(): Promise<boolean> {
    return Promise.resolve(this.state());
  }
}

const sys = { rpcErrorKind: (e: unknown) => (isRpcError(e) ? e.kind : null) } as unknown as Sys;

/**
 * A shadow control over a fake Supervisor; onRestart takes `turns` event-loop turns. Instance
 * number `diesInitialised` dies as its onRestart finishes (a driver that crashes again at once).
 */
function setup(turns: number, diesInitialised = -1) {
  const instances = [new Instance(0)];
  instances[0]!.initialised = true;
  const routes: object[] = [];
  const sup = {
    current: () => instances.at(-1)!,
    restart: () => {
      instances.push(new Instance(instances.length));
      return instances.at(-1)!;
    },
    // A throw of fn is a failure for onFailure, as with the kernel's relay.
    relay: <R>(fn: () => Promise<R>, onFailure: (e: unknown) => R | Promise<R>) =>
      new Promise<R>((resolve) => resolve(fn())).then((v) => v, onFailure),
    route: (hooks: object) => (routes.push(hooks), true),
  } as unknown as Supervisor<Instance>;
  const ctl = shadowControl(sys, sup, {
    onRestart: async (fresh) => {
      for (let i = 0; i < turns; i++) await turn();
      fresh.initialised = true;
      if (fresh.n === diesInitialised) fresh.alive = false;
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

test('calls that waited for a recovery, and find its instance dead, reach the next one only after its onRestart', async () => {
  const { ctl, instances } = setup(5, 1);
  instances[0]!.alive = false;
  const first = ctl.callAsync(true, (t) => t.stateAsync());
  await turn(); // the first call has failed and the recovery is under way
  const during = [ctl.callAsync(true, (t) => t.stateAsync()), ctl.callAsync(true, (t) => t.stateAsync())];
  // The first to go on finds instance 1 dead and restarts it: the others wait for instance 2's onRestart.
  assert.deepEqual(await Promise.all([first, ...during]), [true, true, true]);
  assert.equal(ctl.restarts, 2);
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
