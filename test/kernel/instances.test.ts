/**
 * Domain instances of one artifact (src/kernel/isolation.ts): its code is evaluated once per
 * artifact object, and every instance — first load, restart, a second instance under another
 * name — is a fresh call of the evaluated factory. These tests check what that must not change:
 * each instance starts from its own module state (a module-level counter and class instance start
 * again after a restart, two live instances do not share them), an instance can leave nothing for
 * the next in what instances share (the compartment's globals and evaluators), cannot reach the
 * factory, and a dead instance's module state becomes garbage. And that the cache is what it
 * claims: one compartment per artifact object (the same globalThis for two instances), a new one
 * for another artifact object or changed code.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Kernel } from '../../src/kernel/kernel.js';
import { instantiateDomain } from '../../src/kernel/isolation.js';
import { TEST_ARTIFACTS, turn } from './helpers.js';

const MODSTATE = join(TEST_ARTIFACTS, 'modstate.rldom');
const kernel = new Kernel({ physBytes: 16 << 20, log: () => {} });
after(() => kernel.shutdown());
const artifact = Kernel.readArtifact(MODSTATE);

type Probe = { attempt(name: string): string };
const probe = (name: string): Probe => kernel.bind<Probe>(name);

/** A WeakRef to a domain's exported object (a plain function: no async frame keeps it alive). */
function weakExport(name: string): WeakRef<object> {
  return new WeakRef(kernel.get(name)!.exportsObj!);
}

describe('instances of one artifact', () => {
  test('a restarted instance starts from fresh module state', () => {
    kernel.load(artifact, { name: 'ms_restart' });
    for (const want of ['1', '2', '3']) assert.equal(probe('ms_restart').attempt('count'), want);
    assert.equal(probe('ms_restart').attempt('tally'), '1');
    kernel.injectFault('ms_restart', 'now');
    kernel.restart('ms_restart');
    assert.equal(probe('ms_restart').attempt('count'), '1', 'module-level counter starts again');
    assert.equal(probe('ms_restart').attempt('tally'), '1', 'module-level class instance is new');
    kernel.restart('ms_restart'); // a live instance restarted: the same
    assert.equal(probe('ms_restart').attempt('count'), '1');
    kernel.terminate('ms_restart');
  });

  test('two live instances do not share module state', () => {
    kernel.load(artifact, { name: 'ms_a' });
    kernel.load(artifact, { name: 'ms_b' });
    const a = probe('ms_a');
    const b = probe('ms_b');
    assert.deepEqual([a.attempt('count'), a.attempt('count'), a.attempt('count')], ['1', '2', '3']);
    assert.equal(b.attempt('count'), '1');
    assert.equal(a.attempt('count'), '4');
    assert.equal(b.attempt('tally'), '1');
    assert.equal(a.attempt('tally'), '1');
    kernel.terminate('ms_a');
    kernel.terminate('ms_b');
  });

  test('an instance can leave no mark in what instances share, nor reach the factory; its hooks check only its own deadline', () => {
    kernel.load(artifact, { name: 'ms_mark' });
    assert.equal(probe('ms_mark').attempt('leave-mark'), '', 'an instance wrote into shared state');
    assert.equal(probe('ms_mark').attempt('find-mark'), '');
    assert.match(probe('ms_mark').attempt('factory'), /^blocked: TypeError/);
    // The deadline hooks are shared by every instance; the token names whose checks they are.
    assert.equal(
      probe('ms_mark').attempt('hooks'),
      'own tick 1024; own aw v; forged token blocked: TypeError; no token blocked: TypeError; token frozen and empty; its constructor Object; hooks frozen',
    );
    kernel.restart('ms_mark');
    assert.equal(probe('ms_mark').attempt('find-mark'), '', 'the restarted instance found a mark');
    kernel.terminate('ms_mark');
  });

  test("a dead instance's module state is garbage collected although its code is kept", async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    kernel.load(artifact, { name: 'ms_gc' });
    probe('ms_gc').attempt('count');
    const ref = weakExport('ms_gc'); // the export is a module-level object of the instance
    kernel.injectFault('ms_gc', 'now');
    kernel.restart('ms_gc'); // the code stays evaluated and in use
    assert.equal(probe('ms_gc').attempt('count'), '1');
    for (let i = 0; i < 10 && ref.deref() !== undefined; i++) {
      await turn();
      gc();
    }
    assert.equal(ref.deref(), undefined, "the dead instance's module state is still reachable");
    kernel.terminate('ms_gc');
  });
});

describe('the evaluated-code cache', () => {
  const code = '(function ($rl_tick, $rl_aw, $rl_i) { "use strict"; let n = 0; return { init: () => ({ g: globalThis, n: ++n }) }; })';
  const hooks = { tick: () => 1024, aw: <T>(_instance: object, v: T): T => v };
  const run = (source: { code: string }): { g: object; n: number } => (instantiateDomain(source, hooks, {}, 'cache') as () => { g: object; n: number })();

  test('one compartment per source object, fresh module state per instance', () => {
    const source = { code };
    const first = run(source);
    const second = run(source);
    assert.equal(second.g, first.g, 'two instances of one source share the compartment');
    assert.equal(second.n, 1, 'module state is per instance');
    assert.ok(Object.isFrozen(first.g), "the shared compartment's globalThis is frozen");
    assert.notEqual(run({ code }).g, first.g, 'another source object gets its own compartment');
  });

  test('a source whose code changed is evaluated anew', () => {
    const source = { code };
    const before = run(source).g;
    source.code = code.replace('n: ++n', 'n: n - 1');
    const after = run(source);
    assert.notEqual(after.g, before);
    assert.equal(after.n, -1, 'the new code runs');
  });

  test("domain code is named after its label in stack traces, and a label cannot add code", () => {
    const thrower = '(function ($rl_tick, $rl_aw, $rl_i) { "use strict"; return { init: () => { throw new Error("boom"); } }; })';
    const stackOf = (label: string): string => {
      const init = instantiateDomain({ code: thrower }, hooks, {}, label) as () => void;
      try {
        init();
      } catch (e) {
        return String((e as Error).stack);
      }
      return assert.fail('init did not throw');
    };
    assert.match(stackOf('nic'), /redleaf-domain:nic\.js:1:/);
    // A line break would end the sourceURL comment and make the rest code: it becomes '_'.
    assert.match(stackOf('x\nglobalThis.injected = 1'), /redleaf-domain:x_globalThis\.injected___1\.js:1:/);
    assert.equal((globalThis as { injected?: number }).injected, undefined);
  });
});
