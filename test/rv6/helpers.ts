/**
 * Helpers of the rv6 core tests: an rv6 image with the rv6_probe test program in /bin (plus any
 * files a test adds), booted on a RAM disk with bootRv6; probe scripts as argv; the probe's JSON
 * result lines read back from the console output.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { testArtifactPath } from '../../src/kernel/paths.js';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { mkfs } from '../../src/host/mkfs.js';
import { bootRv6, type Rv6System } from '../../src/host/rv6.js';
import { DEV_CONSOLE, O_RDWR } from '../../src/interfaces/rv6.js';
import { within } from '../within.js';

export const PROBE_ARTIFACT = testArtifactPath('rv6_probe');

/** An xv6-format image (bytes) with /bin/rv6_probe, /dev, and `files` (path → contents). */
export function rv6Image(files: Record<string, string | Uint8Array> = {}, sizeBytes = 4 << 20): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'rv6-img-'));
  try {
    const all: Record<string, string | Uint8Array> = { 'bin/rv6_probe': readFileSync(PROBE_ARTIFACT), ...files };
    mkdirSync(join(dir, 'dev'));
    for (const [path, data] of Object.entries(all)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), data);
    }
    const ram = new RamBlockDevice(sizeBytes, 512);
    mkfs(ram, { variant: 'xv6', sizeBytes, addDirs: [dir] });
    return ram.readAt(0, sizeBytes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One command of a probe script. */
export type Cmd = unknown[];

/** The probe's commands that give it the console as fds 0, 1, 2 (for the probe as init). */
export const CONSOLE: Cmd[] = [
  ['mknod', '/dev/console', DEV_CONSOLE, 0],
  ['open', '/dev/console', O_RDWR],
  ['dup', 0],
  ['dup', 0],
];

/** The argv of a probe running `cmds`. */
export function probeArgv(cmds: Cmd[]): string {
  return ['rv6_probe', ...cmds.map((c) => JSON.stringify(c))].join('\0');
}

/** A child probe's argv array for the probe's spawn/exec commands. */
export const child = (...cmds: Cmd[]): unknown[] => ['rv6_probe', ...cmds];

export interface Line {
  pid: number;
  op: string;
  r: any;
}

export class Rv6Test {
  out = '';
  logs: string[] = [];
  private constructor(public sys: Rv6System) {}

  /** Boot on a RAM disk preloaded with `image`, or on the NVMe stack over an image file. */
  static async boot(image: Uint8Array | { file: string } = rv6Image()): Promise<Rv6Test> {
    let t: Rv6Test | null = null;
    const logs: string[] = [];
    const sys = await bootRv6({
      ...(image instanceof Uint8Array ? { membdevImage: image } : { image: image.file }),
      physBytes: 64 << 20,
      console: (text) => {
        t!.out += text;
      },
      log: (d, line) => void logs.push(`${d}: ${line}`),
    });
    t = new Rv6Test(sys);
    t.logs = logs;
    return t;
  }

  get kernel() {
    return this.sys.kernel;
  }

  /** The probe's result lines (other console text is skipped). */
  lines(): Line[] {
    return this.out.split('\n').filter((l) => l.startsWith('{"pid"')).map((l) => JSON.parse(l) as Line);
  }

  /** The result of the only line with this op (and pid, if given). */
  r(op: string, pid?: number): any {
    const ls = this.lines().filter((l) => l.op === op && (pid === undefined || l.pid === pid));
    assert.equal(ls.length, 1, `expected one "${op}" line${pid === undefined ? '' : ` of pid ${pid}`}, got ${ls.length}; output:\n${this.out}\nlogs:\n${this.logs.join('\n')}`);
    return ls[0]!.r;
  }

  /** Boot the probe as init with the console set up, running `cmds`; init's exit status. */
  async runInit(cmds: Cmd[], timeoutMs = 20_000): Promise<number> {
    assert.equal(await this.sys.core.boot('/bin/rv6_probe', probeArgv([...CONSOLE, ...cmds])), 0);
    return this.withTimeout(this.sys.core.waitInit(), timeoutMs, 'init to exit');
  }

  /** Start the probe as init (not waiting for it). */
  async startInit(cmds: Cmd[]): Promise<void> {
    assert.equal(await this.sys.core.boot('/bin/rv6_probe', probeArgv([...CONSOLE, ...cmds])), 0);
  }

  /** Wait until `pred` holds for the output (polling). */
  async until(pred: (t: Rv6Test) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const start = Date.now();
    while (!pred(this)) {
      if (Date.now() - start > timeoutMs) assert.fail(`timed out waiting for ${what}; output:\n${this.out}\nlogs:\n${this.logs.join('\n')}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Wait until a line with `op` (of `pid`) is printed; its result. */
  async waitLine(op: string, pid?: number): Promise<any> {
    await this.until((t) => t.lines().some((l) => l.op === op && (pid === undefined || l.pid === pid)), `a "${op}" line`);
    return this.lines().find((l) => l.op === op && (pid === undefined || l.pid === pid))!.r;
  }

  private withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return within(p, ms, () => `timed out waiting for ${what}; output:\n${this.out}\nlogs:\n${this.logs.join('\n')}`);
  }

  /** The kernel's record of domain `name`. */
  domain(name: string) {
    return this.kernel.list().find((d) => d.name === name);
  }

  stop(): Promise<void> {
    return this.sys.stop();
  }
}

/** Boot, run `fn`, always stop. */
export async function withRv6(fn: (t: Rv6Test) => Promise<void>, image?: Uint8Array | { file: string }): Promise<void> {
  const t = await Rv6Test.boot(image);
  try {
    await fn(t);
  } finally {
    await t.stop();
  }
}

/**
 * `fn` given the path of a fresh image file (rv6Image, `sizeBytes`) in a temporary directory, for
 * tests that boot on the NVMe stack (withRv6's `{ file }`) and check the image afterwards; the
 * directory is removed whatever happens.
 */
export async function withImageFile<T>(fn: (file: string) => Promise<T>, sizeBytes = 8 << 20): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'rv6-disk-'));
  try {
    const file = join(dir, 'disk.img');
    writeFileSync(file, rv6Image({}, sizeBytes));
    return await fn(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** -errno of an errno name. */
export { ERRNO } from '../../src/interfaces/rv6.js';

/**
 * Assert the results of labelled commands (of pid 1 unless given): a number or string must be
 * equal, an object is compared on the fields given.
 */
export function expectResults(t: Rv6Test, want: Record<string, unknown>, pid = 1): void {
  for (const [label, w] of Object.entries(want)) {
    const got = t.r(label, pid);
    if (w !== null && typeof w === 'object' && !Array.isArray(w)) {
      for (const [k, v] of Object.entries(w)) assert.deepEqual(got?.[k], v, `${label}.${k}: got ${JSON.stringify(got)}`);
    } else {
      assert.deepEqual(got, w, `${label}: got ${JSON.stringify(got)}`);
    }
  }
}
