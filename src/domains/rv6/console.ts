/**
 * The console device: a canonical-mode line discipline over the host terminal (pure code: output
 * goes to a function, input arrives as text, process groups are ended through a callback).
 *
 * Decisions:
 *  - input is canonical, as xv6's console: a read waits until a whole line (ending in '\n') is
 *    typed, then returns up to the bytes wanted, never past the end of that line; a line longer
 *    than the read stays for the next reads;
 *  - Ctrl-D (`eof`) is a marker in the input, as in xv6: the text typed before it becomes readable
 *    without a newline, and a read that starts at the marker returns 0 (end of file) and consumes
 *    it, so a later read waits for new input;
 *  - a hang-up (`hangup`: the host's input ended for good, a pipe or file that ran out, a
 *    terminal that went away) is a last Ctrl-D that stays: what was typed before it is read as
 *    usual, and then every read returns 0 at once, as a Unix terminal does after a hang-up, so
 *    `printf 'cat\nline\n' | redleaf boot` ends instead of leaving the shell waiting for ever;
 *  - no echo: the host terminal (its line editor) already shows what the user types;
 *  - Ctrl-C (`interrupt`) ends every process of the foreground group except init (pid 1; as on
 *    Linux, init never gets a default-action signal) with STATUS_INTERRUPTED, and discards the
 *    input typed ahead and not yet read (Linux flushes on INTR too). With no foreground group it
 *    ends nothing, but wakes the input group's sleeps with EINTR, as a caught SIGINT interrupts
 *    sleep(3): that is how the shell's `wait` builtin, which sleeps beside its jobs, is
 *    interrupted (bash's ^C during `wait`) while the shell itself lives on;
 *  - the foreground group starts as init's (1); tcsetpgrp(0) leaves the console with no foreground
 *    group, which is how a shell that waits at its prompt keeps Ctrl-C from ending itself;
 *  - only one process group reads the console (the input group): the foreground group, or while
 *    there is none, the group of the process that left it without one (the shell at its prompt).
 *    A read by any other group fails with EIO, as POSIX's for a background process that cannot be
 *    stopped by SIGTTIN (rv6 has no job-control stop), and so does a blocked read whose group
 *    stops being the input group: typed input is left for the foreground, however a background
 *    job got hold of the console (`cat /dev/console &` opens it by name). After a hang-up such a
 *    read returns 0 instead (end of file, as Linux's read of a hung-up terminal: no job control
 *    is left to refuse it), still taking nothing of what the input group has left to read;
 *  - output is decoded as a UTF-8 stream: a character split across two writes comes out whole.
 *
 * Invariants: no reader waits while a line or an end-of-file marker is buffered, nor once the
 * console has hung up; every waiting reader is of the input group.
 */
import { ERRNO } from '../../interfaces/rv6.js';
import { block, removeFrom, type CancelScope } from './block.js';
import type { CopyOut } from './pipe.js';

const NEWLINE = 10;
/** An end-of-file marker in the input queue. */
const EOF = null;

interface Reader {
  group: number;
  want: number;
  out: CopyOut;
  wake: (n: number) => void;
}

export class Console {
  /** Typed input not read yet: byte chunks and Ctrl-D markers, in order. */
  private queue: (Uint8Array | typeof EOF)[] = [];
  /** Read position in `queue[0]`. */
  private pos = 0;
  /** Newlines plus EOF markers in `queue`: a read can proceed when > 0. */
  private ready = 0;
  private readers: Reader[] = [];
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder('utf-8');
  /** The foreground process group, which Ctrl-C ends (0: none). */
  private fg = 1;
  /** The process group whose reads are served (see above): `fg`, or with none, the one that left none. */
  private inputGroup = 1;
  /** The input ended for good (hangup): reads past what is queued return 0. */
  private hungUp = false;

  constructor(
    private readonly out: (text: string) => void,
    private readonly interruptGroup: (pgid: number) => void,
    /** Ctrl-C with no foreground group: wake the sleeps of the input group's processes with EINTR. */
    private readonly interruptSleeps: (pgid: number) => void,
  ) {}

