/**
 * A domain's domain.json as the trusted build reads it (src/build/bundle.ts readDomainSpec):
 * every malformed file is refused with a BuildError naming the file, the field and what it must
 * be — never a TypeError, and never an artifact the loader would then refuse; two domain folders
 * giving one name are refused (domainFolders), as the second artifact would overwrite the first.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { domainFolders, readDomainSpec, readGenerated, BuildError } from '../../src/build/bundle.js';

const tmp = mkdtempSync(join(tmpdir(), 'rl-spec-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A folder `name` whose domain.json holds `text` (none when null). */
function folder(name: string, text: string | null): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  if (text !== null) writeFileSync(join(dir, 'domain.json'), text);
  return dir;
}

function refused(dir: string, want: RegExp): void {
  assert.throws(() => readDomainSpec(dir), (e: unknown) => {
    assert.ok(e instanceof BuildError, String(e));
    assert.ok(e.message.startsWith(join(dir, 'domain.json') + ': '), e.message);
    assert.match(e.message, want);
    return true;
  });
}

const spec = (o: object): string => JSON.stringify({ name: 'a', exports: 'Callee', imports: [], ...o });

test('a missing or unparsable domain.json', () => {
  refused(folder('missing', null), /missing: a domain folder needs a domain\.json/);
  refused(folder('notjson', '{ name: '), /not valid JSON/);
});

test('a domain.json that is not an object', () => {
  refused(folder('null', 'null'), /must be a JSON object .* got null/);
  refused(folder('array', '[]'), /must be a JSON object .* got \[\]/);
  refused(folder('string', '"a"'), /must be a JSON object/);
});

test('wrongly typed fields name the field and the value', () => {
  refused(folder('name', spec({ name: 'Big' })), /"name" must be a lower-case identifier .* got "Big"/);
  refused(folder('version', spec({ version: 2 })), /"version" must be a string .* got 2/);
  refused(folder('exports', spec({ exports: ['Callee'] })), /"exports" must be an interface name or null, got \["Callee"\]/);
  refused(folder('noexports', JSON.stringify({ name: 'a', imports: [] })), /"exports" must be an interface name or null, got undefined/);
  refused(folder('imports', spec({ imports: [1] })), /"imports" must be a list of interface names .* got \[1\]/);
  refused(folder('noimports', JSON.stringify({ name: 'a', exports: null })), /"imports" must be a list/);
});

test('an unknown field is refused, not ignored (a misspelt "version" would be dropped)', () => {
  refused(folder('extra', spec({ verison: '1.0.0', placement: 'worker' })), /unknown field\(s\) "verison", "placement": a domain\.json has only "name", "version", "exports", "imports"/);
});

test('control: a well-formed domain.json', () => {
  assert.deepEqual(readDomainSpec(folder('good', spec({ version: '1.2.3', exports: null, imports: ['Callee'] }))), { name: 'a', version: '1.2.3', exports: null, imports: ['Callee'] });
});

test('two domain folders with one name are refused, across the source folders too', () => {
  const root = join(tmp, 'root');
  const put = (dir: string, name: string): void => {
    mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, dir, 'domain.json'), spec({ name }));
  };
  put('src/domains/a', 'a');
  put('src/programs/b', 'b');
  const sources = { 'src/domains': 'dist/artifacts', 'src/programs': 'dist/artifacts/programs' };
  assert.deepEqual(domainFolders(root, sources), [
    { dir: join(root, 'src/domains/a'), out: join(root, 'dist/artifacts') },
    { dir: join(root, 'src/programs/b'), out: join(root, 'dist/artifacts/programs') },
  ]);
  put('src/programs/copy', 'a');
  assert.throws(() => domainFolders(root, sources), (e: unknown) => {
    assert.ok(e instanceof BuildError, String(e));
    assert.equal(e.message, `${join(root, 'src/programs/copy/domain.json')}: the name "a" is taken by ${join(root, 'src/domains/a/domain.json')}: give one of them another name`);
    return true;
  });
});

test('build domains before build idl: what to run, not an ENOENT stack', () => {
  const root = join(tmp, 'noidl');
  mkdirSync(join(root, 'src/gen'), { recursive: true });
  const want = (e: unknown): boolean => e instanceof BuildError && /src\/gen\/fingerprint\.json: missing or not from this build's IDL compiler: run `node dist\/src\/build\/main\.js idl` first/.test(e.message);
  assert.throws(() => readGenerated(root), want);
  // An older build's file (no interface names) is as good as none.
  writeFileSync(join(root, 'src/gen/fingerprint.json'), JSON.stringify({ fingerprint: 'f'.repeat(64) }));
  assert.throws(() => readGenerated(root), want);
});
