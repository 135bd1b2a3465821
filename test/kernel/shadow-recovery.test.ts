/**
 * The shadow runtime's recovery with an asynchronous onRestart (src/runtime/shadow.ts), against a
 * fake Supervisor whose instances answer whether their initialisation protocol was replayed: a
 * call that comes while onRestart runs waits until it has finished, on either restart path (a
 * failed async call's recover(), a failed synchronous call's restart), and again for the next
 * recovery when the fresh instance dies at once, and the control's routes are off meanwhile (the
 * kernel would route straight to the fresh instance). And when a recovery fails (onRestart throws
 * or rejects, or the fresh instance dies in its init): the instance left uninitialised is never
 * called nor routed to, the next call restarts again, a death is retried within maxRetries, the
 * shadow's own failure reaches waiting calls as a 'shadow: recovery failed' error with it as the
 * cause, and a recovery nobody waits for is logged, not left an unhandled rejection. A
 * synchronous call that cannot be reissued gets its own death whatever its restart does, and
 * retries, as any call, a restart that failed before it was made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRpcError, makeRpcError } from '../../src/kernel/errors.js';
import { join } from 'node:path';
import { Kernel } from '../../src/kernel/kernel.js';
import type { Callee } from '../../src/interfaces/index.js';
import { shadowControl, type Supervisor } from '../../src/runtime/shadow.js';
import type { Sys } from '../../src/runtime/sys.js';
import { DOM_C, TEST_ARTIFACTS, turn } from './helpers.js';

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

/**
 * How the fake's restarts go: onRestart takes `turns` event-loop turns (0: a synchronous
 * onRestart); the instances n for which `diesInitialised(n)` die as their onRestart finishes (a driver that
 * crashes again at once); `fails(n)` is what onRestart on instance n fails with (undefined: it
 * succeeds); `restartDies` are the restarts (1 for the first) whose fresh instance dies in its
 * init, for which Supervisor.restart throws as the kernel's does.
 */
interface Setup {
  diesInitialised?: (n: number) => boolean;
  fails?: (n: number) => unknown;
  restartDies?: readonly number[];
}

