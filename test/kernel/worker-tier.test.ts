/**
 * The worker tier (ARCHITECTURE §6, src/kernel/worker-tier.ts): the same artifact placed in a
 * worker thread gives the same results as in-thread (dom_c), with the same ownership rules (moved
 * handles revoked, borrows lent for the call, allocations of the worker domain made by the kernel
 * thread); every fault kind becomes an RpcError for the caller, kills only that domain and
 * reclaims its memory once its thread is gone; a domain that never reaches a deadline check is
 * preempted; resource limits kill the domain, not the kernel; two worker domains compute at once;
 * a worker domain calls its imports (in-thread or in a worker) with the results, ownership rules
 * and faults of an in-thread caller.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { Kernel } from '../../src/kernel/kernel.js';
import { KernelError } from '../../src/kernel/errors.js';
import { HandleError } from '../../src/kernel/rref.js';
import { checkWorkerPlacement } from '../../src/kernel/worker-tier.js';
import { RING_ENTRIES } from '../../src/kernel/worker-ring.js';
import { FREE } from '../../src/kernel/heap.js';
import { artifactPath } from '../../src/kernel/paths.js';
import type { Domain } from '../../src/kernel/domain.js';
import { bootKernel, rpcFails, info, sleep, DOM_C, DOM_D, TEST_ARTIFACTS } from './helpers.js';
import { within } from '../within.js';

const WPROBE = join(TEST_ARTIFACTS, 'wprobe.rldom');
const WRELAY = join(TEST_ARTIFACTS, 'wrelay.rldom');
const WCALLER = join(TEST_ARTIFACTS, 'wcaller.rldom');

const t = bootKernel();
after(() => t.kernel.shutdown());
const { kernel } = t;
const any = (h: object): any => h;
const bytes = (n: number): any => kernel.kit.allocBytes(0, n);
const cThread = kernel.bind('dom_c');

/** Load wprobe in a worker under `name`. */
function probe(name: string, opts: Parameters<Kernel['load']>[1] = {}): { d: Domain; p: any } {
  const d = kernel.load(WPROBE, { name, placement: 'worker', ...opts });
  return { d, p: kernel.bind(d) };
}

/** After a fault: the domain is dead, its thread gone, its memory back, and the kernel serves calls. */
async function deadAndReclaimed(d: Domain, cause: string): Promise<void> {
  assert.equal(d.state, 'dead');
  assert.equal(d.deathCause, cause);
  await kernel.whenStopped(d);
  assert.deepEqual(kernel.heap.usage(d.id), { bytes: 0, slots: 0 }, 'every slot of the dead domain reclaimed');
  assert.equal(cThread.onearg(1), 2, 'the kernel and in-thread domains carry on');
}

describe('dom_c in a worker gives the same results as in-thread', () => {
  kernel.load(DOM_C, { name: 'dom_c_w', placement: 'worker' });
  const cWorker = kernel.bind('dom_c_w');

  test('no argument, one argument, async echo and the call count; every answer is a Promise', async () => {
    const before = await cWorker.count();
    const p = cWorker.noarg();
    assert.ok(p instanceof Promise, 'a synchronous IDL method answers with a Promise from a worker');
    assert.equal(await p, cThread.noarg());
    assert.equal(await cWorker.onearg(41), cThread.onearg(41));
    assert.equal(await cWorker.asyncEcho(7), await cThread.asyncEcho(7));
    assert.equal(await cWorker.count(), before + 3);
    assert.equal(info(kernel, 'dom_c_w').placement, 'worker');
    assert.equal(info(kernel, 'dom_c').placement, 'thread');
  });

  test('an RRef moved in comes back with its byte incremented; the old handle is revoked', async () => {
    const w = kernel.get('dom_c_w')!;
    const viaThread = any(cThread.rref(bytes(64)));
    const buf = bytes(64);
    buf.setU8(0, 5);
    const back = any(await cWorker.rref(buf));
    assert.equal(buf.valid, false, "the caller's handle is revoked by the move");
    assert.throws(() => buf.getU8(0), (e: unknown) => e instanceof HandleError && e.code === 'EREVOKED');
    assert.equal(back.getU8(0), 6, 'the worker incremented the same physical memory');
    assert.equal(viaThread.getU8(0), 1, 'as in-thread');
    assert.equal(kernel.heap.owner[kernel.kit.slotOf(back)], 0, 'the returned buffer is the caller\'s again');
    assert.deepEqual(kernel.heap.usage(w.id), { bytes: 0, slots: 0 });
    back.drop();
    viaThread.drop();
  });

  test('a borrowed buffer is summed in place and stays the caller\'s', async () => {
    const buf = bytes(4);
    [1, 2, 3, 4].forEach((v, i) => buf.setU8(i, v));
    assert.equal(await cWorker.sum(buf), cThread.sum(buf));
    assert.equal(buf.valid, true);
    assert.equal(kernel.heap.borrows[kernel.kit.slotOf(buf)], 0, 'the borrow ended with the call');
    buf.setU8(0, 100);
    assert.equal(await cWorker.sum(buf), 109);
    buf.drop();
  });

  test('a bad argument is refused in the kernel thread before anything is sent', async () => {
    await rpcFails(() => cWorker.onearg('41'), 'bad-argument');
    await rpcFails(() => cWorker.rref({ valid: true }), 'bad-argument');
    assert.equal(kernel.get('dom_c_w')!.live, true, 'the callee is not blamed for its caller\'s argument');
  });

  test('more calls in flight than the ring holds are all answered, in order', async () => {
    const n = 300;
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => cWorker.asyncEcho(i)));
    assert.deepEqual(answers, Array.from({ length: n }, (_, i) => i));
  });

  test('a bad argument after others were taken: the loan ends, the moved value the worker never got is freed', async () => {
    const w = kernel.get('dom_c_w')!;
    const kept = bytes(16);
    const keptSlot = kernel.kit.slotOf(kept);
    const lent = bytes(4);
    await rpcFails(() => cWorker.mixed(kept, lent, 42), 'bad-argument');
    assert.equal(kernel.heap.borrows[kernel.kit.slotOf(lent)], 0, 'the loan ended');
    assert.equal(kernel.heap.owner[keptSlot], FREE, 'the moved value is freed');
    assert.deepEqual(kernel.heap.usage(w.id), { bytes: 0, slots: 0 }, 'dom_c_w holds nothing it never got');
    lent.drop();
  });

  test('an in-thread domain cannot import an interface with synchronous methods from a worker', () => {
    assert.throws(
      () => kernel.load(DOM_D, { name: 'dom_d_w', imports: ['dom_c_w'] }),
      (e: unknown) => e instanceof KernelError && e.code === 'EPLACEMENT' && /synchronous methods \(noarg, onearg/.test(e.message),
    );
    assert.equal(kernel.get('dom_d_w')?.live ?? false, false);
  });
});

