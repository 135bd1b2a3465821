/**
 * Build step for the tap backend's native addon: compiles tap.c (from the source tree) into
 * tap.node beside the compiled tap.js, against the Node-API headers, with the system C compiler.
 *
 *   node dist/src/devices/nic/tap-build.js        (run by `npm run build`)
 *
 * Invariant: this step never fails the build. Without a compiler or headers it says so in one
 * line and leaves no addon behind, and the tap backend then refuses with the same remedy; every
 * other backend works either way. Node-API is ABI-stable, so no node-gyp and no download: the
 * headers come from the `node-api-headers` package, else from Node's own include directory.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TAP_ADDON } from './tap.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/src/devices/nic -> the source tree's src/devices/nic. */
const SOURCE = join(here, '..', '..', '..', '..', 'src', 'devices', 'nic', 'tap.c');

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

function build(): string {
  rmSync(TAP_ADDON, { force: true });
  if (process.platform !== 'linux') return `not built: TAP devices are Linux-only (this is ${process.platform})`;
  const cc = compiler();
  if (!cc) return 'not built: no C compiler (cc, gcc or clang); install gcc (apt-get install gcc) and run npm run build again';
  const inc = headerDir();
  if (!inc) return 'not built: no Node-API headers (npm ci installs node-api-headers)';
  const r = spawnSync(cc, ['-std=gnu11', '-O2', '-Wall', '-fPIC', '-shared', `-I${inc}`, '-o', TAP_ADDON, SOURCE], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(TAP_ADDON, { force: true });
    return `not built: ${cc} failed:\n${(r.stderr || r.stdout || String(r.error)).trim()}`;
  }
  return `built ${TAP_ADDON} (${cc}, headers ${inc})`;
}

console.log(`tap addon: ${build()}`);
