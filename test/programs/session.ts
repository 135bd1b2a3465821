/**
 * End-to-end helpers of the program tests: an rv6 image with every user program in /bin (from
 * dist/artifacts/programs, without the .rldom suffix) plus any files a test adds, booted on a RAM
 * disk with bootRv6 and init; a `Session` types command lines at the shell's prompt and returns
 * what each printed on the console.
 *
 * The interactive shell prints `$ ` when it reads a command and the console does not echo input,
 * so the output of a command line is exactly the console text between typing it and the next
 * prompt.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RamBlockDevice } from '../../src/host/fs-image.js';
import { mkfs } from '../../src/host/mkfs.js';
import { bootRv6, type Rv6System } from '../../src/host/rv6.js';
import type { Variant } from '../../src/domains/fs/format.js';
import type { Placement } from '../../src/kernel/kernel.js';
import { within } from '../within.js';

/** Repository root (tests run compiled from dist/test/programs). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const PROGRAMS = join(ROOT, 'dist', 'artifacts', 'programs');
const PROMPT = '$ ';

export interface ImageOptions {
  /** Extra files: path (relative to /) → contents. */
  files?: Record<string, string | Uint8Array>;
  sizeBytes?: number;
  variant?: Variant;
}

/** An image (bytes) with /bin holding every program, and `files`. */
export function programsImage(opts: ImageOptions = {}): Uint8Array {
  const sizeBytes = opts.sizeBytes ?? 8 << 20;
  const dir = mkdtempSync(join(tmpdir(), 'rv6p-'));
  try {
    mkdirSync(join(dir, 'bin'));
    for (const f of readdirSync(PROGRAMS)) {
      if (f.endsWith('.rldom')) writeFileSync(join(dir, 'bin', f.slice(0, -'.rldom'.length)), readFileSync(join(PROGRAMS, f)));
    }
    for (const [path, data] of Object.entries(opts.files ?? {})) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), data);
    }
    const ram = new RamBlockDevice(sizeBytes, 512);
    mkfs(ram, { variant: opts.variant ?? 'xv6', sizeBytes, addDirs: [dir] });
    return ram.readAt(0, sizeBytes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class Session {
  /** Everything the console printed. */
  out = '';
  readonly logs: string[] = [];
  private sys!: Rv6System;
  private initStatus: Promise<number> | null = null;

  /** Boot rv6 on `image` with /bin/init, programs placed on `programs`; resolves at the shell's first prompt. */
  static async start(image: Uint8Array = programsImage(), programs: Placement = 'thread'): Promise<Session> {
    const s = new Session();
    s.sys = await bootRv6({
      membdevImage: image,
      programPlacement: programs,
      physBytes: 128 << 20,
      console: (text) => {
        s.out += text;
      },
      log: (d, line) => void s.logs.push(`${d}: ${line}`),
    });
    assert.equal(await s.sys.core.boot('/bin/init', 'init'), 0);
    s.initStatus = s.sys.core.waitInit();
    await s.until(() => s.out.endsWith(PROMPT), 'the first prompt');
    return s;
  }

  get core() {
    return this.sys.core;
  }

  /** Type `line` at the prompt; what it printed before the next prompt. */
  async run(line: string, timeoutMs = 20_000): Promise<string> {
    const from = this.out.length;
    this.sys.core.consoleInput(line + '\n');
    await this.until(() => this.out.length > from && this.out.endsWith(PROMPT), `the prompt after ${JSON.stringify(line)}`, timeoutMs);
    return this.out.slice(from, -PROMPT.length);
  }

  /** Run `line`, then `echo $?`: its output and its status. */
  async status(line: string): Promise<{ out: string; status: number }> {
    const out = await this.run(line);
    const st = await this.run('echo $?');
    return { out, status: Number(st.trim()) };
  }

  /** Type `text` (no newline added) without waiting. */
  type(text: string): void {
    this.sys.core.consoleInput(text);
  }

  /** Wait until the console output satisfies `pred`. */
  async until(pred: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const start = Date.now();
    while (!pred()) {
      if (Date.now() - start > timeoutMs) assert.fail(`timed out waiting for ${what}; console:\n${this.out}\nlogs:\n${this.logs.join('\n')}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** init's exit status (the shell's, when it ends normally). */
  exitStatus(timeoutMs = 20_000): Promise<number> {
    return within(this.initStatus!, timeoutMs, () => `init did not exit; console:\n${this.out}`);
  }

  stop(): Promise<void> {
    return this.sys.stop();
  }
}

/** Boot a session, run `fn`, always stop. */
export async function withSession(fn: (s: Session) => Promise<void>, image?: Uint8Array, programs?: Placement): Promise<void> {
  const s = await Session.start(image, programs);
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}