describe('calls queued behind a full down ring', () => {
  test('reach the worker once it makes room, though no answer comes back meanwhile', async () => {
    const { d, p } = probe('wp_backlog');
    const buf = bytes(1);
    // Calls that stay pending in the worker (no answer, no upcall) for longer than the test.
    const waiting = Array.from({ length: 4 * RING_ENTRIES }, () => p.sumLater(buf, 60_000));
    for (const w of waiting) w.catch(() => {});
    assert.equal(await within(p.echo('behind'), 5000, () => 'a call queued behind the full ring never reached the worker'), 'behind');
    kernel.terminate(d);
    await deadAndReclaimed(d, 'terminated');
    assert.equal(kernel.heap.borrows[kernel.kit.slotOf(buf)], 0, 'every loan ended with the thread');
    buf.drop();
  });
});

describe('what a worker domain does runs through the kernel thread', () => {
  const { d, p } = probe('wp_ops', { config: { mode: 'test', n: 3 } });

  test('primitives of every kind, config and logs cross', async () => {
    assert.equal(await p.echo('héllo ✓'), 'héllo ✓');
    assert.equal(await p.mix(41, 21n, false, null), '42|42|true|object');
    assert.equal(await p.config('mode'), 'test');
    assert.equal(await p.config('n'), '3');
    await p.log('from the worker');
    assert.ok(t.logs.includes('wp_ops: from the worker'));
  });

  test('a string too big for a ring entry takes the side channel both ways', async () => {
    const big = 'x'.repeat(100_000) + 'é';
    assert.equal(await p.echo(big), big);
  });

  test('buffers allocated in the worker are owned by it until they move out', async () => {
    const buf = any(await p.fill(100, 9));
    assert.equal(buf.byteLength, 100);
    assert.equal(buf.getU8(99), 9);
    assert.equal(kernel.heap.owner[kernel.kit.slotOf(buf)], 0);
    assert.equal(await p.hold(64), 1);
    assert.deepEqual(kernel.heap.usage(d.id), { bytes: 64, slots: 1 }, 'accounted to the worker domain');
    const back = any(await p.bump(buf));
    assert.equal(back.getU8(0), 10);
    back.drop();
  });

  test('structs move with their children; struct fields and deques work in the worker', async () => {
    const req = any(await p.makeReq(5, 32));
    assert.equal(req.id, 5);
    assert.equal(req.lba, 10n);
    assert.deepEqual([...req.tag], [1, 2, 3, 4]);
    assert.equal(req.data.getU8(0), 7);
    const child = kernel.kit.slotOf(req.data);
    assert.equal(kernel.heap.owner[child], 0, 'the child moved with its parent');
    const again = any(await p.echoReq(req));
    assert.equal(req.valid, false);
    assert.equal(again.ok, true);
    assert.equal(again.data.getU8(0), 8);
    const dq = any(await p.deque(4));
    assert.equal(dq.length, 3);
    const second = dq.pop();
    assert.equal(second.getU8(0), 1);
    second.drop();
    dq.drop();
    again.drop();
  });

  test('a borrow lasts until the async answer; the lender cannot write meanwhile', async () => {
    const buf = bytes(8);
    buf.fill(1);
    const answer = p.sumLater(buf, 30);
    await sleep(5);
    assert.equal(kernel.heap.borrows[kernel.kit.slotOf(buf)], 1);
    assert.throws(() => buf.setU8(0, 2), (e: unknown) => e instanceof HandleError && e.code === 'EBORROWED');
    assert.equal(await answer, 8);
    buf.setU8(0, 2);
    assert.equal(buf.getU8(0), 2);
    buf.drop();
  });

  test('the worker compartment is as locked down as an in-thread one', async () => {
    for (const name of ['process', 'function', 'handle-constructor', 'atomics-wait']) {
      assert.match(await p.attempt(name), /^blocked/, name);
    }
  });

  test('sys.now() reads the kernel\'s clock', async () => {
    const before = performance.now();
    const [start, end] = (await p.crunch(1000)).split(' ').map(Number);
    const afterCall = performance.now();
    assert.ok(start! >= before - 5 && end! <= afterCall + 5, `worker clock ${start}..${end} within kernel ${before}..${afterCall}`);
  });

  test('terminate: memory held and moved in is reclaimed once the thread is gone', async () => {
    const buf = bytes(256);
    await p.keep(buf);
    assert.ok(kernel.heap.usage(d.id).slots >= 2);
    kernel.terminate(d);
    await rpcFails(() => p.echo('x'), 'callee-dead');
    await deadAndReclaimed(d, 'terminated');
  });
});

