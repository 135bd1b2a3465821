/**
 * Shared helpers of the kernel test suite: artifact paths (relative to the repository root, found
 * from the compiled file's location), a kernel with captured logs and a host Recorder, a fake
 * device, and small async utilities.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { Kernel } from '../../src/kernel/kernel.js';
import { isRpcError } from '../../src/kernel/errors.js';
import type { Callee } from '../../src/interfaces/index.js';
import type { DeviceHandle } from '../../src/devices/host.js';
import type { IommuTables } from '../../src/devices/iommu.js';

/** Repository root (tests run compiled from dist/test/kernel). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const ARTIFACTS = join(ROOT, 'dist', 'artifacts');
export const TEST_ARTIFACTS = join(ROOT, 'dist', 'test-artifacts');
export const DOM_C = join(ARTIFACTS, 'dom_c.rldom');
export const DOM_D = join(ARTIFACTS, 'dom_d.rldom');
export const FAULTY = join(TEST_ARTIFACTS, 'faulty.rldom');
export const ESCAPEE = join(TEST_ARTIFACTS, 'escapee.rldom');

export interface Recorded {
  hits: string[];
  object: { hit(tag: string): void };
}

export function recorder(): Recorded {
  const hits: string[] = [];
  return { hits, object: { hit: (tag: string) => void hits.push(String(tag)) } };
}

export interface TestKernel {
  kernel: Kernel;
  logs: string[];
  rec: Recorded;
}

/** A kernel with dom_c loaded and logs captured. */
export function bootKernel(physBytes = 16 << 20): TestKernel {
  const logs: string[] = [];
  const kernel = new Kernel({ physBytes, log: (d, line) => void logs.push(`${d}: ${line}`) });
  kernel.load(DOM_C);
  return { kernel, logs, rec: recorder() };
}

/** Load a faulty instance named `name` importing dom_c and the given recorder. */
export function loadFaulty(t: TestKernel, name: string, deadlineMs?: number, rec: Recorded = t.rec) {
  return t.kernel.load(FAULTY, { name, imports: ['dom_c', { object: rec.object }], deadlineMs });
}

/** A kernel with dom_c behind shadow_c, its generated pass-through shadow; `sh` is shadow_c's Callee. */
export function shadowedDomC(): { k: Kernel; sh: Callee } {
  const k = new Kernel({ physBytes: 16 << 20, log: () => {} });
  k.load(DOM_C);
  k.load(join(ARTIFACTS, 'shadow_c.rldom'), { imports: [{ supervise: 'dom_c' }] });
  return { k, sh: k.bind<Callee>('shadow_c') };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Assert `fn` throws (or rejects with) a kernel-made RpcError of `kind`; returns it. */
export async function rpcFails(fn: () => unknown, kind: string): Promise<Error & { kind: string; domain: string; method: string }> {
  let caught: unknown = undefined;
  let threw = false;
  try {
    await fn();
  } catch (e) {
    threw = true;
    caught = e;
  }
  assert.ok(threw, `expected an RpcError '${kind}', but the call succeeded`);
  assert.ok(isRpcError(caught), `expected a kernel-made RpcError, got ${String(caught)}`);
  const e = caught as Error & { kind: string; domain: string; method: string };
  assert.equal(e.kind, kind, `RpcError kind (message: ${e.message})`);
  return e;
}

export function info(kernel: Kernel, name: string) {
  const i = kernel.list().find((x) => x.name === name);
  assert.ok(i, `domain ${name} listed`);
  return i;
}

/** A device that answers a detach through `answer` and logs each request with `state()` beside it. */
export function fakeDevice(log: string[], state: () => string, answer: () => true | Promise<void>, iommu: IommuTables | null): DeviceHandle {
  return {
    name: 'fake0',
    iommu,
    bar0: new Int32Array(new SharedArrayBuffer(4096)),
    irq: new Int32Array(new SharedArrayBuffer(8)),
    ready: Promise.resolve(),
    onIrq() {},
    onMessage() {},
    onDmaFault() {},
    dmaEpoch: () => 0,
    async stop() {},
    attach() {
      log.push('attach');
    },
    detach() {
      log.push(`detach (${state()})`);
      return () => {
        log.push(`wait (${state()})`);
        return answer();
      };
    },
  };
}
