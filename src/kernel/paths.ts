/**
 * Where built artifacts live (the trusted build writes them there; see src/build/main.ts).
 * Paths are resolved from this file's location in dist/, so commands work from any directory.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/ of this installation. */
export const distDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The build's domain artifacts, and in programs/ its user programs (rv6's /bin). */
export const artifactsDir = join(distDir, 'artifacts');
export const programsDir = join(artifactsDir, 'programs');

export function artifactPath(name: string): string {
  return join(artifactsDir, `${name}.rldom`);
}

export function programArtifactPath(name: string): string {
  return join(programsDir, `${name}.rldom`);
}

export function testArtifactPath(name: string): string {
  return join(distDir, 'test-artifacts', `${name}.rldom`);
}