describe('faults in a worker domain', () => {
  const cases: [string, (p: any) => Promise<unknown>, string, string][] = [
    ['a synchronous throw', (p) => p.throwSync('boom'), 'panic', 'panic'],
    ['an async rejection', (p) => p.rejectAsync('later'), 'panic', 'panic'],
    ['sys.panic', (p) => p.panic('why not'), 'panic', 'panic'],
    ['a use after move', (p) => p.useAfterMove(), 'panic', 'panic'],
    ['a bad result', (p) => p.badResult(), 'bad-argument', 'panic'],
    ['moving out a borrowed buffer', (p) => p.returnBorrowed(bytes(8)), 'bad-argument', 'panic'],
    ['a loop past the deadline', (p) => p.spin(false), 'timeout', 'deadline'],
    ['a loop that catches its deadline panics', (p) => p.spin(true), 'timeout', 'deadline'],
  ];
  test('a chain handed to sys.detach that rejects: the worker domain panics, memory reclaimed', async () => {
    const { d, p } = probe('wp_detach');
    await p.hold(128);
    assert.equal(await p.detachRejection('detached-boom'), 1);
    await within(kernel.whenStopped(d), 10_000, () => 'the worker domain did not panic');
    assert.match(d.lastFault?.message ?? '', /detached-boom/);
    await deadAndReclaimed(d, 'panic');
  });

  cases.forEach(([what, call, kind, cause], i) => {
    test(`${what}: RpcError '${kind}', the domain dead, memory reclaimed, the kernel fine`, async () => {
      const { d, p } = probe(`wp_fault_${i}`, { deadlineMs: 300 });
      await p.hold(128);
      const inflight = p.sumLater(bytes(8), 10_000);
      await rpcFails(() => call(p), kind);
      await rpcFails(() => inflight, kind === 'timeout' ? 'timeout' : 'panic');
      assert.equal(info(kernel, d.name).faults, 1);
      await deadAndReclaimed(d, cause);
      await rpcFails(() => p.echo('after'), kind === 'timeout' ? 'timeout' : 'panic');
    });
  });

  test('native code with no deadline checks is preempted by terminating the thread', async () => {
    const { d, p } = probe('wp_regex', { deadlineMs: 200 });
    const started = performance.now();
    const bomb = p.regexBomb(40);
    await sleep(20);
    assert.equal(cThread.onearg(2), 3, 'the kernel thread is free while the worker is stuck');
    const e = await rpcFails(() => bomb, 'timeout');
    assert.ok(performance.now() - started < 10_000, 'preempted well before the regular expression could finish');
    assert.match(d.lastFault!.message, /preempted/);
    assert.ok(e.message.length > 0);
    await deadAndReclaimed(d, 'deadline');
  });

  test('exceeding resourceLimits kills the domain, not the kernel', async () => {
    const { d, p } = probe('wp_oom', { resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 }, deadlineMs: 20_000 });
    const e = await rpcFails(() => p.grow(4096), 'panic');
    assert.match(d.lastFault!.message, /resource limits/, e.message);
    await deadAndReclaimed(d, 'panic');
  });

  test('a fault injected after N calls hits the Nth call', async () => {
    const { d, p } = probe('wp_inject');
    kernel.injectFault('wp_inject', { afterCalls: 2 });
    assert.equal(await p.echo('one'), 'one');
    await rpcFails(() => p.echo('two'), 'panic');
    await deadAndReclaimed(d, 'panic');
  });

  test('a fault the kernel finds in a call out of init ends the blocking load at once', async () => {
    const started = performance.now();
    assert.throws(
      () => kernel.load(WCALLER, { name: 'wcaller_badinit', placement: 'worker', imports: ['dom_c'], deadlineMs: 5000, config: { passRevokedInInit: true } }),
      (e: unknown) => e instanceof KernelError && e.code === 'EINIT' && /terminated while it initialised/.test(e.message),
    );
    const waited = performance.now() - started;
    assert.ok(waited < 2500, `the kernel thread was held ${waited.toFixed(0)} ms, not until init's deadline`);
    const d = kernel.get('wcaller_badinit')!;
    assert.match(d.lastFault?.message ?? '', /revoked or foreign RRef/);
    await deadAndReclaimed(d, 'panic');
  });

  test('a worker thread that dies of an uncaught error before init returns ends the blocking load at once, naming the cause', async () => {
    // The runtime's own start-up fails outside the domain's init, as with a kernel and a runtime
    // out of step: its boot names no slot table. The Worker's 'error' event cannot reach the
    // kernel thread while the load holds it.
    const threads = any(kernel).workerHost.threads;
    const take = threads.take;
    threads.take = (...args: unknown[]) => {
      const w = take.apply(threads, args);
      const post = w.postMessage.bind(w);
      w.postMessage = (boot: object, transfer: unknown) => post({ ...boot, slots: null }, transfer);
      return w;
    };
    try {
      await loadDiesAtOnce('wp_dies', { deadlineMs: 5000 }, /exited \(code 1\) before init returned: .*null/);
    } finally {
      threads.take = take;
    }
  });

  /** A blocking load of wprobe that must fail with EINIT matching `why`, long before its timeouts. */
  async function loadDiesAtOnce(name: string, opts: Parameters<Kernel['load']>[1], why: RegExp): Promise<void> {
    const started = performance.now();
    assert.throws(
      () => kernel.load(WPROBE, { name, placement: 'worker', ...opts }),
      (e: unknown) => e instanceof KernelError && e.code === 'EINIT' && why.test(e.message),
    );
    const waited = performance.now() - started;
    assert.ok(waited < 2500, `the kernel thread was held ${waited.toFixed(0)} ms, not until init's deadline or the boot timeout`);
    await deadAndReclaimed(kernel.get(name)!, 'panic');
  }

  test('a worker domain whose init exceeds its resourceLimits ends the blocking load at once', async () => {
    // The thread is killed by its heap limit: no JavaScript runs to say so on the up ring, and the
    // Worker's 'error' event cannot reach the kernel thread while the load holds it.
    await loadDiesAtOnce(
      'wp_init_oom',
      { resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 }, deadlineMs: 5000, config: { initGrowMb: 4096 } },
      /worker thread ended before init returned/,
    );
  });

  test('a worker thread whose resourceLimits cannot hold the runtime ends the blocking load at once', async () => {
    // Killed before the runtime even reads its boot (before any of our code runs in it).
    await loadDiesAtOnce('wp_tiny_heap', { resourceLimits: { maxOldGenerationSizeMb: 1, maxYoungGenerationSizeMb: 1 }, deadlineMs: 5000 }, /worker thread ended before init returned/);
  });

  test('a failing init makes load throw EINIT and leaves nothing behind', async () => {
    assert.throws(
      () => kernel.load(WPROBE, { name: 'wp_noinit', placement: 'worker', config: { failInit: true } }),
      (e: unknown) => e instanceof KernelError && e.code === 'EINIT' && /init refused by configuration/.test(e.message),
    );
    const d = kernel.get('wp_noinit')!;
    assert.equal(d.state, 'dead');
    await kernel.whenStopped(d);
    assert.deepEqual(kernel.heap.usage(d.id), { bytes: 0, slots: 0 });
  });

  test('restart brings a worker domain back on a new thread', async () => {
    const { d, p } = probe('wp_restart');
    await rpcFails(() => p.panic('once'), 'panic');
    const d2 = kernel.restart('wp_restart');
    assert.notEqual(d2.id, d.id);
    assert.equal(await kernel.bind(d2).echo('again'), 'again');
    assert.equal(info(kernel, 'wp_restart').restarts, 1);
    assert.equal(info(kernel, 'wp_restart').placement, 'worker');
  });
});

