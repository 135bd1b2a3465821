/**
 * `redleaf boot [--disk IMAGE] [--membdev | --read-only] [--no-shadow]`: boot rv6 and connect this
 * terminal to its console. Without --disk the default image is used (created on first run, see
 * src/host/image.ts); an image's /bin programs are first brought up to date with the build, except
 * with --read-only, which writes nothing to the image (and only says what is out of date).
 *
 * Two console front ends:
 *  - a terminal (stdin and stdout both TTYs): raw mode through node:readline, which gives line
 *    editing and history; Ctrl-C interrupts the console's foreground process group, Ctrl-D on an
 *    empty line is end-of-file for the program reading the console (and the session goes on);
 *  - anything else (pipes, files): input is forwarded as it arrives, end of input is Ctrl-D.
 *
 * Invariants: console output goes to stdout and host notes (domain log lines, faults, notices) to
 * stderr, and on a terminal a note never splits the line being typed: the input line is erased,
 * the note written, the prompt and input redrawn. The terminal is restored (cooked mode) on every
 * way out — init exiting, an error, a signal. The process exits with init's exit status after
 * rv6 is stopped (file system synced and unmounted, devices stopped).
 */
import { clearLine, createInterface, cursorTo, type Interface } from 'node:readline';
import { Command, Option } from 'commander';
import { ERRNO, type Rv6Boot } from '../interfaces/rv6.js';
import { bootRv6 } from '../host/rv6.js';
import type { Placement } from '../kernel/kernel.js';
import { prepareBootImage } from '../host/image.js';

/** The host side of the rv6 console. */
interface HostConsole {
  /** Text the rv6 console writes. */
  output(text: string): void;
  /** A host message (log line, notice), shown apart from the console's output. */
  note(line: string): void;
  /** Start forwarding input to `core` (input that arrived before is delivered now, in order). */
  attach(core: Rv6Boot): void;
  /** Stop reading input and give the terminal back. Idempotent. */
  close(): void;
}

/**
 * Delivers input to the core once attached, queueing what arrives before. A call the core
 * cannot take (it died: the call throws an RpcError) is reported, not thrown into the input
 * stream's event handler; the session then ends through waitInit failing.
 */
class InputForwarder {
  private core: Rv6Boot | null = null;
  private queued: Array<(core: Rv6Boot) => void> = [];

  constructor(private readonly report: (line: string) => void) {}

  send(fn: (core: Rv6Boot) => void): void {
    if (this.core) this.deliver(this.core, fn);
    else this.queued.push(fn);
  }

  attach(core: Rv6Boot): void {
    this.core = core;
    for (const fn of this.queued.splice(0)) this.deliver(core, fn);
  }

  private deliver(core: Rv6Boot, fn: (core: Rv6Boot) => void): void {
    try {
      fn(core);
    } catch (e) {
      this.report(`redleaf: console input lost: ${(e as Error).message}`);
    }
  }
}

class PipeConsole implements HostConsole {
  private readonly input = new InputForwarder((line) => this.note(line));
  private readonly onData = (text: string): void => this.input.send((c) => c.consoleInput(text));
  private readonly onEnd = (): void => this.input.send((c) => c.consoleHangup());

  constructor() {
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', this.onData);
    process.stdin.on('end', this.onEnd);
  }

  output(text: string): void {
    process.stdout.write(text);
  }

  note(line: string): void {
    process.stderr.write(`${line}\n`);
  }

  attach(core: Rv6Boot): void {
    this.input.attach(core);
  }

  close(): void {
    process.stdin.off('data', this.onData);
    process.stdin.off('end', this.onEnd);
    process.stdin.pause();
  }
}

/** How long after Ctrl-C at a prompt the console has to print before the prompt is shown again. */
const REPROMPT_MS = 150;

/**
 * The terminal front end. readline draws the line being typed after a "prompt" that is really the
 * console's unfinished output line (the shell's "$ "), kept in `partial`, so that a redraw
 * (history recall, a note arriving) reproduces the screen as the shell left it.
 */
class TtyConsole implements HostConsole {
  private readonly input = new InputForwarder((line) => this.note(line));
  private history: string[] = [];
  /** Console output after its last newline: what the cursor's line shows before the input. */
  private partial = '';
  private closed = false;
  /** After Ctrl-C at a prompt: shows the prompt again unless the console prints first. */
  private reprompt: NodeJS.Timeout | null = null;
  private rl: Interface;

  constructor() {
    this.rl = this.open();
  }

