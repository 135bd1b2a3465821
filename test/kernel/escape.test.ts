/**
 * The escape suite (ARCHITECTURE §1–3): the hostile `escapee` domain tries to reach `process`,
 * `require` and `import()`, to run code made at run time (eval, Function, a nested Compartment:
 * each refused, as such code would carry no deadline checks), mutate its global or the
 * shared intrinsics (Object/Array/Promise/Function prototypes), reach the host `Function` through
 * the constructor chains of everything it is handed (sys and its methods, arguments, RpcErrors,
 * proxy promises, RRef handles and their methods/getters, proxies), forge RRef handles and
 * RpcErrors, read a borrowed RRef after its call, use moved RRefs and views taken before a move,
 * and bulk-move (RRefDeque.moveFrom) from a moved, borrowed, non-deque or the same deque; and
 * run its own code between the kernel's check and its access (an offset or value with a valueOf,
 * a look-alike destination array that would be handed a view of physical memory).
 * Each attempt must be blocked with the expected error (or panic the domain for an ownership
 * violation). Also: the kernel's prototypes stay clean, a thrown look-alike RpcError reaches the
 * caller as a genuine panic RpcError, and a domain's unhandled rejection does not kill the kernel.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { Kernel } from '../../src/kernel/kernel.js';
import { RpcError, isRpcError } from '../../src/kernel/errors.js';
import { DOM_C, ESCAPEE, FAULTY, ROOT, recorder, rpcFails } from './helpers.js';

const kernel = new Kernel({ physBytes: 16 << 20, log: () => {} });
after(() => kernel.shutdown());
kernel.load(DOM_C);
kernel.load(FAULTY, { name: 'victim', imports: ['dom_c', { object: recorder().object }] });
kernel.load(ESCAPEE, { imports: ['dom_c', 'victim'], deadlineMs: 200 });

/** Run one attempt in a live escapee (restarting it and its victim when needed). */
async function attempt(name: string, async = false): Promise<string> {
  if (!kernel.get('victim')!.live) kernel.restart('victim');
  if (!kernel.get('escapee')!.live) kernel.restart('escapee');
  const probe = kernel.bind('escapee');
  if (name.startsWith('stale-borrow')) {
    const buf = kernel.kit.allocBytes(0, 8) as { setU8(o: number, v: number): void };
    buf.setU8(0, 17);
    assert.equal(probe.stash(buf), 17, 'the borrow is readable during its call');
  }
  try {
    return async ? await probe.attemptAsync(name) : probe.attempt(name);
  } catch (e) {
    assert.ok(isRpcError(e), `attempt ${name} threw a non-RpcError ${String(e)}`);
    const d = kernel.get('escapee')!;
    assert.equal(d.state, 'dead');
    return `panicked: ${d.lastFault?.message}`;
  }
}