describe('Kernel.loadAsync and restartAsync', () => {
  /** How many in-thread calls the kernel thread serves, one per event-loop turn, until `pending` settles. */
  const servedWhile = async (pending: Promise<unknown>): Promise<number> => {
    let done = false;
    void pending.then(() => (done = true), () => (done = true));
    let served = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        if (done) return resolve();
        if (cThread.onearg(served) === served + 1) served++;
        setImmediate(tick);
      };
      setImmediate(tick);
    });
    return served;
  };

  test('loadAsync does not hold the kernel thread while a worker domain starts: calls go on meanwhile; it exports nothing until its init returns', async () => {
    const pending = kernel.loadAsync(WPROBE, { name: 'wp_async', placement: 'worker', config: { initMs: 300 } });
    assert.equal(kernel.get('wp_async')?.state, 'live', 'the domain exists while it initialises');
    assert.throws(() => kernel.bind('wp_async'), (e: unknown) => e instanceof KernelError && e.code === 'ENOEXPORT' && /still initialising/.test(e.message));
    const served = await servedWhile(pending);
    assert.ok(served > 10, `the kernel thread served ${served} in-thread calls while the worker domain initialised`);
    const d = await pending;
    assert.equal(await kernel.bind(d).echo('ready'), 'ready');
  });

  test('a domain cannot import one still initialising: the load is refused, and the initialising domain is not blamed', async () => {
    const pending = kernel.loadAsync(WPROBE, { name: 'wp_async_imported', placement: 'worker', config: { initMs: 300 } });
    assert.throws(
      () => kernel.load(WRELAY, { name: 'wrelay_early', imports: ['wp_async_imported'] }),
      (e: unknown) => e instanceof KernelError && e.code === 'EIMPORTS' && /still initialising/.test(e.message),
    );
    const d = await pending;
    assert.equal(d.state, 'live');
    assert.equal(await kernel.bind(d).echo('ready'), 'ready');
  });

  test('restartAsync: a fresh worker instance, the old one terminated, the kernel thread serving calls while it starts', async () => {
    const old = kernel.load(WPROBE, { name: 'wp_restart_async', placement: 'worker', config: { initMs: 300 } });
    await kernel.bind(old).hold(64);
    const pending = kernel.restartAsync('wp_restart_async');
    assert.equal(old.state, 'dead', 'the old instance is terminated at once');
    const served = await servedWhile(pending);
    assert.ok(served > 10, `the kernel thread served ${served} in-thread calls while the new instance initialised`);
    const d = await pending;
    assert.notEqual(d, old);
    assert.deepEqual([info(kernel, 'wp_restart_async').restarts, info(kernel, 'wp_restart_async').placement], [1, 'worker']);
    assert.equal(await kernel.bind(d).echo('again'), 'again');
    await kernel.whenStopped(old);
    assert.deepEqual(kernel.heap.usage(old.id), { bytes: 0, slots: 0 }, 'the old instance\'s memory reclaimed');
    await assert.rejects(kernel.restartAsync('wp_nosuch'), (e: unknown) => e instanceof KernelError && e.code === 'ENOENT');
  });

  test('a domain terminated while it initialises: the load rejects with EINIT, its thread and memory go', async () => {
    const pending = kernel.loadAsync(WPROBE, { name: 'wp_async_kill', placement: 'worker', deadlineMs: 20_000, config: { initMs: 10_000 } });
    const d = kernel.get('wp_async_kill')!;
    await sleep(50);
    kernel.terminate(d);
    await assert.rejects(pending, (e: unknown) => e instanceof KernelError && e.code === 'EINIT' && /terminated while it initialised/.test(e.message));
    await deadAndReclaimed(d, 'terminated');
  });

  test('a failing init rejects with EINIT; an in-thread domain loads as with load()', async () => {
    await assert.rejects(
      kernel.loadAsync(WPROBE, { name: 'wp_async_noinit', placement: 'worker', config: { failInit: true } }),
      (e: unknown) => e instanceof KernelError && e.code === 'EINIT' && /init refused by configuration/.test(e.message),
    );
    await kernel.whenStopped(kernel.get('wp_async_noinit')!);
    assert.throws(() => kernel.restart('wp_async_noinit'), (e: unknown) => e instanceof KernelError && e.code === 'ENOENT', 'a load that failed leaves no recipe to restart');
    const d = await kernel.loadAsync(WPROBE, { name: 'wp_async_thread' });
    assert.equal(info(kernel, 'wp_async_thread').placement, 'thread');
    assert.equal(await kernel.bind(d).echo('here'), 'here');
  });
});

