/**
 * Where built artifacts live (the trusted build writes them there; see src/build/main.ts).
 * Paths are resolved from this file's location in dist/, so commands work from any directory.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/ of this installation. */
export const distDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function artifactPath(name: string): string {
  return join(distDir, 'artifacts', `${name}.rldom`);
}

export function programArtifactPath(name: string): string {
  return join(distDir, 'artifacts', 'programs', `${name}.rldom`);
}

export function testArtifactPath(name: string): string {
  return join(distDir, 'test-artifacts', `${name}.rldom`);
}
