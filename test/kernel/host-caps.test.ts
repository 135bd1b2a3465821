/**
 * A host capability (an `{ object }` import: the rv6 core's ProgramLoader, a test's fake Net) is
 * given only primitives and RRefs, like any callee behind a proxy. Before, its arguments were
 * passed on as the domain gave them: the deputy domain, holding the core's loader, loaded a
 * program under a "name" object of its own, then had the loader terminate it — Kernel.terminate
 * took the object for a Domain, and reclaimed the memory of the live domain its `id` getter named.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isRpcError } from '../../src/kernel/errors.js';
import { programArtifactPath, testArtifactPath } from '../../src/kernel/paths.js';
import { programLoader } from '../../src/host/rv6.js';
import { DOM_C, FAULTY, bootKernel, recorder } from './helpers.js';

const { kernel } = bootKernel();
after(() => kernel.shutdown());

test("a domain cannot hand a host capability an object of its own (here: a name that impersonates another domain to Kernel.terminate)", async () => {
  const victim = kernel.load(FAULTY, { name: 'victim', imports: ['dom_c', { object: recorder().object }] });
  kernel.bind(victim).hold(4096);
  const held = kernel.heap.usage(victim.id);
  const deputy = kernel.load(testArtifactPath('deputy'), {
    imports: [{ object: programLoader(kernel, 'deputy') }],
    config: { program: readFileSync(programArtifactPath('echo'), 'utf8'), victimId: victim.id },
  });
  const probe = kernel.bind(deputy);
  let outcome: string;
  try {
    outcome = await probe.attemptAsync('load');
    outcome += `, then ${probe.attempt('terminate')}`;
  } catch (e) {
    assert.ok(isRpcError(e), String(e));
    outcome = `${deputy.state}: ${deputy.lastFault?.kind} ${deputy.lastFault?.message}`;
  }
  assert.deepEqual(kernel.heap.usage(victim.id), held, `the victim's memory was reclaimed under it (${outcome})`);
  assert.equal(victim.live, true);
  assert.equal(kernel.bind(victim).hold(8), 2, 'the victim still allocates and keeps what it holds');
  assert.match(outcome, /^dead: bad-argument bad argument to host capability load: argument 1 must be a primitive or an RRef, got object/);
});

test("the rv6 core's loader makes programs only under names the kernel does not know, or its own", async () => {
  // The core's stand-in is any live domain; `disk` plays a driver that died, whose name a program
  // must not take over (its restart recipe, a shadow's lookup by name, would find the program).
  kernel.load(DOM_C, { name: 'core' });
  kernel.load(DOM_C, { name: 'disk' });
  kernel.terminate('disk', 'panic');
  const loader = programLoader(kernel, 'core');
  const echo = readFileSync(programArtifactPath('echo'), 'utf8');
  assert.equal(await loader.load(echo, 'disk'), 'the name disk belongs to a domain the rv6 core did not load');
  assert.equal(kernel.get('disk')!.live, false, 'the dead driver is left as it was');
  assert.notEqual(typeof (await loader.load(echo, 'echo.7')), 'string', 'a fresh name loads');
  loader.terminate('echo.7');
  assert.notEqual(typeof (await loader.load(echo, 'echo.7')), 'string', 'and so does a name of its own once it ended');
  loader.terminate('echo.7');
});