describe('an in-thread domain importing a worker domain', () => {
  probe('wp_behind');
  kernel.load(WRELAY, { name: 'wrelay', imports: ['wp_behind'] });
  const relay = kernel.bind('wrelay');

  test('results, moved RRefs and borrows lent onward cross both tiers', async () => {
    assert.equal(await relay.echo('through'), 'through');
    const buf = bytes(16);
    buf.setU8(0, 1);
    const back = any(await relay.bump(buf));
    assert.equal(back.getU8(0), 2);
    assert.equal(buf.valid, false);
    back.fill(2);
    assert.equal(await relay.sumLater(back, 1), 32, 'wrelay lent its borrowed buffer on to the worker');
    assert.equal(kernel.heap.borrows[kernel.kit.slotOf(back)], 0);
    back.drop();
  });

  test('a panic in the worker is an RpcError for the relay, whose unhandled rejection is its own panic', async () => {
    await rpcFails(() => relay.throwSync('deep'), 'panic');
    assert.equal(kernel.get('wp_behind')!.state, 'dead');
    assert.equal(kernel.get('wrelay')!.state, 'dead');
  });
});

describe('a worker domain calling its imports (calls out through the kernel thread)', () => {
  kernel.load(DOM_C, { name: 'dom_c_out' });
  const callee = kernel.bind('dom_c_out');
  /** wcaller on `tier`, importing `imports` (default dom_c_out). */
  const wcaller = (name: string, tier: 'worker' | 'thread' = 'worker', imports = ['dom_c_out']): { d: Domain; p: any } => {
    const d = kernel.load(WCALLER, { name, placement: tier, imports });
    return { d, p: kernel.bind(d) };
  };

  test('dom_d in a worker: synchronous calls out answer with values, async ones with Promises, each reaches the callee once', async () => {
    const d = kernel.load(DOM_D, { name: 'dom_d_w', placement: 'worker', imports: ['dom_c_out'] });
    const caller = kernel.bind(d);
    const before = callee.count();
    for (const kind of ['noarg', 'arg', 'rref']) assert.equal(typeof (await caller.run(kind, 50)), 'number');
    assert.equal(typeof (await caller.runAsync(50)), 'number');
    assert.equal(callee.count(), before + 200, 'every call out was made once');
    assert.deepEqual(kernel.heap.usage(d.id), { bytes: 0, slots: 0 }, 'the buffer it bounced 50 times was dropped');
    kernel.terminate(d);
  });

  test('the same results in a worker as in-thread, and the accounting back at its baseline (property)', async () => {
    const w = wcaller('wcaller_w');
    const th = wcaller('wcaller_t', 'thread');
    const baseline = kernel.heap.totalUsage();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 300 }), async (n, v, k) => {
        assert.equal(await w.p.lendSum(n, v), n * v, 'lent, summed, and still the caller\'s');
        assert.equal(await w.p.lendSum(n, v), th.p.lendSum(n, v));
        assert.equal(await w.p.bounce(k), k & 0xff, 'moved out and back k times');
        assert.equal(await w.p.bounce(k), th.p.bounce(k));
        assert.equal(await w.p.oneargOrKind(v), String(v + 1));
        assert.equal(await w.p.echoLater(n), await th.p.echoLater(n));
        assert.deepEqual(kernel.heap.totalUsage(), baseline);
      }),
      { numRuns: 20 },
    );
    kernel.terminate(w.d);
    kernel.terminate(th.d);
  });

  test('a borrow the worker was lent, it lends onward; the borrow ends with the call', async () => {
    const { d, p } = wcaller('wcaller_lend');
    const buf = bytes(10);
    buf.fill(9);
    assert.equal(await p.lendOnward(buf), 90);
    assert.equal(buf.valid, true);
    assert.equal(kernel.heap.borrows[kernel.kit.slotOf(buf)], 0, 'both borrows ended');
    buf.drop();
    kernel.terminate(d);
  });

  for (const [method, detail] of [
    ['passRevoked', /revoked/],
    ['passPlainObject', /argument 0 must be .*got (an )?object/],
  ] as const) {
    test(`${method}: the worker domain is faulted as the caller (a bad argument), as in-thread`, async () => {
      for (const tier of ['thread', 'worker'] as const) {
        const { d, p } = wcaller(`wcaller_${tier}_${method}`, tier);
        await rpcFails(() => p[method](), 'panic');
        assert.equal(d.deathCause, 'panic', tier);
        assert.match(d.lastFault?.message ?? '', detail, tier);
        if (tier === 'worker') assert.equal(d.lastFault?.kind, 'bad-argument', 'the kernel faulted it for the argument');
        await deadAndReclaimed(d, 'panic');
      }
      assert.equal(callee.onearg(1), 2, 'the callee was not harmed');
    });
  }

  test("the callee's panic is an RpcError the worker domain catches; then the callee is dead to it", async () => {
    kernel.load(DOM_C, { name: 'dom_c_doomed' });
    const { d, p } = wcaller('wcaller_catch', 'worker', ['dom_c_doomed']);
    assert.equal(await p.oneargOrKind(1), '2');
    kernel.injectFault('dom_c_doomed', { afterCalls: 1 });
    assert.equal(await p.oneargOrKind(1), 'panic');
    assert.equal(kernel.get('dom_c_doomed')!.state, 'dead');
    assert.equal(await p.oneargOrKind(1), 'panic', 'a dead callee fails with its cause of death, as in-thread');
    assert.equal(d.state, 'live', 'it caught both');
    kernel.terminate(d);
  });

  test('an all-async import, in-thread or in a worker: moves, borrows lent onward and panics cross', async () => {
    kernel.load(WPROBE, { name: 'wp_for_relay' });
    probe('wp_for_relay_w');
    for (const target of ['wp_for_relay', 'wp_for_relay_w']) {
      const d = kernel.load(WRELAY, { name: `wrelay_w_${target}`, placement: 'worker', imports: [target] });
      const relay = kernel.bind(d);
      assert.equal(await relay.echo('out'), 'out');
      const buf = bytes(16);
      buf.setU8(0, 1);
      const back = any(await relay.bump(buf));
      assert.equal(back.getU8(0), 2);
      back.fill(3);
      assert.equal(await relay.sumLater(back, 1), 48, 'the borrow went on through two crossings');
      assert.equal(kernel.heap.borrows[kernel.kit.slotOf(back)], 0);
      back.drop();
      const err = await rpcFails(() => relay.throwSync('deep'), 'panic');
      assert.match(err.message, /deep/, "the callee's panic, which the relay did not handle");
      await deadAndReclaimed(d, 'panic');
      assert.equal(kernel.get(target)!.state, 'dead');
    }
  });

  /** A host object standing in for the DomC that dom_d imports: answers that do nothing, but `over`. */
  const domCHost = (over: { noarg?: () => void; onearg: (x: never) => unknown }): object => ({
    noarg: () => {},
    rref: (b: unknown) => b,
    sum: () => 0,
    asyncEcho: async (x: number) => x,
    count: () => 0,
    ...over,
  });

  test('a host capability as an import: its values and its own errors reach the worker domain', async () => {
    const seen: number[] = [];
    const host = domCHost({
      noarg: () => {
        throw new Error('the host refuses');
      },
      onearg: (x: number) => (seen.push(x), x + 1),
    });
    const d = kernel.load(DOM_D, { name: 'dom_d_host', placement: 'worker', imports: [{ object: host }] });
    const caller = kernel.bind(d);
    assert.equal(typeof (await caller.run('arg', 5)), 'number');
    assert.deepEqual(seen, [0, 1, 2, 3, 4], 'each call out fed the last answer back');
    const err = await rpcFails(() => caller.run('noarg', 1), 'panic');
    assert.match(err.message, /the host refuses/, 'the Error the capability threw, uncaught by dom_d: its panic');
    await deadAndReclaimed(d, 'panic');
  });

  test('a big answer to a synchronous call out and a big call sent to the worker meanwhile each reach their own reader', async () => {
    const answer = 'a'.repeat(600); // both too big for a ring entry: they take the side channel
    const kind = 'k'.repeat(600);
    const seen: unknown[] = [];
    let queued: Promise<unknown> | null = null;
    const host = domCHost({
      onearg: (x: unknown) => {
        seen.push(x);
        queued ??= caller.run(kind, 0); // sent while the worker waits for this answer
        return answer;
      },
    });
    const d = kernel.load(DOM_D, { name: 'dom_d_big', placement: 'worker', imports: [{ object: host }] });
    const caller = kernel.bind(d);
    assert.equal(typeof (await caller.run('arg', 2)), 'number');
    assert.deepEqual(seen, [0, answer], 'the second call out passed on the answer to the first');
    const err = await rpcFails(() => queued!, 'panic');
    assert.match(err.message, /unknown benchmark kind k{600}/, 'the call sent meanwhile arrived with its own argument');
    await deadAndReclaimed(d, 'panic');
  });

  test('interface references: given to a worker domain, used, kept, passed on and handed back out', async () => {
    const { d, p } = wcaller('wcaller_refs');
    const th = wcaller('wcaller_refs_t', 'thread');
    const before = callee.count();
    assert.equal(await p.viaPeer(callee, 41), '42', 'a call on a reference given as an argument');
    assert.equal(await p.keep(callee), 1);
    assert.equal(await p.callKept(1), '2', 'the reference outlives the call that gave it, as in-thread');
    assert.equal(await p.forward(th.p, callee, 6), '7', 'passed on as an argument of a call out, to an in-thread domain');
    const handed = await p.handOut();
    assert.equal(handed.onearg(9), 10, 'its import, handed out: a proxy straight to dom_c_out, synchronous for the host');
    assert.equal(callee.count(), before + 4);
    const caps = info(kernel, 'wcaller_refs').capabilities!;
    assert.ok(caps >= 2, `its import and the kept reference at least (${caps})`);
    assert.equal(info(kernel, 'wcaller_refs_t').capabilities, null, 'not tracked in-thread');
    await rpcFails(() => p.handOutOwn(), 'bad-argument');
    assert.match(d.lastFault?.message ?? '', /cannot hand out objects of its own/);
    await deadAndReclaimed(d, 'panic');
    kernel.terminate(th.d);
  });

  test('a reference whose stub the worker domain no longer holds is dropped by the kernel too', async () => {
    const { d, p } = wcaller('wcaller_drop');
    for (let i = 0; i < 300; i++) assert.equal(await p.viaPeer(callee, i), String(i + 1));
    const held = (): number => info(kernel, 'wcaller_drop').capabilities!;
    assert.ok(held() > 1, 'each reference passed in is a capability while its stub lives');
    for (let i = 0; i < 50 && held() > 1; i++) {
      await p.churn(8); // garbage collections in the worker; the finalizers report the stubs gone
      await sleep(10);
    }
    assert.equal(held(), 1, 'only the import is left');
    assert.equal(await p.viaPeer(callee, 1), '2');
    kernel.terminate(d);
  });

  test('a worker domain may import a worker domain only through an all-async interface', () => {
    kernel.load(DOM_C, { name: 'dom_c_w2', placement: 'worker' });
    assert.throws(
      () => kernel.load(DOM_D, { name: 'dom_d_on_w', placement: 'worker', imports: ['dom_c_w2'] }),
      (e: unknown) => e instanceof KernelError && e.code === 'EPLACEMENT' && /synchronous methods/.test(e.message),
    );
  });
});