/** A shadow control over a fake Supervisor (see Setup), with what it logged and every route set. */
function setup(turns: number, how: Setup = {}) {
  const instances = [new Instance(0)];
  instances[0]!.initialised = true;
  const routes: object[] = [];
  const logs: string[] = [];
  const sys = {
    rpcErrorKind: (e: unknown) => (isRpcError(e) ? e.kind : null),
    log: (...parts: unknown[]) => void logs.push(parts.join(' ')),
    // As the kernel's: a rejection of the chain would be the domain's panic.
    detach: (p: Promise<unknown>) => void p.catch((e: unknown) => logs.push(`panic: ${String(e)}`)),
  } as unknown as Sys;
  let restartCalls = 0;
  const sup = {
    current: () => instances.at(-1)!,
    restart: () => {
      if (how.restartDies?.includes(++restartCalls)) throw makeRpcError('callee-dead', 'target', 'restart', 'died in its init');
      instances.push(new Instance(instances.length));
      return instances.at(-1)!;
    },
    // A throw of fn is a failure for onFailure, as with the kernel's relay.
    relay: <R>(fn: () => Promise<R>, onFailure: (e: unknown) => R | Promise<R>) =>
      new Promise<R>((resolve) => resolve(fn())).then((v) => v, onFailure),
    route: (hooks: object) => (routes.push(hooks), true),
  } as unknown as Supervisor<Instance>;
  const initialise = (fresh: Instance): void => {
    const failure = how.fails?.(fresh.n);
    if (failure !== undefined) throw failure;
    fresh.initialised = true;
    if (how.diesInitialised?.(fresh.n) === true) fresh.alive = false;
  };
  const ctl = shadowControl(sys, sup, {
    onRestart:
      turns === 0
        ? initialise
        : async (fresh) => {
            for (let i = 0; i < turns; i++) await turn();
            initialise(fresh);
          },
  });
  return { ctl, instances, routes, logs };
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
  const { ctl, instances } = setup(5, { diesInitialised: (n) => n === 1 });
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

/** A failure of onRestart that is not a death: the shadow's own replay threw. */
const bringUpFailed = new Error('bring-up failed');
/** What a call that needed a recovery whose onRestart threw `bringUpFailed` gets. */
const recoveryFailed = (e: unknown): boolean =>
  e instanceof Error && /^shadow: recovery failed/.test(e.message) && /bring-up failed/.test(e.message) && e.cause === bringUpFailed;
/** onRestart's failure on instance `n` when instance `failing` is initialised by a replay that throws. */
const failsOn = (failing: number, failure: unknown = bringUpFailed) => (n: number) => (n === failing ? failure : undefined);

/** The rejections Node reports unhandled while `fn` runs and a few turns after it. */
async function unhandledDuring(fn: () => void): Promise<unknown[]> {
  const seen: unknown[] = [];
  const record = (reason: unknown) => void seen.push(reason);
  process.on('unhandledRejection', record);
  try {
    fn();
    for (let i = 0; i < 10; i++) await turn();
  } finally {
    process.off('unhandledRejection', record);
  }
  return seen;
}

test("a synchronous call's restart whose async onRestart fails, none waiting: nothing is left unhandled, the failure is logged, and the next call restarts again", async () => {
  const { ctl, instances, logs } = setup(2, { fails: failsOn(1) });
  instances[0]!.alive = false;
  const unhandled = await unhandledDuring(() => assert.throws(() => ctl.call(true, (t) => t.state()), /cannot wait for an asynchronous restart/));
  assert.deepEqual(unhandled, []);
  assert.match(logs.join('\n'), /recovery failed.*bring-up failed/);
  assert.doesNotMatch(logs.join('\n'), /^panic:/m, 'no chain the shadow handed to sys.detach rejected');
  assert.equal(await ctl.callAsync(true, (t) => t.stateAsync()), true, 'instance 1, never initialised, is not called: the call restarts it');
  assert.equal(ctl.restarts, 2);
});

test('an instance whose synchronous onRestart failed is never called, nor routed to: the call gets the recovery error, and the next call restarts again', () => {
  const { ctl, instances, routes } = setup(0, { fails: failsOn(1) });
  assert.equal(ctl.route({ stateAsync: (t) => t.stateAsync() }), true);
  const hooks = routes.at(-1);
  instances[0]!.alive = false;
  assert.throws(() => ctl.call(true, (t) => t.state()), recoveryFailed);
  assert.deepEqual(routes.at(-1), {}, 'nothing routed to the uninitialised instance');
  assert.equal(ctl.call(true, (t) => t.state()), true, 'instance 1 is not called: the call restarts it');
  assert.equal(ctl.restarts, 2);
  assert.equal(routes.at(-1), hooks, 'routed again once an instance is initialised');
});

test('calls waiting for a recovery whose onRestart throws get the recovery error, with the failure as its cause; the next call restarts again', async () => {
  const { ctl, instances } = setup(3, { fails: failsOn(1) });
  instances[0]!.alive = false;
  const first = ctl.callAsync(true, (t) => t.stateAsync());
  await turn(); // the first call has failed and the recovery is under way
  const during = ctl.callAsync(true, (t) => t.stateAsync());
  await assert.rejects(first, recoveryFailed);
  await assert.rejects(during, recoveryFailed);
  assert.equal(await ctl.callAsync(true, (t) => t.stateAsync()), true, 'instance 1 is not called: the call restarts it');
  assert.equal(ctl.restarts, 2);
});

test('calls waiting for a recovery whose fresh instance dies in the replay retry on the next instance, within their bound', async () => {
  const { ctl, instances } = setup(3, { fails: failsOn(1, makeRpcError('panic', 'target', 'init', 'instance 1 panicked')) });
  instances[0]!.alive = false;
  const first = ctl.callAsync(true, (t) => t.stateAsync());
  await turn();
  const during = ctl.callAsync(true, (t) => t.stateAsync());
  assert.deepEqual(await Promise.all([first, during]), [true, true]);
  assert.equal(ctl.restarts, 2, 'one restart for each death');

  const always = setup(1, { fails: () => makeRpcError('panic', 'target', 'init', 'panicked in its init') });
  always.instances[0]!.alive = false;
  await assert.rejects(always.ctl.callAsync(true, (t) => t.stateAsync()), (e) => isRpcError(e) && e.kind === 'panic');
  assert.equal(always.ctl.restarts, 5, 'maxRetries restarts, then the call gives up');
});

test('after a failed onRestart the routes stay off until a recovery succeeds', async () => {
  const { ctl, instances, routes } = setup(2, { fails: failsOn(1) });
  assert.equal(ctl.route({ stateAsync: (t) => t.stateAsync() }), true);
  const hooks = routes.at(-1);
  instances[0]!.alive = false;
  await assert.rejects(ctl.recover(), recoveryFailed);
  assert.deepEqual(routes.at(-1), {}, 'nothing routed to the uninitialised instance');
  assert.equal(await ctl.callAsync(true, (t) => t.stateAsync()), true);
  assert.equal(routes.at(-1), hooks);
});

test('a restart whose fresh instance dies in its init is one more death: the call restarts again, within its bound', async () => {
  const a = setup(2, { restartDies: [1] });
  a.instances[0]!.alive = false;
  assert.equal(await a.ctl.callAsync(true, (t) => t.stateAsync()), true);
  const s = setup(0, { restartDies: [1, 2] });
  s.instances[0]!.alive = false;
  assert.equal(s.ctl.call(true, (t) => t.state()), true, 'a synchronous call too');
  assert.equal(s.ctl.restarts, 1, 'the restarts that succeeded');
  const never = setup(0, { restartDies: [1, 2, 3, 4, 5, 6] });
  never.instances[0]!.alive = false;
  assert.throws(() => never.ctl.call(true, (t) => t.state()), /call target.restart failed/, 'maxRetries restarts, then the call gives up');
  assert.equal(never.ctl.call(true, (t) => t.state()), true, 'the next call tries again');
});

test("a synchronous call that cannot be reissued gets its own death, whatever the restart made for the calls after it does", () => {
  // onRestart throws: the recovery's failure is logged, not what this call gets.
  const thrown = setup(0, { fails: failsOn(1) });
  thrown.instances[0]!.alive = false;
  assert.throws(() => thrown.ctl.call(false, (t) => t.state()), (e) => isRpcError(e) && e.kind === 'callee-dead' && /instance 0 is dead/.test(e.message));
  assert.match(thrown.logs.join('\n'), /recovery failed.*bring-up failed/);
  assert.equal(thrown.ctl.call(false, (t) => t.state()), true, 'the next call restarts again');
  // An asynchronous onRestart: the call cannot wait for it, nor needs to (it is not reissued).
  const later = setup(2);
  later.instances[0]!.alive = false;
  assert.throws(() => later.ctl.call(false, (t) => t.state()), (e) => isRpcError(e) && e.kind === 'callee-dead');
  assert.equal(later.ctl.restarts, 1, 'restarted for the calls after it');
});

test('a synchronous call that cannot be reissued, made after a failed recovery, retries a restart that fails before the call is made', () => {
  // Restart 1's onRestart throws; restart 2's fresh instance dies in its init; restart 3 is well.
  const { ctl, instances } = setup(0, { fails: failsOn(1), restartDies: [2] });
  instances[0]!.alive = false;
  assert.throws(() => ctl.call(true, (t) => t.state()), recoveryFailed);
  assert.equal(ctl.call(false, (t) => t.state()), true, 'nothing of the call was lost: the failed restart is retried');
  assert.equal(ctl.restarts, 2);
});

test('a call that came during a recovery counts the failed recoveries it waited for in its bound of restarts', async () => {
  const death = makeRpcError('panic', 'target', 'init', 'panicked in its init');
  // Instances 1 and 2 die in their replay; every later one dies at its first call.
  const { ctl, instances } = setup(1, { fails: (n) => (n <= 2 ? death : undefined), diesInitialised: () => true });
  instances[0]!.alive = false;
  const recovered = ctl.recover();
  const during = ctl.callAsync(true, (t) => t.stateAsync());
  await assert.rejects(recovered, (e) => e === death);
  await assert.rejects(during, (e) => isRpcError(e) && e.kind === 'callee-dead');
  assert.ok(ctl.restarts - 1 <= 5, `the call made ${ctl.restarts - 1} restarts, more than maxRetries`);
});

test("in a kernel: a call that waited for a recovery whose onRestart threw fails as the shadow's crash, the RpcError naming the failed recovery and its cause, and the failure is logged", async () => {
  const logs: string[] = [];
  const k = new Kernel({ physBytes: 16 << 20, log: (d, line) => void logs.push(`${d}: ${line}`) });
  try {
    k.load(DOM_C);
    k.load(join(TEST_ARTIFACTS, 'ishadow.rldom'), { imports: [{ supervise: 'dom_c' }], config: { replay: 'throw' } });
    const sh = k.bind<Callee>('ishadow');
    assert.equal(await sh.asyncEcho(3), 3);
    k.injectFault('dom_c', 'now');
    await assert.rejects(sh.asyncEcho(4), (e) => isRpcError(e) && e.kind === 'panic' && e.domain === 'ishadow' && /shadow: recovery failed: .*: bring-up failed/.test(e.message));
    assert.match(logs.join('\n'), /ishadow: shadow: recovery failed: .*bring-up failed/);
  } finally {
    k.shutdown();
  }
});
