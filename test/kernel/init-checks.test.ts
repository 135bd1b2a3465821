/**
 * What the loader says of a domain's init result (isolation.ts checkExport), for domains built
 * in a temporary folder: a non-object, an object lacking a method, and an async init's Promise
 * (of a domain that exports nothing too) are each refused with EINIT naming the domain and what
 * to do; the domain is terminated.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleDomain, readGenerated } from '../../src/build/bundle.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { KernelError } from '../../src/kernel/errors.js';
import { ROOT } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'rl-init-'));
const { privateKey: key } = generateKeyPairSync('ed25519');
const kernel = new Kernel({ physBytes: 4 << 20, trustedKeys: [createPublicKey(key)], log: () => {} });
after(() => {
  kernel.shutdown();
  rmSync(tmp, { recursive: true, force: true });
});

const METHODS = `noarg() {}, onearg(x: number) { return x; }, rref(b: unknown) { return b; }, sum() { return 0; }, async asyncEcho(x: number) { return x; }, count() { return 0; }`;

async function refusedAtLoad(name: string, index: string, want: RegExp, exports: string | null = 'Callee'): Promise<void> {
  const dir = join(tmp, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'domain.json'), JSON.stringify({ name, exports, imports: [] }));
  writeFileSync(join(dir, 'index.ts'), index);
  const a = await bundleDomain(dir, { root: ROOT, ...readGenerated(ROOT), key });
  assert.throws(() => kernel.load(a), (e: unknown) => {
    assert.ok(e instanceof KernelError, String(e));
    assert.equal(e.code, 'EINIT');
    assert.match(e.message, want);
    return true;
  });
  assert.equal(kernel.get(name)?.live ?? false, false, 'terminated');
}

test('init returning a non-object, or an object lacking a method: EINIT naming the interface', async () => {
  await refusedAtLoad('retnum', `export function init() { return 3; }\n`, /domain retnum must return an object implementing Callee from init/);
  await refusedAtLoad('partial', `export function init() { return { noarg() {} }; }\n`, /domain partial: its Callee export lacks method onearg/);
});

test('an async init: EINIT saying so, not "lacks method noarg"', async () => {
  await refusedAtLoad('asyncinit', `export async function init() { return { ${METHODS} }; }\n`, /domain asyncinit: init returned a Promise \(is it async\?\): it must return its Callee object itself/);
  // A domain exporting nothing too: the rejection of its init would reach no caller.
  await refusedAtLoad('asyncnoexport', `export async function init() {}\n`, /domain asyncnoexport: init returned a Promise \(is it async\?\): it must return; start/, null);
});
