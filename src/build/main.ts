/**
 * The trusted build's driver: `node dist/src/build/main.js idl` regenerates src/gen from the
 * interface folder; `... domains` (no options or arguments) bundles and signs every domain folder
 * (a folder with domain.json) under src/domains, src/programs and test/domains into the artifact
 * folder ARTIFACT_DIRS names for each. Both run in the repository root (the current directory).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { compileIdl, IdlError } from './idl.js';
import { generateKernelModule, generateShadowModule } from './codegen.js';
import { bundleDomain, domainFolders, readGenerated, writeArtifact, BuildError } from './bundle.js';
import { loadOrCreateSigningKey } from '../kernel/artifact.js';

const root = process.cwd();

/** Artifact directories: where the kernel and tests find built domains. */
export const ARTIFACT_DIRS: Record<string, string> = {
  'src/domains': 'dist/artifacts',
  'src/programs': 'dist/artifacts/programs',
  'test/domains': 'dist/test-artifacts',
};

function idl(): void {
  const model = compileIdl(join(root, 'src', 'interfaces'), root);
  const gen = join(root, 'src', 'gen');
  mkdirSync(gen, { recursive: true });
  writeFileSync(join(gen, 'idl.ts'), generateKernelModule(model));
  writeFileSync(join(gen, 'shadows.ts'), generateShadowModule(model));
  writeFileSync(join(gen, 'fingerprint.json'), JSON.stringify({ fingerprint: model.fingerprint, interfaces: model.interfaces.map((i) => i.name) }) + '\n');
  console.log(`idl: ${model.interfaces.length} interfaces, ${model.layouts.length} layouts, fingerprint ${model.fingerprint.slice(0, 12)}`);
}

async function domains(): Promise<void> {
  const { fingerprint, interfaces } = readGenerated(root);
  const key = loadOrCreateSigningKey();
  const folders = domainFolders(root, ARTIFACT_DIRS);
  for (const { dir, out } of folders) writeArtifact(await bundleDomain(dir, { root, fingerprint, interfaces, key }), out);
  console.log(`domains: ${folders.length} artifacts built and signed (key in ${relative(root, process.env.REDLEAF_KEY_DIR ?? '.redleaf/keys')})`);
}

const cmd = process.argv[2];
try {
  if (cmd === 'idl') idl();
  else if (cmd === 'domains') await domains();
  else {
    console.error('usage: node dist/src/build/main.js idl|domains');
    process.exit(2);
  }
} catch (e) {
  if (e instanceof IdlError || e instanceof BuildError) {
    console.error(e.message);
    process.exit(1);
  }
  throw e;
}
