/**
 * The trusted build's import policy (src/build/bundle.ts): a domain folder importing a host
 * module (node:fs, a bare package), a relative path outside its folder, calling import() or
 * require() is refused with a message naming the file, the import and the reason; a domain that
 * imports only the interfaces, the runtime library and its own files builds and is signed; a type
 * error in a domain folder outside the project's tsconfig is refused with file:line:col.
 * Bad domains are created in a temporary directory and bundled against the repository root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { bundleDomain, readGenerated, BuildError } from '../../src/build/bundle.js';
import { uncheckedFiles } from '../../src/build/typecheck.js';
import { ROOT } from '../kernel/helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'rl-policy-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const { privateKey: key } = generateKeyPairSync('ed25519');
const { fingerprint, interfaces } = readGenerated(ROOT);
const ifaces = relative(join(tmp, 'x'), join(ROOT, 'src/interfaces/index.js'));

function domain(name: string, files: Record<string, string>, spec: object = {}): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'domain.json'), JSON.stringify({ name, exports: 'Callee', imports: [], ...spec }));
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

async function refused(dir: string, ...want: RegExp[]): Promise<void> {
  await assert.rejects(bundleDomain(dir, { root: ROOT, fingerprint, interfaces, key }), (e: unknown) => {
    assert.ok(e instanceof BuildError, String(e));
    assert.match(e.message, /refused by the trusted build/);
    for (const w of want) assert.match(e.message, w);
    return true;
  });
}

const BODY = `export function init() { return { noarg() {}, onearg(x: number) { return x; }, rref(b: any) { return b; }, sum() { return 0; }, async asyncEcho(x: number) { return x; }, count() { return 0; } }; }\n`;

test('control: a domain importing only interfaces and its own files builds and is signed', async () => {
  const dir = domain('good', {
    'index.ts': `import type { Callee } from '${ifaces}';\nimport { one } from './util.js';\nexport const k: number = one;\nexport function callOne(c: Callee): number {\n  return c.onearg(k);\n}\n${BODY}`,
    'util.ts': `export const one = 1;\n`,
  });
  const a = await bundleDomain(dir, { root: ROOT, fingerprint, interfaces, key });
  assert.equal(a.manifest.name, 'good');
  assert.equal(a.manifest.fingerprint, fingerprint);
  assert.equal(typeof a.manifest.signature, 'string');
  assert.match(a.code, /\$rl_tick/, 'instrumented');
});

test('a type error in a domain folder outside the project is refused with file:line:col (only esbuild, which strips types, saw it)', async () => {
  await refused(domain('typeerr', { 'index.ts': `${BODY}const x: number = 'a';\nexport const y = x;\n` }), /typeerr\/index\.ts:2:7: Type 'string' is not assignable to type 'number'\./);
  // In a file index.ts imports, and against the interfaces: an init whose export lacks Callee's methods.
  await refused(
    domain('typeerr2', {
      'index.ts': `import type { Callee } from '${ifaces}';\nimport { half } from './util.js';\nexport function init(): Callee {\n  return { noarg() {}, onearg: half };\n}\n`,
      'util.ts': `export function half(x: number): number {\n  return x.length / 2;\n}\n`,
    }),
    /typeerr2\/index\.ts:4:3: Type '\{ noarg\(\): void; onearg: \(x: number\) => number; \}' is missing the following properties from type 'Callee': rref, sum, mixed, asyncEcho, count/,
    /typeerr2\/util\.ts:2:12: Property 'length' does not exist on type 'number'\./,
  );
  // The project's compiler options, not TypeScript's defaults: strict (noImplicitAny) and noUnusedLocals.
  await refused(domain('typeerr3', { 'index.ts': `${BODY}export function f(a) {\n  const unused = 1;\n  return a;\n}\n` }), /typeerr3\/index\.ts:2:19: Parameter 'a' implicitly has an 'any' type\./, /typeerr3\/index\.ts:3:9: 'unused' is declared but its value is never read\./);
});

test("a domain folder the project's tsconfig includes is left to tsc -p tsconfig.json (not type-checked twice); one outside it is not", () => {
  const inside = join(ROOT, 'src/domains/dom_c/index.ts');
  const outside = join(tmp, 'elsewhere-typed', 'index.ts');
  assert.deepEqual(uncheckedFiles(ROOT, [inside, join(ROOT, 'test/domains/faulty/index.ts'), outside]), [outside]);
});

test('node:fs is refused', async () => {
  await refused(domain('fsuser', { 'index.ts': `import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n${BODY}` }), /fsuser\/index\.ts: import "node:fs" refused: a domain may import only the interfaces and the domain runtime library/);
});

test('a bare package is refused', async () => {
  await refused(domain('pkguser', { 'index.ts': `import * as e from 'esbuild';\nexport const r = e;\n${BODY}` }), /import "esbuild" refused/);
});

test('a relative path outside the domain folder is refused', async () => {
  mkdirSync(join(tmp, 'elsewhere'), { recursive: true });
  writeFileSync(join(tmp, 'elsewhere', 'secret.ts'), 'export const s = 1;\n');
  await refused(
    domain('outside', { 'index.ts': `import { s } from '../elsewhere/secret.js';\nexport const r = s;\n${BODY}` }),
    /outside\/index\.ts: import "\.\.\/elsewhere\/secret\.js" refused: .*elsewhere\/secret\.ts is outside the domain's folder/,
  );
  // ... and so is the kernel, reached from the repository.
  await refused(
    domain('kernelgrab', { 'index.ts': `import { Kernel } from '${relative(join(tmp, 'x'), join(ROOT, 'src/kernel/kernel.js'))}';\nexport const r = Kernel;\n${BODY}` }),
    /src\/kernel\/kernel\.ts is outside the domain's folder/,
  );
});

test('dynamic import() and require() are refused with file:line:col', async () => {
  await refused(domain('dynimp', { 'index.ts': `${BODY}export async function f() {\n  return await import('node:fs');\n}\n` }), /dynimp\/index\.ts:3:16: dynamic import\(\) is not available to domain code/);
  await refused(domain('req', { 'index.ts': `declare const require: any;\n${BODY}export const fs = require('fs');\n` }), /req\/index\.ts:3:19: require\(\) is not available to domain code/);
});

test('an export or supervised interface the IDL does not know is refused (it would load and fail only when bound); a host capability import is not an IDL interface', async () => {
  const dir = domain('unknownif', { 'index.ts': BODY }, { exports: 'Calee', imports: ['Callee', 'RamDiskMemory', 'Supervisor:BDev', 'Supervisor:Calee'] });
  await assert.rejects(bundleDomain(dir, { root: ROOT, fingerprint, interfaces, key }), (e: unknown) => {
    assert.ok(e instanceof BuildError, String(e));
    assert.match(e.message, /unknownif\/domain\.json: no interface named Calee, Calee in src\/interfaces \(known: .*Callee.*\): declare it there, or fix the name/);
    return true;
  });
});

test("what esbuild would fail on is a BuildError with the source's file:line:col, not esbuild's stack: a syntax error, top-level await, a missing file or index.ts", async () => {
  await refused(domain('syntax', { 'index.ts': `${BODY}export const x = ;\n` }), /syntax\/index\.ts:2:18: Expression expected/);
  await refused(domain('tla', { 'index.ts': `${BODY}await Promise.resolve(1);\n` }), /tla\/index\.ts:2:1: top-level await is not available to domain code/);
  await refused(domain('nofile', { 'index.ts': `import { s } from './gone.js';\nexport const r = s;\n${BODY}` }), /nofile\/index\.ts: import "\.\/gone\.js": no such file .*nofile\/gone\.ts/);
  const noindex = domain('noindex', { 'main.ts': BODY });
  await assert.rejects(bundleDomain(noindex, { root: ROOT, fingerprint, interfaces, key }), (e: unknown) => {
    assert.ok(e instanceof BuildError, String(e));
    assert.match(e.message, /noindex\/index\.ts: missing: a domain's entry point is index\.ts, exporting init/);
    return true;
  });
});

test('an esbuild failure the instrumentation does not catch is a BuildError too', async () => {
  // A duplicate export is valid syntax for TypeScript's parser; esbuild refuses it.
  await refused(domain('dupexport', { 'index.ts': `${BODY}export const a = 1;\nexport { a as init };\n` }), /dupexport\/index\.ts:\d+:\d+: Multiple exports with the same name "init"/);
});

test("text the loader's evaluator (SES) refuses is refused at build time, with the file: an HTML comment, import( or eval( even in a string", async () => {
  await refused(
    domain('arrow', { 'index.ts': `${BODY}export const note = 'a --> b';\n` }),
    /arrow\/index\.ts: `var note = "a --> b";` would be refused when loaded: .*looks like an HTML comment/,
  );
  await refused(domain('impstr', { 'index.ts': `${BODY}export const s = "no import(x) here";\n` }), /impstr\/index\.ts: .* looks like an import expression/);
  await refused(
    domain('evals', { 'index.ts': `${BODY}export const o = { eval(x: number) { return x; } };\nexport const e = (s: string): unknown => eval(s);\n` }),
    /evals\/index\.ts: `var o = \{ eval\(x\) \{` would be refused .* a direct eval/,
    /evals\/index\.ts: `return eval\(s\);` would be refused/,
  );
  // What the messages advise builds: esbuild keeps a template literal's substitution apart.
  const a = await bundleDomain(domain('split', { 'index.ts': `${BODY}export const note = \`a --\${'>'} b, import\${'('}\`;\n` }), { root: ROOT, fingerprint, interfaces, key });
  assert.match(a.code, /a --\$\{">"\} b/);
});

test('an index.ts exporting no init, or an init with more parameters than sys and the imports, is refused', async () => {
  await refused(domain('defexport', { 'index.ts': `export default function init() { return {}; }\nexport const k = 1;\n` }), /defexport\/index\.ts: exports no init \(it exports default, k\): a domain's index\.ts exports function init\(sys, \.\.\.imports\)/);
  await refused(domain('initless', { 'index.ts': `export function start() { return {}; }\n` }), /initless\/index\.ts: exports no init \(it exports start\)/);
  await refused(
    domain('arity', { 'index.ts': `export function init(sys: unknown, callee: unknown, rec: unknown) { return { sys, callee, rec }; }\n` }, { imports: ['Callee'] }),
    /arity\/index\.ts:1:1: init declares 3 parameters, but the kernel passes sys and the 1 import\(s\) domain\.json lists \(Callee\): the rest would be undefined/,
  );
  await refused(domain('arrowinit', { 'index.ts': `export const init = (sys: unknown, x: unknown) => ({ sys, x });\n` }), /arrowinit\/index\.ts:1:14: init declares 2 parameters, but the kernel passes only sys/);
  // Fewer parameters (an import or sys unused), a rest parameter, an init calling code in another file: built.
  for (const [name, text] of [
    ['fewer', `export function init() { return {}; }\n`],
    ['rest', `export function init(...args: unknown[]) { return { args }; }\n`],
    ['delegating', `import { init as impl } from './impl.js';\nexport function init() { return impl(); }\n`],
  ]) {
    const dir = domain(name!, { 'index.ts': text!, 'impl.ts': BODY }, { imports: ['Callee'] });
    assert.equal((await bundleDomain(dir, { root: ROOT, fingerprint, interfaces, key })).manifest.name, name);
  }
});

test('an init index.ts does not declare as a function itself (a re-export, export *, an alias, a let, a class) is refused, saying what to write', async () => {
  // Each of these built, its init unchecked: impl.ts's init takes 3 parameters and the kernel passes only sys.
  const IMPL = `export function init(sys: unknown, a: unknown, b: unknown) { return { sys, a, b }; }\nexport function start(sys: unknown, a: unknown, b: unknown) { return { sys, a, b }; }\n`;
  const instead = /declare it in index\.ts itself, `export function init\(sys, \.\.\.imports\) \{ \.\.\. \}` \(it may call code in other files\)/;
  for (const [name, text, want] of [
    ['reexport', `export { init } from './impl.js';\n`, /reexport\/index\.ts:1:1: init is not declared here as a function \(`export \{ init \} from '\.\/impl\.js';`\)/],
    ['reexportas', `export { start as init } from './impl.js';\n`, /reexportas\/index\.ts:1:1: init is not declared here as a function/],
    ['aliased', `import { start } from './impl.js';\nexport { start as init };\n`, /aliased\/index\.ts:2:1: init is not declared here as a function \(`export \{ start as init \};`\)/],
    ['imported', `import { init } from './impl.js';\nexport { init };\n`, /imported\/index\.ts:2:1: init is not declared here as a function/],
    ['assigned', `import { start } from './impl.js';\nexport const init = start;\n`, /assigned\/index\.ts:2:1: init is not declared here as a function \(`export const init = start;`\)/],
    ['letinit', `export let init = () => ({});\n`, /letinit\/index\.ts:1:1: init is not declared here as a function/],
    ['classinit', `export class init {}\n`, /classinit\/index\.ts:1:1: init is not declared here as a function \(`export class init \{\}`\)/],
    ['star', `export * from './impl.js';\n`, /star\/index\.ts: exports no init \(it exports nothing; `export \* from '\.\/impl\.js'` is not followed\): .*which the kernel calls to start it: /],
  ] as const) {
    await refused(domain(name, { 'index.ts': text, 'impl.ts': IMPL }), want, instead);
  }
});

test('a symbolic link in the domain folder to a file or folder outside it is refused (index.ts included)', async () => {
  const elsewhere = join(tmp, 'elsewhere-linked');
  mkdirSync(elsewhere, { recursive: true });
  writeFileSync(join(elsewhere, 'secret.ts'), `export const s = 'outside';\n${BODY}`);
  const dir = domain('linker', { 'index.ts': `import { s } from './leak.js';\nimport { KernelError } from './k/kernel-error.js';\nexport const r = [s, KernelError];\n${BODY}` });
  symlinkSync(join(elsewhere, 'secret.ts'), join(dir, 'leak.ts'));
  symlinkSync(join(ROOT, 'src/kernel'), join(dir, 'k'));
  await refused(
    dir,
    /linker\/index\.ts: import "\.\/leak\.js" refused: .*linker\/leak\.ts links to .*elsewhere-linked\/secret\.ts, which is outside the domain's folder/,
    /import "\.\/k\/kernel-error\.js" refused: .*links to .*src\/kernel\/kernel-error\.ts, which is outside/,
  );
  const entry = domain('linkedentry', {});
  symlinkSync(join(elsewhere, 'secret.ts'), join(entry, 'index.ts'));
  await refused(entry, /linkedentry\/index\.ts refused: it links to .*elsewhere-linked\/secret\.ts, which is outside the domain's folder/);
});