const BLOCKED: Record<string, RegExp> = {
  process: /^blocked: typeof process is undefined/,
  'process-eval': /^blocked: EvalError: eval is not available to domain code: code made at run time has no deadline checks/,
  require: /^blocked: no require/,
  'import-eval': /^blocked: EvalError: eval is not available to domain code: code made at run time has no deadline checks/,
  'import-function': /^blocked: EvalError: Function is not available to domain code: code made at run time has no deadline checks/,
  'eval-runs-code': /^blocked: eval: EvalError.*; Function: EvalError.*; Compartment: EvalError/,
  'globalThis-set': /^blocked: TypeError: .*not extensible/,
  'globalThis-define': /^blocked: TypeError: .*not extensible/,
  'Object.prototype': /^blocked: TypeError: .*not extensible/,
  'Object.prototype-define': /^blocked: TypeError: .*not extensible/,
  'TypedArray.prototype': /^blocked: TypeError: Cannot assign to read only property 'fill'/,
  'Uint8Array.prototype-define': /^blocked: TypeError: Cannot redefine property: constructor/,
  'Array.prototype': /^blocked: TypeError: Cannot assign to read only property 'push'/,
  'Promise.prototype.then': /^blocked: TypeError: Cannot assign to read only property 'then'/,
  'Function.prototype.call': /^blocked: TypeError: Cannot assign to read only property 'call'/,
  'Error.prepareStackTrace': /^blocked: (no kernel frame leaked|cannot install)/,
  'sys-mutation': /^blocked: TypeError: Cannot assign to read only property 'panic'/,
  'sys.alloc-mutation': /^blocked: TypeError: Cannot assign to read only property 'bytes'/,
  'proxy-mutation': /^blocked: TypeError: Cannot assign to read only property 'noarg'/,
  'rref-proto-mutation': /^blocked: TypeError: Cannot assign to read only property 'getU8'/,
  'struct-proto-mutation': /^blocked: TypeError: Cannot redefine property: id/,
  'forge-rref-new': /^blocked: TypeError: RRef handles are created by the kernel only/,
  'forge-rref-reflect': /^blocked: TypeError: RRef handles are created by the kernel only/,
  'forge-rref-proto': /^blocked: TypeError: Cannot read private member/,
  'forge-rref-pass': /^panicked: bad-argument: call dom_c\.sum failed: argument 0 must be a borrowed RRef/,
  'forge-rref-jsproxy': /^panicked: bad-argument: call dom_c\.rref failed: argument 0 must be an RRef/,
  'forge-rpcerror-new': /^blocked: TypeError: RpcError is created by the kernel only/,
  'forge-rpcerror-lookalike': /^blocked: look-alike not recognised \(genuine one is '(panic|callee-dead)'\)/,
  'forge-rpcerror-mutate': /^blocked: TypeError: Cannot assign to read only property 'kind'/,
  'stale-borrow-read': /^panicked: use of a revoked RRef/,
  'stale-borrow-pass': /^panicked: bad-argument: .*revoked or foreign RRef cannot be lent/,
  'use-after-move': /^panicked: use of a revoked RRef/,
  'write-after-move': /^panicked: use of a revoked RRef/,
  'view-before-move': /^panicked: use of a revoked RRef/,
  'move-twice': /^panicked: .*revoked RRef/,
  'movefrom-moved-source': /^panicked: use of a revoked RRef/,
  'movefrom-self': /^panicked: moveFrom: source and destination are the same deque/,
  'movefrom-not-deque': /^panicked: this RRef \(RRefArray<u8>\) has no such operation/,
  'stale-borrow-movefrom': /^panicked: use of a revoked RRef/,
  'offset-valueof': /^panicked: RRef access: offset and length must be numbers/,
  'value-valueof': /^blocked: HandleError: expected a number, got object|^blocked: .*expected a number, got object/,
  'read-lookalike': /^blocked: .*read: expected a Uint8Array, got a plain object/,
  'nested-compartment': /^blocked: EvalError: Compartment is not available to domain code: code made at run time has no deadline checks/,
  'atomics-wait': /^blocked: no Atomics\.wait/,
};
const CTOR_TARGETS = [
  'sys', 'sys.log', 'sys.alloc', 'sys.alloc.bytes', 'sys.config', 'arguments', 'rpc-error', 'proxy', 'proxy-method',
  'proxy-promise', 'rref', 'rref-method', 'struct', 'async-function', 'generator', 'getter',
];
for (const c of CTOR_TARGETS) BLOCKED[`ctor:${c}`] = /^blocked: \d+ constructors, none reaches the host \(.*(not a valid constructor|cannot be invoked)/;

describe('escape attempts are blocked', () => {
  for (const [name, want] of Object.entries(BLOCKED)) {
    test(name, async () => {
      const r = await attempt(name);
      assert.doesNotMatch(r, /ESCAPED/);
      assert.match(r, want);
    });
  }
  test('await-proxy-promise (async)', async () => {
    assert.match(await attempt('await-proxy-promise', true), /^blocked: \d+ constructors, none reaches the host/);
  });
  test('import() evaluated at run time in an async method', async () => {
    assert.match(await attempt('import-eval-async', true), /^blocked: EvalError: eval is not available to domain code: code made at run time has no deadline checks/);
  });
});

describe('after the attempts', () => {
  test("the kernel's intrinsics are unpolluted and other domains still work", () => {
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getOwnPropertyNames(Object.prototype).includes('polluted'), false);
    const a = [1];
    a.push(2);
    assert.deepEqual(a, [1, 2]);
    assert.equal(typeof (globalThis as Record<string, unknown>).leaked, 'undefined');
    assert.equal(kernel.bind('dom_c').onearg(1), 2);
  });

  test('a look-alike RpcError thrown by a domain reaches the caller as a genuine panic RpcError', async () => {
    await attempt('process'); // make sure escapee and victim are live
    const e = await rpcFails(() => kernel.bind('escapee').throwLookalike(), 'panic');
    assert.equal(e.domain, 'escapee');
    assert.equal(kernel.get('escapee')!.state, 'dead');
  });

  test('the kernel recognises only RpcErrors it made', () => {
    const fake = Object.create(RpcError.prototype, { kind: { value: 'panic' }, message: { value: 'x' } });
    assert.equal(fake instanceof RpcError, true, 'a look-alike passes instanceof…');
    assert.equal(isRpcError(fake), false, '…but not isRpcError');
    assert.throws(() => new RpcError(Symbol('rpc-error'), 'panic', 'a', 'b', 'c'), /created by the kernel only/);
    assert.ok(Object.isFrozen(RpcError.prototype));
  });
});