  private open(): Interface {
    const rl = createInterface({
      input: process.stdin, output: process.stdout, terminal: true, prompt: this.partial,
      history: this.history, historySize: 1000, removeHistoryDuplicates: true,
    });
    rl.on('history', (h: string[]) => { this.history = h; });
    rl.on('line', (line) => {
      this.setPartial('');
      this.input.send((c) => c.consoleInput(`${line}\n`));
    });
    rl.on('SIGINT', () => this.interrupt());
    // readline closes on Ctrl-D at an empty line: that is end-of-file for the console's reader,
    // not the end of the session, so read on with a new interface (same history).
    rl.on('close', () => {
      if (this.closed) return;
      if (process.stdin.readableEnded || process.stdin.destroyed) {
        this.input.send((c) => c.consoleHangup()); // the terminal hung up
        return;
      }
      this.input.send((c) => c.consoleEof());
      this.rl = this.open();
    });
    return rl;
  }

  private setPartial(text: string): void {
    this.partial = text;
    this.rl.setPrompt(text);
  }

  /**
   * Ctrl-C: show ^C after what was typed, drop it, interrupt the foreground processes. When the
   * console was showing a prompt (an unfinished line) and nothing answers the interrupt — the
   * shell at its prompt has no foreground job — show that prompt again on the new line, as a
   * shell would; an interrupted job's shell prints its own prompt at once instead.
   */
  private interrupt(): void {
    const prompt = this.partial;
    this.rl.write(null, { ctrl: true, name: 'e' }); // cursor to the end of the input
    process.stdout.write('^C\n');
    this.setPartial('');
    this.rl.write(null, { ctrl: true, name: 'u' }); // forget the input (redraws an empty line)
    this.input.send((c) => c.consoleInterrupt());
    this.cancelReprompt();
    if (prompt === '') return;
    this.reprompt = setTimeout(() => {
      this.reprompt = null;
      if (this.closed) return;
      this.setPartial(prompt);
      this.rl.prompt(true);
    }, REPROMPT_MS);
    this.reprompt.unref();
  }

  private cancelReprompt(): void {
    if (this.reprompt !== null) clearTimeout(this.reprompt);
    this.reprompt = null;
  }

  /** Erase the line being typed (prompt and input), run `write`, redraw prompt and input. */
  private aside(write: () => void): void {
    cursorTo(process.stdout, 0);
    clearLine(process.stdout, 0);
    write();
    this.rl.prompt(true);
  }

  output(text: string): void {
    this.cancelReprompt();
    if (this.closed) {
      process.stdout.write(text);
      return;
    }
    const nl = text.lastIndexOf('\n');
    const next = nl < 0 ? this.partial + text : text.slice(nl + 1);
    if (this.rl.line === '') {
      // Nothing typed: the output simply continues the screen.
      process.stdout.write(text);
      this.setPartial(next);
      return;
    }
    // Something typed: the output goes before it, the input moves down with the prompt.
    const committed = nl < 0 ? '' : this.partial + text.slice(0, nl + 1);
    this.aside(() => {
      process.stdout.write(committed);
      this.setPartial(next);
    });
  }

  note(line: string): void {
    if (this.closed || (this.partial === '' && this.rl.line === '')) {
      process.stderr.write(`${line}\n`);
      return;
    }
    this.aside(() => process.stderr.write(`${line}\n`));
  }

  attach(core: Rv6Boot): void {
    this.input.attach(core);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelReprompt();
    this.rl.close(); // leaves raw mode
    if (this.partial !== '') process.stdout.write('\n');
  }
}

function errnoName(errno: number): string {
  return Object.entries(ERRNO).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
}

interface BootCliOptions {
  disk?: string;
  membdev: boolean;
  readOnly: boolean;
  shadow: boolean;
  programs: Placement;
  check: boolean;
}

const EXAMPLES = `
The console: type commands at the rv6 shell; Ctrl-C interrupts the running program, Ctrl-D
ends the input of the program reading the console (at the shell's prompt: the shell exits), and
"exit [N]" leaves with status N (redleaf exits with init's status). Domain log lines and faults
are shown on stderr, prefixed with the domain's name.

Examples:
  redleaf boot                       # the default image (.redleaf/rv6.img, or $REDLEAF_IMAGE)
  redleaf boot --disk my.img         # an image made with: redleaf mkfs my.img --programs
  redleaf boot --membdev             # the default image loaded into RAM: changes are not kept
  redleaf boot --disk ro.img --read-only  # look, change nothing: writes fail with EROFS
  echo 'ls /; exit 3' | redleaf boot # a scripted session; exit code 3
  redleaf boot --programs worker     # every program on its own worker thread (domains: PLACE)

At the shell: crash nvme (the disk driver panics; its shadow restarts it and the shell carries
on), then domains (the driver's restart count).
`;

