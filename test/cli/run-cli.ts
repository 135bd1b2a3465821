/**
 * The built CLI run as a child process, for the tests of its commands: where it is, one run of it
 * (stdin, environment, working directory; or asynchronously, for a benchmark suite that takes
 * minutes, with its JSON parsed), and a temporary directory a test removes after itself.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as nfs from 'node:fs';
import * as os from 'node:os';
import * as npath from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

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
  /**
   * File permissions bind it as they bind a user: run as root, it runs without the capabilities
   * that override them (setpriv, util-linux), so a test of a file it may not write runs as root too.
   */
  unprivileged?: boolean;
}

/** Root's capabilities that bypass file permissions (capabilities(7)). */
const PERMISSION_OVERRIDES = '-dac_override,-dac_read_search,-fowner';

/** `redleaf ...args`, to its end. */
export function runCli(args: readonly string[], o: CliOptions = {}): CliRun {
  const argv = [process.execPath, CLI, ...args];
  if (o.unprivileged && process.getuid?.() === 0) argv.unshift('setpriv', `--bounding-set=${PERMISSION_OVERRIDES}`);
  const r = spawnSync(argv[0]!, argv.slice(1), {
    cwd: o.cwd ?? ROOT, encoding: 'utf8', timeout: o.timeoutMs ?? 120_000, input: o.input ?? '', env: { ...process.env, ...o.env },
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `redleaf ...args` asynchronously: its output, or a rejection (with the child's `stderr`) if it exits non-zero. */
export function runCliAsync(args: readonly string[], timeoutMs = 300_000): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [CLI, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 });
}

/** What `redleaf bench <suite> --json` prints. */
export interface BenchJson {
  suite: string;
  results: Record<string, string | number>[];
  notes: string[];
}

/** `redleaf bench <suite> --json --no-progress ...args`, its JSON parsed. */
export async function benchJson(suite: string, args: readonly string[], timeoutMs?: number): Promise<BenchJson> {
  const { stdout } = await runCliAsync(['bench', suite, '--json', '--no-progress', ...args], timeoutMs);
  return JSON.parse(stdout) as BenchJson;
}

/** A fresh directory under the OS's temporary one, removed when test `t` ends. */
export function tmpdirFor(t: { after(fn: () => void): void }, prefix: string): string {
  const d = nfs.mkdtempSync(npath.join(os.tmpdir(), prefix));
  t.after(() => nfs.rmSync(d, { recursive: true, force: true }));
  return d;
}