  write(bytes: Uint8Array): void {
    const text = this.decoder.decode(bytes, { stream: true });
    if (text.length > 0) this.out(text);
  }

  /** Typed text (any amount: whole lines, part of a line, several lines). */
  input(text: string): void {
    const bytes = this.encoder.encode(text);
    if (bytes.length === 0 || this.hungUp) return; // nothing arrives after a hang-up
    this.queue.push(bytes);
    for (const b of bytes) if (b === NEWLINE) this.ready++;
    this.serve();
  }

  /** Ctrl-D. */
  eof(): void {
    this.queue.push(EOF);
    this.ready++;
    this.serve();
  }

  /** The input ended for good: a last end-of-file marker, and every read after it returns 0. */
  hangup(): void {
    if (this.hungUp) return;
    this.hungUp = true;
    this.eof(); // its serve() also answers 0 to the readers the marker leaves waiting
  }

  /**
   * tcsetpgrp by a process of `callerGroup`: `pgid` becomes the foreground group (0: none, the
   * caller's group keeps the input). Blocked readers of any other group fail with EIO now.
   */
  setForeground(pgid: number, callerGroup: number): void {
    this.fg = pgid;
    this.inputGroup = pgid !== 0 ? pgid : callerGroup;
    for (const r of this.readers.filter((x) => x.group !== this.inputGroup)) {
      removeFrom(this.readers, r);
      r.wake(-ERRNO.EIO);
    }
  }

  /** Ctrl-C. */
  interrupt(): void {
    this.queue = [];
    this.pos = 0;
    this.ready = 0;
    if (this.fg > 0) this.interruptGroup(this.fg);
    else this.interruptSleeps(this.inputGroup);
  }

  /**
   * Read up to `want` bytes of the next line for a process of `group`; 0 at end of file,
   * `cancelled` if cancelled, -EIO if `group` is not the input group (0 after a hang-up).
   */
  read(want: number, out: CopyOut, group: number, scope: CancelScope, cancelled: number): number | Promise<number> {
    // Not the input group: EIO while there is a terminal to wait for; once it has hung up there
    // is nothing to wait for, and the reader sees end of file (Linux), the queue left untouched.
    if (group !== this.inputGroup) return this.hungUp ? 0 : -ERRNO.EIO;
    if (want === 0) return 0;
    if (this.readers.length === 0 && this.ready > 0) return this.take(want, out);
    if (this.readers.length === 0 && this.hungUp) return 0;
    return block(scope, cancelled, (wake) => {
      const r: Reader = { group, want, out, wake };
      this.readers.push(r);
      return () => removeFrom(this.readers, r);
    });
  }

  private serve(): void {
    while (this.readers.length > 0 && (this.ready > 0 || this.hungUp)) {
      const r = this.readers.shift()!;
      r.wake(this.ready > 0 ? this.take(r.want, r.out) : 0);
    }
  }

  /** Copy bytes up to `want`, the end of the line, or an EOF marker; consume a leading marker. */
  private take(want: number, out: CopyOut): number {
    let got = 0;
    while (got < want && this.queue.length > 0) {
      const chunk = this.queue[0]!;
      if (chunk === EOF) {
        if (got === 0) {
          this.queue.shift();
          this.ready--;
        }
        return got;
      }
      let end = this.pos;
      const limit = Math.min(chunk.length, this.pos + want - got);
      let sawNewline = false;
      while (end < limit) {
        if (chunk[end++] === NEWLINE) {
          sawNewline = true;
          break;
        }
      }
      out(chunk, this.pos, got, end - this.pos);
      got += end - this.pos;
      this.pos = end;
      if (this.pos === chunk.length) {
        this.queue.shift();
        this.pos = 0;
      }
      if (sawNewline) {
        this.ready--;
        return got;
      }
    }
    return got;
  }
}