export function register(program: Command): void {
  program
    .command('boot')
    .description('boot rv6 and connect this terminal to its console (default image created on first run)')
    .option('--disk <image>', 'rv6 image to boot (default: $REDLEAF_IMAGE or .redleaf/rv6.img, created if missing)')
    .option('--membdev', 'load the image into an in-memory block device instead of the NVMe drive (changes are lost at exit)', false)
    .addOption(
      new Option('--read-only', 'mount the image read-only, writing nothing to it (it may be one you may not write): changes fail with "Read-only file system", /bin is not brought up to date (it says so if stale), a pending log is applied in memory only')
        .default(false)
        .conflicts('membdev'),
    )
    .option('--no-shadow', 'no block shadow in front of the disk driver (a driver crash then reaches the file system)')
    .option('--no-check', 'boot an image even if fsck finds it damaged (by default such an image is refused: writing to it could damage it further)')
    .addOption(
      new Option('--programs <placement>', 'where user programs run: thread (the kernel thread) or worker (a worker thread each: preemptible, tens of ms more per command)')
        .choices(['thread', 'worker'])
        .default('thread'),
    )
    .addHelpText('after', EXAMPLES)
    .action(async (o: BootCliOptions) => {
      const term: HostConsole = process.stdin.isTTY && process.stdout.isTTY ? new TtyConsole() : new PipeConsole();
      let stop: (() => Promise<void>) | null = null;
      let leaving = false;
      /** Leave before init exits: stop rv6 (sync, unmount), then exit with `status`. */
      const leave = (why: string, status: number): void => {
        if (leaving) process.exit(status); // asked twice: do not wait for the shutdown
        leaving = true;
        term.close();
        process.stderr.write(`redleaf boot: ${why}: shutting down\n`);
        void (stop?.() ?? Promise.resolve()).finally(() => process.exit(status));
      };
      const handlers: Array<[NodeJS.Signals, () => void]> = [
        ['SIGTERM', () => leave('SIGTERM', 128 + 15)],
        ['SIGHUP', () => leave('SIGHUP', 128 + 1)],
        ['SIGINT', () => leave('SIGINT', 128 + 2)], // a terminal in raw mode sends none: kill -INT, or piped mode
      ];
      for (const [sig, h] of handlers) process.on(sig, h);
      // The reader of our output went away (`redleaf boot | head`): as SIGPIPE would, end.
      process.stdout.on('error', (e: NodeJS.ErrnoException) => leave(e.code === 'EPIPE' ? 'output closed' : `output: ${e.message}`, 128 + 13));
      let status: number;
      try {
        // With --membdev the programs are brought up to date in the RAM disk's copy, not in the
        // file: its changes are not kept, and an image the user may not write boots too.
        // With --read-only nothing writes the file: no install (only a comparison), and the NVMe
        // namespace is write-protected, so the fs domain mounts read-only.
        const image = await prepareBootImage(o.disk, (line) => term.note(`redleaf: ${line}`), { check: o.check, inMemory: o.membdev, readOnly: o.readOnly });
        const sys = await bootRv6({
          ...(o.membdev ? { membdevImage: image.bytes ?? image.path } : { image: image.path }),
          ...(o.readOnly ? { readOnly: true } : {}),
          shadow: o.shadow,
          programPlacement: o.programs,
          console: (text) => term.output(text),
          log: (domain, line) => term.note(`[${domain}] ${line}`),
        });
        stop = sys.stop;
        sys.kernel.onFault((d, cause, message) => term.note(`[kernel] domain ${d.name} died (${cause}): ${message}`));
        term.attach(sys.core);
        const r = await sys.core.boot('/bin/init', 'init');
        if (r < 0) throw new Error(`boot: init (/bin/init) did not start: ${errnoName(-r)}`);
        try {
          status = await sys.core.waitInit();
        } catch (e) {
          throw new Error(`boot: the session ended without init's status: ${(e as Error).message}`);
        }
      } finally {
        term.close();
        await stop?.();
        for (const [sig, h] of handlers) process.off(sig, h);
      }
      if (leaving) return; // leave() exits with its own status
      // Leave now: nothing of the session should keep the process alive once rv6 is down.
      process.exit(status);
    });
}