describe('placement is checked', () => {
  test('drivers and shadows are refused EPLACEMENT; a bad placement EINVAL', () => {
    const refused = (fn: () => unknown, re: RegExp): void =>
      assert.throws(fn, (e: unknown) => e instanceof KernelError && e.code === 'EPLACEMENT' && re.test(e.message));
    const manifest = { name: 'x', version: '0', exports: 'Faulty', imports: [], fingerprint: '', contentHash: '' };
    checkWorkerPlacement('x', manifest, false); // interface references cross: no refusal
    refused(() => checkWorkerPlacement('x', { ...manifest, imports: ['NoSuchIface'] }, false), /unknown interface NoSuchIface/);
    refused(() => kernel.load(artifactPath('shadow_c'), { name: 'shadow_w', placement: 'worker', imports: [{ supervise: 'dom_c' }] }), /it is a shadow/);
    refused(() => checkWorkerPlacement('x', { ...manifest, exports: 'Callee' }, true), /drives a device/);
    assert.throws(
      () => kernel.load(DOM_C, { name: 'dom_c_bad', placement: 'gpu' as never }),
      (e: unknown) => e instanceof KernelError && e.code === 'EINVAL',
    );
  });
});

describe('parallelism', () => {
  test('two worker domains compute at the same time', async (tc) => {
    const a = probe('wp_par_a', { deadlineMs: 20_000 });
    const b = probe('wp_par_b', { deadlineMs: 20_000 });
    const n = 30_000_000;
    let t0 = performance.now();
    await a.p.crunch(n);
    const one = performance.now() - t0;
    t0 = performance.now();
    const [ra, rb] = (await Promise.all([a.p.crunch(n), b.p.crunch(n)])) as string[];
    const both = performance.now() - t0;
    const [sa, ea] = ra!.split(' ').map(Number);
    const [sb, eb] = rb!.split(' ').map(Number);
    assert.ok(sa! < eb! && sb! < ea!, `the two runs overlap in time (${sa}..${ea} and ${sb}..${eb})`);
    tc.diagnostic(`one crunch ${one.toFixed(0)} ms; two at once ${both.toFixed(0)} ms (${((2 * one) / both).toFixed(2)}x of serial)`);
    kernel.terminate(a.d);
    kernel.terminate(b.d);
  });
});