/**
 * Run `body` (an ES module's code, with a kernel `k` made before it and shut down after it) in a
 * child process: node exits on an unhandled rejection unless the kernel deals with it.
 */
function inKernelProcess(body: string): SpawnSyncReturns<string> {
  const script = `
    const { Kernel } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/src/kernel/kernel.js')).href)});
    const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
    ${body}
    k.shutdown();
  `;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
}

describe('domain rejections nobody handles do not kill the kernel process', () => {
  for (const name of ['unhandled-rejection', 'dropped-rpc-rejection']) {
    test(name, () => {
      const r = inKernelProcess(`
        k.load(${JSON.stringify(DOM_C)});
        k.load(${JSON.stringify(FAULTY)}, { name: 'victim', imports: ['dom_c', { object: { hit() {} } }] });
        k.load(${JSON.stringify(ESCAPEE)}, { imports: ['dom_c', 'victim'] });
        console.log('attempt:', k.bind('escapee').attempt(${JSON.stringify(name)}));
        await new Promise((r) => setTimeout(r, 100));
        console.log('KERNEL-ALIVE', k.bind('dom_c').onearg(1));
      `);
      assert.match(r.stdout, /attempt: blocked: queued/, r.stderr);
      assert.equal(r.status, 0, `the kernel process died (status ${r.status}): ${r.stderr.split('\n').slice(0, 6).join('\n')}`);
      assert.match(r.stdout, /KERNEL-ALIVE 2/);
    });
  }

  // A domain's continuation that runs after its death is stopped by a throw (a deadline check),
  // which rejects the chain it belongs to. Handed to sys.detach, that chain ends in the kernel;
  // dropped, it is an unhandled rejection, but one the kernel knows for a dead domain's leftover.
  for (const [how, handOver] of [['handed to sys.detach', true], ['dropped', false]] as const) {
    test(`a dead domain's continuation stopped in a chain it left unawaited (${how}): ${handOver ? 'no unhandled rejection' : 'not logged as a live domain\'s'}`, () => {
      const r = inKernelProcess(`
        const seen = [];
        process.on('unhandledRejection', (r) => seen.push(String(r)));
        const rec = { object: { hit(what) { console.log('HIT', what); } } };
        k.load(${JSON.stringify(DOM_C)});
        for (const name of ['alive', 'dying', 'peer']) k.load(${JSON.stringify(FAULTY)}, { name, imports: ['dom_c', rec] });
        const peer = k.bind('peer');
        k.bind('alive').floatOn(peer, ${handOver});
        peer.resolvePending(1);
        await new Promise((r) => setTimeout(r, 50));
        k.bind('dying').floatOn(peer, ${handOver});
        k.terminate('dying');
        console.log('ANSWERED', peer.resolvePending(1));
        await new Promise((r) => setTimeout(r, 100));
        console.log('UNHANDLED', JSON.stringify(seen));
      `);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.match(/HIT float-continuation/g)?.length, 1, `the live domain's continuation ran, the dead one's did not:\n${r.stdout}`);
      assert.match(r.stdout, /ANSWERED 1/, 'the dead caller\'s call was answered (its continuation was queued)');
      const unhandled = JSON.parse(/UNHANDLED (.*)/.exec(r.stdout)![1]!) as string[];
      if (handOver) assert.deepEqual(unhandled, []);
      else assert.deepEqual(unhandled, ['RpcError: callee-dead: call dying.(running) failed: domain dying is dead']);
      assert.doesNotMatch(r.stderr, /unhandled rejection/, 'the kernel logs no dead domain\'s leftover');
    });
  }
});
