/**
 * The built CLI run as a child process, for the tests of its commands: where it is, one run of it
 * (stdin, environment, working directory), and a temporary directory a test removes after itself.
 */
import { spawnSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as npath from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (this file runs from dist/test/cli). */
export const ROOT = npath.resolve(npath.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = npath.join(ROOT, 'dist', 'src', 'cli', 'main.js');

export interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  input?: string;
  env?: Record<string, string>;
  /** Working directory (default: the repository). */
  cwd?: string;
  /** Default 120 s. */
  timeoutMs?: number;
}

/** `redleaf ...args`, to its end. */
export function runCli(args: readonly string[], o: CliOptions = {}): CliRun {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: o.cwd ?? ROOT, encoding: 'utf8', timeout: o.timeoutMs ?? 120_000, input: o.input ?? '', env: { ...process.env, ...o.env },
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh directory under the OS's temporary one, removed when test `t` ends. */
export function tmpdirFor(t: { after(fn: () => void): void }, prefix: string): string {
  const d = nfs.mkdtempSync(npath.join(os.tmpdir(), prefix));
  t.after(() => nfs.rmSync(d, { recursive: true, force: true }));
  return d;
}