describe('calls out: accounting and capabilities (property)', () => {
  test('any sequence of calls out, faults included, then termination: accounting back to its baseline, no capability left', async () => {
    const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
    k.load(DOM_C, { name: 'callee' });
    const callee = k.bind<any>('callee');
    const baseline = k.heap.totalUsage();
    const op = fc.oneof(
      fc.record({ k: fc.constant('lendSum' as const), n: fc.integer({ min: 1, max: 4000 }) }),
      fc.record({ k: fc.constant('bounce' as const), n: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ k: fc.constant('viaPeer' as const), n: fc.integer({ min: 0, max: 1000 }) }),
      fc.record({ k: fc.constant('keep' as const), n: fc.constant(0) }),
      fc.record({ k: fc.constant('callKept' as const), n: fc.integer({ min: 0, max: 1000 }) }),
      fc.record({ k: fc.constant('echoLater' as const), n: fc.integer({ min: 0, max: 1000 }) }),
      fc.record({ k: fc.constant('lendOnward' as const), n: fc.integer({ min: 1, max: 4000 }) }),
      fc.record({ k: fc.constant('passRevoked' as const), n: fc.constant(0) }),
      fc.record({ k: fc.constant('handOutOwn' as const), n: fc.constant(0) }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 14 }), async (ops) => {
        const d = k.load(WCALLER, { name: `wcaller_prop_${run++}`, placement: 'worker', imports: ['callee'] });
        const p = k.bind<any>(d);
        let kept = false;
        for (const o of ops) {
          if (!d.live) break;
          const before = callee.count();
          if (o.k === 'lendSum') assert.equal(await p.lendSum(o.n, 1), o.n);
          else if (o.k === 'bounce') assert.equal(await p.bounce(o.n), o.n);
          else if (o.k === 'viaPeer') assert.equal(await p.viaPeer(callee, o.n), String(o.n + 1));
          else if (o.k === 'keep') kept = (await p.keep(callee)) === 1;
          else if (o.k === 'callKept') assert.equal(await p.callKept(o.n), kept ? String(o.n + 1) : 'nothing kept');
          else if (o.k === 'echoLater') assert.equal(await p.echoLater(o.n), o.n);
          else if (o.k === 'lendOnward') {
            const b = k.kit.allocBytes(0, o.n) as any;
            b.fill(2);
            assert.equal(await p.lendOnward(b), 2 * o.n);
            assert.equal(k.heap.borrows[k.kit.slotOf(b)], 0);
            b.drop();
          } else {
            await assert.rejects(p[o.k]());
            assert.equal(d.state, 'dead');
          }
          const callsOut: Record<string, number> = { lendSum: 1, bounce: o.n, viaPeer: 1, keep: 0, callKept: kept ? 1 : 0, echoLater: 1, lendOnward: 1 };
          const calls: number | undefined = callsOut[o.k];
          if (calls !== undefined) assert.equal(callee.count() - before, calls, `${o.k}: the callee saw each call out once`);
        }
        if (d.live) assert.ok(info(k, d.name).capabilities! >= 1);
        k.terminate(d);
        await k.whenStopped(d);
        assert.deepEqual(k.heap.usage(d.id), { bytes: 0, slots: 0 });
        assert.deepEqual(k.heap.totalUsage(), baseline);
        assert.equal(callee.onearg(1), 2, 'the callee is unharmed');
      }),
      { numRuns: 8 },
    ).finally(() => k.shutdown());
  });
});

