/**
 * Artifact verification by kernel.load (ARCHITECTURE §1): a tampered artifact — code changed
 * (EHASH, a lone surrogate the hash of UTF-8 would not see included), manifest changed
 * (EBADSIG), unsigned (EUNSIGNED), signed by an untrusted key (EUNTRUSTED), built against other
 * interfaces (EFINGERPRINT), exporting an interface this kernel does not know (ENOIFACE), not an
 * artifact (EBADARTIFACT) —
 * is refused with that code and a message naming the domain; a correctly re-signed one loads.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Kernel } from '../../src/kernel/kernel.js';
import { KernelError } from '../../src/kernel/errors.js';
import { signManifest, sha256, type Artifact } from '../../src/kernel/artifact.js';
import { DOM_C } from './helpers.js';

const { privateKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519').privateKey;
const kernel = new Kernel({ physBytes: 4 << 20, trustedKeys: [createPublicKey(privateKey)], log: () => {} });
const tmp = mkdtempSync(join(tmpdir(), 'rl-artifact-'));
after(() => {
  kernel.shutdown();
  rmSync(tmp, { recursive: true, force: true });
});

const original = Kernel.readArtifact(DOM_C);
const clone = (): Artifact => JSON.parse(JSON.stringify(original)) as Artifact;
/** dom_c re-signed with our trusted key (optionally after changing the manifest). */
function signed(edit: (a: Artifact) => void = () => {}, key = privateKey): Artifact {
  const a = clone();
  edit(a);
  a.manifest = signManifest(a.manifest, key);
  return a;
}

function refused(a: Artifact | string, code: string, msg: RegExp): void {
  assert.throws(
    () => kernel.load(a, { name: `x${Math.random().toString(36).slice(2)}` }),
    (e: unknown) => {
      assert.ok(e instanceof KernelError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, msg);
      return true;
    },
  );
}

test('control: dom_c re-signed by a trusted key loads and works', () => {
  const d = kernel.load(signed(), { name: 'good' });
  assert.equal(kernel.bind(d).onearg(1), 2);
});

test('code changed after signing: EHASH', () => {
  const a = signed();
  a.code = a.code.replace('x + 1', 'x + 2');
  assert.notEqual(a.code, original.code, 'the tamper changed something');
  refused(a, 'EHASH', /content hash mismatch.*code was modified/);
});

test('a lone surrogate put in the code, where the signed code had U+FFFD: EHASH (both hash alike as UTF-8)', () => {
  // Signed code that behaves one way with U+FFFD in a literal and another with a lone surrogate.
  const a = signed((x) => {
    x.code = x.code.replace('x + 1', 'x + ("\uFFFD".charCodeAt(0) === 0xd800 ? 1000 : 1)');
    x.manifest.contentHash = sha256(x.code);
  });
  assert.equal(kernel.bind(kernel.load(a, { name: 'replacement-char' })).onearg(1), 2);
  // The artifact file as JSON can spell the lone surrogate as an escape.
  const b = JSON.parse(JSON.stringify(a).replace('\uFFFD', '\\ud800')) as Artifact;
  assert.notEqual(b.code, a.code, 'the tamper changed something');
  refused(b, 'EHASH', /lone UTF-16 surrogate.*code was modified/);
});

test('manifest changed after signing: EBADSIG', () => {
  const a = signed();
  a.manifest.version = '9.9.9';
  refused(a, 'EBADSIG', /signature check failed/);
  const b = signed();
  b.manifest.contentHash = sha256(b.code + ' ');
  refused(b, 'EBADSIG', /signature/);
});

test('unsigned: EUNSIGNED', () => {
  const a = signed();
  delete a.manifest.signature;
  refused(a, 'EUNSIGNED', /dom_c" is not signed/);
});

test('signed by an untrusted key: EUNTRUSTED (including the development key when not trusted)', () => {
  refused(signed(() => {}, other), 'EUNTRUSTED', /signed by key [0-9a-f]{16}, which this kernel does not trust/);
  refused(original, 'EUNTRUSTED', /does not trust/);
});

test('built against other interfaces: EFINGERPRINT', () => {
  refused(signed((a) => (a.manifest.fingerprint = 'f'.repeat(64))), 'EFINGERPRINT', /built against interfaces ffffffffffff.*rebuild the domain/);
});

test('an export no interface declares: ENOIFACE before its code runs (it loaded, and failed only when bound)', () => {
  refused(signed((a) => (a.manifest.exports = 'Calee')), 'ENOIFACE', /domain artifact "dom_c" exports Calee, which no interface of this kernel declares: fix "exports" in its domain\.json and rebuild it/);
  // Not a name an object has of its own either.
  refused(signed((a) => (a.manifest.exports = 'toString')), 'ENOIFACE', /exports toString/);
});

test('not an artifact: EBADARTIFACT / ENOENT', () => {
  const p = join(tmp, 'junk.rldom');
  writeFileSync(p, '{"manifest": 1');
  refused(p, 'EBADARTIFACT', /invalid JSON/);
  writeFileSync(p, JSON.stringify({ manifest: { name: 'x' }, code: '' }));
  refused(p, 'EBADARTIFACT', /field "version"/);
  refused(join(tmp, 'missing.rldom'), 'ENOENT', /cannot read domain artifact/);
  refused(tmp, 'EISDIR', /it is a directory/);
});

test('a FIFO or a device given as an artifact is refused before anything is read from it', () => {
  // A FIFO without a writer blocked the kernel thread in open for ever; /dev/zero was read without end.
  const fifo = join(tmp, 'pipe.rldom');
  execFileSync('mkfifo', [fifo]);
  refused(fifo, 'EINVAL', /pipe\.rldom: it is not a regular file/);
  refused('/dev/zero', 'EINVAL', /\/dev\/zero: it is not a regular file/);
});
