/**
 * `redleaf inspect`, run as a child process on the built CLI: every installed artifact listed as
 * loadable; one artifact described field by field (its manifest, the code's size and hash checked
 * against the file); copies of an artifact altered after signing (code, manifest, signature
 * removed, a foreign key, built against other interfaces, exporting an unknown interface) each refused by the loader's check that catches
 * it, with exit status 1; a file that is no artifact, exit status 2; an unknown name, a message
 * that says what to do; what an artifact says shown, never obeyed (control characters escaped);
 * programs in an rv6 image, read from it (`IMAGE:/bin/ls`), one changed
 * after it was installed refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import * as nfs from 'node:fs';
import * as npath from 'node:path';
import { ROOT, runCli, tmpdirFor } from './run-cli.js';
import { loadOrCreateSigningKey, signManifest, type Artifact } from '../../src/kernel/artifact.js';
import type { Inspection } from '../../src/cli/cmd-inspect.js';

const artifacts = npath.join(ROOT, 'dist', 'artifacts');

function inspectJson(args: string[]): { status: number | null; results: Inspection[]; stderr: string } {
  const r = runCli(['inspect', '--json', ...args]);
  return { status: r.status, results: r.stdout === '' ? [] : (JSON.parse(r.stdout) as Inspection[]), stderr: r.stderr };
}

test('inspect with no argument: every installed domain and program, each loadable', () => {
  const want = [
    ...nfs.readdirSync(artifacts).filter((f) => f.endsWith('.rldom')),
    ...nfs.readdirSync(npath.join(artifacts, 'programs')).filter((f) => f.endsWith('.rldom')),
  ];
  const { status, results, stderr } = inspectJson([]);
  assert.equal(status, 0, stderr);
  assert.equal(results.length, want.length);
  assert.deepEqual(results.map((r) => npath.basename(r.path)).sort(), want.sort());
  for (const r of results) assert.ok(r.loads && r.error === null && r.keyTrusted && r.fingerprintMatches, `${r.path}: ${JSON.stringify(r.error)}`);
  const names = results.map((r) => r.manifest!.name);
  for (const n of ['nvme', 'nic', 'nic_shadow', 'fs', 'rv6', 'sh', 'ls']) assert.ok(names.includes(n), `${n} listed`);

  const plain = runCli(['inspect']);
  assert.equal(plain.status, 0, plain.stderr);
  const lines = plain.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^name\s+exports\s+imports\s+code\s+verdict$/);
  assert.equal(lines.length, want.length + 1, 'a line per artifact under the heading');
  assert.ok(lines.slice(1).every((l) => /\sloads$/.test(l)), plain.stdout);
});

test('inspect one artifact by name: its manifest, and the code it names', () => {
  const file = npath.join(artifacts, 'nvme.rldom');
  const a = JSON.parse(nfs.readFileSync(file, 'utf8')) as Artifact;
  const { status, results } = inspectJson(['nvme']);
  assert.equal(status, 0);
  const [r] = results;
  assert.equal(r!.path, file);
  assert.equal(r!.manifest!.exports, 'BDev');
  assert.equal(r!.codeBytes, Buffer.byteLength(a.code));
  assert.equal(r!.manifest!.contentHash, createHash('sha256').update(a.code).digest('hex'));
  assert.equal('signature' in r!.manifest!, false, 'the signature itself is not shown');

  const text = runCli(['inspect', 'nvme']);
  assert.equal(text.status, 0);
  assert.match(text.stdout, /^name: +nvme \(version /m);
  assert.match(text.stdout, /^exports: +BDev$/m);
  assert.match(text.stdout, new RegExp(`^signed by: +key ${a.manifest.keyId} \\(trusted by this kernel\\)$`, 'm'));
  assert.match(text.stdout, /^verdict: +loads$/m);
});

test('inspect: an artifact altered after signing is refused by the check that catches it', (t) => {
  const dir = tmpdirFor(t, 'rl-inspect-');
  const a = JSON.parse(nfs.readFileSync(npath.join(artifacts, 'l2fwd.rldom'), 'utf8')) as Artifact;
  const foreign = generateKeyPairSync('ed25519').privateKey;
  const variants: Record<string, { artifact: unknown; code: string }> = {
    code: { artifact: { ...a, code: `${a.code}\n;` }, code: 'EHASH' },
    manifest: { artifact: { ...a, manifest: { ...a.manifest, imports: ['Net', 'Net'] } }, code: 'EBADSIG' },
    unsigned: { artifact: { ...a, manifest: { ...a.manifest, signature: undefined } }, code: 'EUNSIGNED' },
    foreign: { artifact: { ...a, manifest: signManifest(a.manifest, foreign) }, code: 'EUNTRUSTED' },
    // Signed again with this installation's key: only the fingerprint check can refuse it.
    fingerprint: { artifact: { ...a, manifest: signManifest({ ...a.manifest, fingerprint: '0'.repeat(64) }, loadOrCreateSigningKey()) }, code: 'EFINGERPRINT' },
    // So is an export no interface declares (the loader refuses it too: it would fail only when bound).
    export: { artifact: { ...a, manifest: signManifest({ ...a.manifest, exports: 'NetAp' }, loadOrCreateSigningKey()) }, code: 'ENOIFACE' },
  };
  const paths = Object.entries(variants).map(([name, v]) => {
    const p = npath.join(dir, `${name}.rldom`);
    nfs.writeFileSync(p, JSON.stringify(v.artifact));
    return p;
  });
  const { status, results } = inspectJson(paths);
  assert.equal(status, 1, 'exit status 1: an artifact would be refused');
  assert.deepEqual(results.map((r) => r.error?.code), Object.values(variants).map((v) => v.code));
  assert.ok(results.every((r) => !r.loads && r.manifest !== null), 'each still described');
  assert.equal(results[3]!.keyTrusted, false, 'the foreign key is named as not trusted');
  assert.equal(results[4]!.fingerprintMatches, false);

  const text = runCli(['inspect', paths[0]!]);
  assert.equal(text.status, 1);
  assert.match(text.stdout, /^verdict: +refused: EHASH: .*content hash mismatch/m);

  // What the artifact says is shown, never obeyed: a terminal escape and a line break in its name.
  const evil = npath.join(dir, 'evil.rldom');
  nfs.writeFileSync(evil, JSON.stringify({ ...a, manifest: { ...a.manifest, name: 'l2fwd\u001b[2J\nverdict:    loads' } }));
  for (const args of [[evil], [evil, 'nvme']]) {
    const shown = runCli(['inspect', ...args]);
    assert.equal(shown.status, 1);
    assert.ok(!/[\u0000-\u0009\u000b-\u001f]/.test(shown.stdout), `no control character printed:\n${shown.stdout}`);
    assert.ok(shown.stdout.includes('l2fwd\\u001b[2J\\u000averdict:    loads'), shown.stdout);
    assert.ok(!/^verdict: +loads$/m.test(shown.stdout), 'no line of its own making');
  }
});

test('inspect: a file that is no artifact (exit 2), an unknown name (what to do)', (t) => {
  const dir = tmpdirFor(t, 'rl-inspect-');
  const junk = npath.join(dir, 'junk.rldom');
  nfs.writeFileSync(junk, 'not json at all');
  const r = inspectJson([junk, 'nvme']);
  assert.equal(r.status, 2, 'exit status 2: one is not an artifact');
  assert.equal(r.results[0]!.manifest, null);
  assert.equal(r.results[0]!.error!.code, 'EBADARTIFACT');
  assert.equal(r.results[1]!.loads, true, 'the others are still inspected');

  const unknown = runCli(['inspect', 'no_such_domain']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stdout, /^verdict: +unreadable: ENOENT: no installed domain or program is named no_such_domain .*redleaf inspect/m);
});

test('inspect IMAGE:/path: programs installed in an rv6 image, read from the image', (t) => {
  const dir = tmpdirFor(t, 'rl-inspect-');
  const img = npath.join(dir, 'boot.img');
  const m = runCli(['mkfs', img, '--size', '16M', '--programs']);
  assert.equal(m.status, 0, m.stderr);
  const ok = inspectJson([`${img}:/bin/ls`, `${img}:/bin/sh`]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(ok.results.map((r) => [r.manifest!.name, r.loads]), [['ls', true], ['sh', true]]);
  const installed = JSON.parse(nfs.readFileSync(npath.join(artifacts, 'programs', 'ls.rldom'), 'utf8')) as Artifact;
  assert.equal(ok.results[0]!.manifest!.contentHash, installed.manifest.contentHash, 'the image holds the built program');

  // A program changed in the image after it was installed (its code, not its signed manifest).
  const changed = npath.join(dir, 'ls.rldom');
  nfs.writeFileSync(changed, JSON.stringify({ ...installed, code: installed.code.replace('ls', 'LS') }));
  const cp = runCli(['cp', changed, `${img}:/bin/ls`]);
  assert.equal(cp.status, 0, cp.stderr);
  const bad = inspectJson([`${img}:/bin/ls`, `${img}:/bin/no_such_program`, `${img}:/bin`, dir]);
  assert.equal(bad.status, 2);
  assert.equal(bad.results[0]!.error!.code, 'EHASH');
  assert.equal(bad.results[1]!.error!.code, 'ENOENT');
  // A directory, in the image or on the host, is said to be one (not parsed as an artifact).
  assert.deepEqual(bad.results.slice(2).map((r) => [r.manifest, r.error!.code]), [[null, 'EISDIR'], [null, 'EISDIR']]);
  assert.match(bad.results[3]!.error!.message, /is a directory, not an artifact file/);
});