describe('exchange-heap accounting (property)', () => {
  test('any sequence of worker calls, then termination, returns accounting to its baseline', async () => {
    const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
    const baseline = k.heap.totalUsage();
    const op = fc.oneof(
      fc.record({ k: fc.constant('fill' as const), n: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({ k: fc.constant('hold' as const), n: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({ k: fc.constant('keep' as const), n: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({ k: fc.constant('bump' as const), n: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({ k: fc.constant('borrow' as const), n: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({ k: fc.constant('req' as const), n: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({ k: fc.constant('deque' as const), n: fc.integer({ min: 1, max: 8 }) }),
      fc.record({ k: fc.constant('panic' as const), n: fc.constant(1) }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 12 }), async (ops) => {
        const d = k.load(WPROBE, { name: `wp_prop_${run++}`, placement: 'worker' });
        const p = k.bind<any>(d);
        const mine: any[] = [];
        for (const o of ops) {
          if (!d.live) break;
          const b = k.kit.allocBytes(0, o.n) as any;
          try {
            if (o.k === 'fill') mine.push(await p.fill(o.n, 1));
            else if (o.k === 'hold') await p.hold(o.n);
            else if (o.k === 'keep') await p.keep(b);
            else if (o.k === 'bump') mine.push(await p.bump(b));
            else if (o.k === 'borrow') await p.sumLater(b, 0);
            else if (o.k === 'req') mine.push(await p.makeReq(1, o.n));
            else if (o.k === 'deque') mine.push(await p.deque(o.n));
            else await p.panic('property');
          } catch {
            // a panic: the domain is dead; what it held comes back below
          }
          if (b.valid) mine.push(b);
        }
        const held = mine.reduce((s, h) => s + h.byteLength, 0);
        assert.ok(k.heap.usage(0).bytes >= held, 'what the kernel holds is accounted to it');
        k.terminate(d);
        await k.whenStopped(d);
        assert.deepEqual(k.heap.usage(d.id), { bytes: 0, slots: 0 });
        for (const h of mine) h.drop();
        assert.deepEqual(k.heap.totalUsage(), baseline);
      }),
      { numRuns: 6 },
    ).finally(() => k.shutdown());
  });
});
