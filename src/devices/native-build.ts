/**
 * Shared build step for the device models' small native addons (tap.node for the NIC's tap
 * backend, fileio.node for the NVMe file backend): compiles one C file from the source tree into a
 * .node beside the compiled module that loads it, against the Node-API headers, with the system C
 * compiler.
 *
 * Invariant: building never fails the build. Without a compiler or headers buildAddon says so in
 * one line and leaves no addon behind; whoever loads the addon then refuses (tap) or falls back to
 * plain Node I/O (NVMe). Node-API is ABI-stable, so no node-gyp and no download: the headers come
 * from the `node-api-headers` package, else from Node's own include directory.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The source tree's copy of `file` (a path under src/), seen from the compiled dist/src/devices. */
export function sourceFile(file: string): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', file);
}

function headerDir(): string | null {
  const candidates: string[] = [];
  try {
    candidates.push((createRequire(import.meta.url)('node-api-headers') as { include_dir: string }).include_dir);
  } catch {
    // not installed: fall back to Node's own headers
  }
  candidates.push(join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node');
  return candidates.find((d) => existsSync(join(d, 'node_api.h'))) ?? null;
}

function compiler(): string | null {
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang']) {
    if (cc && spawnSync(cc, ['--version'], { stdio: 'ignore' }).status === 0) return cc;
  }
  return null;
}

/**
 * Compile C `source` into the addon `out` (Linux only: both addons use Linux system calls).
 * Returns one line saying what happened; on any failure no addon is left at `out`.
 */
export function buildAddon(source: string, out: string, why: string): string {
  rmSync(out, { force: true });
  if (process.platform !== 'linux') return `not built: ${why} is Linux-only (this is ${process.platform})`;
  const cc = compiler();
  if (!cc) return 'not built: no C compiler (cc, gcc or clang); install gcc (apt-get install gcc) and run npm run build again';
  const inc = headerDir();
  if (!inc) return 'not built: no Node-API headers (npm ci installs node-api-headers)';
  const r = spawnSync(cc, ['-std=gnu11', '-O2', '-Wall', '-fPIC', '-shared', `-I${inc}`, '-o', out, source], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(out, { force: true });
    return `not built: ${cc} failed:\n${(r.stderr || r.stdout || String(r.error)).trim()}`;
  }
  return `built ${out} (${cc}, headers ${inc})`;
}
